//! History and recovery on one hub (the embedded store): offsets and
//! epochs on deliveries, a subscriber that comes back gets exactly what it
//! missed and then live messages, limits by count, age and memory, the
//! `history` and `presence` requests, rooms with `?since=`, and a paced
//! replay to a slow reader.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn with_history(size: u32) -> impl FnOnce(&mut ringcast_hub::HubConfig) {
    move |config| {
        config.history_size = Some(size);
        config.max_publish_rate = 0;
    }
}

#[tokio::test]
async fn a_subscriber_that_comes_back_gets_the_1000_it_missed_in_order_then_live_with_no_gap() {
    let hub = TestHub::start(2, with_history(10_000));
    let mut publisher = connect(&hub.url("/ws")).await;
    let mut reader = connect(&hub.url("/ws")).await;
    let joined = subscribe(&mut reader, "feed", None).await;
    assert_eq!((joined["ok"].clone(), joined["offset"].clone()), (json!(true), json!(0)), "{joined}");
    let epoch = joined["epoch"].as_str().expect("an epoch").to_owned();
    let ack = publish_acked(&mut publisher, "feed", json!("first")).await;
    assert_eq!(
        (ack["offset"].clone(), ack["epoch"].clone(), ack["receivers"].clone()),
        (json!(1), json!(epoch), json!(1))
    );
    let first = next_json(&mut reader).await;
    assert_eq!(first, json!({"topic":"feed","data":"first","offset":1,"epoch":epoch}));
    drop(reader);
    hub.wait_subscribers("j:feed", 0);

    for i in 0..1000 {
        request(&mut publisher, &json!({"op":"publish","topic":"feed","data":i}).to_string()).await;
    }
    publish_acked(&mut publisher, "feed", json!("sync")).await;

    // It comes back while the publisher goes on: the recovered messages,
    // then the live ones, one after the other. Others subscribe on both
    // shards, so live messages are on their way through its shard's
    // mailbox while it catches up.
    let mut others = Vec::new();
    for _ in 0..4 {
        let mut other = connect(&hub.url("/ws")).await;
        subscribe(&mut other, "feed", None).await;
        others.push(other);
    }
    let mut reader = connect(&hub.url("/ws")).await;
    let publishing = tokio::spawn(async move {
        for i in 0..500 {
            request(&mut publisher, &json!({"op":"publish","topic":"feed","data":format!("live {i}")}).to_string())
                .await;
        }
        publisher
    });
    let answer = subscribe(&mut reader, "feed", Some(&json!({"offset":1,"epoch":epoch}))).await;
    assert_eq!((answer["ok"].clone(), answer["recovered"].clone()), (json!(true), json!(true)), "{answer}");
    assert!(answer["offset"].as_u64().unwrap() >= 1002, "{answer}");
    for i in 0..1000 {
        let message = next_json(&mut reader).await;
        assert_eq!(message, json!({"topic":"feed","data":i,"offset":i + 2,"epoch":epoch}));
    }
    assert_eq!(next_json(&mut reader).await["data"], "sync");
    for i in 0..500 {
        let message = next_json(&mut reader).await;
        assert_eq!((message["data"].clone(), message["offset"].clone()), (json!(format!("live {i}")), json!(1003 + i)));
    }
    let mut publisher = publishing.await.unwrap();
    publish_acked(&mut publisher, "feed", json!("after")).await;
    assert_eq!(next_json(&mut reader).await["offset"], 1503);
    assert!(silent(&mut reader, Duration::from_millis(100)).await, "nothing twice");
}

#[tokio::test]
async fn every_subscriber_sees_one_order_when_publishers_on_both_shards_race() {
    let hub = TestHub::start(2, with_history(100));
    let mut readers = Vec::new();
    for _ in 0..6 {
        let mut reader = connect(&hub.url("/ws")).await;
        subscribe(&mut reader, "race", None).await;
        readers.push(reader);
    }
    let mut publishers = Vec::new();
    for p in 0..4 {
        let mut publisher = connect(&hub.url("/ws")).await;
        publishers.push(tokio::spawn(async move {
            for i in 0..200 {
                request(&mut publisher, &json!({"op":"publish","topic":"race","data":[p, i]}).to_string()).await;
            }
            publish_acked(&mut publisher, "race", json!("done")).await;
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let mut orders = Vec::new();
    for reader in &mut readers {
        let mut seen = Vec::new();
        for expected in 1..=804u64 {
            let message = next_json(reader).await;
            assert_eq!(message["offset"], expected, "offsets come in order, none missing");
            seen.push(message["data"].clone());
        }
        orders.push(seen);
    }
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "every reader saw the same order");
}

#[tokio::test]
async fn a_restarted_hub_has_a_new_epoch_and_says_nothing_was_recovered() {
    let hub = TestHub::start(1, with_history(100));
    let mut publisher = connect(&hub.url("/ws")).await;
    let ack = publish_acked(&mut publisher, "t", json!(1)).await;
    let old = json!({"offset":ack["offset"],"epoch":ack["epoch"]});
    drop(publisher);
    drop(hub);
    let hub = TestHub::start(1, with_history(100));
    let mut reader = connect(&hub.url("/ws")).await;
    let answer = subscribe(&mut reader, "t", Some(&old)).await;
    assert_eq!(answer["recovered"], false, "{answer}");
    assert_ne!(answer["epoch"], old["epoch"]);
    assert_eq!(answer["offset"], 0);
    // Live delivery starts at once.
    let mut publisher = connect(&hub.url("/ws")).await;
    publish_acked(&mut publisher, "t", json!("new")).await;
    assert_eq!(next_json(&mut reader).await["data"], "new");
}

#[tokio::test]
async fn the_count_bound_keeps_the_latest_and_older_positions_are_lost() {
    let hub = TestHub::start(2, with_history(10));
    let mut publisher = connect(&hub.url("/ws")).await;
    let mut epoch = Value::Null;
    for i in 1..=20 {
        epoch = publish_acked(&mut publisher, "t", json!(i)).await["epoch"].clone();
    }
    let mut reader = connect(&hub.url("/ws")).await;
    let lost = subscribe(&mut reader, "t", Some(&json!({"offset":9,"epoch":epoch}))).await;
    assert_eq!((lost["recovered"].clone(), lost["offset"].clone()), (json!(false), json!(20)), "10 is gone");
    let mut reader = connect(&hub.url("/ws")).await;
    let kept = subscribe(&mut reader, "t", Some(&json!({"offset":10,"epoch":epoch}))).await;
    assert_eq!(kept["recovered"], true, "{kept}");
    for i in 11..=20 {
        assert_eq!(next_json(&mut reader).await["data"], i);
    }
    // Another epoch, or an offset the topic never reached: lost.
    for since in [json!({"offset":10,"epoch":"nope"}), json!({"offset":21,"epoch":epoch})] {
        let mut other = connect(&hub.url("/ws")).await;
        assert_eq!(subscribe(&mut other, "t", Some(&since)).await["recovered"], false, "{since}");
    }
    // The history request: the latest K, oldest first, as delivered.
    request(&mut reader, r#"{"op":"history","topic":"t","limit":3,"id":"h"}"#).await;
    let answer = next_json(&mut reader).await;
    assert_eq!(answer["offset"], 20);
    let messages = answer["messages"].as_array().unwrap();
    assert_eq!(messages.iter().map(|m| m["data"].as_u64().unwrap()).collect::<Vec<_>>(), vec![18, 19, 20]);
    assert_eq!(messages[0], json!({"topic":"t","data":18,"offset":18,"epoch":epoch}));
    request(&mut reader, r#"{"op":"history","topic":"t","id":"all"}"#).await;
    assert_eq!(next_json(&mut reader).await["messages"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn the_age_bound_drops_old_messages_and_a_reader_before_them_is_told() {
    let hub = TestHub::start(1, |config| {
        config.history_ttl = Some(Duration::from_millis(1000));
        config.max_publish_rate = 0;
    });
    let mut publisher = connect(&hub.url("/ws")).await;
    let mut epoch = Value::Null;
    for i in 1..=5 {
        epoch = publish_acked(&mut publisher, "t", json!(i)).await["epoch"].clone();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    publish_acked(&mut publisher, "t", json!(6)).await;
    let mut reader = connect(&hub.url("/ws")).await;
    assert_eq!(subscribe(&mut reader, "t", Some(&json!({"offset":2,"epoch":epoch}))).await["recovered"], false);
    let mut reader = connect(&hub.url("/ws")).await;
    let answer = subscribe(&mut reader, "t", Some(&json!({"offset":5,"epoch":epoch}))).await;
    assert_eq!(answer["recovered"], true, "{answer}");
    assert_eq!(next_json(&mut reader).await["data"], 6);
}

#[tokio::test]
async fn the_memory_bound_holds_and_drops_the_oldest_messages() {
    let hub = TestHub::start(2, |config| {
        config.history_size = Some(1_000_000);
        config.history_memory = 256 << 10;
        config.max_publish_rate = 0;
    });
    let mut publisher = connect(&hub.url("/ws")).await;
    let mut epoch = Value::Null;
    let big = "x".repeat(1000);
    for _ in 0..1000 {
        epoch = publish_acked(&mut publisher, "t", json!(big)).await["epoch"].clone();
    }
    let held = hub.metric("ringcast_hub_history_bytes", "");
    let kept = hub.metric("ringcast_hub_history_messages", "");
    assert!(held <= 256 << 10 && held > 200 << 10, "{held} bytes held");
    assert!((90..130).contains(&kept), "{kept} messages of about 2 KiB each kept");
    let mut reader = connect(&hub.url("/ws")).await;
    assert_eq!(subscribe(&mut reader, "t", Some(&json!({"offset":0,"epoch":epoch}))).await["recovered"], false);
    let mut reader = connect(&hub.url("/ws")).await;
    let since = json!({"offset":1000 - kept + 1,"epoch":epoch});
    assert_eq!(subscribe(&mut reader, "t", Some(&since)).await["recovered"], true);
    assert_eq!(next_json(&mut reader).await["offset"], 1000 - kept + 2);
}

#[tokio::test]
async fn presence_counts_both_forms_and_history_off_says_so() {
    let hub = TestHub::start(2, |config| config.max_publish_rate = 0);
    let mut asker = connect(&hub.url("/ws")).await;
    let _room = connect(&hub.url("/topics/p")).await;
    let mut member = connect(&hub.url("/ws")).await;
    // Without history: no offsets, nothing recovered, no history.
    let answer = subscribe(&mut member, "p", Some(&json!({"offset":1,"epoch":"e"}))).await;
    assert_eq!(answer, json!({"id":0,"ok":true,"recovered":false}));
    hub.wait_subscribers("r:p", 1);
    request(&mut asker, r#"{"op":"presence","topic":"p","id":3}"#).await;
    assert_eq!(next_json(&mut asker).await, json!({"id":3,"ok":true,"subscribers":2}));
    request(&mut asker, r#"{"op":"history","topic":"p","id":4}"#).await;
    assert!(next_json(&mut asker).await["error"].as_str().unwrap().contains("no history"));
    request(&mut asker, r#"{"op":"publish","topic":"p","data":"x"}"#).await;
    assert_eq!(next_json(&mut member).await, json!({"topic":"p","data":"x"}));
}

#[tokio::test]
async fn a_room_comes_back_with_since_and_gets_the_raw_messages_it_missed_first() {
    let hub = TestHub::start(2, with_history(100));
    let head = upgrade_status(hub.addr(), &upgrade("/topics/r", ""));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let epoch = header(&head, "ringcast-epoch").expect("the epoch header");
    assert_eq!(header(&head, "ringcast-offset").as_deref(), Some("0"));
    let mut publisher = connect(&hub.url("/ws")).await;
    for i in 1..=5 {
        publish_acked(&mut publisher, "r", json!(format!("m{i}"))).await;
    }
    publish(hub.addr(), "r", "application/octet-stream", &[1, 2, 3]);
    let url = hub.url(&format!("/topics/r?since=2&epoch={epoch}"));
    let (mut room, response) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    assert_eq!(response.headers()["ringcast-recovered"], "true");
    assert_eq!(response.headers()["ringcast-offset"], "6");
    publish_acked(&mut publisher, "r", json!("live")).await;
    for i in 3..=5 {
        assert_eq!(next(&mut room).await, Message::text(format!("m{i}")));
    }
    assert_eq!(next(&mut room).await, Message::binary(vec![1u8, 2, 3]), "binary stays binary");
    assert_eq!(next(&mut room).await, Message::text("live"));
    // A position that is gone: live only, and the header says so.
    let url = hub.url("/topics/r?since=2&epoch=other");
    let (mut late, response) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    assert_eq!(response.headers()["ringcast-recovered"], "false");
    hub.wait_subscribers("r:r", 2);
    room.send(Message::text("from the room")).await.unwrap();
    assert_eq!(next(&mut late).await, Message::text("from the room"));
    let status = upgrade_status(hub.addr(), &upgrade("/topics/r?since=x&epoch=e", ""));
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_of_100_000_messages_to_a_slow_reader_is_paced_inside_the_budget() {
    // The close policy and a 1 MiB budget: a replay queued whole (about 7
    // MB) would close the reader with 1008.
    let hub = TestHub::start(2, |config| {
        config.history_size = Some(200_000);
        config.history_memory = 256 << 20;
        config.max_publish_rate = 0;
    });
    let mut publisher = connect(&hub.url("/ws")).await;
    for i in 0..99_999 {
        request(&mut publisher, &json!({"op":"publish","topic":"bulk","data":i}).to_string()).await;
    }
    let epoch = publish_acked(&mut publisher, "bulk", json!(99_999)).await["epoch"].as_str().unwrap().to_owned();
    let addr = hub.addr();
    tokio::task::spawn_blocking(move || {
        let mut reader = Stalled::join(addr, "/ws");
        reader.send_text(&format!(r#"{{"op":"subscribe","topic":"bulk","since":{{"offset":0,"epoch":"{epoch}"}}}}"#));
        let answer = reader.read_frame().expect("the answer");
        assert!(String::from_utf8_lossy(&answer.payload).contains("\"recovered\":true"));
        // Read slowly: a pause every 1 000 messages.
        for offset in 1..=100_000u64 {
            let frame = reader.read_frame().unwrap_or_else(|| panic!("closed at offset {offset}"));
            assert_eq!(frame.opcode, 1, "at {offset}: {:?}", String::from_utf8_lossy(&frame.payload));
            let message: Value = serde_json::from_slice(&frame.payload).unwrap();
            assert_eq!((message["offset"].as_u64(), message["data"].as_u64()), (Some(offset), Some(offset - 1)));
            if offset % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(hub.metric("ringcast_closes_total", "1008"), 0, "nobody was closed as a slow consumer");
}
