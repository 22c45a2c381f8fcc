//! The echo path against a real peer, the tokio-tungstenite client: every
//! size boundary of the frame header, fragmented input, many connections
//! over two shards.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use ringcast::ServerBuilder;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as TFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn client(url: &str) -> Client {
    let config = WebSocketConfig::default().max_message_size(Some(32 << 20)).max_frame_size(Some(32 << 20));
    tokio_tungstenite::connect_async_with_config(url, Some(config), false).await.expect("handshake").0
}

/// The next data message, skipping control frames.
async fn next_message(ws: &mut Client) -> Message {
    loop {
        match ws.next().await.expect("a message before the end").expect("no error") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

fn text_of(size: usize) -> String {
    // ASCII plus a two-byte character, so UTF-8 validation has work; cut to
    // exactly `size` bytes on a character boundary.
    let mut s = String::with_capacity(size + 2);
    let mut i = 0u32;
    while s.len() < size {
        if i % 97 == 96 && s.len() + 2 <= size {
            s.push('é');
        } else {
            s.push(char::from(b'a' + (i % 26) as u8));
        }
        i += 1;
    }
    s
}

fn binary_of(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i.wrapping_mul(31) % 251) as u8).collect()
}

#[tokio::test]
async fn every_size_comes_back_with_its_type() {
    let server = TestServer::one_shard();
    let mut ws = client(&server.url("/")).await;
    for size in [0, 1, 125, 126, 127, 65535, 65536, 1 << 20, 16 << 20] {
        let text = text_of(size);
        ws.send(Message::text(text.clone())).await.unwrap();
        match next_message(&mut ws).await {
            Message::Text(got) => assert!(got.as_str() == text, "text of {size} bytes differs"),
            other => panic!("{size}: expected text, got {other:?}"),
        }
        let data = binary_of(size);
        ws.send(Message::binary(data.clone())).await.unwrap();
        match next_message(&mut ws).await {
            Message::Binary(got) => assert!(got[..] == data[..], "binary of {size} bytes differs"),
            other => panic!("{size}: expected binary, got {other:?}"),
        }
    }
    ws.close(None).await.unwrap();
    // The server answers the close and ends the stream.
    while let Some(Ok(_)) = ws.next().await {}
    let closes = server.wait_closes(1);
    assert_eq!(closes[0].0, 1005, "a close frame without a code is reported as 1005");
    assert!(closes[0].2, "the client started the close");
}

#[tokio::test]
async fn fragmented_messages_from_tungstenite_are_assembled() {
    let server = TestServer::one_shard();
    let mut ws = client(&server.url("/echo")).await;
    let parts = ["Hello, ", "fragmented ", "wörld"];
    ws.send(Message::Frame(TFrame::message(parts[0], OpCode::Data(Data::Text), false))).await.unwrap();
    ws.send(Message::Ping("between".into())).await.unwrap();
    ws.send(Message::Frame(TFrame::message(parts[1], OpCode::Data(Data::Continue), false))).await.unwrap();
    ws.send(Message::Frame(TFrame::message(parts[2], OpCode::Data(Data::Continue), true))).await.unwrap();
    let mut saw_pong = false;
    let echoed = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"between");
                saw_pong = true;
            }
            Message::Text(t) => break t,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(saw_pong, "the ping between fragments is answered");
    assert_eq!(echoed.as_str(), parts.concat());

    // A large binary message in 64 KiB fragments.
    let data = binary_of(1 << 20);
    let chunks: Vec<&[u8]> = data.chunks(64 << 10).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { OpCode::Data(Data::Binary) } else { OpCode::Data(Data::Continue) };
        ws.send(Message::Frame(TFrame::message(chunk.to_vec(), opcode, i + 1 == chunks.len()))).await.unwrap();
    }
    match next_message(&mut ws).await {
        Message::Binary(got) => assert!(got[..] == data[..]),
        other => panic!("expected binary, got {other:?}"),
    }
}

/// Sends `payload` as a message of `chunk`-byte fragments.
async fn send_fragmented(ws: &mut Client, payload: Vec<u8>, text: bool, chunk: usize) {
    let chunks: Vec<&[u8]> = payload.chunks(chunk).collect();
    let first = OpCode::Data(if text { Data::Text } else { Data::Binary });
    for (i, piece) in chunks.iter().enumerate() {
        let opcode = if i == 0 { first } else { OpCode::Data(Data::Continue) };
        ws.send(Message::Frame(TFrame::message(piece.to_vec(), opcode, i + 1 == chunks.len()))).await.unwrap();
    }
}

#[tokio::test]
async fn large_assembled_messages_go_back_by_reference_in_order() {
    let server = TestServer::one_shard();
    let mut ws = client(&server.url("/")).await;
    let text = text_of(100_000);
    send_fragmented(&mut ws, text.clone().into_bytes(), true, 30_000).await;
    let mut twice = b"twice".to_vec();
    twice.extend(binary_of(50_000));
    send_fragmented(&mut ws, twice.clone(), false, 7_000).await;
    ws.send(Message::text("small")).await.unwrap();
    assert!(next_message(&mut ws).await == Message::text(text), "the text comes back whole");
    assert!(next_message(&mut ws).await == Message::binary(twice.clone()), "first copy");
    assert_eq!(next_message(&mut ws).await, Message::text("between"));
    assert!(next_message(&mut ws).await == Message::binary(twice), "second copy");
    assert_eq!(next_message(&mut ws).await, Message::text("small"));
    // The shard publishes its counters before it sends what a turn queued.
    let stats = server.handle.stats();
    assert_eq!(stats.messages_by_reference, 3, "the two large messages went back by reference: {stats:?}");
    assert_eq!(stats.messages_out, 5);
}

#[tokio::test]
async fn peers_that_never_read_cannot_hold_the_whole_receive_pool() {
    // 8 receive buffers; three peers that never read keep their echoes
    // unsent. Their messages must not keep receive buffers (the echoes are
    // copied out of them, see docs/architecture.md, "Send"), or the pool
    // would run dry and nothing more could be received.
    let builder = ServerBuilder::new().shards(1).recv_buffers(8, 64 << 10).send_buffer_size(16 << 10);
    let server = TestServer::start(builder);
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut ws = client(&server.url("/")).await;
        for i in 0..40 {
            ws.send(Message::binary(binary_of(16_384 + i))).await.unwrap();
        }
        stalled.push(ws);
    }
    let mut ws = client(&server.url("/")).await;
    let round_trips = async {
        for i in 0..100 {
            let data = binary_of(16_384 + 3 * i);
            ws.send(Message::binary(data.clone())).await.unwrap();
            assert!(next_message(&mut ws).await == Message::binary(data), "message {i}");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), round_trips).await.expect("the reader is served");
    drop(stalled);
}

#[test]
fn bytes_trickled_one_at_a_time_make_the_same_messages() {
    let server = TestServer::one_shard();
    let mut client = RawClient::open(server.addr());
    let mut stream = Vec::new();
    stream.extend(client_frame(0x01, "split ".as_bytes(), true)); // text, not final
    stream.extend(masked(0x9, b"p")); // ping inside the message
    stream.extend(client_frame(0x80, "message €".as_bytes(), true)); // final continuation
    stream.extend(masked(0x2, &binary_of(300))); // binary with a 16-bit length
    for byte in &stream {
        client.send_raw(std::slice::from_ref(byte));
        // Give each byte its own segment now and then.
        if *byte % 7 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let pong = client.read_frame().unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"p"[..]));
    let text = client.read_frame().unwrap();
    assert_eq!((text.fin, text.opcode, text.payload.as_slice()), (true, 0x1, "split message €".as_bytes()));
    let binary = client.read_frame().unwrap();
    assert_eq!((binary.opcode, binary.payload), (0x2, binary_of(300)));
    client.send_raw(&masked(0x8, &close_payload(NORMAL, "bye")));
    client.expect_close(NORMAL);
}

#[tokio::test]
async fn a_thousand_connections_over_two_shards() {
    let limit = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let server = TestServer::start(ServerBuilder::new().shards(2));
    let url = server.url("/");
    let mut clients = Vec::new();
    for _ in 0..1000 {
        let url = url.clone();
        clients.push(tokio::spawn(async move { client(&url).await }));
    }
    let mut sockets = Vec::new();
    for c in clients {
        sockets.push(c.await.unwrap_or_else(|e| panic!("connect failed ({e}); open-file limit: {limit}")));
    }
    assert_eq!(server.handle.stats().accepted, 1000);
    // Every connection echoes, concurrently, and says which shard it is on.
    let mut tasks = Vec::new();
    for (i, mut ws) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let text = format!("message {i}");
            ws.send(Message::text(text.clone())).await.unwrap();
            assert_eq!(next_message(&mut ws).await, Message::text(text));
            ws.send(Message::text("whoami")).await.unwrap();
            let shard = next_message(&mut ws).await.into_text().unwrap().parse::<usize>().unwrap();
            (shard, ws)
        }));
    }
    let mut per_shard = [0usize; 2];
    let mut sockets = Vec::new();
    for t in tasks {
        let (shard, ws) = t.await.unwrap();
        per_shard[shard] += 1;
        sockets.push(ws);
    }
    assert!(per_shard.iter().all(|&n| n >= 100), "SO_REUSEPORT spreads connections: {per_shard:?}");
    let stats = server.handle.stats();
    assert_eq!(stats.connections, 1000);
    assert!(stats.messages >= 2000);
    for mut ws in sockets {
        ws.close(None).await.unwrap();
    }
    server.wait_closes(1000);
}

#[tokio::test]
async fn a_tiny_receive_pool_still_serves_many_busy_connections() {
    // 4 buffers of 1 KiB for 50 connections sending 10 KiB messages: the
    // pool runs dry constantly (receives end with ENOBUFS and are re-armed)
    // and every message spans many buffers.
    let server = TestServer::start(ServerBuilder::new().shards(1).recv_buffers(4, 1024));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let url = server.url("/");
        tasks.push(tokio::spawn(async move {
            let mut ws = client(&url).await;
            for round in 0..20 {
                let data = binary_of(10_000 + i * 7 + round);
                ws.send(Message::binary(data.clone())).await.unwrap();
                match next_message(&mut ws).await {
                    Message::Binary(got) => assert!(got[..] == data[..], "connection {i} round {round}"),
                    other => panic!("expected binary, got {other:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(server.handle.stats().messages >= 1000);
}
