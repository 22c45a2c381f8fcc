//! One order and a memory per topic, on a hub with history (the embedded
//! store).
//!
//! Every publish of a topic takes the topic's next offset under one lock,
//! is kept in the history in both forms (the raw frame for rooms, the JSON
//! frame with `"offset"` and `"epoch"` for `/ws`; each framed once and
//! shared by the live delivery and every replay) and is posted, still
//! under the lock, to every subscriber through its shard's mailbox. So
//! every subscriber sees the topic in offset order, whichever shard
//! published. (Without history a shard serves its own subscribers first,
//! and two publishers on two shards can be seen in different orders.)
//!
//! A subscriber joins under the same lock at the topic's current offset,
//! with deliveries up to it skipped if they are still in its shard's
//! mailbox ([`ringcast::broker::WsExt::subscribe_after`]); or it first replays what
//! it missed, a page at a time while its queue is short, and joins once
//! the replay has caught up, under the lock: no gap, no duplicate, and
//! nothing held for it but the pace (not the whole backlog).

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use ringcast::broker::{Frame, ServerExt as _, WsExt as _};
use ringcast::{ConnId, SendError, ServerHandle, Ws};

use super::contract::Bounds;
use super::store::{Footprint, Recovery, Store};
use crate::counters::HistorySize;
use crate::fanout;
use crate::payload::Payload;
use crate::position::Position;
use crate::topic::{json_topic, raw_topic, Form};

/// A kept message in both forms.
#[derive(Clone)]
pub(crate) struct Kept {
    raw: Frame,
    json: Frame,
}

/// What a frame costs beside its bytes (the shared buffer's bookkeeping
/// and the handle to it).
const FRAME_COST: usize = 64;

impl Footprint for Kept {
    fn bytes(&self) -> usize {
        self.raw.memory() + self.json.memory() + 2 * FRAME_COST
    }
}

impl Kept {
    /// `payload` published on `name` at `at`, in both forms.
    fn new(handle: &ServerHandle, name: &str, payload: Payload<'_>, at: &Position) -> Kept {
        let (raw, json) = fanout::frames(handle, name, payload, at.offset, &at.epoch);
        Kept { raw, json }
    }

    /// The form `form` subscribers get.
    pub fn frame(&self, form: Form) -> &Frame {
        match form {
            Form::Raw => &self.raw,
            Form::Json => &self.json,
        }
    }
}

/// Where a replay stands after a [`Sequencer::replay`] call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Caught up: the connection subscribes, live after this position.
    Live(Position),
    /// The connection's queue reached the pace: go on from this position
    /// (the last message sent) once it has drained.
    Paused(Position),
    /// The messages after the position asked for are no longer all kept:
    /// the connection subscribes live after the topic's position (this
    /// one), and the client must resynchronise.
    Lost(Position),
    /// The connection no longer takes messages.
    Closed,
}

/// The topics' order and history.
pub(crate) struct Sequencer {
    store: Mutex<Store<Kept>>,
    started: Instant,
    /// Bytes a replay may leave queued on its connection before it waits
    /// for them to drain.
    pace: usize,
}

/// Messages read from the store per lock during a replay.
const PAGE: usize = 64;

impl Sequencer {
    /// A sequencer keeping what `bounds` allow; replays queue up to `pace`
    /// bytes at a time.
    pub fn new(bounds: &Bounds, pace: usize) -> Self {
        Sequencer { store: Mutex::new(Store::new(bounds)), started: Instant::now(), pace: pace.max(1) }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn store(&self) -> MutexGuard<'_, Store<Kept>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `payload` on `name` to every subscriber in both forms and
    /// keeps it; `except` (a publisher, in the form it is skipped in)
    /// does not receive it. Returns the subscribers it was posted for
    /// (`except` included if it subscribes) and its position.
    pub fn publish(
        &self,
        handle: &ServerHandle,
        name: &str,
        payload: Payload<'_>,
        except: Option<(ConnId, Form)>,
    ) -> (u64, Position) {
        let skip = |form: Form| except.filter(|(_, f)| *f == form).map(|(id, _)| id);
        let (raw, json) = (raw_topic(name), json_topic(name));
        let mut store = self.store();
        let now = self.now();
        let (at, kept) = store.append_with(name, now, |at| Kept::new(handle, name, payload, at));
        let receivers = handle.publish_sequenced(&raw, &kept.raw, at.offset, skip(Form::Raw))
            + handle.publish_sequenced(&json, &kept.json, at.offset, skip(Form::Json));
        (receivers, at)
    }

    /// Subscribes `ws` to `name` in `form` from now on; returns the
    /// topic's position (live deliveries come after it).
    pub fn subscribe<C>(&self, ws: &mut Ws<'_, C>, name: &str, form: Form) -> Position {
        let topic = form.topic(name);
        let mut store = self.store();
        let at = store.open(name, self.now());
        crate::topic::admitted(ws.subscribe_after(&topic, at.offset), &topic);
        at
    }

    /// How much the history holds now.
    pub fn size(&self) -> HistorySize {
        let store = self.store();
        HistorySize { messages: store.len(), bytes: store.bytes() }
    }

    /// Where `name` stands (a record made for it if it has none).
    pub fn position(&self, name: &str) -> Position {
        let mut store = self.store();
        let now = self.now();
        store.open(name, now)
    }

    /// Whether the messages of `name` after `since` are all kept, and
    /// where the topic stands.
    pub fn covers(&self, name: &str, since: &Position) -> (bool, Position) {
        let mut store = self.store();
        let now = self.now();
        let kept = matches!(store.since(name, since, now, 0), Recovery::Recovered(_));
        (kept, store.open(name, now))
    }

    /// The latest `limit` kept messages of `name`, oldest first, with the
    /// topic's position.
    pub fn latest(&self, name: &str, limit: usize) -> (Vec<(u64, Kept)>, Position) {
        let mut store = self.store();
        let now = self.now();
        let latest = store.latest(name, limit, now).map(|(messages, _)| messages).unwrap_or_default();
        (latest, store.open(name, now))
    }

    /// Sends `ws` the messages of `name` after `from` in `form`, a page at
    /// a time while its queue is under the pace, and subscribes it once it
    /// has caught up (or once the history is found lost).
    pub fn replay<C>(&self, ws: &mut Ws<'_, C>, name: &str, form: Form, from: Position) -> Step {
        let topic = form.topic(name);
        let mut at = from;
        loop {
            if ws.buffered_amount() >= self.pace {
                return Step::Paused(at);
            }
            let mut store = self.store();
            let now = self.now();
            let page = match store.since(name, &at, now, PAGE) {
                Recovery::Recovered(page) => page,
                Recovery::Lost => {
                    let live = store.open(name, now);
                    crate::topic::admitted(ws.subscribe_after(&topic, live.offset), &topic);
                    return Step::Lost(live);
                }
            };
            let caught_up = page.len() < PAGE;
            for (offset, kept) in page {
                if ws.buffered_amount() >= self.pace {
                    return Step::Paused(at);
                }
                match ws.send_frame(kept.frame(form)) {
                    Ok(()) => at.offset = offset,
                    // Under the drop policy, over the budget: this reader
                    // cannot have every message after all.
                    Err(SendError::Dropped) => {
                        let live = store.open(name, now);
                        crate::topic::admitted(ws.subscribe_after(&topic, live.offset), &topic);
                        return Step::Lost(live);
                    }
                    Err(_) => return Step::Closed,
                }
            }
            if caught_up {
                crate::topic::admitted(ws.subscribe_after(&topic, at.offset), &topic);
                return Step::Live(at);
            }
        }
    }
}
