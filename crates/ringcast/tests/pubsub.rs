//! Publish/subscribe across shards: exact delivery counts and order, the
//! handle's publish, unsubscription on close, and slow subscribers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringcast::broker::BuilderExt;
use ringcast::{Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandle, ServerHandler, Ws};

/// `/topics/NAME`: subscribe to NAME; every message is published to the
/// other subscribers of NAME.
struct Rooms;

impl ServerHandler for Rooms {
    fn upgrade(&mut self, request: &Request<'_>, _peer: &Peer<'_>) -> Decision<String> {
        match request.path().strip_prefix("/topics/") {
            Some(name) if !name.is_empty() => Decision::accept(name.to_string()),
            _ => Decision::reject(404),
        }
    }
}

impl Handler for Rooms {
    type Data = String;

    fn open(&mut self, ws: &mut Ws<'_, String>) {
        let topic = ws.data().clone();
        assert_eq!(ws.subscribe(&topic), Ok(true));
        assert_eq!(ws.subscribe(&topic), Ok(false), "a second subscribe is a no-op");
        assert!(ws.is_subscribed(&topic));
    }

    fn message(&mut self, ws: &mut Ws<'_, String>, message: Message<'_>) {
        let topic = ws.data().clone();
        ws.publish(&topic, message);
    }
}

fn start(builder: ServerBuilder) -> ServerHandle {
    builder.pin_threads(false).start("127.0.0.1:0", |_| Rooms).expect("server starts")
}

fn join(handle: &ServerHandle, topic: &str) -> RawClient {
    join_path(handle, &format!("/topics/{topic}"))
}

#[test]
fn every_subscriber_on_every_shard_gets_every_message_in_order() {
    let handle = start(ServerBuilder::new().shards(2));
    let mut subscribers: Vec<RawClient> = (0..200).map(|_| join(&handle, "room")).collect();
    let mut publisher = join(&handle, "room");
    let mut bystander = join(&handle, "other");
    wait_subscribers(&handle, "room", 201);
    for i in 0..50 {
        publisher.send_raw(&masked(0x1, format!("m{i}").as_bytes()));
    }
    publisher.send_raw(&masked(0x2, &[0xde, 0xad]));
    for (s, sub) in subscribers.iter_mut().enumerate() {
        for i in 0..50 {
            let frame = sub.read_frame().unwrap();
            assert_eq!((frame.opcode, frame.payload), (0x1, format!("m{i}").into_bytes()), "subscriber {s}");
        }
        let last = sub.read_frame().unwrap();
        assert_eq!((last.opcode, last.payload), (0x2, vec![0xde, 0xad]), "binary keeps its type");
    }
    // The publisher does not hear itself; another topic hears nothing.
    assert!(publisher.try_read_frame(Duration::from_millis(200)).is_none());
    assert!(bystander.try_read_frame(Duration::from_millis(50)).is_none());
    handle.shutdown(Duration::from_secs(1));
}

/// Large frames are queued by reference (one shared buffer for every
/// subscriber, sent with an iovec each), small ones corked: interleaved,
/// they must still reach everyone whole and in order.
#[test]
fn large_and_small_messages_interleaved_arrive_whole_and_in_order() {
    let handle = start(ServerBuilder::new().shards(2));
    let mut subscribers: Vec<RawClient> = (0..40).map(|_| join(&handle, "mix")).collect();
    let mut publisher = join(&handle, "mix");
    wait_subscribers(&handle, "mix", 41);
    let sizes = [3usize, 100_000, 8 << 10, 10, (8 << 10) - 1, 65_536, 1, 200_000, 7, 20_000];
    let payload = |i: usize, size: usize| (0..size).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>();
    for round in 0..3 {
        for (i, &size) in sizes.iter().enumerate() {
            publisher.send_raw(&masked(0x2, &payload(round * 100 + i, size)));
        }
    }
    for (s, sub) in subscribers.iter_mut().enumerate() {
        for round in 0..3 {
            for (i, &size) in sizes.iter().enumerate() {
                let frame = sub.read_frame().unwrap();
                assert_eq!(frame.opcode, 0x2);
                assert!(
                    frame.payload == payload(round * 100 + i, size),
                    "subscriber {s}, message {i} of round {round}"
                );
            }
        }
    }
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn the_handle_publishes_from_any_thread_and_counts_receivers() {
    let handle = start(ServerBuilder::new().shards(2));
    let mut subscribers: Vec<RawClient> = (0..20).map(|_| join(&handle, "news")).collect();
    wait_subscribers(&handle, "news", 20);
    let publisher = handle.clone();
    let sent = std::thread::spawn(move || {
        (0..100).map(|i| publisher.publish("news", Message::Text(&format!("n{i}")))).collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert!(sent.iter().all(|&n| n == 20), "{sent:?}");
    assert_eq!(handle.publish("nobody-listens", Message::Binary(b"x")), 0);
    for sub in &mut subscribers {
        for i in 0..100 {
            assert_eq!(sub.read_frame().unwrap().payload, format!("n{i}").into_bytes());
        }
    }
    // Subscriptions end with their connections.
    drop(subscribers);
    wait_subscribers(&handle, "news", 0);
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn a_subscriber_that_never_reads_is_closed_and_the_others_get_everything() {
    let handle =
        start(ServerBuilder::new().shards(1).max_backpressure(256 << 10).close_timeout(Duration::from_millis(300)));
    let slow = {
        let client = join(&handle, "feed");
        socket2::SockRef::from(&client.stream).set_recv_buffer_size(4096).unwrap();
        client
    };
    let mut fast = join(&handle, "feed");
    let mut publisher = join(&handle, "feed");
    wait_subscribers(&handle, "feed", 3);
    let chunk = vec![0x42u8; 32 << 10];
    // Paced by the fast subscriber: it never has more than one message
    // queued, while the slow one piles up.
    let started = Instant::now();
    for _ in 0..200 {
        publisher.send_raw(&masked(0x2, &chunk));
        let frame = fast.read_frame().expect("the fast subscriber stays connected");
        assert_eq!((frame.opcode, frame.payload.len()), (0x2, 32 << 10));
    }
    // The slow one was closed with 1008 once its queue passed the budget;
    // as it does not read, that close frame cannot reach it either, and the
    // close timeout (300 ms) cut it. (What the kernel had already buffered
    // for it is the kernel's: our queue for it never passed 256 KiB.)
    wait_subscribers(&handle, "feed", 2);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(slow);
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn under_the_drop_policy_a_slow_subscriber_stays_and_its_drops_are_counted() {
    let handle =
        start(ServerBuilder::new().shards(1).max_backpressure(256 << 10).slow_consumer(ringcast::SlowConsumer::Drop));
    let slow = join(&handle, "ticks");
    socket2::SockRef::from(&slow.stream).set_recv_buffer_size(4096).unwrap();
    let mut fast = join(&handle, "ticks");
    let mut publisher = join(&handle, "ticks");
    wait_subscribers(&handle, "ticks", 3);
    let chunk = vec![0x17u8; 32 << 10];
    for _ in 0..200 {
        publisher.send_raw(&masked(0x2, &chunk));
        assert_eq!(fast.read_frame().expect("the fast subscriber gets everything").payload.len(), 32 << 10);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while handle.stats().dropped == 0 {
        assert!(Instant::now() < until, "nothing was dropped for the slow subscriber");
        std::thread::sleep(Duration::from_millis(5));
    }
    let dropped = handle.stats().dropped;
    assert!(dropped < 200, "{dropped}");
    // Still subscribed: the policy keeps it.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(handle.subscribers("ticks"), 3);
    drop(slow);
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn the_interest_watch_hears_of_first_and_last_subscribers_only() {
    use std::sync::{Arc, Mutex};
    let events: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let seen = events.clone();
    let handle = start(
        ServerBuilder::new().shards(2).on_interest(move |topic, on| seen.lock().unwrap().push((topic.to_owned(), on))),
    );
    // Ten subscribers spread over both shards: one "gained" event.
    let mut first: Vec<RawClient> = (0..10).map(|_| join(&handle, "alpha")).collect();
    wait_subscribers(&handle, "alpha", 10);
    let second = join(&handle, "beta");
    wait_subscribers(&handle, "beta", 1);
    assert_eq!(*events.lock().unwrap(), [("alpha".to_owned(), true), ("beta".to_owned(), true)]);
    // Nine leave: still listened to; the tenth leaves: "lost".
    first.truncate(1);
    wait_subscribers(&handle, "alpha", 1);
    assert_eq!(events.lock().unwrap().len(), 2, "{:?}", events.lock().unwrap());
    drop(first);
    wait_subscribers(&handle, "alpha", 0);
    assert_eq!(events.lock().unwrap().last(), Some(&("alpha".to_owned(), false)));
    // Back again: gained once more.
    let _again = join(&handle, "alpha");
    wait_subscribers(&handle, "alpha", 1);
    drop(second);
    wait_subscribers(&handle, "beta", 0);
    assert_eq!(
        events.lock().unwrap()[2..],
        [("alpha".to_owned(), false), ("alpha".to_owned(), true), ("beta".to_owned(), false)]
    );
    handle.shutdown(Duration::from_secs(1));
}
