//! History across hubs, in NATS JetStream (a real `nats-server -js`): a
//! subscriber that drops off one hub recovers on another exactly what it
//! missed, then live messages; the history request and positions that are
//! gone, across hubs.

mod common;

use std::time::Duration;

use common::cluster::NatsCluster;
use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A hub with history in `nats`'s JetStream, 10 000 messages per topic,
/// connected.
fn hub_on(nats: &NatsCluster) -> TestHub {
    hub_with(nats, 2, |config| {
        config.history_size = Some(10_000);
        config.max_publish_rate = 0;
    })
}

/// A hub of `shards` on `nats` with these settings, connected.
fn hub_with(nats: &NatsCluster, shards: usize, tweak: impl FnOnce(&mut ringcast_hub::HubConfig)) -> TestHub {
    let url = nats.url(0);
    let hub = TestHub::start(shards, move |config| {
        config.nats = vec![url];
        tweak(config);
    });
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while hub.metric("ringcast_bridge_connected", "") != 1 {
        assert!(std::time::Instant::now() < until, "the hub reaches NATS");
        std::thread::sleep(Duration::from_millis(20));
    }
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_drops_off_hub_a_recovers_on_hub_b_exactly_what_it_missed_then_live() {
    let nats = NatsCluster::jetstream();
    let (a, b) = (hub_on(&nats), hub_on(&nats));
    let mut reader = connect(&a.url("/ws")).await;
    let joined = subscribe(&mut reader, "feed", None).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let epoch = joined["epoch"].as_str().expect("an epoch").to_owned();
    let mut publisher = connect(&b.url("/ws")).await;
    let ack = publish_acked(&mut publisher, "feed", json!("first")).await;
    let first = next_json(&mut reader).await;
    assert_eq!((&first["offset"], &first["epoch"]), (&ack["offset"], &ack["epoch"]));
    assert_eq!((first["data"].clone(), first["epoch"].clone()), (json!("first"), json!(epoch)), "{first}");
    let mut last = first["offset"].as_u64().unwrap();
    assert!(last > joined["offset"].as_u64().unwrap());
    drop(reader);

    for i in 0..1000 {
        request(&mut publisher, &json!({"op":"publish","topic":"feed","data":i}).to_string()).await;
    }
    publish_acked(&mut publisher, "feed", json!("sync")).await;

    // Back, on the other hub, while the publisher goes on; others listen
    // on that hub, so its live delivery of the topic is running.
    let mut other = connect(&b.url("/ws")).await;
    subscribe(&mut other, "feed", None).await;
    let mut reader = connect(&b.url("/ws")).await;
    let publishing = tokio::spawn(async move {
        for i in 0..300 {
            request(&mut publisher, &json!({"op":"publish","topic":"feed","data":format!("live {i}")}).to_string())
                .await;
        }
        publisher
    });
    let answer = subscribe(&mut reader, "feed", Some(&json!({"offset":last,"epoch":epoch}))).await;
    assert_eq!((answer["ok"].clone(), answer["recovered"].clone()), (json!(true), json!(true)), "{answer}");
    let mut expected: Vec<Value> = (0..1000).map(|i| json!(i)).collect();
    expected.push(json!("sync"));
    expected.extend((0..300).map(|i| json!(format!("live {i}"))));
    for (n, data) in expected.iter().enumerate() {
        let message = next_json(&mut reader).await;
        assert_eq!(&message["data"], data, "message {n}: {message}");
        let offset = message["offset"].as_u64().unwrap();
        assert!(offset > last, "offsets increase: {offset} after {last}");
        assert_eq!(message["epoch"], json!(epoch));
        last = offset;
    }
    let mut publisher = publishing.await.unwrap();
    publish_acked(&mut publisher, "feed", json!("after")).await;
    assert_eq!(next_json(&mut reader).await["data"], "after");
    assert!(silent(&mut reader, Duration::from_millis(200)).await, "nothing twice");
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_lost_positions_across_hubs() {
    let nats = NatsCluster::jetstream();
    let (a, b) = (hub_on(&nats), hub_on(&nats));
    let mut publisher = connect(&a.url("/ws")).await;
    for i in 1..=5 {
        publish_acked(&mut publisher, "h", json!(i)).await;
    }
    let mut reader = connect(&b.url("/ws")).await;
    request(&mut reader, r#"{"op":"history","topic":"h","limit":3,"id":"h"}"#).await;
    let answer = next_json(&mut reader).await;
    let messages = answer["messages"].as_array().unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(messages.iter().map(|m| m["data"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 4, 5]);
    let epoch = answer["epoch"].clone();
    assert_eq!(messages[2]["offset"], answer["offset"]);
    // Another epoch, or a position that is not a message of the topic:
    // nothing recovered, live delivery starts.
    let lost = subscribe(&mut reader, "h", Some(&json!({"offset":messages[0]["offset"],"epoch":"other"}))).await;
    assert_eq!(lost["recovered"], false, "{lost}");
    publish_acked(&mut publisher, "h", json!(6)).await;
    assert_eq!(next_json(&mut reader).await["data"], 6);
    // From the second-to-last kept: the rest.
    let mut again = connect(&a.url("/ws")).await;
    let since = json!({"offset":messages[1]["offset"],"epoch":epoch});
    assert_eq!(subscribe(&mut again, "h", Some(&since)).await["recovered"], true);
    assert_eq!(next_json(&mut again).await["data"], 5);
    assert_eq!(next_json(&mut again).await["data"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_recovers_across_hubs_with_since() {
    let nats = NatsCluster::jetstream();
    let (a, b) = (hub_on(&nats), hub_on(&nats));
    let mut publisher = connect(&a.url("/ws")).await;
    let mut acks = Vec::new();
    for i in 1..=4 {
        acks.push(publish_acked(&mut publisher, "room", json!(format!("m{i}"))).await);
    }
    let (since, epoch) = (acks[1]["offset"].as_u64().unwrap(), acks[1]["epoch"].as_str().unwrap().to_owned());
    let mut room = connect(&b.url(&format!("/topics/room?since={since}&epoch={epoch}"))).await;
    assert_eq!(next(&mut room).await, Message::text("m3"));
    assert_eq!(next(&mut room).await, Message::text("m4"));
    publish_acked(&mut publisher, "room", json!("live")).await;
    assert_eq!(next(&mut room).await, Message::text("live"));
    // A room's own messages reach the others through the stream, not
    // itself.
    let mut peer = connect(&a.url("/topics/room")).await;
    a.wait_subscribers("r:room", 1);
    room.send(Message::text("from b")).await.unwrap();
    assert_eq!(next(&mut peer).await, Message::text("from b"));
    assert!(silent(&mut room, Duration::from_millis(200)).await, "not to itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_of_100_000_from_the_stream_to_a_slow_reader_is_paced_inside_the_budget() {
    let nats = NatsCluster::jetstream_alone();
    let hub = hub_with(&nats, 2, |config| {
        config.history_size = Some(200_000);
        config.history_memory = 256 << 20;
        config.max_publish_rate = 0;
    });
    let mut publisher = connect(&hub.url("/ws")).await;
    let first = publish_acked(&mut publisher, "bulk", json!(0)).await;
    for i in 1..99_999 {
        request(&mut publisher, &json!({"op":"publish","topic":"bulk","data":i}).to_string()).await;
    }
    // The stream stores the bulk at the machine's pace: wait on it.
    let stored = || hub.metric("ringcast_bridge_published_total", "");
    publish_acked_after_bulk(&mut publisher, "bulk", json!(99_999), stored).await;
    let (offset, epoch) = (first["offset"].as_u64().unwrap(), first["epoch"].as_str().unwrap().to_owned());
    let addr = hub.addr();
    tokio::task::spawn_blocking(move || {
        let mut reader = Stalled::join(addr, "/ws");
        let since = format!(r#"{{"offset":{offset},"epoch":"{epoch}"}}"#);
        reader.send_text(&format!(r#"{{"op":"subscribe","topic":"bulk","since":{since}}}"#));
        let answer = reader.read_frame().expect("the answer");
        assert!(String::from_utf8_lossy(&answer.payload).contains("\"recovered\":true"));
        let mut last = offset;
        for data in 1..100_000u64 {
            let frame = reader.read_frame().unwrap_or_else(|| panic!("closed at {data}"));
            assert_eq!(frame.opcode, 1, "at {data}: {:?}", String::from_utf8_lossy(&frame.payload));
            let message: Value = serde_json::from_slice(&frame.payload).unwrap();
            assert_eq!(message["data"].as_u64(), Some(data));
            let at = message["offset"].as_u64().unwrap();
            assert!(at > last);
            last = at;
            if data % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(hub.metric("ringcast_closes_total", "1008"), 0, "nobody was closed as a slow consumer");
}

/// Asks `presence` until it answers `expected` (counts across hubs are
/// about a second stale), within 10 s.
async fn presence_reaches(ws: &mut Client, topic: &str, expected: u64) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        request(ws, &json!({"op":"presence","topic":topic,"id":"n"}).to_string()).await;
        let answer = next_json(ws).await;
        if answer["subscribers"] == expected {
            return;
        }
        assert!(std::time::Instant::now() < until, "presence stays at {answer}, expected {expected}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_every_hub_and_forgets_a_dead_one() {
    let nats = NatsCluster::jetstream();
    let (a, b) = (hub_on(&nats), hub_on(&nats));
    let mut asker = connect(&b.url("/ws")).await;
    let mut on_a = Vec::new();
    for _ in 0..2 {
        let mut ws = connect(&a.url("/ws")).await;
        subscribe(&mut ws, "p", None).await;
        on_a.push(ws);
    }
    let _room = connect(&b.url("/topics/p")).await;
    presence_reaches(&mut asker, "p", 3).await;
    on_a.pop();
    presence_reaches(&mut asker, "p", 2).await;
    // A hub killed outright stops counting within seconds.
    let dead = common::cluster::HubProcess::start(&["--nats", &nats.url(0), "--history-size", "10"]);
    let mut ws = connect(&dead.url("/ws")).await;
    subscribe(&mut ws, "p", None).await;
    presence_reaches(&mut asker, "p", 3).await;
    drop(dead); // SIGKILL
    presence_reaches(&mut asker, "p", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_count_against_the_publish_rate_when_history_is_in_jetstream() {
    let nats = NatsCluster::jetstream();
    let hub = hub_with(&nats, 1, |config| {
        config.history_size = Some(10);
        config.max_publish_rate = 5;
    });
    let mut ws = connect(&hub.url("/ws")).await;
    let mut refused = 0;
    for i in 0..20 {
        let answer = subscribe(&mut ws, &format!("empty-{i}"), None).await;
        if answer["error"].as_str().is_some_and(|e| e.contains("per second")) {
            refused += 1;
        } else {
            assert_eq!(answer["ok"], true, "{answer}");
        }
    }
    assert!(refused >= 10, "{refused} of 20 refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_count_bound_keeps_the_latest_per_topic_and_older_positions_are_lost() {
    let nats = NatsCluster::jetstream();
    let hub = hub_with(&nats, 2, |config| {
        config.history_size = Some(10);
        config.max_publish_rate = 0;
    });
    let mut publisher = connect(&hub.url("/ws")).await;
    let mut acks = Vec::new();
    for i in 1..=20 {
        acks.push(publish_acked(&mut publisher, "t", json!(i)).await);
    }
    // Another topic in between does not count against t's ten.
    publish_acked(&mut publisher, "other", json!("x")).await;
    let at = |n: usize| json!({"offset":acks[n - 1]["offset"],"epoch":acks[n - 1]["epoch"]});
    let mut reader = connect(&hub.url("/ws")).await;
    assert_eq!(subscribe(&mut reader, "t", Some(&at(9))).await["recovered"], false, "10 is gone");
    let mut reader = connect(&hub.url("/ws")).await;
    assert_eq!(subscribe(&mut reader, "t", Some(&at(11))).await["recovered"], true);
    for i in 12..=20 {
        assert_eq!(next_json(&mut reader).await["data"], i);
    }
}
