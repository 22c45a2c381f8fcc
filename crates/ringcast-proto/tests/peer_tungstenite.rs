//! Interoperability with a real peer, the `tungstenite` crate, over TCP on
//! loopback: our server side against its client, our client side against
//! its server, and protocol violations seen on the wire.

#[path = "../examples/proto_echo/server.rs"]
mod server;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use ringcast_proto::handshake::{ClientHandshake, WsUri};
use ringcast_proto::{CloseCode, Config, Connection, Event, State};
use server::Outcome;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use tungstenite::Message;

/// Starts the echo driver on a free port for `connections` connections and
/// returns the port and a handle yielding how each ended.
fn echo_server(connections: usize) -> (u16, thread::JoinHandle<Vec<Outcome>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        (0..connections)
            .map(|_| {
                let (mut stream, _) = listener.accept().unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                server::serve(&mut stream, Config::default(), |_| Ok(())).unwrap()
            })
            .collect()
    });
    (port, handle)
}

#[test]
fn tungstenite_client_echo_all_sizes_ping_and_close() {
    let (port, server) = echo_server(1);
    let (mut ws, response) = tungstenite::connect(format!("ws://127.0.0.1:{port}/echo")).unwrap();
    assert_eq!(response.status(), 101);
    for size in [0usize, 125, 126, 65535, 65536, 1 << 20, 16 << 20] {
        let text: String = (0..size).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text), "text of {size} bytes");
        let bin: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        ws.send(Message::binary(bin.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(bin), "binary of {size} bytes");
    }
    let multibyte = "κόσμε 😀 ".repeat(5000);
    ws.send(Message::text(multibyte.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(multibyte));
    ws.send(Message::Ping(b"are you there".to_vec().into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"are you there".to_vec().into()));
    ws.close(Some(tungstenite::protocol::CloseFrame { code: TCloseCode::Normal, reason: "bye".into() })).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, TCloseCode::Normal),
        other => panic!("expected the close echo, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(tungstenite::Error::ConnectionClosed)));
    // 14 echoes + 1 multibyte + ping + close
    assert_eq!(server.join().unwrap(), [Outcome::WebSocket { messages: 17, clean: true }]);
}

#[test]
fn handshake_statuses_on_the_wire() {
    let (port, server) = echo_server(3);
    let send = |request: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let v8 = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let answer = send(v8);
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"));
    let no_key = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    assert!(send(no_key).starts_with("HTTP/1.1 400 "));
    assert!(send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
    assert_eq!(server.join().unwrap(), [Outcome::Http(426), Outcome::Http(400), Outcome::Http(200)]);
}

/// Opens a WebSocket with our client handshake over a raw socket.
fn raw_client(port: u16) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hs = ClientHandshake::new(WsUri::parse(&format!("ws://127.0.0.1:{port}/")).unwrap());
    let mut request = Vec::new();
    hs.write_request(&mut request).unwrap();
    stream.write_all(&request).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(response) = hs.read_response(&buf).unwrap() {
            let rest = buf[response.head_len()..].to_vec();
            return (stream, rest);
        }
    }
}

/// Sends raw bytes and returns the close code the server answered with,
/// checking that the server then closed the TCP connection.
fn close_code_for(port: u16, bytes: &[u8]) -> u16 {
    let (mut stream, mut got) = raw_client(port);
    stream.write_all(bytes).unwrap();
    stream.read_to_end(&mut got).unwrap(); // returns only once the server closed TCP
    let mut client = Connection::client(Config::default());
    let read = client.read(&mut got).unwrap();
    match read.event {
        Some(Event::Close(frame)) => frame.code.expect("a code").0,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[test]
fn violations_on_the_wire_get_close_code_then_tcp_close() {
    let (port, server) = echo_server(4);
    // Unmasked text frame from a client: 1002.
    assert_eq!(close_code_for(port, &[0x81, 0x02, b'h', b'i']), 1002);
    // Masked text frame with invalid UTF-8 (0xff under a zero mask): 1007.
    assert_eq!(close_code_for(port, &[0x81, 0x81, 0, 0, 0, 0, 0xff]), 1007);
    // A header announcing 1 GiB, with no payload: 1009 at once.
    assert_eq!(close_code_for(port, &[0x82, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4]), 1009);
    // Reserved opcode 0xB: 1002.
    assert_eq!(close_code_for(port, &[0x8B, 0x80, 0, 0, 0, 0]), 1002);
    let outcomes = server.join().unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::WebSocket { clean: false, .. })), "{outcomes:?}");
}

#[test]
fn our_client_against_tungstenite_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        let mut seen = 0;
        loop {
            match ws.read() {
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                    seen += 1;
                    ws.send(msg).unwrap();
                }
                Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {
                    let _ = ws.flush();
                    return seen;
                }
                Ok(_) => {}
                Err(e) => panic!("server error: {e}"),
            }
        }
    });
    let (mut stream, mut leftover) = raw_client(port);
    let mut conn = Connection::client(Config::default());
    let mut wire = Vec::new();
    let big = "x".repeat(200_000);
    conn.send_text("hello", &mut wire).unwrap();
    conn.send_binary(&[1, 2, 3], &mut wire).unwrap();
    conn.send_text(&big, &mut wire).unwrap();
    conn.ping(b"p", &mut wire).unwrap();
    stream.write_all(&wire).unwrap();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while got.len() < 4 {
        let mut input = std::mem::take(&mut leftover);
        if input.is_empty() {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0);
            input.extend_from_slice(&chunk[..n]);
        }
        let mut pos = 0;
        loop {
            let read = conn.read(&mut input[pos..]).unwrap();
            pos += read.consumed;
            match read.event {
                Some(Event::Text(t)) => got.push(format!("text:{}", t.len())),
                Some(Event::Binary(b)) => got.push(format!("binary:{b:?}")),
                Some(Event::Pong(p)) => got.push(format!("pong:{}", String::from_utf8_lossy(p))),
                Some(other) => panic!("unexpected {other:?}"),
                None => break,
            }
        }
    }
    assert_eq!(got, ["text:5", "binary:[1, 2, 3]", "text:200000", "pong:p"]);
    wire.clear();
    conn.close(Some(CloseCode::NORMAL), "done", &mut wire).unwrap();
    stream.write_all(&wire).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let read = conn.read(&mut rest).unwrap();
    assert!(matches!(read.event, Some(Event::Close(f)) if f.code == Some(CloseCode::NORMAL)));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(server.join().unwrap(), 3);
}
