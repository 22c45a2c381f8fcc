//! Sequenced publishing: one order for every subscriber on every shard,
//! subscriptions that start after a place in the sequence, and frames
//! kept and sent again (the runtime's part of a topic history).

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use ringcast::broker::{ServerExt, WsExt};
use ringcast::{Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandle, ServerHandler, Ws};

/// Frames kept by the test, sent to a connection that asks `replay`.
type Kept = Arc<Mutex<Vec<ringcast::broker::Frame>>>;

/// `/seq/NAME?after=M`: subscribes to NAME after place M. A text message
/// `replay` is answered with every kept frame; `pub X` publishes X to NAME
/// through the handle, the sender excepted.
struct Sequenced {
    kept: Kept,
    handle: Arc<OnceLock<ServerHandle>>,
    /// Connections that said `hello`, for the test to notify.
    hellos: Arc<Mutex<Vec<ringcast::ConnId>>>,
}

/// The notes the test posts: text.
impl ServerHandler<String> for Sequenced {
    fn upgrade(&mut self, request: &Request<'_>, _peer: &Peer<'_>) -> Decision<(String, u64)> {
        let Some(name) = request.path().strip_prefix("/seq/") else { return Decision::reject(404) };
        let after = request.query().and_then(|q| q.strip_prefix("after=")).and_then(|m| m.parse().ok());
        Decision::accept((name.to_string(), after.unwrap_or(0)))
    }
}

impl Handler<String> for Sequenced {
    type Data = (String, u64);

    fn open(&mut self, ws: &mut Ws<'_, (String, u64)>) {
        let (topic, after) = ws.data().clone();
        assert_eq!(ws.subscribe_after(&topic, after), Ok(true));
        assert_eq!(ws.subscribe_after(&topic, after), Ok(false), "a second subscribe is a no-op");
    }

    fn message(&mut self, ws: &mut Ws<'_, (String, u64)>, message: Message<'_>) {
        match message {
            Message::Text("replay") => {
                let frames = self.kept.lock().unwrap().clone();
                for frame in &frames {
                    ws.send_frame(frame).expect("within the budget");
                }
            }
            Message::Text("hello") => self.hellos.lock().unwrap().push(ws.id()),
            Message::Text(text) if text.starts_with("pub ") => {
                let handle = self.handle.get().expect("started");
                let frame = ws.frame(Message::Text(&text[4..]));
                handle.publish_sequenced(&ws.data().0, &frame, 0, Some(ws.id()));
            }
            _ => {}
        }
    }

    fn notified(&mut self, ws: &mut Ws<'_, (String, u64)>, note: String) {
        ws.send_text(&format!("note: {note}")).unwrap();
    }
}

fn start(kept: Kept) -> ServerHandle {
    start_with(kept, Arc::default())
}

fn start_with(kept: Kept, hellos: Arc<Mutex<Vec<ringcast::ConnId>>>) -> ServerHandle {
    let cell = Arc::new(OnceLock::new());
    let for_shards = cell.clone();
    let handle = ServerBuilder::new()
        .shards(2)
        .pin_threads(false)
        .start("127.0.0.1:0", move |_| Sequenced {
            kept: kept.clone(),
            handle: for_shards.clone(),
            hellos: hellos.clone(),
        })
        .expect("server starts");
    cell.set(handle.clone()).ok();
    handle
}

fn text(client: &mut RawClient) -> String {
    let frame = client.read_frame().expect("a frame");
    String::from_utf8(frame.payload).unwrap()
}

#[test]
fn publishers_racing_under_one_lock_are_seen_in_one_order_everywhere() {
    let handle = start(Kept::default());
    let mut subscribers: Vec<RawClient> = (0..20).map(|_| join_path(&handle, "/seq/t")).collect();
    wait_subscribers(&handle, "t", 20);
    // Four threads publish at once; the lock orders them, and the place
    // each took is what it publishes.
    let next = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (handle, next) = (handle.clone(), next.clone());
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let mut seq = next.lock().unwrap();
                    *seq += 1;
                    let frame = handle.frame(Message::Text(&seq.to_string()));
                    assert_eq!(handle.publish_sequenced("t", &frame, *seq, None), 20);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    for (s, subscriber) in subscribers.iter_mut().enumerate() {
        for expected in 1..=1000u64 {
            assert_eq!(text(subscriber), expected.to_string(), "subscriber {s}");
        }
    }
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn a_subscription_after_a_place_skips_the_places_up_to_it() {
    let handle = start(Kept::default());
    let mut late = join_path(&handle, "/seq/t?after=10");
    let mut early = join_path(&handle, "/seq/t");
    wait_subscribers(&handle, "t", 2);
    let publish = |seq: u64| {
        let frame = handle.frame(Message::Text(&format!("m{seq}")));
        handle.publish_sequenced("t", &frame, seq, None)
    };
    for seq in [9, 10, 11, 12] {
        assert_eq!(publish(seq), 2);
    }
    for seq in [9, 10, 11, 12] {
        assert_eq!(text(&mut early), format!("m{seq}"));
    }
    assert_eq!(text(&mut late), "m11", "places up to 10 are skipped for it");
    assert_eq!(text(&mut late), "m12");
    // The fence went with the first place past it: a place out of order
    // (which a sequencer never makes) now goes through.
    publish(3);
    assert_eq!(text(&mut late), "m3");
    assert_eq!(text(&mut early), "m3");
    // A fenced subscriber that leaves takes its fence along; a publish
    // without a place is never fenced.
    let gone = join_path(&handle, "/seq/t?after=100");
    wait_subscribers(&handle, "t", 3);
    drop(gone);
    wait_subscribers(&handle, "t", 2);
    publish(0);
    assert_eq!(text(&mut late), "m0");
    assert_eq!(text(&mut early), "m0");
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn the_publisher_excepted_is_skipped_and_everyone_else_served_on_both_shards() {
    let handle = start(Kept::default());
    let mut members: Vec<RawClient> = (0..6).map(|_| join_path(&handle, "/seq/room")).collect();
    wait_subscribers(&handle, "room", 6);
    for round in 0..3 {
        let sender = round * 2;
        members[sender].send_raw(&masked(0x1, format!("pub r{round}").as_bytes()));
        for (i, member) in members.iter_mut().enumerate() {
            if i != sender {
                assert_eq!(text(member), format!("r{round}"), "member {i}");
            }
        }
    }
    // Each member read the others' messages: its own never came.
    for member in &mut members {
        assert!(member.try_read_frame(Duration::from_millis(100)).is_none());
    }
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn kept_frames_are_sent_again_whole_and_in_order() {
    let kept = Kept::default();
    let handle = start(kept.clone());
    {
        let mut frames = kept.lock().unwrap();
        for i in 0..100 {
            frames.push(handle.frame(Message::Text(&format!("kept {i}"))));
        }
        frames.push(handle.frame(Message::Binary(&vec![7u8; 100_000])));
    }
    assert_eq!(kept.lock().unwrap()[3].payload(), b"kept 3");
    assert!(kept.lock().unwrap()[3].is_text());
    assert!(!kept.lock().unwrap()[100].is_text());
    for _ in 0..2 {
        let mut client = join_path(&handle, "/seq/r");
        client.send_raw(&masked(0x1, b"replay"));
        for i in 0..100 {
            assert_eq!(text(&mut client), format!("kept {i}"));
        }
        let large = client.read_frame().unwrap();
        assert_eq!((large.opcode, large.payload.len()), (0x2, 100_000));
        assert!(large.payload.iter().all(|&b| b == 7));
    }
    assert!(handle.stats().messages_by_reference >= 2, "the large frame is queued by reference, not copied");
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn a_note_reaches_its_connection_in_mailbox_order_and_one_for_a_gone_connection_is_dropped() {
    let hellos = Arc::new(Mutex::new(Vec::new()));
    let handle = start_with(Kept::default(), hellos.clone());
    // Connections until both shards have some (the kernel spreads them).
    let mut clients: Vec<RawClient> = Vec::new();
    let on_both =
        |ids: &[ringcast::ConnId]| ids.iter().any(|id| id.shard() == 0) && ids.iter().any(|id| id.shard() == 1);
    while clients.len() < 4 || !on_both(&hellos.lock().unwrap()) {
        assert!(clients.len() < 200, "200 connections all on one shard");
        let mut client = join_path(&handle, "/seq/n");
        client.send_raw(&masked(0x1, b"hello"));
        clients.push(client);
        let until = Instant::now() + Duration::from_secs(10);
        while hellos.lock().unwrap().len() < clients.len() {
            assert!(Instant::now() < until, "the hellos arrive");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    wait_subscribers(&handle, "n", clients.len() as u64);
    let ids = hellos.lock().unwrap().clone();
    let notes = handle.notes::<String>().expect("the handler takes strings");
    assert!(handle.notes::<u32>().is_none(), "notes of another type are not handed out");
    for round in 0..50 {
        handle.publish_sequenced("n", &handle.frame(Message::Text(&format!("before {round}"))), 0, None);
        for id in &ids {
            notes.notify(*id, format!("{round} for {id}"));
        }
        handle.publish_sequenced("n", &handle.frame(Message::Text(&format!("after {round}"))), 0, None);
    }
    // Each client's own id: the one whose note it gets.
    for client in &mut clients {
        let mut mine = None;
        for round in 0..50 {
            assert_eq!(text(client), format!("before {round}"));
            let note = text(client);
            let id = note.rsplit(' ').next().unwrap().to_owned();
            assert_eq!(note, format!("note: {round} for {id}"));
            assert!(mine.get_or_insert(id.clone()) == &id, "only its own notes");
            assert_eq!(text(client), format!("after {round}"));
        }
    }
    drop(clients);
    wait_subscribers(&handle, "n", 0);
    for id in &ids {
        notes.notify(*id, "too late".to_string());
    }
    let mut fresh = join_path(&handle, "/seq/n");
    fresh.send_raw(&masked(0x1, b"pub still here"));
    let mut other = join_path(&handle, "/seq/n");
    wait_subscribers(&handle, "n", 2);
    other.send_raw(&masked(0x1, b"pub alive"));
    assert_eq!(text(&mut fresh), "alive", "notes for gone connections were dropped, nothing broke");
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn a_join_from_another_thread_counts_at_once_and_takes_effect_in_mailbox_order() {
    let hellos = Arc::new(Mutex::new(Vec::new()));
    let handle = start_with(Kept::default(), hellos.clone());
    let mut client = join_path(&handle, "/seq/n");
    client.send_raw(&masked(0x1, b"hello"));
    let until = Instant::now() + Duration::from_secs(10);
    while hellos.lock().unwrap().is_empty() {
        assert!(Instant::now() < until, "the hello arrives");
        std::thread::sleep(Duration::from_millis(2));
    }
    let id = hellos.lock().unwrap()[0];
    // Nobody subscribes to z: its shard has no interest until the join.
    assert_eq!(handle.subscribers("z"), 0);
    let publish = |seq: u64| {
        handle.publish_sequenced("z", &handle.frame(Message::Text(&format!("z{seq}"))), seq, None);
    };
    publish(1);
    let notes = handle.notes::<String>().expect("the handler takes strings");
    notes.join(id, "z", 3, "joined".to_string());
    assert_eq!(handle.subscribers("z"), 1, "counted at once");
    for seq in 2..=6 {
        publish(seq);
    }
    assert_eq!(text(&mut client), "note: joined", "the note comes with the subscription");
    for seq in 4..=6 {
        assert_eq!(text(&mut client), format!("z{seq}"), "places up to 3 are skipped, none after is");
    }
    // A join for a connection that is gone takes its count back.
    drop(client);
    wait_subscribers(&handle, "z", 0);
    notes.join(id, "z", 0, "too late".to_string());
    wait_subscribers(&handle, "z", 0);
    handle.shutdown(Duration::from_secs(1));
}
