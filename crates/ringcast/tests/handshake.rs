//! Opening-handshake answers on the wire: the seeds' statuses from the
//! server, to raw requests and to a real client.

mod common;

use common::*;
use ringcast::ServerBuilder;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

/// Sends `request` on a fresh connection; returns the response head and
/// body, after checking that the server then ends the stream.
fn answer(server: &TestServer, request: &[u8]) -> String {
    let mut client = RawClient::connect(server.addr());
    client.send_raw(request);
    let response = client.read_head();
    client.expect_eof();
    response
}

fn status(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {response:?}"))
}

#[test]
fn each_refusal_has_the_seeds_status() {
    let server = TestServer::one_shard();
    let without = |field: &str| {
        upgrade_request("/", "").lines().filter(|l| !l.starts_with(field)).collect::<Vec<_>>().join("\r\n") + "\r\n"
    };
    let cases: Vec<(&str, String, u16)> = vec![
        ("missing Sec-WebSocket-Key", without("Sec-WebSocket-Key"), 400),
        ("missing Upgrade", without("Upgrade"), 400),
        ("missing Connection", without("Connection"), 400),
        ("missing Host", without("Host"), 400),
        ("key of 15 bytes", upgrade_request("/", "").replace(KEY, "AAAAAAAAAAAAAAAAAAAA"), 400),
        ("key not base64", upgrade_request("/", "").replace(KEY, "!!!!!!!!!!!!!!!!!!!!!!=="), 400),
        ("POST", upgrade_request("/", "").replacen("GET", "POST", 1), 400),
        ("HTTP/1.0", upgrade_request("/", "").replace("HTTP/1.1", "HTTP/1.0"), 400),
        ("garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n".to_string(), 400),
        ("version 8", upgrade_request("/", "").replace("Version: 13", "Version: 8"), 426),
        ("refused Origin", upgrade_request("/", "Origin: https://evil.example\r\n"), 403),
        ("unserved path", upgrade_request("/elsewhere", ""), 404),
        ("head over 8 KiB", upgrade_request("/", &format!("X-Big: {}\r\n", "a".repeat(9000))), 431),
    ];
    for (name, request, expected) in cases {
        let response = answer(&server, request.as_bytes());
        assert_eq!(status(&response), expected, "{name}: {response}");
        if expected == 426 {
            assert!(response.contains("Sec-WebSocket-Version: 13\r\n"), "426 names the version: {response}");
        }
    }
    assert_eq!(server.log.lock().unwrap().opened, 0, "no refused request opens a connection");
}

#[test]
fn plain_http_is_answered_by_the_handler() {
    let server = TestServer::one_shard();
    let response = answer(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 200);
    assert!(response.ends_with("\r\n\r\nok"), "{response}");
    // Any other plain request gets the default: 400 (not an upgrade).
    assert_eq!(status(&answer(&server, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")), 400);
}

#[test]
fn a_head_trickled_byte_by_byte_still_upgrades() {
    let server = TestServer::one_shard();
    let mut client = RawClient::connect(server.addr());
    for byte in upgrade_request("/", "Sec-WebSocket-Protocol: other, chat\r\n").as_bytes() {
        client.send_raw(std::slice::from_ref(byte));
    }
    let head = client.read_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{head}");
    assert!(head.contains("Sec-WebSocket-Protocol: chat\r\n"), "{head}");
    // A frame in the same write as the head's end is not lost.
    let mut client = RawClient::connect(server.addr());
    let mut bytes = upgrade_request("/", "").into_bytes();
    bytes.extend(masked(0x1, b"right behind the head"));
    client.send_raw(&bytes);
    assert!(client.read_head().starts_with("HTTP/1.1 101 "));
    assert_eq!(client.read_frame().unwrap().payload, b"right behind the head");
}

#[test]
fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let server =
        TestServer::start(ServerBuilder::new().shards(1).handshake_timeout(std::time::Duration::from_millis(200)));
    let started = std::time::Instant::now();
    let mut client = RawClient::connect(server.addr());
    client.send_raw(b"GET / HTTP/1.1\r\n");
    client.expect_eof();
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(190) && waited < std::time::Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn tungstenite_sees_the_refusals_as_http_errors() {
    let server = TestServer::one_shard();
    for (path, origin, expected) in [("/nope", None, 404), ("/", Some("https://evil.example"), 403)] {
        let mut request = server.url(path).into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), expected),
            other => panic!("{path}: expected HTTP {expected}, got {:?}", other.map(|(_, r)| r.status())),
        }
    }
}

#[test]
fn plain_http_requests_can_carry_a_body() {
    let server = TestServer::start(ServerBuilder::new().shards(1).max_message_size(1000));
    let post = |body: &str, extra: &str| {
        format!("POST /reverse HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{extra}\r\n{body}", body.len())
    };
    let response = answer(&server, post("hello", "").as_bytes());
    assert_eq!(status(&response), 200);
    assert!(response.contains("X-Length: 5\r\n") && response.ends_with("\r\n\r\nolleh"), "{response}");

    // Head first, then the body in pieces.
    let mut client = RawClient::connect(server.addr());
    let request = post(&"ab".repeat(300), "");
    let (head, body) = request.split_at(request.find("\r\n\r\n").unwrap() + 4);
    client.send_raw(head.as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(20));
    for piece in body.as_bytes().chunks(77) {
        client.send_raw(piece);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let response = client.read_head();
    assert!(response.contains("X-Length: 600\r\n") && response.ends_with(&"ba".repeat(300)), "{response}");
    client.expect_eof();

    let refusals = [
        ("over max_message_size", "POST /reverse HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n".to_string(), 413),
        (
            "chunked",
            "POST /reverse HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into(),
            501,
        ),
        ("bad length", "POST /reverse HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n".into(), 400),
        (
            "two lengths",
            "POST /reverse HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx".into(),
            400,
        ),
        ("unserved", post("x", "").replace("/reverse", "/elsewhere"), 400),
    ];
    for (name, request, expected) in refusals {
        assert_eq!(status(&answer(&server, request.as_bytes())), expected, "{name}");
    }
}
