//! The JSON control protocol on `/ws`: subscriptions, publishes between
//! JSON and raw subscribers, acknowledgements, and errors that leave the
//! connection open.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn subscribe_publish_unsubscribe_with_acknowledgements() {
    let hub = TestHub::start(2, |_| {});
    let mut alice = connect(&hub.url("/ws")).await;
    let mut bob = connect(&hub.url("/ws")).await;
    let mut room = connect(&hub.url("/topics/a")).await;
    request(&mut bob, r#"{"op":"subscribe","topic":"a","id":1}"#).await;
    assert_eq!(next_json(&mut bob).await, json!({"id":1,"ok":true}));
    request(&mut bob, r#"{"op":"subscribe","topic":"b"}"#).await; // no id: no answer
    hub.wait_subscribers("j:b", 1);

    // Any JSON value travels as is to JSON subscribers; raw subscribers get
    // a string's contents, or other values as JSON text.
    request(&mut alice, r#"{"op":"publish","topic":"a","data":{"price":[1.5,2]},"id":"p1"}"#).await;
    assert_eq!(next_json(&mut alice).await, json!({"id":"p1","ok":true,"receivers":2}));
    assert_eq!(next_json(&mut bob).await, json!({"topic":"a","data":{"price":[1.5,2]}}));
    assert_eq!(next(&mut room).await, Message::text(r#"{"price":[1.5,2]}"#));
    request(&mut alice, r#"{"op":"publish","topic":"a","data":"héllo \"x\""}"#).await;
    assert_eq!(next_json(&mut bob).await, json!({"topic":"a","data":"héllo \"x\""}));
    assert_eq!(next(&mut room).await, Message::text("héllo \"x\""));

    // A room member's messages reach JSON subscribers wrapped; binary as
    // base64.
    room.send(Message::text("from the room")).await.unwrap();
    assert_eq!(next_json(&mut bob).await, json!({"topic":"a","data":"from the room"}));
    room.send(Message::binary(vec![0u8, 1, 255])).await.unwrap();
    assert_eq!(next_json(&mut bob).await, json!({"topic":"a","data":"AAH/","encoding":"base64"}));

    request(&mut bob, r#"{"op":"unsubscribe","topic":"a","id":2}"#).await;
    assert_eq!(next_json(&mut bob).await, json!({"id":2,"ok":true}));
    request(&mut alice, r#"{"op":"publish","topic":"a","data":1}"#).await;
    assert_eq!(next(&mut room).await, Message::text("1"));
    request(&mut alice, r#"{"op":"publish","topic":"b","data":2}"#).await;
    assert_eq!(next_json(&mut bob).await, json!({"topic":"b","data":2}), "still on b, no longer on a");
}

#[tokio::test]
async fn a_publisher_does_not_receive_its_own_message() {
    let hub = TestHub::start(1, |_| {});
    let mut ws = connect(&hub.url("/ws")).await;
    request(&mut ws, r#"{"op":"subscribe","topic":"t","id":0}"#).await;
    next_json(&mut ws).await;
    request(&mut ws, r#"{"op":"publish","topic":"t","data":"me","id":1}"#).await;
    assert_eq!(next_json(&mut ws).await, json!({"id":1,"ok":true,"receivers":0}));
    assert!(silent(&mut ws, Duration::from_millis(100)).await);
}

#[tokio::test]
async fn bad_requests_get_an_error_and_the_connection_stays_open() {
    let hub = TestHub::start(1, |c| c.max_topics_per_connection = 2);
    let mut ws = connect(&hub.url("/ws")).await;
    let cases = [
        ("not json", "invalid request"),
        (r#"{"topic":"a"}"#, "missing \"op\""),
        (r#"{"op":"subscribe"}"#, "missing \"topic\""),
        (r#"{"op":"dance","topic":"a"}"#, "unknown op"),
        (r#"{"op":"publish","topic":"a"}"#, "missing \"data\""),
        (r#"{"op":"subscribe","topic":""}"#, "empty topic name"),
        (r#"{"op":"subscribe","topic":7}"#, "invalid request"),
    ];
    for (bad, expected) in cases {
        request(&mut ws, bad).await;
        let answer = next_json(&mut ws).await;
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("{bad}: {answer}"));
        assert!(error.contains(expected), "{bad}: {error}");
    }
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert!(next_json(&mut ws).await["error"].as_str().unwrap().contains("JSON text"));
    // The id comes back with the error when it could be read.
    request(&mut ws, r#"{"op":"publish","topic":"a","id":"q"}"#).await;
    assert_eq!(next_json(&mut ws).await, json!({"id":"q","error":"missing \"data\""}));
    // The per-connection topic limit.
    for (i, topic) in ["x", "y"].iter().enumerate() {
        request(&mut ws, &format!(r#"{{"op":"subscribe","topic":"{topic}","id":{i}}}"#)).await;
        assert_eq!(next_json(&mut ws).await["ok"], true);
    }
    request(&mut ws, r#"{"op":"subscribe","topic":"x","id":9}"#).await;
    assert_eq!(next_json(&mut ws).await["ok"], true, "already subscribed: no new slot needed");
    request(&mut ws, r#"{"op":"subscribe","topic":"z"}"#).await;
    assert_eq!(next_json(&mut ws).await["error"], "at most 2 topics per connection");
    // Still open and working.
    request(&mut ws, r#"{"op":"unsubscribe","topic":"x"}"#).await;
    request(&mut ws, r#"{"op":"subscribe","topic":"z","id":"ok"}"#).await;
    assert_eq!(next_json(&mut ws).await, json!({"id":"ok","ok":true}));
    assert_eq!(hub.metric("ringcast_hub_request_errors_total", ""), 10);
}
