//! Access control and limits on the wire: tokens (HS256, RS256, ES256) at
//! the handshake and afterwards, API and metrics keys, the publish rate and
//! connections per address.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use futures_util::SinkExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "a test secret that is long enough";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A token for `claims`, signed HS256 with `secret`.
fn hs256(secret: &str, claims: serde_json::Value) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap()).unwrap()
}

fn claims(subscribe: &[&str], publish: &[&str], exp: u64) -> serde_json::Value {
    serde_json::json!({"sub": "tester", "exp": exp, "subscribe": subscribe, "publish": publish})
}

/// The status line and body of an upgrade answered without a 101.
fn refused(hub: &TestHub, path: &str, extra: &str) -> (String, serde_json::Value) {
    let head = upgrade_status(hub.addr(), &upgrade(path, extra));
    let status = head.lines().next().unwrap_or("").to_owned();
    let (_, _, body) = http(hub.addr(), &upgrade(path, extra));
    let body = serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null);
    (status, body)
}

fn secret_hub(tweak: impl FnOnce(&mut ringcast_hub::HubConfig)) -> TestHub {
    TestHub::start(1, |c| {
        c.jwt_secret = Some(SECRET.into());
        tweak(c);
    })
}

#[tokio::test]
async fn handshakes_without_a_good_token_get_401_with_the_reason() {
    let hub = secret_hub(|_| {});
    let exp = now() + 300;
    let (status, body) = refused(&hub, "/ws", "");
    assert!(status.contains(" 401 "), "{status}");
    assert!(body["error"].as_str().unwrap().contains("token is required"), "{body}");
    let head = upgrade_status(hub.addr(), &upgrade("/ws", ""));
    assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{head}");

    let cases = [
        (hs256("another secret", claims(&["*"], &["*"], exp)), "invalid token signature"),
        (hs256(SECRET, claims(&["*"], &["*"], now() - 5)), "token expired"),
        (hs256(SECRET, serde_json::json!({"exp": exp})), "\"sub\""),
        (hs256(SECRET, serde_json::json!({"sub": "x"})), "\"exp\""),
        (
            encode(
                &Header::new(Algorithm::HS512),
                &claims(&["*"], &["*"], exp),
                &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            )
            .unwrap(),
            "algorithm not accepted",
        ),
        // {"alg":"none"} with the same claims and no signature.
        (
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", base64_url(&claims(&["*"], &["*"], exp).to_string())),
            "invalid token",
        ),
        ("not.a.token".to_owned(), "invalid token"),
    ];
    for (token, why) in cases {
        let (status, body) = refused(&hub, &format!("/ws?token={token}"), "");
        assert!(status.contains(" 401 "), "{why}: {status}");
        assert!(body["error"].as_str().unwrap_or("").contains(why), "{why}: {body}");
    }
    assert!(hub.metric("ringcast_hub_refusals_total", "") >= 8);
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn a_token_in_the_url_or_the_header_opens_and_its_lists_are_enforced() {
    let hub = secret_hub(|_| {});
    let token = hs256(SECRET, claims(&["news", "chat.*"], &["chat.*"], now() + 300));
    // Rooms: subscribe rights decide the handshake.
    let (status, body) = refused(&hub, &format!("/topics/secret?token={token}"), "");
    assert!(status.contains(" 403 "), "{status}");
    assert!(body["error"].as_str().unwrap().contains("may not subscribe"), "{body}");
    let mut news = connect(&hub.url(&format!("/topics/news?token={token}"))).await;
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert!(upgrade_status(hub.addr(), &upgrade("/topics/chat.lobby", &bearer)).starts_with("HTTP/1.1 101"));

    // A room member without the right to publish there is closed with 1008.
    news.send(Message::text("hello?")).await.unwrap();
    match next(&mut news).await {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert_eq!(frame.reason.as_str(), "token may not publish to this topic");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }

    // /ws: refusals are errors; the connection stays and allowed requests work.
    let mut control = connect(&hub.url(&format!("/ws?token={token}"))).await;
    request(&mut control, r#"{"op":"subscribe","topic":"secret","id":1}"#).await;
    let answer = next_json(&mut control).await;
    assert_eq!(answer["id"], 1);
    assert!(answer["error"].as_str().unwrap().contains("may not subscribe"), "{answer}");
    request(&mut control, r#"{"op":"publish","topic":"news","data":1,"id":2}"#).await;
    assert!(next_json(&mut control).await["error"].as_str().unwrap().contains("may not publish"));
    request(&mut control, r#"{"op":"subscribe","topic":"chat.a","id":3}"#).await;
    assert_eq!(next_json(&mut control).await["ok"], true);
    let mut other = connect(&hub.url(&format!("/ws?token={token}"))).await;
    request(&mut other, r#"{"op":"publish","topic":"chat.a","data":"hi","id":4}"#).await;
    assert_eq!(next_json(&mut other).await["receivers"], 1);
    assert_eq!(next_json(&mut control).await["data"], "hi");
}

#[tokio::test]
async fn connections_are_closed_with_1008_when_their_token_expires() {
    let hub = secret_hub(|_| {});
    let token = hs256(SECRET, claims(&["*"], &["*"], now() + 2));
    let mut room = connect(&hub.url(&format!("/topics/t?token={token}"))).await;
    let mut control = connect(&hub.url(&format!("/ws?token={token}"))).await;
    for ws in [&mut room, &mut control] {
        match next(ws).await {
            Message::Close(Some(frame)) => {
                assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "token expired"));
            }
            other => panic!("expected close 1008 \"token expired\", got {other:?}"),
        }
    }
}

/// (private key PEM path, public key PEM path) made by openssl.
fn keypair(dir: &std::path::Path, kind: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (private, public) = (dir.join(format!("{kind}.key")), dir.join(format!("{kind}.pub")));
    let gen: &[&str] = match kind {
        "rsa" => &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let ok = Command::new("openssl")
        .args(gen)
        .arg("-out")
        .arg(&private)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs")
        .success();
    assert!(ok, "openssl genpkey {kind}");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey -pubout");
    (private, public)
}

#[tokio::test]
async fn public_keys_take_rs256_and_es256_and_refuse_algorithm_confusion() {
    let dir = std::env::temp_dir().join(format!("ringcast-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (kind, algorithm) in [("rsa", Algorithm::RS256), ("ec", Algorithm::ES256)] {
        let (private, public) = keypair(&dir, kind);
        let hub = TestHub::start(1, |c| c.jwt_public_key = Some(public.clone()));
        let pem = std::fs::read(&private).unwrap();
        let key = match kind {
            "rsa" => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let good = encode(&Header::new(algorithm), &claims(&["*"], &["*"], now() + 300), &key).unwrap();
        let mut ws = connect(&hub.url(&format!("/topics/a?token={good}"))).await;
        ws.send(Message::text("signed")).await.unwrap();
        // HS256 "signed" with the public key's text: the classic confusion.
        let public_text = std::fs::read_to_string(&public).unwrap();
        let confused = hs256(&public_text, claims(&["*"], &["*"], now() + 300));
        let (status, body) = refused(&hub, &format!("/ws?token={confused}"), "");
        assert!(status.contains(" 401 "), "{kind}: {status}");
        assert!(body["error"].as_str().unwrap().contains("algorithm not accepted"), "{kind}: {body}");
        // A token of the other key kind's algorithm is refused the same way.
        let other = if kind == "rsa" { Algorithm::ES256 } else { Algorithm::RS256 };
        let mut header = Header::new(other);
        header.typ = Some("JWT".into());
        let forged = format!(
            "{}.{}.c2ln",
            base64_url(&serde_json::to_string(&header).unwrap()),
            base64_url(&claims(&["*"], &["*"], now() + 300).to_string())
        );
        assert!(refused(&hub, &format!("/ws?token={forged}"), "").0.contains(" 401 "));
    }
    // A private key given as the public one is refused at start, clearly.
    let (private, _) = keypair(&dir, "ec");
    let mut config = ringcast_hub::HubConfig::default();
    config.listen = "127.0.0.1:0".into();
    config.jwt_public_key = Some(private);
    let error = ringcast_hub::start(config).err().expect("refused").to_string();
    assert!(error.contains("private key"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn api_and_metrics_keys_guard_http() {
    let hub = TestHub::start(1, |c| {
        c.api_keys = vec!["pub-key-1".into(), "pub-key-2".into()];
        c.metrics_key = Some("metrics-key".into());
    });
    let post = |auth: &str| {
        let request = format!(
            "POST /publish/a HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        http(hub.addr(), &request)
    };
    let (status, head, body) = post("");
    assert_eq!(status, 401, "{head}");
    assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"));
    assert!(body.contains("API key"), "{body}");
    assert_eq!(post("Authorization: Bearer pub-key-3\r\n").0, 401);
    assert_eq!(post("Authorization: Basic pub-key-1\r\n").0, 401);
    assert_eq!(post("Authorization: Bearer pub-key-2\r\n").0, 200);
    assert_eq!(post("Authorization: bearer pub-key-1\r\n").0, 200, "the scheme is case-insensitive");

    assert_eq!(http(hub.addr(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").0, 401);
    let with_key = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer metrics-key\r\n\r\n";
    let (status, _, body) = http(hub.addr(), with_key);
    assert_eq!(status, 200);
    assert!(body.contains("ringcast_hub_publishes_total{shard=\"0\"} 2"), "{body}");
    assert_eq!(http(hub.addr(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").0, 401, "health needs the key too");
    let health = "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer metrics-key\r\n\r\n";
    assert_eq!(http(hub.addr(), health).0, 200);
    let page = http(hub.addr(), "GET /dashboard HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(page.0, 200, "the dashboard page holds no data; it reads /metrics with its ?key=");
}

#[tokio::test]
async fn the_publish_rate_is_limited_per_connection() {
    let hub = TestHub::start(1, |c| c.max_publish_rate = 5);
    let mut control = connect(&hub.url("/ws")).await;
    for i in 0..5 {
        request(&mut control, &format!(r#"{{"op":"publish","topic":"r","data":{i},"id":{i}}}"#)).await;
        assert_eq!(next_json(&mut control).await["ok"], true, "publish {i} of the burst");
    }
    request(&mut control, r#"{"op":"publish","topic":"r","data":5,"id":5}"#).await;
    let answer = next_json(&mut control).await;
    assert!(answer["error"].as_str().unwrap().contains("over 5 publishes per second"), "{answer}");
    // Refilled at 5 per second: after 300 ms one more is allowed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    request(&mut control, r#"{"op":"publish","topic":"r","data":6,"id":6}"#).await;
    assert_eq!(next_json(&mut control).await["ok"], true);

    // A room connection past the rate is closed with 1008.
    let mut room = connect(&hub.url("/topics/r")).await;
    for i in 0..6 {
        room.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    match next(&mut room).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected close 1008, got {other:?}"),
    }
}

#[tokio::test]
async fn connections_per_address_are_limited() {
    let hub = TestHub::start(1, |c| c.max_connections_per_ip = 2);
    let first = connect(&hub.url("/ws")).await;
    let _second = connect(&hub.url("/topics/a")).await;
    let (status, body) = refused(&hub, "/ws", "");
    assert!(status.contains(" 429 "), "{status}");
    assert!(body["error"].as_str().unwrap().contains("at most 2 connections"), "{body}");
    drop(first);
    // Its slot is free once the hub has seen it close.
    for attempt in 0.. {
        if upgrade_status(hub.addr(), &upgrade("/ws", "")).starts_with("HTTP/1.1 101") {
            break;
        }
        assert!(attempt < 100, "the closed connection's slot never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
