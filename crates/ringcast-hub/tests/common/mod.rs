//! Helpers for the hub's tests: an in-process hub on a free port, plain
//! HTTP requests, and tokio-tungstenite clients.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ringcast::ServerHandle;
use ringcast_hub::{Hub, HubConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod cluster;

pub type Client = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A hub on 127.0.0.1 with a free port, stopped when dropped.
pub struct TestHub {
    pub handle: ServerHandle,
    pub hub: Hub,
}

impl TestHub {
    pub fn start(shards: usize, tweak: impl FnOnce(&mut HubConfig)) -> TestHub {
        let mut config = HubConfig::default();
        config.listen = "127.0.0.1:0".into();
        config.shards = Some(shards);
        tweak(&mut config);
        let hub = ringcast_hub::start(config).expect("hub starts");
        TestHub { handle: hub.server().clone(), hub }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr())
    }

    /// Waits until `topic` (a server topic, `r:name` or `j:name`) has `n`
    /// subscribers.
    pub fn wait_subscribers(&self, topic: &str, n: u64) {
        for _ in 0..500 {
            if self.handle.subscribers(topic) == n {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{topic}: {} subscribers, expected {n}", self.handle.subscribers(topic));
    }

    /// GET /metrics, as text.
    pub fn metrics(&self) -> String {
        http(self.addr(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").2
    }

    /// The sum of a metric's samples over the shards (labels containing
    /// `label` if given).
    pub fn metric(&self, name: &str, label: &str) -> u64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.hub.shutdown(Duration::from_millis(200));
    }
}

/// Sends a raw request and reads the response to the end: (status, head,
/// body).
pub fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    http_bytes(addr, request.as_bytes())
}

pub fn http_bytes(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("response read to the end");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The hub's binary on a free port with one shard, its standard streams
/// as `streams` sets them, `spawned` run on the child at once; returns
/// once it listens (the process must not exit before).
pub fn hub_binary(
    streams: impl FnOnce(&mut std::process::Command),
    spawned: impl FnOnce(&mut std::process::Child),
) -> (std::process::Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast-hub"));
    command.args(["--listen", &addr.to_string(), "--shards", "1"]);
    streams(&mut command);
    let mut child = command.spawn().expect("the hub starts");
    spawned(&mut child);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the hub exited: {:?}", child.try_wait());
        assert!(std::time::Instant::now() < until, "the hub never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, addr)
}

/// `POST /publish/{topic}` with this content type; the receivers count.
pub fn publish(addr: SocketAddr, topic: &str, content_type: &str, body: &[u8]) -> u64 {
    let mut request = format!(
        "POST /publish/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let (status, _, body) = http_bytes(addr, &request);
    assert_eq!(status, 200, "publish answered {status}: {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    answer["receivers"].as_u64().unwrap_or_else(|| panic!("unexpected publish answer {body:?}"))
}

pub async fn connect(url: &str) -> Client {
    // Nagle off, as a latency-minded client would have it.
    tokio_tungstenite::connect_async_with_config(url, None, true).await.unwrap_or_else(|e| panic!("{url}: {e}")).0
}

/// The next data message (skipping pings), within 10 s.
pub async fn next(ws: &mut Client) -> Message {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10 s");
        match item.expect("a message before the end").expect("no error") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// The next message as parsed JSON.
pub async fn next_json(ws: &mut Client) -> serde_json::Value {
    match next(ws).await {
        Message::Text(t) => serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON: {t}: {e}")),
        other => panic!("expected a JSON text message, got {other:?}"),
    }
}

/// True if nothing arrives within `wait`.
pub async fn silent(ws: &mut Client, wait: Duration) -> bool {
    match tokio::time::timeout(wait, ws.next()).await {
        Err(_) => true,
        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => true,
        Ok(_) => false,
    }
}

/// Sends a JSON request.
pub async fn request(ws: &mut Client, json: &str) {
    ws.send(Message::text(json)).await.expect("send");
}

/// Subscribes on `/ws` with `id` 0 (and `since`, if given); the answer.
pub async fn subscribe(ws: &mut Client, topic: &str, since: Option<&serde_json::Value>) -> serde_json::Value {
    let mut request_json = serde_json::json!({"op":"subscribe","topic":topic,"id":0});
    if let Some(since) = since {
        request_json["since"] = since.clone();
    }
    request(ws, &request_json.to_string()).await;
    next_json(ws).await
}

/// Publishes `data` on a hub with history and waits for the
/// acknowledgement, which names the message's offset and epoch.
pub async fn publish_acked(ws: &mut Client, topic: &str, data: serde_json::Value) -> serde_json::Value {
    request(ws, &serde_json::json!({"op":"publish","topic":topic,"data":data,"id":"p"}).to_string()).await;
    let ack = next_json(ws).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert!(ack["offset"].as_u64().is_some() && ack["epoch"].is_string(), "{ack}");
    ack
}

/// [`publish_acked`] for the publish that closes a bulk of unacknowledged
/// ones: the acknowledgement comes once the hub has worked through the
/// bulk, so the wait goes on as long as `progress` (a counter of the hub's
/// work) keeps moving, and fails after 10 s without progress.
pub async fn publish_acked_after_bulk(
    ws: &mut Client,
    topic: &str,
    data: serde_json::Value,
    progress: impl Fn() -> u64,
) -> serde_json::Value {
    request(ws, &serde_json::json!({"op":"publish","topic":topic,"data":data,"id":"p"}).to_string()).await;
    let mut seen = tokio::task::block_in_place(&progress);
    let mut moved = std::time::Instant::now();
    let ack = loop {
        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => break serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected the acknowledgement, got {other:?}"),
            Err(_) => {
                let now = tokio::task::block_in_place(&progress);
                if now != seen {
                    (seen, moved) = (now, std::time::Instant::now());
                }
                assert!(moved.elapsed() < Duration::from_secs(10), "no progress for 10 s (at {seen})");
            }
        }
    };
    assert_eq!(ack["ok"], true, "{ack}");
    assert!(ack["offset"].as_u64().is_some() && ack["epoch"].is_string(), "{ack}");
    ack
}

/// The upgrade request a browser would send, with extra header lines.
pub fn upgrade(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends an upgrade request and returns the response's status line.
pub fn upgrade_status(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A subscriber that does the handshake and then does not read until told
/// to, with a small receive buffer so the server's queue fills fast.
pub struct Stalled {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame from the server: opcode and payload.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Stalled {
    pub fn join(addr: SocketAddr, path: &str) -> Stalled {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&addr.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(upgrade(path, "").as_bytes()).unwrap();
        let mut stalled = Stalled { stream, buf: Vec::new() };
        while !stalled.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            stalled.fill();
        }
        let end = stalled.buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(stalled.buf.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&stalled.buf));
        stalled.buf.drain(..end);
        stalled
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next frame, or `None` at the end of the stream.
    pub fn read_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if self.buf.len() >= 2 {
                let (opcode, len7) = (self.buf[0] & 0x0f, usize::from(self.buf[1] & 0x7f));
                let (len, at) = match len7 {
                    126 if self.buf.len() >= 4 => (usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4),
                    127 if self.buf.len() >= 10 => {
                        (u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (n, 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some(ServerFrame { opcode, payload });
                }
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    /// Sends a masked text frame (all-zero mask).
    pub fn send_text(&mut self, text: &str) {
        assert!(text.len() < 126);
        let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(text.as_bytes());
        self.stream.write_all(&frame).unwrap();
    }
}
