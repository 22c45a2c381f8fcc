//! `wss://`: a rustls client against the server's TLS (certificates made
//! here with rcgen), our own client against it, plain and TLS listeners
//! side by side, and peers that do not speak TLS properly.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::recorder::{collect, count, Ev, Failure, Plan, Recorder};
use ringcast::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use ringcast::tls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use ringcast::{
    ClientBuilder, CloseInfo, Connect, Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandle,
    ServerHandler, Ws,
};
use tungstenite::protocol::Message as WsMessage;

/// A certificate for `localhost` and the client configuration that trusts
/// it.
struct Pki {
    server: rustls::ServerConfig,
    client: Arc<ClientConfig>,
    roots: RootCertStore,
}

fn pki() -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = CertificateDer::from(cert.der().to_vec());
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let mut client = ClientConfig::builder().with_root_certificates(roots.clone()).with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki { server, client: Arc::new(client), roots }
}

/// What the handlers saw.
#[derive(Default)]
struct Seen {
    /// (server name, secure) of every upgrade.
    upgrades: Vec<(Option<String>, bool)>,
    closes: Vec<u16>,
}

/// Echo; `join` subscribes to `room`.
struct Echo(Arc<Mutex<Seen>>);

impl ServerHandler for Echo {
    fn upgrade(&mut self, _request: &Request<'_>, peer: &Peer<'_>) -> Decision<()> {
        self.0.lock().unwrap().upgrades.push((peer.server_name().map(str::to_owned), peer.is_secure()));
        Decision::accept(())
    }
}

impl Handler for Echo {
    type Data = ();

    fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
        if let Message::Text("join") = message {
            ws.subscribe("room").expect("within the limits");
            let _ = ws.send(Message::Text("joined"));
            return;
        }
        let _ = ws.send(message);
    }

    fn close(&mut self, _data: (), info: CloseInfo<'_>) {
        self.0.lock().unwrap().closes.push(info.code.0);
    }
}

fn start(builder: ServerBuilder, seen: &Arc<Mutex<Seen>>) -> ServerHandle {
    let seen = seen.clone();
    builder.shards(2).pin_threads(false).start("127.0.0.1:0", move |_| Echo(seen.clone())).unwrap()
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `addr` for `localhost`.
fn tls_stream(client: &Arc<ClientConfig>, addr: SocketAddr) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = ClientConnection::new(client.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, tcp)
}

fn wss(client: &Arc<ClientConfig>, addr: SocketAddr) -> tungstenite::WebSocket<Tls> {
    let url = format!("wss://localhost:{}/", addr.port());
    let (ws, response) = tungstenite::client::client(url, tls_stream(client, addr)).unwrap();
    assert_eq!(response.status(), 101);
    ws
}

fn ws_plain(addr: SocketAddr) -> tungstenite::WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tungstenite::client::client(format!("ws://{addr}/"), tcp).unwrap().0
}

/// Reads until the server closes the TCP connection; returns the bytes.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("no close within 10 s: {e}"),
        }
    }
}

#[test]
fn a_rustls_client_echoes_small_and_large_messages_over_wss() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = start(ServerBuilder::new().tls(pki.server), &seen);
    assert_eq!(server.tls_addr(), Some(server.local_addr()));
    let mut ws = wss(&pki.client, server.local_addr());
    assert_eq!(ws.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN");
    ws.send(WsMessage::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), WsMessage::text("hello"));
    // Larger than a record, a receive buffer and the kernel's socket
    // buffers: records span reads both ways.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(WsMessage::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), WsMessage::binary(big));
    ws.send(WsMessage::Ping(b"p".to_vec().into())).unwrap();
    assert_eq!(ws.read().unwrap(), WsMessage::Pong(b"p".to_vec().into()));
    ws.close(Some(tungstenite::protocol::CloseFrame { code: 1000.into(), reason: "".into() })).unwrap();
    loop {
        match ws.read() {
            Ok(WsMessage::Close(_)) => {}
            Ok(other) => panic!("after close: {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("the close should end cleanly: {e}"),
        }
    }
    // The server said close_notify before its TCP end: rustls reads a
    // clean end (an end without it would be an UnexpectedEof error).
    let mut rest = Vec::new();
    assert_eq!(ws.get_mut().read_to_end(&mut rest).map_err(|e| e.kind()), Ok(0));
    let until = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().closes.is_empty() {
        assert!(Instant::now() < until, "the handler never heard the close");
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.upgrades, vec![(Some("localhost".to_string()), true)]);
    assert_eq!(seen.closes, vec![1000]);
    drop(seen);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn plain_and_tls_listeners_share_one_runtime() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = start(ServerBuilder::new().tls(pki.server).tls_address("127.0.0.1:0".parse().unwrap()), &seen);
    let tls_addr = server.tls_addr().expect("a TLS address");
    assert_ne!(tls_addr, server.local_addr());
    let mut plain = ws_plain(server.local_addr());
    let mut secure = wss(&pki.client, tls_addr);
    for ws in [&mut plain as &mut dyn Join, &mut secure] {
        ws.join();
    }
    let until = Instant::now() + Duration::from_secs(5);
    while server.subscribers("room") != 2 {
        assert!(Instant::now() < until, "subscribers: {}", server.subscribers("room"));
        std::thread::sleep(Duration::from_millis(5));
    }
    server.publish("room", Message::Text("to both"));
    assert_eq!(plain.read().unwrap(), WsMessage::text("to both"));
    assert_eq!(secure.read().unwrap(), WsMessage::text("to both"));
    let upgrades = seen.lock().unwrap().upgrades.clone();
    assert!(upgrades.contains(&(None, false)) && upgrades.contains(&(Some("localhost".into()), true)), "{upgrades:?}");
    // A plain request at the TLS address gets an alert or nothing, and
    // the server stays up.
    let mut wrong = TcpStream::connect(tls_addr).unwrap();
    wrong.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = read_to_close(&mut wrong);
    assert!(answer.is_empty() || answer[0] == 0x15, "an alert or nothing: {answer:?}");
    server.shutdown(Duration::from_secs(1));
}

/// Joins `room` and waits for the answer.
trait Join {
    fn join(&mut self);
}

impl<S: Read + Write> Join for tungstenite::WebSocket<S> {
    fn join(&mut self) {
        self.send(WsMessage::text("join")).unwrap();
        assert_eq!(self.read().unwrap(), WsMessage::text("joined"));
    }
}

#[test]
fn garbage_instead_of_a_client_hello_gets_an_alert_or_a_close() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    // A handshake timeout far beyond `read_to_close`'s 10 s: the close
    // must come from the refusal.
    let server = start(ServerBuilder::new().tls(pki.server).handshake_timeout(Duration::from_secs(60)), &seen);
    let garbage: [(&[u8], bool); 3] = [
        // Not a TLS record: rustls answers decode_error.
        (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", true),
        // A ClientHello record that is not one.
        (&[0x16, 0x03, 0x01, 0x00, 0x06, 1, 0, 0, 2, 0xff, 0xff], true),
        // A handshake message announcing 128 KiB: refused without an alert.
        (&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5], false),
    ];
    for (bytes, alert) in garbage {
        let mut tcp = TcpStream::connect(server.local_addr()).unwrap();
        tcp.write_all(bytes).unwrap();
        let answer = read_to_close(&mut tcp);
        if alert {
            // A TLS alert record (content type 21), then the end.
            assert_eq!(answer.first(), Some(&0x15), "{bytes:?}: {answer:?}");
        } else {
            assert!(answer.is_empty(), "{bytes:?}: {answer:?}");
        }
    }
    // The server still serves.
    let mut ws = wss(&pki.client, server.local_addr());
    ws.send(WsMessage::text("still here")).unwrap();
    assert_eq!(ws.read().unwrap(), WsMessage::text("still here"));
    assert!(seen.lock().unwrap().closes.is_empty(), "no connection opened, none closed");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_stalled_tls_handshake_ends_at_the_handshake_timeout() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = start(ServerBuilder::new().tls(pki.server).handshake_timeout(Duration::from_millis(300)), &seen);
    // The first bytes of a ClientHello record, then nothing.
    let mut tcp = TcpStream::connect(server.local_addr()).unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    let started = Instant::now();
    read_to_close(&mut tcp);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "closed after {waited:?}");
    // A TLS handshake that completes and then sends no upgrade request is
    // held to the same timeout.
    let mut tls = tls_stream(&pki.client, server.local_addr());
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    let mut rest = Vec::new();
    let ended = tls.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    let _ = ended; // a close_notify or a bare end: both end it
    server.shutdown(Duration::from_secs(1));
}

/// Waits until the handler heard `n` closes; returns their codes.
fn closes(seen: &Arc<Mutex<Seen>>, n: usize) -> Vec<u16> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let closes = seen.lock().unwrap().closes.clone();
        if closes.len() >= n {
            return closes;
        }
        assert!(Instant::now() < until, "closes so far: {closes:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_record_cut_short_by_the_end_of_the_connection_ends_it_as_abnormal() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = start(ServerBuilder::new().tls(pki.server), &seen);
    let mut ws = wss(&pki.client, server.local_addr());
    ws.send(WsMessage::text("before")).unwrap();
    assert_eq!(ws.read().unwrap(), WsMessage::text("before"));
    // Half of a 16 KiB application-data record, straight on the socket,
    // then the end of the stream.
    let tcp = &mut ws.get_mut().sock;
    tcp.write_all(&[0x17, 0x03, 0x03, 0x40, 0x00]).unwrap();
    tcp.write_all(&[0xab; 8000]).unwrap();
    tcp.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(closes(&seen, 1), vec![1006]);
    read_to_close(tcp);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_client_that_stops_reading_gets_1008_once_its_queue_passes_the_budget() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    // A small kernel send buffer, so that the echoes wait in our queue.
    let builder = ServerBuilder::new().tls(pki.server).max_backpressure(256 << 10).send_buffer_size(16 << 10);
    let server = start(builder, &seen);
    let mut ws = wss(&pki.client, server.local_addr());
    // 2 MiB of echoes pile up unread: past the kernels' buffers and the
    // 256 KiB budget.
    let chunk = vec![7u8; 32 << 10];
    for _ in 0..64 {
        ws.send(WsMessage::binary(chunk.clone())).unwrap();
    }
    let mut echoes = 0;
    let code = loop {
        match ws.read().unwrap() {
            WsMessage::Binary(data) => {
                assert_eq!(data.len(), chunk.len());
                echoes += 1;
            }
            WsMessage::Close(frame) => break frame.map(|f| u16::from(f.code)),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, Some(1008), "after {echoes} echoes");
    assert!((1..64).contains(&echoes), "{echoes} echoes before the close");
    server.shutdown(Duration::from_secs(1));
}

/// A ringcast client trusting `roots`.
fn our_client(roots: RootCertStore) -> (ringcast::ClientHandle<Plan>, std::sync::mpsc::Receiver<Ev>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let handle = ClientBuilder::new()
        .tls(config)
        .handshake_timeout(Duration::from_secs(5))
        .start(move |_| Recorder { events: tx.clone() })
        .unwrap();
    (handle, rx)
}

#[test]
fn our_client_talks_to_our_server_over_wss_and_checks_the_certificate() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = start(ServerBuilder::new().tls(pki.server), &seen);
    let port = server.local_addr().port();
    let (client, events) = our_client(pki.roots.clone());
    // 3 connections, each echoing a small and a large message, then
    // closing; the CONNECTING rule includes the TLS handshake.
    let target = Connect::new(&format!("wss://localhost:{port}/")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for tag in 0..3 {
        let plan = Plan {
            send: vec![(true, b"hi".to_vec()), (false, big.clone())],
            close_after: Some(2),
            ..Plan::tagged(tag)
        };
        client.connect(&target, plan).unwrap();
    }
    let got = collect(&events, |seen| count(seen, |e| matches!(e, Ev::Closed { .. })) == 3);
    for tag in 0..3 {
        let echoes: Vec<(bool, usize)> = got
            .iter()
            .filter_map(|e| match e {
                Ev::Message { tag: t, text, data } if *t == tag => Some((*text, data.len())),
                _ => None,
            })
            .collect();
        assert_eq!(echoes, vec![(true, 2), (false, big.len())], "connection {tag}");
    }
    assert_eq!(count(&got, |e| matches!(e, Ev::Closed { code: 1000, .. })), 3, "{got:?}");
    assert!(seen.lock().unwrap().upgrades.iter().all(|u| u == &(Some("localhost".to_string()), true)));
    // A name the certificate does not carry (it is for localhost only).
    client.connect(&Connect::new(&format!("wss://127.0.0.1:{port}/")).unwrap(), Plan::tagged(10)).unwrap();
    // A server the client does not trust.
    let (wary, wary_events) = our_client(self::pki().roots);
    wary.connect(&target, Plan::tagged(11)).unwrap();
    for (events, tag) in [(&events, 10), (&wary_events, 11)] {
        let failed = collect(events, |seen| seen.iter().any(|e| e.tag() == tag));
        match failed.iter().find(|e| e.tag() == tag) {
            Some(Ev::Failed { failure: Failure::Other(why), .. }) => {
                assert!(why.starts_with("TLS: ") && why.contains("certificate"), "connection {tag}: {why}")
            }
            other => panic!("connection {tag}: {other:?}"),
        }
    }
    // A plain ws:// connect from the same client still works.
    let plain_server = start(ServerBuilder::new(), &seen);
    let plan = Plan { send: vec![(true, b"plain".to_vec())], close_after: Some(1), ..Plan::tagged(12) };
    client
        .connect(&Connect::new(&format!("ws://127.0.0.1:{}/", plain_server.local_addr().port())).unwrap(), plan)
        .unwrap();
    let got = collect(&events, |seen| seen.iter().any(|e| matches!(e, Ev::Closed { tag: 12, .. })));
    assert!(got.iter().any(|e| matches!(e, Ev::Message { tag: 12, data, .. } if data == b"plain")), "{got:?}");
    client.shutdown(Duration::from_secs(1));
    wary.shutdown(Duration::from_secs(1));
    server.shutdown(Duration::from_secs(1));
    plain_server.shutdown(Duration::from_secs(1));
}

/// A masked text frame from a client (mask key zero).
fn client_text(text: &str) -> Vec<u8> {
    assert!(text.len() < 126);
    let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// Frames sent in the same flight as the upgrade request, and more while
/// the 101 is on its way, are all answered in order. (With the `ktls`
/// feature this is the moment a session offers its keys to the kernel:
/// the receive stops and resumes around it, and nothing read may be lost
/// or read twice.)
#[test]
fn frames_pipelined_behind_the_upgrade_request_are_all_echoed_in_order() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = start(ServerBuilder::new().tls(pki.server), &seen);
    let mut tls = tls_stream(&pki.client, server.local_addr());
    let mut first = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    let texts: Vec<String> = (0..300).map(|i| format!("message {i}")).collect();
    for text in &texts[..100] {
        first.extend_from_slice(&client_text(text));
    }
    tls.write_all(&first).unwrap();
    for chunk in texts[100..].chunks(20) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|t| client_text(t)).collect();
        tls.write_all(&bytes).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "the server ended before its 101");
        got.extend_from_slice(&buf[..n]);
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&got[..end]));
    let mut frames = got.split_off(end);
    let mut echoed = Vec::new();
    while echoed.len() < texts.len() {
        while frames.len() >= 2 && frames.len() >= 2 + frames[1] as usize {
            assert_eq!(frames[0], 0x81, "an unmasked text frame");
            let len = frames[1] as usize;
            echoed.push(String::from_utf8(frames[2..2 + len].to_vec()).unwrap());
            frames.drain(..2 + len);
        }
        if echoed.len() < texts.len() {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "the server ended after {} echoes", echoed.len());
            frames.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(echoed, texts);
    // The connection still works both ways after the moment passed.
    tls.write_all(&client_text("after")).unwrap();
    let mut tail = [0u8; 7];
    tls.read_exact(&mut tail).unwrap();
    assert_eq!(&tail, b"\x81\x05after");
    server.shutdown(Duration::from_secs(1));
}

/// A publish reaches every wss subscriber on both shards, small frames
/// (copied into each connection's queue) and large ones (one shared frame
/// for all) alike, each encrypted for its own connection. (With the
/// `ktls` feature on a kernel with TLS, the shared frame goes to the
/// kernel as it is.)
#[test]
fn publishes_small_and_large_reach_every_wss_subscriber() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = start(ServerBuilder::new().tls(pki.server), &seen);
    let mut subscribers: Vec<_> = (0..6).map(|_| wss(&pki.client, server.local_addr())).collect();
    for ws in &mut subscribers {
        ws.send(WsMessage::text("join")).unwrap();
        assert_eq!(ws.read().unwrap(), WsMessage::text("joined"));
    }
    let large: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    for round in 0..5 {
        let small = format!("small {round}");
        assert_eq!(server.publish("room", Message::Text(&small)), 6, "every subscriber counted");
        server.publish("room", Message::Binary(&large));
        for ws in &mut subscribers {
            assert_eq!(ws.read().unwrap(), WsMessage::text(small.clone()));
            assert_eq!(ws.read().unwrap(), WsMessage::binary(large.clone()));
        }
    }
    server.shutdown(Duration::from_secs(1));
}
