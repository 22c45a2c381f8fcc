//! The client API against real peers: our own server, a tokio-tungstenite
//! server, and a hand-written server that looks at the raw frames.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::recorder::{collect, count, Ev, Plan, Recorder};
use common::{accept_response, read_request_head, TestServer};
use ringcast::{ClientBuilder, ClientHandle, Connect, Message, ServerBuilder};

fn client(shards: usize) -> (ClientHandle<Plan>, mpsc::Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    let handle = ClientBuilder::new()
        .shards(shards)
        .max_backpressure(16 << 20)
        .start(move |_| Recorder { events: tx.clone() })
        .expect("client starts");
    (handle, rx)
}

/// Payloads on every length boundary of the frame header.
fn sized_payloads() -> Vec<(bool, Vec<u8>)> {
    let mut plan = Vec::new();
    for size in [0usize, 1, 125, 126, 65_535, 65_536, 1 << 20] {
        let text: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let binary: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        plan.push((true, text));
        plan.push((false, binary));
    }
    plan
}

#[test]
fn echoes_every_size_through_our_server_then_closes_normally() {
    // The client pipelines 3 MiB per connection: the server's queue must
    // hold the echoes (its default budget would close with 1008).
    let server = TestServer::start(ServerBuilder::new().shards(2).max_backpressure(16 << 20));
    let (client, events) = client(2);
    let target = Connect::new(&server.url("/echo")).unwrap();
    let payloads = sized_payloads();
    for tag in 0..10 {
        let plan = Plan { send: payloads.clone(), close_after: Some(payloads.len()), ..Plan::tagged(tag) };
        client.connect(&target, plan).unwrap();
    }
    let seen = collect(&events, |seen| count(seen, |e| matches!(e, Ev::Closed { .. })) == 10);
    for tag in 0..10 {
        let echoed: Vec<(bool, Vec<u8>)> = seen
            .iter()
            .filter_map(|e| match e {
                Ev::Message { tag: t, text, data } if *t == tag => Some((*text, data.clone())),
                _ => None,
            })
            .collect();
        let sizes = |v: &[(bool, Vec<u8>)]| v.iter().map(|(t, d)| (*t, d.len())).collect::<Vec<_>>();
        assert!(
            echoed == payloads,
            "connection {tag}: echoes {:?} differ from {:?}; {:?}",
            sizes(&echoed),
            sizes(&payloads),
            seen.iter().filter(|e| matches!(e, Ev::Closed { .. })).collect::<Vec<_>>()
        );
        // The close info is the server's reply: our code, no reason.
        let closed = seen.iter().find(|e| matches!(e, Ev::Closed { tag: t, .. } if *t == tag)).unwrap();
        assert_eq!(closed, &Ev::Closed { tag, code: 1000, reason: String::new(), by_peer: false });
    }
    // The server saw our close frames: 1000, started by its peer.
    let closes = server.wait_closes(10);
    assert!(closes.iter().all(|(code, reason, by_peer)| *code == 1000 && reason == "done" && *by_peer), "{closes:?}");
    assert_eq!(client.stats().accepted, 10, "connections opened");
    client.shutdown(Duration::from_secs(1));
}

#[test]
fn negotiates_a_subprotocol_and_hears_the_servers_close() {
    let server = TestServer::one_shard();
    let (client, events) = client(1);
    let chat = Connect::new(&server.url("/")).unwrap().protocol("mqtt").protocol("chat");
    let plain = Connect::new(&server.url("/")).unwrap();
    let close_me = (true, b"close-me".to_vec());
    client.connect(&chat, Plan { send: vec![close_me.clone()], ..Plan::tagged(1) }).unwrap();
    client.connect(&plain, Plan { send: vec![close_me], ..Plan::tagged(2) }).unwrap();
    let seen = collect(&events, |seen| count(seen, |e| matches!(e, Ev::Closed { .. })) == 2);
    assert!(seen.contains(&Ev::Connected { tag: 1, protocol: Some("chat".into()) }), "{seen:?}");
    assert!(seen.contains(&Ev::Connected { tag: 2, protocol: None }), "{seen:?}");
    for tag in [1, 2] {
        assert!(seen.contains(&Ev::Closed { tag, code: 4001, reason: "asked".into(), by_peer: true }), "{seen:?}");
    }
    client.shutdown(Duration::from_secs(1));
}

#[test]
fn talks_to_a_tokio_tungstenite_server() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message as TMessage;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let (done_tx, done_rx) = mpsc::channel::<Vec<String>>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // tungstenite refuses unmasked client frames (1002): getting an
            // echo back proves our frames are masked correctly.
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            let mut seen = Vec::new();
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    TMessage::Text(t) if t.as_str() == "bye" => {
                        let frame = CloseFrame { code: TCode::Away, reason: "going".into() };
                        ws.send(TMessage::Close(Some(frame))).await.unwrap();
                    }
                    TMessage::Text(t) => {
                        seen.push(format!("text {}", t.len()));
                        ws.send(TMessage::Text(t)).await.unwrap();
                    }
                    TMessage::Binary(b) => {
                        seen.push(format!("binary {}", b.len()));
                        ws.send(TMessage::Binary(b)).await.unwrap();
                    }
                    TMessage::Close(frame) => {
                        seen.push(format!("close {:?}", frame.map(|f| u16::from(f.code))));
                        break;
                    }
                    _ => {}
                }
            }
            let _ = done_tx.send(seen);
        });
    });
    let (client, events) = client(1);
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 253) as u8).collect();
    let plan = Plan {
        send: vec![(true, "héllo".as_bytes().to_vec()), (false, big.clone()), (true, b"bye".to_vec())],
        ..Plan::tagged(7)
    };
    client.connect(&Connect::new(&format!("ws://{addr}/any")).unwrap(), plan).unwrap();
    let seen = collect(&events, |seen| seen.iter().any(|e| matches!(e, Ev::Closed { .. })));
    assert_eq!(seen[0], Ev::Connected { tag: 7, protocol: None });
    assert_eq!(seen[1], Ev::Message { tag: 7, text: true, data: "héllo".as_bytes().to_vec() });
    assert_eq!(seen[2], Ev::Message { tag: 7, text: false, data: big });
    assert_eq!(seen[3], Ev::Closed { tag: 7, code: 1001, reason: "going".into(), by_peer: true });
    let server_saw = done_rx.recv_timeout(Duration::from_secs(10)).expect("the server finished");
    assert_eq!(server_saw, ["text 6", "binary 1048576", "close Some(1001)"]);
    client.shutdown(Duration::from_secs(1));
}

#[test]
fn every_frame_is_masked_with_a_fresh_key() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, events) = client(1);
    let messages: Vec<(bool, Vec<u8>)> = (0..64).map(|i| (true, format!("message {i}").into_bytes())).collect();
    client
        .connect(&Connect::new(&format!("ws://{addr}/")).unwrap(), Plan { send: messages, ..Plan::tagged(1) })
        .unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = read_request_head(&mut stream);
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nSec-WebSocket-Version: 13\r\n") && head.contains("\r\nUpgrade: websocket\r\n"));
    stream.write_all(accept_response(&head, "").as_bytes()).unwrap();
    let mut keys = std::collections::HashSet::new();
    for i in 0..64 {
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).unwrap();
        assert_eq!(header[0], 0x81, "frame {i}: FIN + text");
        assert!(header[1] & 0x80 != 0, "frame {i} is not masked");
        let len = usize::from(header[1] & 0x7f);
        let mut key = [0u8; 4];
        stream.read_exact(&mut key).unwrap();
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        for (j, b) in payload.iter_mut().enumerate() {
            *b ^= key[j % 4];
        }
        assert_eq!(payload, format!("message {i}").as_bytes());
        keys.insert(key);
    }
    // 64 keys drawn from 2^32: a repeat means the keys are not fresh.
    assert_eq!(keys.len(), 64, "masking keys repeat");
    let seen = collect(&events, |seen| !seen.is_empty());
    assert_eq!(seen[0], Ev::Connected { tag: 1, protocol: None });
    client.shutdown(Duration::from_millis(200));
}

#[test]
fn publish_from_any_thread_reaches_subscribed_client_connections() {
    let server = TestServer::one_shard();
    let (client, events) = client(2);
    let target = Connect::new(&server.url("/")).unwrap();
    for tag in 0..4 {
        client.connect(&target, Plan { subscribe: Some("feed".into()), ..Plan::tagged(tag) }).unwrap();
    }
    collect(&events, |seen| count(seen, |e| matches!(e, Ev::Connected { .. })) == 4);
    // Each connection sends it to the echo server, which sends it back.
    assert_eq!(client.publish("feed", Message::Text("tick")), 4);
    let seen = collect(&events, |seen| count(seen, |e| matches!(e, Ev::Message { .. })) == 4);
    let mut tags: Vec<u32> = seen.iter().map(Ev::tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, [0, 1, 2, 3]);
    assert!(seen.iter().all(|e| matches!(e, Ev::Message { text: true, data, .. } if data == b"tick")));
}

#[test]
fn shutdown_says_going_away_to_the_server() {
    let server = TestServer::one_shard();
    let (client, events) = client(1);
    let target = Connect::new(&server.url("/")).unwrap();
    for tag in 0..3 {
        client.connect(&target, Plan::tagged(tag)).unwrap();
    }
    collect(&events, |seen| count(seen, |e| matches!(e, Ev::Connected { .. })) == 3);
    let report = client.shutdown(Duration::from_secs(2));
    assert_eq!(report.forced, 0, "every connection closed within the grace period");
    let closes = server.wait_closes(3);
    assert!(closes.iter().all(|(code, _, by_peer)| *code == 1001 && *by_peer), "{closes:?}");
    let seen: Vec<Ev> = events.try_iter().collect();
    assert_eq!(count(&seen, |e| matches!(e, Ev::Closed { code: 1001, by_peer: false, .. })), 3, "{seen:?}");
    let err = client.connect(&target, Plan::tagged(9)).unwrap_err();
    assert!(matches!(err, ringcast::ConnectError::Stopping), "{err}");
}
