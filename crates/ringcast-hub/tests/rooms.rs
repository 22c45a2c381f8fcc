//! `/topics/{name}` rooms over two shards: exact delivery counts, per
//! publisher order, message types kept, the sender left out (unless it asks
//! for `?echo=1`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBERS: usize = 200;
const PUBLISHERS: usize = 3;
const PER_PUBLISHER: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_message_once_in_each_publishers_order() {
    let hub = TestHub::start(2, |_| {});
    let mut listeners = Vec::new();
    for _ in 0..SUBSCRIBERS {
        listeners.push(connect(&hub.url("/topics/market")).await);
    }
    let mut publishers = Vec::new();
    for _ in 0..PUBLISHERS {
        publishers.push(connect(&hub.url("/topics/market")).await);
    }
    hub.wait_subscribers("r:market", (SUBSCRIBERS + PUBLISHERS) as u64);
    let per_shard = hub.handle.shard_stats();
    assert!(per_shard.iter().all(|s| s.connections > 0), "both shards hold subscribers: {per_shard:?}");

    // The publishers send at the same time, text and binary interleaved.
    let sends = publishers.iter_mut().enumerate().map(|(p, ws)| async move {
        for seq in 0..PER_PUBLISHER {
            let message = if seq % 2 == 0 {
                Message::text(format!("{p}:{seq}"))
            } else {
                Message::binary(format!("{p}:{seq}").into_bytes())
            };
            ws.send(message).await.expect("publish");
        }
    });
    join_all(sends).await;

    let checks = listeners.iter_mut().map(|ws| async move {
        let mut next_seq: HashMap<usize, usize> = HashMap::new();
        for _ in 0..PUBLISHERS * PER_PUBLISHER {
            let (text, is_text) = match next(ws).await {
                Message::Text(t) => (t.to_string(), true),
                Message::Binary(b) => (String::from_utf8(b.to_vec()).unwrap(), false),
                other => panic!("unexpected {other:?}"),
            };
            let (p, seq) = text.split_once(':').unwrap();
            let (p, seq): (usize, usize) = (p.parse().unwrap(), seq.parse().unwrap());
            let expected = next_seq.entry(p).or_default();
            assert_eq!(seq, *expected, "publisher {p}'s messages in order");
            assert_eq!(is_text, seq % 2 == 0, "type kept");
            *expected += 1;
        }
        assert!(silent(ws, Duration::from_millis(50)).await, "nothing more");
    });
    join_all(checks).await;

    // Each publisher got the other publishers' messages, never its own.
    for (p, ws) in publishers.iter_mut().enumerate() {
        for _ in 0..(PUBLISHERS - 1) * PER_PUBLISHER {
            let message = next(ws).await;
            let text = String::from_utf8(message.into_data().to_vec()).unwrap();
            assert!(!text.starts_with(&format!("{p}:")), "publisher {p} got its own message {text}");
        }
        assert!(silent(ws, Duration::from_millis(50)).await);
    }
    let deliveries = (PUBLISHERS * PER_PUBLISHER * (SUBSCRIBERS + PUBLISHERS - 1)) as u64;
    assert_eq!(hub.metric("ringcast_hub_publishes_total", ""), (PUBLISHERS * PER_PUBLISHER) as u64);
    assert_eq!(hub.metric("ringcast_hub_publish_receivers_total", ""), deliveries);
    assert!(hub.metric("ringcast_messages_sent_total", "") >= deliveries);
}

#[tokio::test]
async fn echo_asks_for_ones_own_messages_in_room_order() {
    let hub = TestHub::start(2, |_| {});
    let mut a = connect(&hub.url("/topics/r?echo=1")).await;
    let mut b = connect(&hub.url("/topics/r")).await;
    hub.wait_subscribers("r:r", 2);
    a.send(Message::text("one")).await.unwrap();
    b.send(Message::text("two")).await.unwrap();
    assert_eq!(next(&mut a).await, Message::text("one"));
    assert_eq!(next(&mut a).await, Message::text("two"));
    assert_eq!(next(&mut b).await, Message::text("one"));
    assert!(silent(&mut b, Duration::from_millis(100)).await, "b did not ask for its own messages");
}

#[tokio::test]
async fn rooms_are_separate_and_names_are_percent_decoded() {
    let hub = TestHub::start(1, |_| {});
    let mut cafe = connect(&hub.url("/topics/caf%C3%A9")).await;
    let mut other = connect(&hub.url("/topics/cafe")).await;
    hub.wait_subscribers("r:café", 1);
    assert_eq!(publish(hub.addr(), "caf%C3%A9", "text/plain", b"hi"), 1);
    assert_eq!(next(&mut cafe).await, Message::text("hi"));
    assert!(silent(&mut other, Duration::from_millis(100)).await);
}

#[tokio::test]
async fn closing_a_connection_unsubscribes_it_and_counts_its_close_code() {
    let hub = TestHub::start(2, |_| {});
    let mut a = connect(&hub.url("/topics/x")).await;
    let b = connect(&hub.url("/topics/x")).await;
    hub.wait_subscribers("r:x", 2);
    drop(b); // no closing handshake: 1006
    a.close(None).await.unwrap(); // 1005 (no code)
    hub.wait_subscribers("r:x", 0);
    for _ in 0..100 {
        if hub.metric("ringcast_closes_total", "code=") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.metric("ringcast_closes_total", "code=\"1006\""), 1);
    assert_eq!(hub.metric("ringcast_closes_total", "code=\"1005\""), 1);
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001() {
    let hub = TestHub::start(2, |_| {});
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect(&hub.url("/topics/bye")).await);
    }
    hub.wait_subscribers("r:bye", 20);
    let handle = hub.handle.clone();
    let stop = std::thread::spawn(move || handle.shutdown(Duration::from_secs(5)));
    // Each client reads to the end (tungstenite answers the close while
    // being polled).
    let readers = clients.into_iter().map(|mut ws| async move {
        let mut code = None;
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(5), futures_util::StreamExt::next(&mut ws)).await
        {
            if let Message::Close(Some(frame)) = message {
                code = Some(u16::from(frame.code));
            }
        }
        code
    });
    assert!(join_all(readers).await.iter().all(|code| *code == Some(1001)), "every client got 1001");
    let report = stop.join().unwrap();
    assert_eq!(report.forced, 0, "every client answered the close");
}
