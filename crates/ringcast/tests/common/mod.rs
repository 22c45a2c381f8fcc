//! Shared fixtures: a policy-bearing echo server started in-process on a
//! free port, and a raw TCP client that writes hand-built frames (so tests
//! can send what no well-behaved library would) and reads the server's.
#![allow(dead_code)]

pub mod recorder;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringcast::{
    CloseCode, CloseInfo, Decision, Handler, Message, Peer, Request, RequestError, Response, SendError, ServerBuilder,
    ServerHandle, ServerHandler, Ws,
};

/// What the handlers saw, for tests to assert on.
#[derive(Debug, Default)]
pub struct Log {
    pub opened: usize,
    /// (code, reason, by_peer) of every `close` callback.
    pub closed: Vec<(u16, String, bool)>,
    pub pongs: usize,
    /// Messages a `flood` command queued before the backpressure refusal.
    pub flood_sent: Option<usize>,
}

/// Echo with the policy the seeds describe: `Origin: https://evil.example`
/// is refused (403), paths other than `/` and `/echo` are not served (404),
/// `/healthz` answers plain HTTP. A text message `whoami` is answered with
/// the shard index instead of echoed.
pub struct TestHandler {
    pub shard: usize,
    pub log: Arc<Mutex<Log>>,
}

impl ServerHandler for TestHandler {
    fn upgrade(&mut self, request: &Request<'_>, _peer: &Peer<'_>) -> Decision<()> {
        if request.origin() == Some("https://evil.example") {
            return Decision::reject(403);
        }
        match request.path() {
            "/" | "/echo" => {
                let mut accept = ringcast::Accept::new(());
                if request.protocols().any(|p| p == "chat") {
                    accept = accept.protocol("chat");
                }
                Decision::Accept(accept)
            }
            _ => Decision::reject(404),
        }
    }

    fn http(&mut self, request: &Request<'_>, body: &[u8], _why: RequestError) -> Option<Response> {
        match (request.method(), request.path()) {
            ("GET", "/healthz") => Some(Response::new(200).body("ok")),
            // Answers with the body's length and its reversed bytes.
            ("POST", "/reverse") => {
                let reversed: Vec<u8> = body.iter().rev().copied().collect();
                Some(Response::new(200).header("X-Length", body.len().to_string()).body(reversed))
            }
            _ => None,
        }
    }
}

impl Handler for TestHandler {
    type Data = ();

    fn open(&mut self, _ws: &mut Ws<'_, ()>) {
        self.log.lock().unwrap().opened += 1;
    }

    fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
        match message {
            Message::Text("whoami") => {
                let _ = ws.send_text(&self.shard.to_string());
            }
            Message::Text("panic") => panic!("the test asked the handler to panic"),
            Message::Text("close-me") => {
                ws.close(CloseCode(4001), "asked").unwrap();
            }
            Message::Text("flood") => {
                // Queue 64 KiB messages until the backpressure limit refuses one.
                let chunk = vec![0x5a; 64 << 10];
                let mut sent = 0;
                while sent < 10_000 {
                    match ws.send_binary(&chunk) {
                        Ok(()) => sent += 1,
                        Err(SendError::Backpressure) => break,
                        Err(e) => panic!("unexpected send error {e}"),
                    }
                }
                self.log.lock().unwrap().flood_sent = Some(sent);
            }
            // Sent back twice around a small text: the order of copied and
            // by-reference sends must hold.
            Message::Binary(b) if b.starts_with(b"twice") => {
                ws.send(message).unwrap();
                ws.send_text("between").unwrap();
                ws.send(message).unwrap();
            }
            other => {
                let _ = ws.send(other);
            }
        }
    }

    fn pong(&mut self, _ws: &mut Ws<'_, ()>, _payload: &[u8]) {
        self.log.lock().unwrap().pongs += 1;
    }

    fn close(&mut self, _conn: (), info: CloseInfo<'_>) {
        self.log.lock().unwrap().closed.push((info.code.0, info.reason.to_string(), info.by_peer));
    }
}

/// A running test server and what its handlers logged.
pub struct TestServer {
    pub handle: ServerHandle,
    pub log: Arc<Mutex<Log>>,
}

impl TestServer {
    pub fn start(builder: ServerBuilder) -> TestServer {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        let handle = builder
            .pin_threads(false)
            .start("127.0.0.1:0", move |shard| TestHandler { shard, log: shared.clone() })
            .expect("server starts");
        TestServer { handle, log }
    }

    /// One shard, default limits.
    pub fn one_shard() -> TestServer {
        Self::start(ServerBuilder::new().shards(1))
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr(), path)
    }

    /// Waits until the handlers have logged `n` closes (or panics).
    pub fn wait_closes(&self, n: usize) -> Vec<(u16, String, bool)> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let closed = self.log.lock().unwrap().closed.clone();
            if closed.len() >= n {
                return closed;
            }
            assert!(Instant::now() < until, "only {} of {n} closes reported: {closed:?}", closed.len());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown(Duration::from_millis(500));
    }
}

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A valid upgrade request head for `path`, with extra lines.
/// Reads an HTTP request head byte by byte (a hand-written server in the
/// client tests).
pub fn read_request_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "request head cut short");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The 101 for a request head, computed from its key, with `extra` header
/// lines (each ending in CRLF).
pub fn accept_response(head: &str, extra: &str) -> String {
    let key =
        head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).expect("the request carries a key").trim();
    let accept = ringcast::proto::handshake::accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept.as_str()
    )
}

pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: compressed (permessage-deflate).
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A client on a plain TCP socket.
pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient { stream, buf: Vec::new() }
    }

    /// Connects and completes an opening handshake on `/`.
    pub fn open(addr: SocketAddr) -> RawClient {
        let mut client = Self::connect(addr);
        client.send_raw(upgrade_request("/", "").as_bytes());
        let head = client.read_head();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        client
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads an HTTP response head (and its body, if it has a length).
    pub fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                while self.buf.len() < end + 4 + length {
                    assert!(self.fill() > 0, "end of stream inside a body");
                }
                let body = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + length]).into_owned();
                self.buf.drain(..end + 4 + length);
                return head + &body;
            }
            assert!(self.fill() > 0, "end of stream before a response head: {:?}", String::from_utf8_lossy(&self.buf));
        }
    }

    /// Reads one frame; `None` at the end of the stream.
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if self.fill() == 0 {
                assert!(self.buf.is_empty(), "end of stream inside a frame");
                return None;
            }
        }
    }

    /// Reads one frame if one arrives within `wait`.
    pub fn try_read_frame(&mut self, wait: Duration) -> Option<Frame> {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let frame = loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                break Some(frame);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break None
                }
                Err(e) => panic!("read: {e}"),
            }
        };
        self.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        frame
    }

    /// Asserts the server's next frame is a close with `code`, then that it
    /// closes the TCP connection.
    pub fn expect_close(&mut self, code: u16) {
        let frame = loop {
            let frame = self.read_frame().expect("a close frame before the end of stream");
            if frame.opcode != 9 && frame.opcode != 10 {
                break frame;
            }
        };
        assert_eq!(frame.close_code(), Some(code), "{frame:?}");
        self.expect_eof();
    }

    /// Asserts the server ends the TCP stream (within the read timeout).
    pub fn expect_eof(&mut self) {
        let extra = self.read_frame();
        assert!(extra.is_none(), "expected end of stream, got {extra:?}");
    }
}

fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10),
        126 | 127 => return None,
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len).unwrap();
    if buf.len() < at + len {
        return None;
    }
    let frame = Frame {
        fin: buf[0] & 0x80 != 0,
        rsv1: buf[0] & 0x40 != 0,
        opcode: buf[0] & 0x0f,
        payload: buf[at..at + len].to_vec(),
    };
    at += len;
    Some((frame, at))
}

/// A client frame: first byte as given (FIN, RSV, opcode), masked with a
/// fixed key unless `masked` is false.
pub fn client_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    if masked {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A masked, final frame of `opcode`.
pub fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(0x80 | opcode, payload, true)
}

/// A close frame payload.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

pub const NORMAL: u16 = CloseCode::NORMAL.0;

/// A raw client upgraded on `path`.
pub fn join_path(handle: &ServerHandle, path: &str) -> RawClient {
    let mut client = RawClient::connect(handle.local_addr());
    client.send_raw(upgrade_request(path, "").as_bytes());
    assert!(client.read_head().starts_with("HTTP/1.1 101 "));
    client
}

/// Waits (up to 10 s) until `topic` has `n` subscribers over all shards.
pub fn wait_subscribers(handle: &ServerHandle, topic: &str, n: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while handle.subscribers(topic) != n {
        assert!(Instant::now() < until, "{topic}: {} subscribers, expected {n}", handle.subscribers(topic));
        std::thread::sleep(Duration::from_millis(5));
    }
}
