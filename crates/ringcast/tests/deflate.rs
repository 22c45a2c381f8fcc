//! permessage-deflate in the runtime: negotiated at the upgrade, a publish
//! compressed once for every subscriber that negotiated it (whatever its
//! shard), plain frames for the others, compressed messages read.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringcast::proto::deflate::{Negotiated, PerMessageDeflate, Tuning};
use ringcast::proto::Extension;
use ringcast::{Decision, Deflate, Handler, Message, Peer, Request, ServerBuilder, ServerHandle, ServerHandler, Ws};

/// `/topics/NAME`: subscribe; every message goes to the other subscribers.
struct Rooms;

impl ServerHandler for Rooms {
    fn upgrade(&mut self, request: &Request<'_>, _peer: &Peer<'_>) -> Decision<String> {
        match request.path().strip_prefix("/topics/") {
            Some(name) => Decision::accept(name.to_string()),
            None => Decision::reject(404),
        }
    }
}

impl Handler for Rooms {
    type Data = String;

    fn open(&mut self, ws: &mut Ws<'_, String>) {
        let topic = ws.data().clone();
        ws.subscribe(&topic).expect("within the limits");
    }

    fn message(&mut self, ws: &mut Ws<'_, String>, message: Message<'_>) {
        let topic = ws.data().clone();
        ws.publish(&topic, message);
    }
}

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

fn start() -> ServerHandle {
    ServerBuilder::new()
        .shards(2)
        .pin_threads(false)
        .deflate(Deflate::default())
        .start("127.0.0.1:0", |_| Rooms)
        .unwrap()
}

fn join(server: &ServerHandle, deflate: bool) -> (RawClient, String) {
    let mut client = RawClient::connect(server.local_addr());
    client.send_raw(upgrade_request("/topics/news", if deflate { OFFER } else { "" }).as_bytes());
    let head = client.read_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    (client, head)
}

/// The payload of a server frame, inflated when it carries RSV1.
fn payload(frame: &Frame) -> Vec<u8> {
    if !frame.rsv1 {
        return frame.payload.clone();
    }
    let negotiated = Negotiated {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut codec = PerMessageDeflate::new(negotiated, false, Tuning::default());
    let mut out = Vec::new();
    codec.decode(0b100, &frame.payload, 1 << 24, &mut out).expect("inflates");
    out
}

fn wait_subscribers(server: &ServerHandle, n: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while server.subscribers("news") != n {
        assert!(Instant::now() < until);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_publish_is_compressed_once_for_every_subscriber_that_negotiated_it() {
    let server = start();
    let mut deflating: Vec<RawClient> = Vec::new();
    for _ in 0..6 {
        let (client, head) = join(&server, true);
        assert!(
            head.contains(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            ),
            "{head}"
        );
        deflating.push(client);
    }
    let (mut plain, head) = join(&server, false);
    assert!(!head.contains("Sec-WebSocket-Extensions"), "no offer, no extension: {head}");
    wait_subscribers(&server, 7);

    let json = "{\"type\":\"quote\",\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.27} ".repeat(60);
    assert_eq!(server.publish("news", Message::Text(&json)), 7);
    let mut wire_sizes = Vec::new();
    for client in &mut deflating {
        let frame = client.read_frame().unwrap();
        assert!(frame.rsv1 && frame.opcode == 1, "{:?}", (frame.rsv1, frame.opcode));
        assert_eq!(payload(&frame), json.as_bytes());
        wire_sizes.push(frame.payload.len());
    }
    assert!(wire_sizes.iter().all(|&n| n == wire_sizes[0] && n < json.len() / 5), "{wire_sizes:?} of {}", json.len());
    let frame = plain.read_frame().unwrap();
    assert!(!frame.rsv1);
    assert_eq!(frame.payload, json.as_bytes());
    // Six subscribers over two shards, one compression.
    let until = Instant::now() + Duration::from_secs(5);
    while server.stats().publishes_deflated != 1 {
        assert!(Instant::now() < until, "compressions: {}", server.stats().publishes_deflated);
        std::thread::sleep(Duration::from_millis(5));
    }

    // Below the threshold (128 bytes): plain for everyone, nothing compressed.
    server.publish("news", Message::Binary(b"short"));
    for client in deflating.iter_mut().chain([&mut plain]) {
        let frame = client.read_frame().unwrap();
        assert!(!frame.rsv1 && frame.payload == b"short");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.stats().publishes_deflated, 1);

    // A compressed message from a client reaches the others, compressed
    // again only for those that negotiated.
    let mut compressed = Vec::new();
    PerMessageDeflate::compress_alone(json.as_bytes(), &Tuning { level: 6, ..Tuning::default() }, &mut compressed);
    deflating[0].send_raw(&client_frame(0x80 | 0x40 | 0x1, &compressed, true));
    for client in deflating[1..].iter_mut() {
        let frame = client.read_frame().unwrap();
        assert!(frame.rsv1);
        assert_eq!(payload(&frame), json.as_bytes());
    }
    let frame = plain.read_frame().unwrap();
    assert_eq!((frame.rsv1, frame.payload.as_slice()), (false, json.as_bytes()));
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_decompression_bomb_is_closed_with_1009() {
    let server = ServerBuilder::new()
        .shards(1)
        .pin_threads(false)
        .max_message_size(1 << 20)
        .deflate(Deflate::default())
        .start("127.0.0.1:0", |_| Rooms)
        .unwrap();
    let (mut client, _) = join(&server, true);
    let mut bomb = Vec::new();
    PerMessageDeflate::compress_alone(&vec![0u8; 16 << 20], &Tuning { level: 9, ..Tuning::default() }, &mut bomb);
    assert!(bomb.len() < 32 << 10, "{}", bomb.len());
    client.send_raw(&client_frame(0x80 | 0x40 | 0x2, &bomb, true));
    let close = client.read_frame().expect("a close frame");
    assert_eq!(close.close_code(), Some(1009));
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_mebibyte_that_would_inflate_to_a_gibibyte_is_closed_with_1009() {
    // The default limits. 1 MiB of zeros compresses to about 1 KiB; 1024
    // copies, each ended by its sync flush, are one valid message of about
    // 1 MiB that inflates to 1 GiB: the server stops at its 16 MiB limit.
    let server =
        ServerBuilder::new().shards(1).pin_threads(false).deflate(Deflate::default()).start("127.0.0.1:0", |_| Rooms);
    let server = server.unwrap();
    let (mut client, _) = join(&server, true);
    let mut kibibyte = Vec::new();
    PerMessageDeflate::compress_alone(&vec![0u8; 1 << 20], &Tuning { level: 9, ..Tuning::default() }, &mut kibibyte);
    assert!(kibibyte.len() < 2048, "{}", kibibyte.len());
    let mut bomb = Vec::new();
    for _ in 0..1024 {
        bomb.extend_from_slice(&kibibyte);
        bomb.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    }
    bomb.truncate(bomb.len() - 4);
    client.send_raw(&client_frame(0x80 | 0x40 | 0x2, &bomb, true));
    let close = client.read_frame().expect("a close frame");
    assert_eq!(close.close_code(), Some(1009));
    // The shard lives on: a new connection is served.
    let (_other, head) = join(&server, true);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_smaller_window_and_memory_level_are_used_and_still_compressed_once() {
    let server = ServerBuilder::new()
        .shards(2)
        .pin_threads(false)
        .deflate(Deflate::default().window_bits(10).memory_level(1))
        .start("127.0.0.1:0", |_| Rooms)
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (client, head) = join(&server, true);
        assert!(head.contains("; server_max_window_bits=10\r\n"), "{head}");
        clients.push(client);
    }
    wait_subscribers(&server, 4);
    // 4 000 letters twice: a 32 KiB window finds the repeat 4 000 bytes
    // back, a 1 KiB one cannot.
    let mut state = 7u32;
    let half: String = (0..4000)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + (state >> 16) as u8 % 26)
        })
        .collect();
    let text = half.repeat(2);
    let (mut small, mut full, mut roomy) = (Vec::new(), Vec::new(), Vec::new());
    let tuning = Tuning { window: 10, memory: 1, ..Tuning::default() };
    PerMessageDeflate::compress_alone(text.as_bytes(), &tuning, &mut small);
    PerMessageDeflate::compress_alone(text.as_bytes(), &Tuning::default(), &mut full);
    assert!(full.len() * 3 / 2 < small.len(), "{} vs {}", full.len(), small.len());
    // Memory level 1 ends a block every 128 symbols: other bytes than 8.
    PerMessageDeflate::compress_alone(text.as_bytes(), &Tuning { memory: 8, ..tuning }, &mut roomy);
    assert_ne!(small, roomy);
    server.publish("news", Message::Text(&text));
    for client in &mut clients {
        let frame = client.read_frame().unwrap();
        assert!(frame.rsv1);
        assert_eq!(frame.payload, small, "compressed with the 1 KiB window and memory level 1");
        assert_eq!(payload(&frame), text.as_bytes());
    }
    let until = Instant::now() + Duration::from_secs(5);
    while server.stats().publishes_deflated != 1 {
        assert!(Instant::now() < until, "compressions: {}", server.stats().publishes_deflated);
        std::thread::sleep(Duration::from_millis(5));
    }
    server.shutdown(Duration::from_secs(1));
}
