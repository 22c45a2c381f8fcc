//! Slow consumers under both policies: a subscriber that never reads holds
//! at most its budget, everybody else gets every message in order.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: u32 = 4000;
const SIZE: usize = 4096;

/// Publishes MESSAGES numbered binary messages on /topics/feed while a fast
/// subscriber reads them all, in order. The publisher stays at most WINDOW
/// messages (16 KiB) ahead of the fast reader, well inside half its 64 KiB
/// budget (the budget counts a partly sent buffer whole): pub/sub has
/// no flow control, so a publisher that outruns every reader would make
/// every reader slow.
async fn burst(hub: &TestHub) {
    const WINDOW: u32 = 4;
    let mut publisher = connect(&hub.url("/topics/feed")).await;
    let mut fast = connect(&hub.url("/topics/feed")).await;
    hub.wait_subscribers("r:feed", 3);
    let mut expect = 0u32;
    for seq in 0..MESSAGES + WINDOW {
        if seq < MESSAGES {
            let mut payload = vec![0u8; SIZE];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            publisher.send(Message::binary(payload)).await.unwrap();
        }
        if seq >= WINDOW {
            let data = next(&mut fast).await.into_data();
            assert_eq!(data.len(), SIZE);
            assert_eq!(u32::from_be_bytes(data[..4].try_into().unwrap()), expect, "in order, nothing lost");
            expect += 1;
        }
    }
}

#[tokio::test]
async fn close_policy_closes_the_stalled_subscriber_with_1008() {
    let hub = TestHub::start(2, |c| {
        c.max_backpressure = 64 << 10;
        c.max_publish_rate = 0; // the burst is as fast as it can be
    });
    let mut stalled = Stalled::join(hub.addr(), "/topics/feed");
    burst(&hub).await;
    // Reading now: a prefix of the messages in order, then close 1008.
    let mut expected = 0u32;
    let close = loop {
        let frame = stalled.read_frame().expect("a close frame before the end");
        if frame.opcode == 0x8 {
            break frame;
        }
        assert_eq!(u32::from_be_bytes(frame.payload[..4].try_into().unwrap()), expected);
        expected += 1;
    };
    assert_eq!(u16::from_be_bytes([close.payload[0], close.payload[1]]), 1008);
    assert!(expected < MESSAGES, "it was cut before the end ({expected} messages)");
    // 16 MiB published; the server's queue held at most the 64 KiB budget
    // plus one message, the rest sat in the kernel's socket buffers (at most
    // tcp_wmem's 4 MiB here).
    let queued_max = (64 << 10) + SIZE + 8;
    let received_bytes = expected as usize * (SIZE + 4);
    assert!(received_bytes < queued_max + (8 << 20), "{received_bytes} bytes got through");
    assert_eq!(hub.metric("ringcast_dropped_total", ""), 0);
}

#[tokio::test]
async fn drop_policy_keeps_the_stalled_subscriber_and_counts_drops() {
    let hub = TestHub::start(2, |c| {
        c.max_backpressure = 64 << 10;
        c.max_publish_rate = 0;
        c.slow_consumer = ringcast_hub::Policy::Drop;
    });
    let mut stalled = Stalled::join(hub.addr(), "/topics/feed");
    burst(&hub).await;
    let dropped = hub.metric("ringcast_dropped_total", "");
    assert!(dropped > 0, "the stalled subscriber lost messages");
    // What it gets is in order with gaps, and it is still subscribed: a
    // marker published after the burst reaches it.
    let marker = publish(hub.addr(), "feed", "text/plain", b"marker");
    assert_eq!(marker, 1, "the burst's clients are gone; the stalled one is still there");
    let mut last = None;
    let mut received = 0u64;
    loop {
        let frame = stalled.read_frame().expect("still connected");
        match frame.opcode {
            0x2 => {
                let seq = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
                assert!(last.is_none_or(|l| seq > l), "in order");
                last = Some(seq);
                received += 1;
            }
            0x1 => {
                assert_eq!(frame.payload, b"marker");
                break;
            }
            other => panic!("unexpected opcode {other}"),
        }
    }
    assert_eq!(received + dropped, u64::from(MESSAGES), "every message was either sent or counted as dropped");
    stalled.send_text("still here");
}
