//! Connection lifetimes: idle checks, server-side close, backpressure,
//! connection limits and graceful shutdown, with real clients.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use ringcast::ServerBuilder;
use tokio_tungstenite::tungstenite::Message;

fn quick_idle() -> ringcast::ServerBuilder {
    ServerBuilder::new()
        .shards(1)
        .idle_timeout(Some(Duration::from_millis(300)))
        .pong_timeout(Duration::from_millis(300))
}

#[test]
fn an_idle_peer_is_pinged_and_dropped_when_it_does_not_answer() {
    let server = TestServer::start(quick_idle());
    let started = Instant::now();
    let mut client = RawClient::open(server.addr());
    let ping = client.read_frame().expect("a ping after the idle timeout");
    assert_eq!(ping.opcode, 0x9);
    let pinged = started.elapsed();
    assert!(pinged >= Duration::from_millis(290), "pinged after {pinged:?}");
    // No pong: the server hangs up after the pong timeout.
    client.expect_eof();
    let dropped = started.elapsed();
    assert!(dropped >= Duration::from_millis(580) && dropped < Duration::from_secs(3), "dropped after {dropped:?}");
    let closes = server.wait_closes(1);
    assert_eq!(closes[0].0, 1006, "no closing handshake: {closes:?}");
}

#[test]
fn a_peer_that_answers_pings_stays_connected() {
    let server = TestServer::start(quick_idle());
    let mut client = RawClient::open(server.addr());
    let until = Instant::now() + Duration::from_millis(1500);
    let mut pings = 0;
    while Instant::now() < until {
        let frame = client.read_frame().expect("the connection stays up");
        assert_eq!(frame.opcode, 0x9, "{frame:?}");
        pings += 1;
        client.send_raw(&masked(0xA, &frame.payload));
    }
    assert!(pings >= 2, "pinged {pings} times in 1.5 s");
    client.send_raw(&masked(0x1, b"still here"));
    let echo = loop {
        let frame = client.read_frame().unwrap();
        if frame.opcode != 0x9 {
            break frame;
        }
        client.send_raw(&masked(0xA, &frame.payload));
    };
    assert_eq!(echo.payload, b"still here");
    assert!(server.log.lock().unwrap().pongs >= 2, "the handler hears the pongs");
    assert!(server.log.lock().unwrap().closed.is_empty());
}

#[test]
fn the_handler_closes_and_the_client_answers() {
    let server = TestServer::one_shard();
    let mut client = RawClient::open(server.addr());
    client.send_raw(&masked(0x1, b"close-me"));
    let frame = client.read_frame().unwrap();
    assert_eq!(frame.close_code(), Some(4001));
    assert_eq!(&frame.payload[2..], b"asked");
    client.send_raw(&masked(0x8, &frame.payload));
    client.expect_eof();
    assert_eq!(server.wait_closes(1)[0], (4001, "asked".to_string(), false));
}

#[test]
fn a_close_the_client_never_answers_times_out() {
    let server = TestServer::start(ServerBuilder::new().shards(1).close_timeout(Duration::from_millis(200)));
    let mut client = RawClient::open(server.addr());
    client.send_raw(&masked(0x1, b"close-me"));
    assert_eq!(client.read_frame().unwrap().close_code(), Some(4001));
    let started = Instant::now();
    client.expect_eof();
    assert!(started.elapsed() < Duration::from_secs(2));
    // The handler was told when the close timed out.
    assert_eq!(server.wait_closes(1)[0].0, 1006);
}

/// Asks the test handler to send 64 KiB messages until the budget refuses
/// one, without reading; returns how many it queued.
fn flood(server: &TestServer, client: &mut RawClient) -> usize {
    client.send_raw(&masked(0x1, b"flood"));
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(sent) = server.log.lock().unwrap().flood_sent {
            return sent;
        }
        assert!(Instant::now() < until, "the server never finished the flood");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_peer_that_does_not_read_hits_the_backpressure_limit() {
    let server = TestServer::start(ServerBuilder::new().shards(1).max_backpressure(1 << 20));
    let mut client = RawClient::open(server.addr());
    let sent = flood(&server, &mut client);
    assert!((1..=17).contains(&sent), "1 MiB admits about 16 messages of 64 KiB, not {sent}");
    for _ in 0..sent {
        let frame = client.read_frame().unwrap();
        assert_eq!((frame.opcode, frame.payload.len()), (0x2, 64 << 10));
    }
    let close = client.read_frame().unwrap();
    assert_eq!(close.close_code(), Some(1008));
    client.send_raw(&masked(0x8, &close.payload));
    client.expect_eof();
}

/// Without `send_buffer_size`, the kernel autotunes a socket's send buffer
/// to megabytes for a peer that does not read (3.8 MB measured here),
/// outside any budget of ours.
#[test]
fn send_buffer_size_bounds_what_the_kernel_takes_for_a_peer_that_does_not_read() {
    let server = TestServer::start(ServerBuilder::new().shards(1).max_backpressure(4 << 20).send_buffer_size(16 << 10));
    let mut client = RawClient::open(server.addr());
    let sent = flood(&server, &mut client);
    assert!(sent >= 60, "4 MiB admits about 64 messages of 64 KiB, not {sent}");
    // Let the kernel take all it will.
    std::thread::sleep(Duration::from_millis(300));
    let taken = server.handle.stats().bytes_out;
    assert!(taken < 512 << 10, "the kernel took {taken} bytes for a peer that reads nothing");
    for _ in 0..sent {
        let frame = client.read_frame().unwrap();
        assert_eq!((frame.opcode, frame.payload.len()), (0x2, 64 << 10), "nothing lost");
    }
}

#[test]
fn past_max_connections_new_clients_get_503() {
    let server = TestServer::start(ServerBuilder::new().shards(1).max_connections(2));
    let _a = RawClient::open(server.addr());
    let _b = RawClient::open(server.addr());
    let mut c = RawClient::connect(server.addr());
    let head = c.read_head();
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    c.expect_eof();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_1001_and_waits_for_the_closes() {
    let server = TestServer::start(ServerBuilder::new().shards(2));
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (ws, _) = tokio_tungstenite::connect_async(server.url("/")).await.unwrap();
        clients.push(ws);
    }
    // Each client reads until its connection ends, noting the close code.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                ws.send(Message::text("hi")).await.unwrap();
                let mut code = None;
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Close(Some(frame)) = message {
                        code = Some(u16::from(frame.code));
                    }
                }
                code
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let handle = server.handle.clone();
    let started = Instant::now();
    let report = tokio::task::spawn_blocking(move || handle.shutdown(Duration::from_secs(5))).await.unwrap();
    assert_eq!(report.forced, 0, "every client answered the close");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the stop does not wait for the deadline: {:?}",
        started.elapsed()
    );
    for reader in readers {
        assert_eq!(reader.await.unwrap(), Some(1001));
    }
    let closes = server.log.lock().unwrap().closed.clone();
    assert_eq!(closes.len(), 20);
    assert!(closes.iter().all(|c| c.0 == 1001 && !c.2), "{closes:?}");
    assert!(std::net::TcpStream::connect(server.addr()).is_err(), "nothing listens after the stop");
}

#[test]
fn shutdown_cuts_clients_that_ignore_the_close_at_the_deadline() {
    let server = TestServer::one_shard();
    let mut client = RawClient::open(server.addr());
    let handle = server.handle.clone();
    let started = Instant::now();
    let stopper = std::thread::spawn(move || handle.shutdown(Duration::from_millis(300)));
    let close = client.read_frame().unwrap();
    assert_eq!(close.close_code(), Some(1001));
    // Never answer.
    let report = stopper.join().unwrap();
    let took = started.elapsed();
    assert_eq!(report.forced, 1);
    assert!(took >= Duration::from_millis(280) && took <= Duration::from_millis(300 + 250), "{took:?}");
    client.expect_eof();
    assert_eq!(server.wait_closes(1)[0].0, 1006);
}

/// SO_REUSEPORT lets the shards share a port; it must not let a server
/// start on a port another process (or another server) already listens on.
#[test]
fn a_server_refuses_an_address_something_already_listens_on() {
    let builder = || ServerBuilder::new().shards(2).pin_threads(false);
    let first = ringcast::bench::start_tcp_echo(builder(), "127.0.0.1:0").unwrap();
    let taken = first.local_addr();
    match ringcast::bench::start_tcp_echo(builder(), taken) {
        Err(ringcast::Error::Bind { addr, source }) => {
            assert_eq!(addr, taken);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{source}");
            assert!(source.to_string().contains("another process listens"), "{source}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("a second server started on {taken}, sharing it with the first"),
    }
    // A plain listener of someone else's.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap();
    assert!(matches!(ringcast::bench::start_tcp_echo(builder(), port), Err(ringcast::Error::Bind { .. })));
    // Once the first server is gone, its port can be taken again at once:
    // its connections' TIME_WAIT does not count.
    {
        use std::io::{Read, Write};
        let mut client = std::net::TcpStream::connect(taken).unwrap();
        client.write_all(b"ping").unwrap();
        let mut echo = [0u8; 4];
        client.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"ping");
    }
    first.shutdown(Duration::from_secs(1));
    let again = ringcast::bench::start_tcp_echo(builder(), taken).unwrap();
    assert_eq!(again.local_addr(), taken);
    again.shutdown(Duration::from_secs(1));
}
