//! The library's subscription limits: topics per connection and topic
//! name length refuse with a typed error, the connection stays open and
//! keeps its other subscriptions, and joins past the limit are dropped
//! without harm.

mod common;

use std::time::Duration;

use common::*;
use ringcast::{Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandler, Ws};

/// Each text message is a topic to subscribe to; the answer says what
/// happened (`new`, `again`, or the error's `Debug`).
struct Subscriber;

impl ServerHandler for Subscriber {
    fn upgrade(&mut self, _request: &Request<'_>, _peer: &Peer<'_>) -> Decision<()> {
        Decision::accept(())
    }
}

impl Handler for Subscriber {
    type Data = ();

    fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
        let Message::Text(topic) = message else { return };
        let answer = match ws.subscribe(topic) {
            Ok(true) => "new".to_owned(),
            Ok(false) => "again".to_owned(),
            Err(e) => format!("{e:?} / {e}"),
        };
        let _ = ws.send_text(&answer);
    }
}

fn ask(client: &mut RawClient, topic: &str) -> String {
    client.send_raw(&masked(0x1, topic.as_bytes()));
    String::from_utf8(client.read_frame().expect("an answer").payload).unwrap()
}

#[test]
fn subscriptions_past_the_limits_are_refused_and_the_connection_stays() {
    let handle = ServerBuilder::new()
        .shards(1)
        .pin_threads(false)
        .max_subscriptions(2)
        .max_topic_len(8)
        .start("127.0.0.1:0", |_| Subscriber)
        .unwrap();
    let mut client = RawClient::open(handle.local_addr());
    assert_eq!(ask(&mut client, "a"), "new");
    assert_eq!(ask(&mut client, "a"), "again", "a topic it has does not count twice");
    assert_eq!(ask(&mut client, "12345678"), "new", "8 bytes is within the limit");
    assert_eq!(ask(&mut client, "c"), "TooManyTopics { limit: 2 } / subscribed to 2 topics already (the limit)");
    assert_eq!(ask(&mut client, "123456789"), "TopicTooLong { limit: 8 } / topic name longer than 8 bytes");
    // Still subscribed to what it had: a publish reaches it.
    assert_eq!(handle.publish("a", Message::Text("still here")), 1);
    assert_eq!(client.read_frame().unwrap().payload, b"still here");
    assert_eq!(handle.subscribers("c"), 0);
    // Another connection has limits of its own.
    let mut other = RawClient::open(handle.local_addr());
    assert_eq!(ask(&mut other, "c"), "new");
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn the_defaults_are_1024_topics_of_256_bytes() {
    let handle = ServerBuilder::new().shards(1).pin_threads(false).start("127.0.0.1:0", |_| Subscriber).unwrap();
    let mut client = RawClient::open(handle.local_addr());
    assert_eq!(ask(&mut client, &"x".repeat(256)), "new");
    assert!(ask(&mut client, &"x".repeat(257)).starts_with("TopicTooLong { limit: 256 }"));
    for i in 1..1024 {
        assert_eq!(ask(&mut client, &format!("t{i}")), "new");
    }
    assert!(ask(&mut client, "one-more").starts_with("TooManyTopics { limit: 1024 }"));
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn zero_limits_do_not_start() {
    let started = ServerBuilder::new().shards(1).max_subscriptions(0).start("127.0.0.1:0", |_| Subscriber);
    assert!(matches!(started, Err(ringcast::Error::Config(why)) if why.contains("max_subscriptions")));
}
