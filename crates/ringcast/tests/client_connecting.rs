//! Client connections that do not open, and the CONNECTING rule (RFC 6455
//! §4.1): at most one connection per remote address in its TCP connect and
//! opening handshake at a time.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::recorder::{collect, count, Ev, Failure, Plan, Recorder};
use common::TestServer;
use ringcast::{ClientBuilder, ClientHandle, Connect, ConnectError};

fn start(builder: ClientBuilder) -> (ClientHandle<Plan>, mpsc::Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    (builder.start(move |_| Recorder { events: tx.clone() }).expect("client starts"), rx)
}

fn url(listener: &TcpListener) -> String {
    format!("ws://{}/", listener.local_addr().unwrap())
}

/// Accepts the next connection within `wait`, if one comes.
fn accept_within(listener: &TcpListener, wait: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return Some(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads a request head and returns its `Sec-WebSocket-Key`.
fn read_key(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "request head cut short");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).expect("a key").trim().to_owned()
}

fn answer(stream: &mut TcpStream, accept: &str, extra: &str) {
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    );
    stream.write_all(response.as_bytes()).unwrap();
}

fn accept_of(key: &str) -> String {
    ringcast::proto::handshake::accept_key(key.as_bytes()).as_str().to_owned()
}

#[test]
fn failures_reach_connect_failed_with_the_reason() {
    let server = TestServer::one_shard();
    let (client, events) = start(ClientBuilder::new().handshake_timeout(Duration::from_millis(300)));
    // 404 and 403 from a real server.
    client.connect(&Connect::new(&server.url("/nowhere")).unwrap(), Plan::tagged(1)).unwrap();
    let evil = Connect::new(&server.url("/")).unwrap().header("Origin", "https://evil.example");
    client.connect(&evil, Plan::tagged(2)).unwrap();
    // Nothing listens on a port that was just freed.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = Connect::new(&url(&free)).unwrap();
    drop(free);
    client.connect(&refused, Plan::tagged(3)).unwrap();
    let seen = collect(&events, |seen| seen.len() == 3);
    assert!(seen.contains(&Ev::Failed { tag: 1, failure: Failure::Status(404) }), "{seen:?}");
    assert!(seen.contains(&Ev::Failed { tag: 2, failure: Failure::Status(403) }), "{seen:?}");
    assert!(seen.contains(&Ev::Failed { tag: 3, failure: Failure::Refused }), "{seen:?}");

    // Hand-written servers: a wrong accept key, a subprotocol we did not
    // offer, silence, a hang-up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = Connect::new(&url(&listener)).unwrap();
    client.connect(&target, Plan::tagged(4)).unwrap();
    let mut s = accept_within(&listener, Duration::from_secs(5)).unwrap();
    read_key(&mut s);
    answer(&mut s, &accept_of("c29tZSBvdGhlciBrZXkgISE="), "");
    assert_eq!(collect(&events, |seen| !seen.is_empty()), [Ev::Failed { tag: 4, failure: Failure::AcceptMismatch }]);

    client.connect(&target.clone().protocol("chat"), Plan::tagged(5)).unwrap();
    let mut s = accept_within(&listener, Duration::from_secs(5)).unwrap();
    let key = read_key(&mut s);
    answer(&mut s, &accept_of(&key), "Sec-WebSocket-Protocol: mqtt\r\n");
    let seen = collect(&events, |seen| !seen.is_empty());
    assert_eq!(seen, [Ev::Failed { tag: 5, failure: Failure::UnofferedProtocol }]);

    client.connect(&target, Plan::tagged(6)).unwrap();
    let mut silent = accept_within(&listener, Duration::from_secs(5)).unwrap();
    read_key(&mut silent);
    assert_eq!(collect(&events, |seen| !seen.is_empty()), [Ev::Failed { tag: 6, failure: Failure::Timeout }]);

    client.connect(&target, Plan::tagged(7)).unwrap();
    let mut s = accept_within(&listener, Duration::from_secs(5)).unwrap();
    read_key(&mut s);
    s.write_all(b"HTTP/1.1 101 Switching").unwrap();
    drop(s);
    assert_eq!(collect(&events, |seen| !seen.is_empty()), [Ev::Failed { tag: 7, failure: Failure::Closed }]);
    // Failed connections leave the table (the counters follow a turn later).
    let until = Instant::now() + Duration::from_secs(5);
    while client.stats().connections != 0 {
        assert!(Instant::now() < until, "{} connections left in the table", client.stats().connections);
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(silent);
}

#[test]
fn bad_requests_are_refused_before_anything_starts() {
    assert!(matches!(Connect::new("http://127.0.0.1:1/"), Err(ConnectError::InvalidRequest(_))));
    assert!(matches!(Connect::new("ws://127.0.0.1:1/#frag"), Err(ConnectError::InvalidRequest(_))));
    // wss:// is accepted (tests/tls.rs connects with it).
    assert!(Connect::new("wss://127.0.0.1:1/").is_ok());
    assert!(matches!(Connect::new("ws://no-such-host.invalid/"), Err(ConnectError::Resolve(_))));
    let (client, _events) = start(ClientBuilder::new());
    let smuggling = Connect::new("ws://127.0.0.1:1/").unwrap().header("X-Evil", "a\r\nInjected: yes");
    assert!(matches!(client.connect(&smuggling, Plan::tagged(1)), Err(ConnectError::InvalidRequest(_))));
}

#[test]
fn one_connection_per_address_is_connecting_at_a_time() {
    let (a, b) = (TcpListener::bind("127.0.0.1:0").unwrap(), TcpListener::bind("127.0.0.1:0").unwrap());
    let (client, events) = start(ClientBuilder::new().shards(2));
    let to_a = Connect::new(&url(&a)).unwrap();
    for tag in 1..=3 {
        client.connect(&to_a, Plan::tagged(tag)).unwrap();
    }
    client.connect(&Connect::new(&url(&b)).unwrap(), Plan::tagged(10)).unwrap();
    // Another port is another address: its connection starts at once.
    let mut b1 = accept_within(&b, Duration::from_secs(5)).expect("B's connection starts beside A's");
    let mut a1 = accept_within(&a, Duration::from_secs(5)).expect("A's first connection starts");
    assert!(
        accept_within(&a, Duration::from_millis(300)).is_none(),
        "a second connection to A while one is CONNECTING"
    );
    assert_eq!(client.waiting(), 2);
    // Opening the first lets the second start.
    let key = read_key(&mut a1);
    answer(&mut a1, &accept_of(&key), "");
    let mut a2 = accept_within(&a, Duration::from_secs(5)).expect("the second starts once the first is open");
    assert!(accept_within(&a, Duration::from_millis(300)).is_none(), "the third waits for the second");
    // A refusal ends CONNECTING too.
    read_key(&mut a2);
    a2.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut a3 = accept_within(&a, Duration::from_secs(5)).expect("the third starts once the second failed");
    let key = read_key(&mut a3);
    answer(&mut a3, &accept_of(&key), "");
    let key = read_key(&mut b1);
    answer(&mut b1, &accept_of(&key), "");
    let seen = collect(&events, |seen| seen.len() == 4);
    assert_eq!(count(&seen, |e| matches!(e, Ev::Connected { .. })), 3, "{seen:?}");
    assert!(seen.contains(&Ev::Failed { tag: 2, failure: Failure::Status(403) }), "{seen:?}");
    assert_eq!(client.waiting(), 0);
}

#[test]
fn without_the_rule_connections_start_together() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (client, _events) = start(ClientBuilder::new().one_connecting_per_host(false));
    let target = Connect::new(&url(&listener)).unwrap();
    for tag in 0..5 {
        client.connect(&target, Plan::tagged(tag)).unwrap();
    }
    let started = (0..5).filter_map(|_| accept_within(&listener, Duration::from_secs(5))).count();
    assert_eq!(started, 5, "all five connect before any is answered");
    assert_eq!(client.waiting(), 0);
}
