//! Clients that behave badly in every way and at every moment, many at
//! once: partial heads, partial frames, garbage, resets and half-closes in
//! the middle of anything. Afterwards the server must have let go of every
//! connection (within its timeouts), must not be busy doing nothing, and
//! must still serve a well-behaved client.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use ringcast::ServerBuilder;
use socket2::Socket;

/// A small deterministic generator (xorshift64*), so a failure can be
/// replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Builds the bytes one chaotic client sends.
fn script(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = Vec::new();
    if rng.below(6) == 0 {
        // Only part of a head, or garbage.
        let head = upgrade_request("/", "");
        let cut = rng.below(head.len() as u64) as usize;
        bytes.extend_from_slice(&head.as_bytes()[..cut]);
        if rng.below(2) == 0 {
            bytes.extend((0..rng.below(300)).map(|_| rng.next() as u8));
        }
        return bytes;
    }
    bytes.extend_from_slice(upgrade_request("/", "").as_bytes());
    for _ in 0..rng.below(8) {
        let frame = match rng.below(9) {
            0 => masked(0x1, b"hello"),
            1 => masked(0x2, &vec![1u8; rng.below(2_000_000) as usize]),
            2 => masked(0x9, b"ping"),
            3 => client_frame(0x01, b"frag", true),
            4 => client_frame(0x80, b"ment", true),
            5 => masked(0x8, &close_payload(1000, "")),
            6 => client_frame(0x81, b"unmasked", false),
            7 => masked(0x1, &[0xff, 0xfe]),
            _ => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        };
        bytes.extend(frame);
    }
    // Stop anywhere, even inside a frame.
    let keep = bytes.len() - rng.below(bytes.len() as u64 / 4 + 1) as usize;
    bytes.truncate(keep);
    bytes
}

#[test]
fn the_server_survives_and_forgets_every_misbehaving_client() {
    let server = TestServer::start(
        ServerBuilder::new()
            .shards(2)
            .handshake_timeout(Duration::from_millis(500))
            .close_timeout(Duration::from_millis(500))
            .idle_timeout(Some(Duration::from_millis(500)))
            .pong_timeout(Duration::from_millis(500)),
    );
    let seed = 0x5eed_0001;
    let mut rng = Rng(seed);
    let mut threads = Vec::new();
    for client in 0..200u64 {
        let mut bytes = script(&mut rng);
        let mut ending = rng.below(4);
        let mut read_some = rng.below(2) == 0;
        let mut small_window = rng.below(2) == 0;
        if rng.below(8) == 0 {
            // Abandon a finished exchange while the server still owes us
            // bytes: a big echo, our close, then a reset without reading.
            bytes = upgrade_request("/", "").into_bytes();
            bytes.extend(masked(0x2, &vec![3u8; 1 << 20]));
            bytes.extend(masked(0x8, &close_payload(1000, "")));
            (ending, read_some, small_window) = (0, false, true);
        }
        let addr = server.addr();
        threads.push(std::thread::spawn(move || {
            // A small receive window makes the server's sends get stuck,
            // so endings land while a send is in flight.
            let socket = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            if small_window {
                socket.set_recv_buffer_size(4096).unwrap();
            }
            if socket.connect(&addr.into()).is_err() {
                return;
            }
            let mut stream = TcpStream::from(socket);
            stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            // Write in a few pieces; the server may close on us half-way.
            for piece in bytes.chunks(bytes.len() / 3 + 1) {
                if stream.write_all(piece).is_err() {
                    break;
                }
            }
            if read_some {
                let mut sink = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut sink);
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
            match ending {
                0 => {
                    // Reset.
                    let socket = Socket::from(stream);
                    let _ = socket.set_linger(Some(Duration::ZERO));
                }
                1 => {
                    let _ = stream.shutdown(Shutdown::Write);
                    std::thread::sleep(Duration::from_millis(50));
                }
                2 => drop(stream),
                // Just leave it open, silent: timeouts must end it.
                _ => std::thread::sleep(Duration::from_millis(1500 + client % 7)),
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let until = Instant::now() + Duration::from_secs(10);
    while server.handle.stats().connections > 0 {
        assert!(
            Instant::now() < until,
            "seed {seed:#x}: {} connections still held after every client left",
            server.handle.stats().connections
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let turns = server.handle.stats().turns;
    eprintln!("loop turns for the whole run: {turns}");
    // A few per client event; a shard spinning on a dead connection makes
    // hundreds of thousands (until a timeout ends it).
    assert!(turns < 50_000, "seed {seed:#x}: {turns} loop turns for 200 clients");
    std::thread::sleep(Duration::from_millis(300));
    let idle_turns = server.handle.stats().turns - turns;
    assert!(idle_turns < 100, "seed {seed:#x}: {idle_turns} loop turns in 300 ms with no connection");
    // Still serving.
    let mut client = RawClient::open(server.addr());
    client.send_raw(&masked(0x1, b"still here"));
    assert_eq!(client.read_frame().unwrap().payload, b"still here");
    // Every connection that opened was reported closed exactly once.
    let log = server.log.lock().unwrap();
    assert_eq!(log.closed.len(), log.opened - 1, "the last client is still open");
}
