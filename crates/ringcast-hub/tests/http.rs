//! Plain HTTP routes (publish, metrics, health, the page), refusals
//! (404, 403, 405, the seeds' handshake statuses).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn http_publish_picks_text_or_binary_and_counts_receivers() {
    let hub = TestHub::start(2, |_| {});
    let mut subscribers = Vec::new();
    for _ in 0..10 {
        subscribers.push(connect(&hub.url("/topics/news")).await);
    }
    let mut json_sub = connect(&hub.url("/ws")).await;
    request(&mut json_sub, r#"{"op":"subscribe","topic":"news","id":0}"#).await;
    next_json(&mut json_sub).await;
    hub.wait_subscribers("r:news", 10);

    assert_eq!(publish(hub.addr(), "news", "text/plain; charset=utf-8", "héllo".as_bytes()), 11);
    assert_eq!(publish(hub.addr(), "news", "application/json", br#"{"a":1}"#), 11);
    assert_eq!(publish(hub.addr(), "news", "application/octet-stream", b"bytes"), 11);
    assert_eq!(publish(hub.addr(), "news", "text/plain", &[0xff, 0xfe]), 11, "not UTF-8: binary");
    assert_eq!(publish(hub.addr(), "nobody", "text/plain", b"x"), 0);
    for ws in &mut subscribers {
        assert_eq!(next(ws).await, Message::text("héllo"));
        assert_eq!(next(ws).await, Message::text(r#"{"a":1}"#));
        assert_eq!(next(ws).await, Message::binary(b"bytes".to_vec()));
        assert_eq!(next(ws).await, Message::binary(vec![0xff, 0xfe]));
    }
    assert_eq!(next_json(&mut json_sub).await, json!({"topic":"news","data":"héllo"}));
    assert_eq!(next_json(&mut json_sub).await, json!({"topic":"news","data":"{\"a\":1}"}));
    assert_eq!(next_json(&mut json_sub).await, json!({"topic":"news","data":"Ynl0ZXM=","encoding":"base64"}));
    assert_eq!(next_json(&mut json_sub).await["encoding"], "base64");
    assert_eq!(hub.metric("ringcast_hub_publishes_total", ""), 5);
}

#[test]
fn health_page_metrics_and_method_rules() {
    let hub = TestHub::start(2, |_| {});
    let addr = hub.addr();
    let (status, _, body) = http(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, head, body) = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"));
    assert!(body.contains("new WebSocket(") && body.contains("/topics/"));
    let (status, head, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"));
    for shard in 0..2 {
        assert!(body.contains(&format!("ringcast_connections{{shard=\"{shard}\"}} ")), "{body}");
    }
    let (status, head, _) = http(addr, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET"));
    let (status, head, _) = http(addr, "GET /publish/a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: POST"));
    assert_eq!(http(addr, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").0, 404);
    assert_eq!(http(addr, "POST /publish/%zz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").0, 400);
    let big = format!("POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 2 << 20);
    assert_eq!(http(addr, &big).0, 413, "over max_message_size (1 MiB by default)");
}

#[test]
fn websocket_refusals_follow_the_seeds() {
    let hub = TestHub::start(1, |c| c.allowed_origins = vec!["https://chat.example".into()]);
    let addr = hub.addr();
    let status = |request: &str| upgrade_status(addr, request).lines().next().unwrap_or("").to_owned();
    assert!(status(&upgrade("/elsewhere", "")).starts_with("HTTP/1.1 404"));
    assert!(status(&upgrade("/topics/%zz", "")).starts_with("HTTP/1.1 400"));
    assert!(status(&upgrade("/topics/a", "Origin: https://evil.example\r\n")).starts_with("HTTP/1.1 403"));
    assert!(status(&upgrade("/ws", "Origin: https://evil.example\r\n")).starts_with("HTTP/1.1 403"));
    assert!(status(&upgrade("/topics/a", "Origin: https://chat.example\r\n")).starts_with("HTTP/1.1 101"));
    assert!(status(&upgrade("/topics/a", "")).starts_with("HTTP/1.1 101"), "no Origin: not a browser");
    let no_key =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert!(status(no_key).starts_with("HTTP/1.1 400"));
    let short_key = upgrade("/ws", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=");
    assert!(status(&short_key).starts_with("HTTP/1.1 400"), "the key must be 16 bytes");
    let v8 = upgrade("/ws", "").replace("Version: 13", "Version: 8");
    let head = upgrade_status(addr, &v8);
    assert!(head.starts_with("HTTP/1.1 426") && head.contains("Sec-WebSocket-Version: 13"), "{head}");
    let foreign = "POST /publish/a HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nContent-Length: 1\r\n\r\nx";
    assert_eq!(http(addr, foreign).0, 403, "cross-site publishes are refused too");
}

#[tokio::test]
async fn messages_over_the_size_limit_close_with_1009() {
    let hub = TestHub::start(1, |c| c.max_message_size = 1024);
    let mut ws = connect(&hub.url("/topics/a")).await;
    futures_util::SinkExt::send(&mut ws, Message::binary(vec![0u8; 2048])).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), futures_util::StreamExt::next(&mut ws)).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => break assert_eq!(u16::from(frame.code), 1009),
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected close 1009, got {other:?}"),
        }
    }
}
