//! permessage-deflate in the client: offered only when switched on, the
//! server's answer checked, messages compressed and inflated both ways.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::recorder::{collect, count, Ev, Failure, Plan, Recorder};
use common::{accept_response, read_request_head, TestServer};
use ringcast::{ClientBuilder, ClientHandle, Connect, Deflate, ServerBuilder};

fn start_client(deflate: bool) -> (ClientHandle<Plan>, mpsc::Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    let mut builder = ClientBuilder::new().max_backpressure(16 << 20);
    if deflate {
        builder = builder.deflate(Deflate::default());
    }
    (builder.start(move |_| Recorder { events: tx.clone() }).expect("client starts"), rx)
}

/// Text that compresses well, binary that does not, and sizes around the
/// threshold and the frame-length boundaries.
fn payloads() -> Vec<(bool, Vec<u8>)> {
    let mut plan = Vec::new();
    for size in [0usize, 1, 127, 128, 125, 65_536, 1 << 20] {
        let text: Vec<u8> = (0..size).map(|i| b"ringcast deflate "[i % 17]).collect();
        let noise: Vec<u8> = (0..size as u64).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8).collect();
        plan.push((true, text));
        plan.push((false, noise));
    }
    plan
}

/// Our client and our server, both with deflate, echo every payload, and
/// what crossed the wire is smaller than what was sent.
fn echo_through(server: &TestServer, client_deflate: bool) -> u64 {
    let (client, events) = start_client(client_deflate);
    let target = Connect::new(&server.url("/echo")).unwrap();
    let sent = payloads();
    client.connect(&target, Plan { send: sent.clone(), close_after: Some(sent.len()), ..Plan::tagged(1) }).unwrap();
    let seen = collect(&events, |seen| count(seen, |e| matches!(e, Ev::Closed { .. })) == 1);
    let echoed: Vec<(bool, Vec<u8>)> = seen
        .iter()
        .filter_map(|e| match e {
            Ev::Message { text, data, .. } => Some((*text, data.clone())),
            _ => None,
        })
        .collect();
    assert!(echoed == sent, "{} echoes differ from the {} sent", echoed.len(), sent.len());
    assert!(seen.contains(&Ev::Closed { tag: 1, code: 1000, reason: String::new(), by_peer: false }), "{seen:?}");
    client.shutdown(Duration::from_secs(1));
    server.handle.stats().bytes_in
}

#[test]
fn our_client_and_server_compress_both_ways() {
    let raw: u64 = payloads().iter().map(|(_, p)| p.len() as u64).sum();
    let plain = echo_through(&TestServer::start(ServerBuilder::new().shards(1).max_backpressure(16 << 20)), true);
    let deflated = echo_through(
        &TestServer::start(ServerBuilder::new().shards(2).max_backpressure(16 << 20).deflate(Deflate::default())),
        true,
    );
    // The text (half the bytes) shrinks to almost nothing; the noise stays.
    assert!(plain > raw, "a server without deflate reads every byte: {plain} of {raw}");
    assert!(deflated < raw * 6 / 10, "the client compressed: {deflated} bytes in for {raw} sent");
    // Deflate off in the client: nothing is offered, the server reads all.
    let off = echo_through(
        &TestServer::start(ServerBuilder::new().max_backpressure(16 << 20).deflate(Deflate::default())),
        false,
    );
    assert!(off > raw, "{off} of {raw}");
}

/// A hand-written server: answers the request with `extensions` and hands
/// back the stream and the request head.
fn raw_server(client: &ClientHandle<Plan>, plan: Plan, extensions: &str) -> (std::net::TcpStream, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    client.connect(&Connect::new(&format!("ws://{addr}/")).unwrap(), plan).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = read_request_head(&mut stream);
    let answer = accept_response(&head, &format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    stream.write_all(answer.as_bytes()).unwrap();
    (stream, head)
}

#[test]
fn the_client_offers_reads_rfc_frames_and_sets_rsv1() {
    let (client, events) = start_client(true);
    let long = "compress me ".repeat(40);
    let plan = Plan { send: vec![(true, long.clone().into_bytes()), (true, b"tiny".to_vec())], ..Plan::tagged(1) };
    let (mut stream, head) =
        raw_server(&client, plan, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    assert!(
        head.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; \
             server_no_context_takeover; client_no_context_takeover\r\n"
        ),
        "{head}"
    );
    // RFC 7692 §7.2.3.1: "Hello" compressed, RSV1 set.
    stream.write_all(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap();
    let seen = collect(&events, |seen| count(seen, |e| matches!(e, Ev::Message { .. })) == 1);
    assert!(seen.contains(&Ev::Message { tag: 1, text: true, data: b"Hello".to_vec() }), "{seen:?}");
    // The client's frames: the long text compressed (RSV1, much shorter),
    // the one under the threshold plain.
    let mut frame = |want_rsv1: bool| {
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).unwrap();
        assert_eq!(header[0] & 0x40 != 0, want_rsv1, "RSV1 in {:#04x}", header[0]);
        let len = usize::from(header[1] & 0x7f);
        assert!(len < 126, "a short frame");
        let mut rest = vec![0u8; 4 + len];
        stream.read_exact(&mut rest).unwrap();
        len
    };
    assert!(frame(true) < long.len() / 4, "compressed");
    assert_eq!(frame(false), 4, "under the threshold");
    client.shutdown(Duration::from_millis(200));
}

#[test]
fn invalid_answers_fail_the_connect_and_unasked_ones_too() {
    let (client, events) = start_client(true);
    // `client_max_window_bits` without a value is valid in an offer only.
    drop(raw_server(&client, Plan::tagged(1), "permessage-deflate; client_max_window_bits"));
    drop(raw_server(&client, Plan::tagged(2), "permessage-deflate; mystery=1"));
    let seen = collect(&events, |seen| seen.len() == 2);
    for tag in [1, 2] {
        let failed = seen.iter().find(|e| e.tag() == tag).unwrap();
        let Ev::Failed { failure: Failure::Other(why), .. } = failed else { panic!("{failed:?}") };
        assert!(why.contains("Sec-WebSocket-Extensions"), "{why}");
    }
    client.shutdown(Duration::from_millis(200));
    // Without the switch nothing is offered, so an answer with it fails.
    let (client, events) = start_client(false);
    let (_stream, head) = raw_server(&client, Plan::tagged(3), "permessage-deflate");
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "{head}");
    let seen = collect(&events, |seen| !seen.is_empty());
    let Ev::Failed { failure: Failure::Other(why), .. } = &seen[0] else { panic!("{seen:?}") };
    assert!(why.contains("extension was not offered"), "{why}");
    client.shutdown(Duration::from_millis(200));
}
