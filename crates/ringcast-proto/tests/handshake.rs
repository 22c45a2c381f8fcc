//! The opening handshake through the public API, both sides.

use ringcast_proto::handshake::{
    accept_key, write_response, ClientHandshake, Request, RequestLimits, RequestReader, WsUri,
};
use ringcast_proto::{RequestError, ResponseError, UsageError};

const GOOD: &str = "GET /chat?room=1 HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn parse(text: &str) -> Result<Option<Request<'_>>, RequestError> {
    RequestReader::new(RequestLimits::default()).poll(text.as_bytes())
}

/// Status the server answers a request with: 101 when valid.
fn status_of(text: &str) -> u16 {
    match parse(text) {
        Ok(Some(req)) => match req.validate() {
            Ok(_) => 101,
            Err(e) => e.status(),
        },
        Ok(None) => panic!("incomplete request"),
        Err(e) => e.status(),
    }
}

fn without(header: &str) -> String {
    GOOD.lines().filter(|l| !l.starts_with(header)).map(|l| format!("{l}\r\n")).collect::<String>()
}

fn replaced(header: &str, line: &str) -> String {
    GOOD.replace(GOOD.lines().find(|l| l.starts_with(header)).unwrap(), line)
}

#[test]
fn rfc_sample_request_is_accepted_with_sample_accept_value() {
    let req = parse(GOOD).unwrap().unwrap();
    assert_eq!((req.path(), req.query(), req.origin()), ("/chat", Some("room=1"), Some("http://example.com")));
    assert_eq!(req.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
    let ext = req.extensions();
    assert_eq!(ext[0].name, "permessage-deflate");
    assert_eq!(req.head_len(), GOOD.len());
    let upgrade = req.validate().unwrap();
    assert_eq!(upgrade.accept_key().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(upgrade.choose_protocol(&["superchat", "chat"]), Some("superchat"));
    assert_eq!(upgrade.choose_protocol(&["other"]), None);
    let mut out = Vec::new();
    upgrade.write_response(Some("chat"), &[], &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    assert!(!text.contains("Extensions"), "no extension is accepted");
    let mut out = Vec::new();
    assert_eq!(upgrade.write_response(Some("nope"), &[], &mut out), Err(UsageError::UnofferedProtocol));
}

#[test]
fn statuses_follow_the_seeds() {
    assert_eq!(status_of(GOOD), 101);
    for header in ["Host:", "Upgrade:", "Connection:", "Sec-WebSocket-Key:", "Sec-WebSocket-Version:"] {
        assert_eq!(status_of(&without(header)), 400, "without {header}");
    }
    assert_eq!(status_of(&replaced("Upgrade:", "Upgrade: h2c")), 400);
    assert_eq!(status_of(&replaced("Connection:", "Connection: keep-alive")), 400);
    assert_eq!(status_of(&replaced("Sec-WebSocket-Key:", "Sec-WebSocket-Key: c2hvcnQ=")), 400);
    assert_eq!(status_of(&replaced("Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ")), 400);
    assert_eq!(status_of(&replaced("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8")), 426);
    assert_eq!(status_of(&GOOD.replace("GET ", "POST ")), 400);
    assert_eq!(status_of(&GOOD.replace("HTTP/1.1", "HTTP/1.0")), 400);
    assert_eq!(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n"), 400);
    let twice = GOOD.replace("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n");
    assert_eq!(status_of(&twice), 400);
    // Case does not matter for header names and the Upgrade/Connection tokens.
    let shouting = GOOD.replace("Upgrade: websocket", "UPGRADE: WebSocket").replace("Upgrade\r\n", "UPGRADE\r\n");
    assert_eq!(status_of(&shouting), 101);
}

#[test]
fn head_limits_answer_431() {
    let big = GOOD.replace("Origin:", &format!("X-Big: {}\r\nOrigin:", "a".repeat(9000)));
    assert_eq!(status_of(&big), 431);
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(status_of(&GOOD.replace("Origin:", &format!("{many}Origin:"))), 431);
    // A head that never ends is refused once it passes the limit.
    let mut reader = RequestReader::new(RequestLimits::default().max_head_bytes(100));
    let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(200));
    assert_eq!(reader.poll(&endless.as_bytes()[..50]).unwrap().map(|r| r.head_len()), None);
    assert_eq!(reader.poll(endless.as_bytes()).unwrap_err(), RequestError::HeadTooLarge);
}

#[test]
fn request_trickled_byte_by_byte_is_found_once_complete() {
    let mut reader = RequestReader::new(RequestLimits::default());
    let bytes = [GOOD.as_bytes(), b"\x81\x85extra"].concat();
    for end in 1..GOOD.len() {
        assert!(reader.poll(&bytes[..end]).unwrap().is_none(), "complete too early at {end}");
    }
    let req = reader.poll(&bytes).unwrap().unwrap();
    assert_eq!(req.head_len(), GOOD.len(), "frame bytes after the head are not part of it");
}

#[test]
fn garbage_is_refused_on_its_first_bytes() {
    let mut reader = RequestReader::new(RequestLimits::default());
    assert_eq!(reader.poll(b"\x00\x01garbage").unwrap_err(), RequestError::Malformed);
}

#[test]
fn plain_http_is_not_an_upgrade() {
    let req = parse("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().unwrap();
    assert!(!req.is_upgrade());
    let mut out = Vec::new();
    write_response(200, &[("Content-Type", "application/json")], b"{}", &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n{}"));
    assert!(!text.contains("text/plain"));
}

fn client(uri: &str) -> ClientHandshake {
    ClientHandshake::with_nonce(WsUri::parse(uri).unwrap(), *b"the sample nonce")
}

/// Runs a client request through the server side and returns the server's
/// 101 response.
fn server_answer(request: &[u8], protocol: Option<&str>) -> Vec<u8> {
    let mut reader = RequestReader::new(RequestLimits::default());
    let req = reader.poll(request).unwrap().unwrap();
    let upgrade = req.validate().unwrap();
    let mut out = Vec::new();
    upgrade.write_response(protocol, &[], &mut out).unwrap();
    out
}

#[test]
fn client_request_passes_server_validation_and_response_passes_client() {
    let mut hs = client("ws://127.0.0.1:9001/echo?x=1").protocol("chat").header("Origin", "http://a");
    assert_eq!(hs.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    let mut request = Vec::new();
    hs.write_request(&mut request).unwrap();
    let text = String::from_utf8(request.clone()).unwrap();
    assert!(text.starts_with("GET /echo?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"));
    let mut answer = server_answer(&request, Some("chat"));
    let head_len = answer.len();
    answer.extend_from_slice(&[0x81, 0x00]);
    let response = hs.read_response(&answer).unwrap().unwrap();
    assert_eq!((response.status(), response.protocol(), response.head_len()), (101, Some("chat"), head_len));
}

#[test]
fn client_refuses_bad_responses() {
    let mut request = Vec::new();
    client("ws://h/").write_request(&mut request).unwrap();
    let good = String::from_utf8(server_answer(&request, None)).unwrap();
    let check = |text: &str| client("ws://h/").protocol("chat").read_response(text.as_bytes()).map(|r| r.is_some());
    assert_eq!(check(&good), Ok(true));
    assert_eq!(check("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), Err(ResponseError::Status(403)));
    assert_eq!(
        check(&good.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
        Err(ResponseError::AcceptMismatch)
    );
    let strip =
        |name: &str| good.lines().filter(|l| !l.starts_with(name)).map(|l| format!("{l}\r\n")).collect::<String>();
    assert_eq!(check(&strip("Sec-WebSocket-Accept")), Err(ResponseError::MissingHeader("Sec-WebSocket-Accept")));
    assert_eq!(check(&strip("Upgrade")), Err(ResponseError::MissingHeader("Upgrade")));
    assert_eq!(check(&strip("Connection")), Err(ResponseError::MissingHeader("Connection")));
    let with = |extra: &str| good.replacen("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"), 1);
    assert_eq!(check(&with("Sec-WebSocket-Protocol: other")), Err(ResponseError::UnofferedProtocol));
    assert_eq!(check(&with("Sec-WebSocket-Protocol: chat")), Ok(true));
    assert_eq!(check(&with("Sec-WebSocket-Extensions: permessage-deflate")), Err(ResponseError::UnofferedExtension));
    let offered = client("ws://h/")
        .extension("permessage-deflate; client_max_window_bits")
        .read_response(with("Sec-WebSocket-Extensions: permessage-deflate").as_bytes())
        .map(|r| r.is_some());
    assert_eq!(offered, Ok(true));
    assert_eq!(check("garbage\r\n\r\n"), Err(ResponseError::Malformed));
}

#[test]
fn accept_key_of_rfc_sample() {
    assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn client_refuses_header_injection() {
    let mut out = Vec::new();
    let hs = client("ws://h/").header("X", "a\r\nEvil: 1");
    assert_eq!(hs.write_request(&mut out), Err(UsageError::InvalidHeader));
}

#[test]
fn upgrade_token_may_be_on_any_upgrade_line() {
    let split = GOOD.replace("Upgrade: websocket\r\n", "Upgrade: h2c\r\nUpgrade: websocket\r\n");
    assert_eq!(status_of(&split), 101);
}
