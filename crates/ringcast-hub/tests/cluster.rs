//! Hubs joined by a real NATS cluster (`nats-server` processes with routes
//! on loopback) and real hub processes: every message once, in order per
//! publisher, text and binary kept; a NATS node killed and restarted while
//! traffic flows; NATS absent at start; a hub killed; another program
//! publishing through NATS, malformed payloads included.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use common::cluster::{free_port, HubProcess, NatsCluster};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const TOPIC: &str = "feed";

/// A subscriber of `feed`: a room (`/topics/feed`) or a `/ws` client.
struct Subscriber {
    ws: Client,
    json: bool,
}

impl Subscriber {
    async fn room(hub: &HubProcess) -> Subscriber {
        Subscriber { ws: connect(&hub.url(&format!("/topics/{TOPIC}"))).await, json: false }
    }

    async fn json(hub: &HubProcess) -> Subscriber {
        let mut ws = connect(&hub.url("/ws")).await;
        request(&mut ws, &format!(r#"{{"op":"subscribe","topic":"{TOPIC}","id":1}}"#)).await;
        assert_eq!(next_json(&mut ws).await["ok"], true);
        Subscriber { ws, json: true }
    }

    /// The next message as (publisher, number), or `("warm", hub)` for a
    /// warm-up message; checks that each publisher's kind came through.
    async fn next(&mut self, wait: Duration) -> Option<(String, u64)> {
        let message = loop {
            match tokio::time::timeout(wait, self.ws.next()).await.ok()?? {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(message) => break message,
                Err(e) => panic!("subscriber: {e}"),
            }
        };
        Some(if self.json { parse_json(message) } else { parse_room(message) })
    }
}

/// Room deliveries: `A:i` binary, `{"p":"B","i":i}` text, `C:i` text,
/// `warm:X` text.
fn parse_room(message: Message) -> (String, u64) {
    match message {
        Message::Binary(bytes) => {
            let text = std::str::from_utf8(&bytes).unwrap();
            let i = text.strip_prefix("A:").unwrap_or_else(|| panic!("binary {text:?}"));
            ("A".into(), i.parse().unwrap())
        }
        Message::Text(text) => parse_text(&text),
        other => panic!("unexpected {other:?}"),
    }
}

fn parse_text(text: &str) -> (String, u64) {
    if let Some(hub) = text.strip_prefix("warm:") {
        return ("warm".into(), hub.parse().unwrap());
    }
    if let Some(i) = text.strip_prefix("C:") {
        return ("C".into(), i.parse().unwrap());
    }
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(value["p"], "B", "{text}");
    ("B".into(), value["i"].as_u64().unwrap())
}

/// `/ws` deliveries: A's binary arrives base64, B's data as its JSON
/// object, C's and warm-ups as strings.
fn parse_json(message: Message) -> (String, u64) {
    let Message::Text(text) = message else { panic!("/ws got {message:?}") };
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["topic"], TOPIC);
    let data = &value["data"];
    if value["encoding"] == "base64" {
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap()).unwrap();
        return parse_room(Message::Binary(bytes.into()));
    }
    match data {
        serde_json::Value::String(s) => parse_text(s),
        other => parse_text(&other.to_string()),
    }
}

/// HTTP publishes `warm:{i}` on every hub until every subscriber has heard
/// from every hub: the NATS subscriptions have reached the whole cluster.
async fn warm_up(hubs: &[&HubProcess], subscribers: &mut [Subscriber]) {
    let until = Instant::now() + Duration::from_secs(30);
    let mut heard: Vec<Vec<bool>> = vec![vec![false; hubs.len()]; subscribers.len()];
    while heard.iter().any(|h| h.contains(&false)) {
        assert!(Instant::now() < until, "the cluster never carried every hub's messages: {heard:?}");
        for (i, hub) in hubs.iter().enumerate() {
            publish(hub.addr, TOPIC, "text/plain", format!("warm:{i}").as_bytes());
        }
        for (s, subscriber) in subscribers.iter_mut().enumerate() {
            while let Some((from, hub)) = subscriber.next(Duration::from_millis(100)).await {
                assert_eq!(from, "warm", "a message before the traffic started");
                heard[s][hub as usize] = true;
            }
        }
    }
}

/// Reads until `expected` messages per publisher arrived (warm-ups
/// skipped), checking every publisher's numbers come 0, 1, 2… with no gap
/// and no repeat; then that nothing more comes.
async fn expect_all(subscriber: &mut Subscriber, expected: &HashMap<&str, u64>, label: &str) {
    let mut next_of: HashMap<String, u64> = HashMap::new();
    let total: u64 = expected.values().sum();
    let mut got = 0;
    while got < total {
        let (from, i) = subscriber
            .next(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{label}: stalled after {got} of {total}: {next_of:?}"));
        if from == "warm" {
            continue;
        }
        let want = next_of.entry(from.clone()).or_default();
        assert_eq!(i, *want, "{label}: from {from}, {i} arrived when {want} was due (a gap, a repeat or disorder)");
        *want += 1;
        got += 1;
    }
    for (from, n) in expected {
        assert_eq!(next_of.get(*from).copied().unwrap_or(0), *n, "{label}: from {from}");
    }
    while let Some((from, i)) = subscriber.next(Duration::from_millis(300)).await {
        assert_eq!(from, "warm", "{label}: {from}:{i} arrived twice");
    }
}

async fn wait_connected(hubs: &[&HubProcess]) {
    for hub in hubs {
        hub.wait_metric("ringcast_bridge_connected", 1);
    }
}

#[tokio::test]
async fn three_hubs_on_three_nats_nodes_deliver_every_message_once_and_in_order() {
    let cluster = NatsCluster::start(3);
    let a = HubProcess::start(&["--nats", &cluster.url(0)]);
    let b = HubProcess::start(&["--nats", &cluster.url(1)]);
    let mut c = HubProcess::start(&["--nats", &cluster.url(2)]);
    wait_connected(&[&a, &b, &c]).await;
    let mut subscribers = Vec::new();
    for hub in [&a, &b, &c] {
        subscribers.push(Subscriber::room(hub).await);
        subscribers.push(Subscriber::room(hub).await);
        subscribers.push(Subscriber::json(hub).await);
    }
    // Publishers: a room connection on A (binary), a /ws client on B (JSON
    // values), HTTP on C (text). The room publisher is a subscriber too.
    let mut room_publisher = connect(&a.url(&format!("/topics/{TOPIC}"))).await;
    let mut json_publisher = connect(&b.url("/ws")).await;
    warm_up(&[&a, &b, &c], &mut subscribers).await;
    for hub in [&a, &b, &c] {
        assert_eq!(hub.metric("ringcast_bridge_subjects"), 1, "one subject per topic with local subscribers");
    }

    const N: u64 = 300;
    let c_addr = c.addr;
    let http = tokio::task::spawn_blocking(move || {
        for i in 0..N {
            publish(c_addr, TOPIC, "text/plain", format!("C:{i}").as_bytes());
        }
    });
    for i in 0..N {
        room_publisher.send(Message::binary(format!("A:{i}").into_bytes())).await.unwrap();
        let data = format!(r#"{{"op":"publish","topic":"{TOPIC}","data":{{"p":"B","i":{i}}}}}"#);
        json_publisher.send(Message::text(data)).await.unwrap();
    }
    http.await.unwrap();
    let expected: HashMap<&str, u64> = [("A", N), ("B", N), ("C", N)].into();
    for (s, subscriber) in subscribers.iter_mut().enumerate() {
        expect_all(subscriber, &expected, &format!("subscriber {s} on hub {}", ["A", "B", "C"][s / 3])).await;
    }
    for hub in [&a, &b] {
        assert_eq!(hub.metric("ringcast_bridge_lost_total"), 0);
        assert_eq!(hub.metric("ringcast_bridge_dropped_in_total"), 0);
    }

    // A hub dies without a word: the others carry on.
    c.kill();
    subscribers.truncate(6);
    for i in N..N + 50 {
        room_publisher.send(Message::binary(format!("A:{i}").into_bytes())).await.unwrap();
    }
    for (s, subscriber) in subscribers.iter_mut().enumerate() {
        let mut next = N;
        while next < N + 50 {
            let (from, i) = subscriber.next(Duration::from_secs(20)).await.expect("delivery after a hub died");
            if from == "warm" {
                continue;
            }
            assert_eq!((from.as_str(), i), ("A", next), "subscriber {s}");
            next += 1;
        }
    }
    drop(room_publisher);
}

#[tokio::test]
async fn a_nats_node_killed_and_restarted_mid_traffic_never_duplicates_and_counts_losses() {
    let mut cluster = NatsCluster::start(3);
    // 1 000 publishes per second from one room: the default limit exactly.
    let a = HubProcess::start(&["--nats", &cluster.url(0), "--max-publish-rate", "0"]);
    let b = HubProcess::start(&["--nats", &cluster.url(1)]);
    wait_connected(&[&a, &b]).await;
    // A subscriber on A too: A's subscription must come back with A's
    // reconnection to another node.
    let mut subscribers = vec![Subscriber::room(&b).await, Subscriber::room(&a).await];
    warm_up(&[&a, &b], &mut subscribers).await;
    let mut on_a = subscribers.pop().unwrap();
    let mut subscriber = subscribers.pop().unwrap();
    // The warm-up's publishes are counted too: start from what they left.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (published_before, lost_before) =
        (a.metric("ringcast_bridge_published_total"), a.metric("ringcast_bridge_lost_total"));

    // 3 000 messages over about 3 s from a room on A; A's NATS node dies
    // after 0.7 s and comes back 1 s later.
    const N: u64 = 3000;
    let mut publisher = connect(&a.url(&format!("/topics/{TOPIC}"))).await;
    let sending = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for i in 0..N {
            publisher.send(Message::binary(format!("A:{i}").into_bytes())).await.unwrap();
            tokio::time::sleep_until(start + Duration::from_millis(i)).await;
        }
        publisher
    });
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        while let Some((from, i)) = subscriber.next(Duration::from_secs(3)).await {
            if from != "warm" {
                received.push(i);
            }
        }
        received
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill_node(0);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.start_node(0);
    let _publisher = sending.await.unwrap();
    let received = reader.await.unwrap();

    assert!(received.windows(2).all(|w| w[0] < w[1]), "a repeat or disorder");
    let lost = a.metric("ringcast_bridge_lost_total") - lost_before;
    let published = a.metric("ringcast_bridge_published_total") - published_before;
    eprintln!(
        "sent {N}, handed to NATS {published}, counted lost {lost}, received {}, last {:?}",
        received.len(),
        received.last()
    );
    assert_eq!(published + lost, N, "every publish is either handed to NATS or counted lost");
    assert!(received.len() as u64 <= published, "more received than handed to NATS");
    assert_eq!(received.last(), Some(&(N - 1)), "delivery resumed after the outage");
    assert!(received.len() as u64 >= N / 2, "only {} of {N} arrived", received.len());
    assert!(a.metric("ringcast_bridge_connects_total") >= 2, "A reconnected");
    assert_eq!(a.metric("ringcast_bridge_connected"), 1);

    // A's interest was restored with its new connection: B's publishes
    // reach A's subscriber again (it also heard A's own room, locally).
    let mut heard_from_b = false;
    let until = Instant::now() + Duration::from_secs(20);
    while !heard_from_b {
        assert!(Instant::now() < until, "A's subscriber never heard from B after the outage");
        publish(b.addr, TOPIC, "text/plain", b"C:0");
        while let Some((from, _)) = on_a.next(Duration::from_millis(100)).await {
            heard_from_b |= from == "C";
        }
    }
}

#[tokio::test]
async fn without_nats_at_start_a_hub_serves_locally_then_joins_when_nats_appears() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let a = HubProcess::start(&["--nats", &url]);
    let b = HubProcess::start(&["--nats", &url]);
    // Subscribed while NATS is absent: the interest must reach NATS later.
    let mut on_a = Subscriber::room(&a).await;
    let mut on_b = Subscriber::room(&b).await;
    for i in 0..5 {
        publish(a.addr, TOPIC, "text/plain", format!("C:{i}").as_bytes());
    }
    for i in 0..5 {
        assert_eq!(on_a.next(Duration::from_secs(5)).await, Some(("C".into(), i)), "local delivery goes on");
    }
    assert_eq!(a.metric("ringcast_bridge_connected"), 0);
    assert_eq!(a.metric("ringcast_bridge_lost_total"), 5, "each publish that could not reach NATS is counted");
    assert!(on_b.next(Duration::from_millis(200)).await.is_none());

    let _nats = NatsCluster::on_port(port);
    wait_connected(&[&a, &b]).await;
    let mut both = vec![on_a, on_b];
    warm_up(&[&a, &b], &mut both).await;
    // Interest follows the subscribers: B's last one leaves, B unsubscribes.
    assert_eq!(b.metric("ringcast_bridge_subjects"), 1);
    drop(both.pop());
    b.wait_metric("ringcast_bridge_subjects", 0);
}

#[tokio::test]
async fn other_programs_publish_through_nats_and_malformed_payloads_are_dropped() {
    let nats = NatsCluster::start(1);
    let hub = HubProcess::start(&["--nats", &nats.url(0)]);
    wait_connected(&[&hub]).await;
    let mut room = connect(&hub.url("/topics/ext.feed")).await;
    let mut control = connect(&hub.url("/ws")).await;
    request(&mut control, r#"{"op":"subscribe","topic":"ext.feed","id":1}"#).await;
    assert_eq!(next_json(&mut control).await["ok"], true);
    hub.wait_metric("ringcast_bridge_subjects", 1);

    // A program that is not a hub, with the NATS client the hub uses.
    let client = async_nats::connect(nats.url(0)).await.expect("NATS");
    let subject = "ringcast.topic.ext~2Efeed";
    let with_kind = |kind: &str| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Rc-Kind", kind);
        headers
    };
    // Malformed first: text that is not UTF-8, JSON that does not parse.
    client.publish_with_headers(subject, with_kind("text"), vec![0xff, 0xfe].into()).await.unwrap();
    client.publish_with_headers(subject, with_kind("json"), "{oops".into()).await.unwrap();
    // Then good ones: unlabelled text, unlabelled bytes, a JSON value.
    client.publish(subject, "plain words".into()).await.unwrap();
    client.publish(subject, vec![0u8, 0xff, 7].into()).await.unwrap();
    client.publish_with_headers(subject, with_kind("json"), r#"{"n":[1,2]}"#.into()).await.unwrap();
    client.flush().await.unwrap();

    assert_eq!(next(&mut room).await, Message::text("plain words"));
    assert_eq!(next(&mut room).await, Message::binary(vec![0u8, 0xff, 7]));
    assert_eq!(next(&mut room).await, Message::text(r#"{"n":[1,2]}"#));
    assert_eq!(next_json(&mut control).await["data"], "plain words");
    let binary = next_json(&mut control).await;
    assert_eq!((binary["data"].as_str(), binary["encoding"].as_str()), (Some("AP8H"), Some("base64")));
    assert_eq!(next_json(&mut control).await["data"], serde_json::json!({"n": [1, 2]}));
    assert!(silent(&mut room, Duration::from_millis(300)).await, "a malformed payload was delivered");
    assert_eq!(hub.metric("ringcast_bridge_dropped_in_total"), 2);
    assert_eq!(hub.metric("ringcast_bridge_received_total"), 3);
}
