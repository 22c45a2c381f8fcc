//! Per-topic history, kept in memory (the embedded log's store): the last
//! messages of each topic with their offsets, so that a client that
//! reconnects can ask for what it missed.
//!
//! - **Offsets** increase by one per message of a topic, from 1; the
//!   offset of the last message a client saw is its position.
//! - **Epochs** name one unbroken history of a topic: a new one whenever
//!   the offsets start again (a topic's record is created: after a restart,
//!   or after the store dropped it whole). A client whose epoch differs has
//!   lost history, even if the offsets look right.
//! - **Bounds**: per topic, at most `size` messages, none older than `ttl`;
//!   over all topics, at most `memory` bytes (the oldest message of the
//!   whole store goes first). A topic whose messages are all gone keeps
//!   its record (and so its epoch and next offset) until the memory it
//!   costs is needed by others; such records go before any message, so
//!   subscribes to many topics that never get a message cannot push
//!   kept messages out.
//!
//! The store keeps whatever the caller hands it per message (`T`: for the
//! hub, the frames shared with the live delivery, not copies), and counts
//! its size as [`Footprint::bytes`] says. It does no locking and reads no
//! clock: the caller passes the time in, so it is tested as plain data.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::contract::Bounds;
use crate::position::Position;

/// What the store counts a kept message as against its memory bound.
pub(crate) trait Footprint: Clone {
    fn bytes(&self) -> usize;
}

/// The store's bounds, from the log's [`Bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    /// Messages kept per topic (at least 1).
    size: usize,
    /// How long a message is kept (`None`: as long as `size` allows).
    ttl: Option<Duration>,
    /// Bytes kept over all topics, the records' own cost included.
    memory: usize,
}

/// What a client that asks for the messages after a position gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recovery<T> {
    /// Every message after the position, in order (possibly none): nothing
    /// was missed.
    Recovered(Vec<(u64, T)>),
    /// The history from there is gone (another epoch, messages dropped, or
    /// a position this topic never had): the client must resynchronise.
    Lost,
}

/// What a topic's record costs beside its messages (the map entry, the
/// name, the epoch), counted against `memory` so that many empty topics
/// cannot grow the store past it.
const RECORD_COST: usize = 160;
/// What a message costs beside what it keeps.
const ENTRY_COST: usize = 40;

struct Entry<T> {
    offset: u64,
    /// When it was appended (milliseconds on the caller's clock).
    at: u64,
    /// What it was counted as when appended (what it holds may grow later,
    /// e.g. a compressed form made on first use; the count stays).
    cost: usize,
    kept: T,
}

/// One topic's history.
struct Record<T> {
    epoch: Arc<str>,
    /// Which record of the name this is (a name's record can be dropped
    /// and made again), for the age queue's entries.
    serial: u64,
    /// The offset the next message gets.
    next: u64,
    entries: VecDeque<Entry<T>>,
}

/// A message in the age queue: its topic, the record's serial, its offset.
type Aged = (Arc<str>, u64, u64);

/// The history of every topic.
pub(crate) struct Store<T> {
    bounds: Limits,
    topics: HashMap<Arc<str>, Record<T>>,
    /// Every kept message by age, over all topics. A message dropped by
    /// its topic's size bound stays here until it reaches the front (or
    /// the queue is compacted): checking it against its topic tells.
    order: VecDeque<Aged>,
    /// Records that were empty when put here, oldest first (checked when
    /// taken: a record may have gained messages since).
    empty: VecDeque<(Arc<str>, u64)>,
    /// Messages kept.
    messages: usize,
    /// Bytes counted against `bounds.memory`.
    bytes: usize,
    /// Makes epochs: a random prefix for this store, a serial after it.
    epoch_prefix: u32,
    serials: u64,
}

impl<T: Footprint> Store<T> {
    /// An empty store.
    pub fn new(bounds: &Bounds) -> Store<T> {
        let size = bounds.size.map_or(usize::MAX, |n| n as usize).max(1);
        let bounds = Limits { size, ttl: bounds.ttl, memory: bounds.memory };
        // A restart must not give a topic an epoch it had before: the
        // prefix is random (a clock could repeat across machines).
        let epoch_prefix = getrandom::u32().unwrap_or(0x5eed);
        Store {
            bounds,
            topics: HashMap::new(),
            order: VecDeque::new(),
            empty: VecDeque::new(),
            messages: 0,
            bytes: 0,
            epoch_prefix,
            serials: 0,
        }
    }

    /// Bytes held, as counted against the memory bound.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages held, over all topics.
    pub fn len(&self) -> usize {
        self.messages
    }

    /// Keeps a message of `topic` published at `now` (ms); returns its
    /// position.
    #[cfg(test)]
    pub fn append(&mut self, topic: &str, now: u64, kept: T) -> Position {
        self.append_with(topic, now, |_| kept).0
    }

    /// Keeps the message `make` builds, given its position (a message that
    /// carries its own offset), for `topic` at `now` (ms); returns the
    /// position and the message.
    pub fn append_with(&mut self, topic: &str, now: u64, make: impl FnOnce(&Position) -> T) -> (Position, T) {
        self.expire(now);
        let name = self.record(topic);
        let record = self.topics.get_mut(topic).expect("made above");
        let position = Position { offset: record.next, epoch: record.epoch.clone() };
        let kept = make(&position);
        record.next += 1;
        let cost = ENTRY_COST + kept.bytes();
        self.bytes += cost;
        self.messages += 1;
        record.entries.push_back(Entry { offset: position.offset, at: now, cost, kept: kept.clone() });
        self.order.push_back((name, record.serial, position.offset));
        if record.entries.len() > self.bounds.size {
            let entry = record.entries.pop_front().expect("over the size bound");
            self.forget(entry);
        }
        self.shrink(topic);
        if self.order.len() > 2 * self.messages + 64 {
            self.compact();
        }
        (position, kept)
    }

    /// Where `topic` stands, its record made if it has none (a subscriber
    /// that saw nothing yet still gets an epoch to come back with).
    pub fn open(&mut self, topic: &str, now: u64) -> Position {
        self.expire(now);
        self.record(topic);
        self.shrink(topic);
        self.position(topic).expect("made above")
    }

    /// The name of `topic`'s record, made if it has none.
    fn record(&mut self, topic: &str) -> Arc<str> {
        if let Some((name, _)) = self.topics.get_key_value(topic) {
            return name.clone();
        }
        self.serials += 1;
        let epoch: Arc<str> = format!("{:08x}-{:x}", self.epoch_prefix, self.serials).into();
        let name: Arc<str> = topic.into();
        let record = Record { epoch, serial: self.serials, next: 1, entries: VecDeque::new() };
        self.topics.insert(name.clone(), record);
        self.empty.push_back((name.clone(), self.serials));
        self.bytes += RECORD_COST + topic.len();
        name
    }

    /// The messages of `topic` after `since`, at most `limit` of them (a
    /// paced reader asks again from the last one), or [`Recovery::Lost`].
    pub fn since(&mut self, topic: &str, since: &Position, now: u64, limit: usize) -> Recovery<T> {
        self.expire(now);
        let Some(record) = self.topics.get(topic) else { return Recovery::Lost };
        if record.epoch != since.epoch || since.offset >= record.next {
            return Recovery::Lost;
        }
        // Kept from `first` on; everything after `since` must be there.
        let first = record.entries.front().map_or(record.next, |e| e.offset);
        if since.offset + 1 < first {
            return Recovery::Lost;
        }
        let skip = (since.offset + 1 - first) as usize;
        Recovery::Recovered(record.entries.iter().skip(skip).take(limit).map(|e| (e.offset, e.kept.clone())).collect())
    }

    /// The latest `limit` messages of `topic`, oldest first, and where the
    /// topic stands (`None`: no record).
    pub fn latest(&mut self, topic: &str, limit: usize, now: u64) -> Option<(Vec<(u64, T)>, Position)> {
        self.expire(now);
        let record = self.topics.get(topic)?;
        let skip = record.entries.len().saturating_sub(limit);
        let latest = record.entries.iter().skip(skip).map(|e| (e.offset, e.kept.clone())).collect();
        Some((latest, Position { offset: record.next - 1, epoch: record.epoch.clone() }))
    }

    /// Where `topic` stands: its last offset and epoch (`None`: no record).
    pub fn position(&self, topic: &str) -> Option<Position> {
        self.topics.get(topic).map(|r| Position { offset: r.next - 1, epoch: r.epoch.clone() })
    }

    /// Drops the messages older than the ttl.
    pub fn expire(&mut self, now: u64) {
        let Some(ttl) = self.bounds.ttl else { return };
        let ttl = ttl.as_millis() as u64;
        while let Some(at) = self.oldest() {
            if now.saturating_sub(at) < ttl {
                break;
            }
            self.drop_oldest();
        }
    }

    /// When the oldest kept message was appended; stale queue entries in
    /// front of it are cleared on the way.
    fn oldest(&mut self) -> Option<u64> {
        while let Some((topic, serial, offset)) = self.order.front() {
            let live = self.topics.get(topic).filter(|r| r.serial == *serial).and_then(|r| r.entries.front());
            match live {
                Some(entry) if entry.offset == *offset => return Some(entry.at),
                _ => {
                    self.order.pop_front();
                }
            }
        }
        None
    }

    /// Drops the oldest kept message and returns its topic (`None`: no
    /// message is kept).
    fn drop_oldest(&mut self) -> Option<Arc<str>> {
        self.oldest()?;
        let (topic, _, _) = self.order.pop_front().expect("oldest() found it");
        let record = self.topics.get_mut(&topic).expect("oldest() found it");
        let entry = record.entries.pop_front().expect("oldest() found it");
        if record.entries.is_empty() {
            self.empty.push_back((topic.clone(), record.serial));
        }
        self.forget(entry);
        Some(topic)
    }

    /// Counts a dropped message out.
    fn forget(&mut self, entry: Entry<T>) {
        self.bytes -= entry.cost;
        self.messages -= 1;
    }

    /// Brings the store under its memory bound: records without messages
    /// go first, oldest first (they only hold an epoch for subscribers
    /// that saw nothing yet: a flood of them must not push messages out),
    /// then the oldest messages; a topic whose last message went is such a
    /// record. Never the record of `keep` (just appended to or opened).
    fn shrink(&mut self, keep: &str) {
        while self.bytes > self.bounds.memory {
            if let Some(name) = self.next_empty(keep) {
                self.remove(&name);
                continue;
            }
            if self.drop_oldest().is_none() {
                break; // only `keep` is left
            }
        }
        if self.empty.len() > 2 * self.topics.len() + 64 {
            let topics = &self.topics;
            self.empty
                .retain(|(name, serial)| topics.get(name).is_some_and(|r| r.serial == *serial && r.entries.is_empty()));
        }
    }

    /// The oldest record without messages but `keep`'s, taken off the
    /// queue of empty records (entries that no longer hold are dropped on
    /// the way).
    fn next_empty(&mut self, keep: &str) -> Option<Arc<str>> {
        let mut kept_back = None;
        let found = loop {
            let Some((name, serial)) = self.empty.pop_front() else { break None };
            if !self.topics.get(&name).is_some_and(|r| r.serial == serial && r.entries.is_empty()) {
                continue;
            }
            if *name == *keep {
                kept_back = Some((name, serial));
                continue;
            }
            break Some(name);
        };
        if let Some(entry) = kept_back {
            self.empty.push_front(entry);
        }
        found
    }

    fn remove(&mut self, topic: &Arc<str>) {
        self.topics.remove(topic);
        self.bytes -= RECORD_COST + topic.len();
    }

    /// Takes the stale entries out of the age queue (they pile up when
    /// size bounds drop messages and nothing ages out).
    fn compact(&mut self) {
        let topics = &self.topics;
        self.order.retain(|(topic, serial, offset)| {
            topics
                .get(topic)
                .filter(|r| r.serial == *serial)
                .and_then(|r| r.entries.front())
                .is_some_and(|front| front.offset <= *offset)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Footprint for String {
        fn bytes(&self) -> usize {
            self.len()
        }
    }

    const ALL: usize = usize::MAX;

    fn store(size: u32, ttl_ms: Option<u64>, memory: usize) -> Store<String> {
        Store::new(&Bounds { size: Some(size), ttl: ttl_ms.map(Duration::from_millis), memory })
    }

    fn offsets(recovery: Recovery<String>) -> Vec<u64> {
        match recovery {
            Recovery::Recovered(messages) => messages.into_iter().map(|(o, _)| o).collect(),
            Recovery::Lost => panic!("lost"),
        }
    }

    #[test]
    fn offsets_count_from_one_per_topic_and_recovery_returns_exactly_what_came_after() {
        let mut s = store(100, None, 1 << 20);
        let a1 = s.append("a", 0, "a1".into());
        let b1 = s.append("b", 0, "b1".into());
        assert_eq!((a1.offset, b1.offset), (1, 1));
        assert_ne!(a1.epoch, b1.epoch, "each topic's history has its own epoch");
        for i in 2..=10 {
            assert_eq!(s.append("a", 0, format!("a{i}")).offset, i);
        }
        assert_eq!(offsets(s.since("a", &a1, 0, ALL)), (2..=10).collect::<Vec<_>>());
        let Recovery::Recovered(messages) = s.since("a", &Position { offset: 8, ..a1.clone() }, 0, ALL) else {
            panic!()
        };
        assert_eq!(messages, vec![(9, "a9".to_string()), (10, "a10".to_string())]);
        // Up to date: nothing missed, nothing to send.
        assert_eq!(offsets(s.since("a", &Position { offset: 10, ..a1.clone() }, 0, ALL)), Vec::<u64>::new());
        // From before the first message (offset 0): everything.
        assert_eq!(offsets(s.since("a", &Position { offset: 0, ..a1.clone() }, 0, ALL)).len(), 10);
    }

    #[test]
    fn another_epoch_a_position_never_reached_or_an_unknown_topic_is_lost() {
        let mut s = store(100, None, 1 << 20);
        let a = s.append("a", 0, "x".into());
        assert_eq!(s.since("a", &Position { epoch: "other".into(), ..a.clone() }, 0, ALL), Recovery::Lost);
        assert_eq!(s.since("a", &Position { offset: 2, ..a.clone() }, 0, ALL), Recovery::Lost, "ahead of the topic");
        assert_eq!(s.since("nope", &a, 0, ALL), Recovery::Lost);
        // A new store (a restart) gives the topic a new epoch.
        let mut restarted = store(100, None, 1 << 20);
        let again = restarted.append("a", 0, "x".into());
        assert_eq!(again.offset, 1);
        assert_ne!(again.epoch, a.epoch);
        assert_eq!(restarted.since("a", &a, 0, ALL), Recovery::Lost);
    }

    #[test]
    fn the_size_bound_drops_the_oldest_and_recovery_from_before_it_is_lost() {
        let mut s = store(3, None, 1 << 20);
        let first = s.append("a", 0, "1".into());
        for i in 2..=5 {
            s.append("a", 0, i.to_string());
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.since("a", &first, 0, ALL), Recovery::Lost, "2 is gone");
        assert_eq!(offsets(s.since("a", &Position { offset: 2, ..first.clone() }, 0, ALL)), vec![3, 4, 5]);
        let (latest, at) = s.latest("a", 2, 0).unwrap();
        assert_eq!(latest, vec![(4, "4".to_string()), (5, "5".to_string())]);
        assert_eq!(at.offset, 5);
        assert_eq!(s.latest("a", 10, 0).unwrap().0.len(), 3);
    }

    #[test]
    fn the_ttl_drops_old_messages_but_the_topic_keeps_its_epoch_and_offsets() {
        let mut s = store(100, Some(1_000), 1 << 20);
        let first = s.append("a", 0, "old".into());
        s.append("a", 500, "newer".into());
        assert_eq!(offsets(s.since("a", &first, 999, ALL)), vec![2]);
        assert_eq!(s.since("a", &first, 1_000, ALL), Recovery::Recovered(vec![(2, "newer".into())]));
        assert_eq!(s.len(), 1, "the first one expired");
        // Both gone: a client at 2 missed nothing; one at 1 missed 2.
        let second = Position { offset: 2, ..first.clone() };
        assert_eq!(offsets(s.since("a", &second, 5_000, ALL)), Vec::<u64>::new());
        assert_eq!(s.since("a", &first, 5_000, ALL), Recovery::Lost);
        assert_eq!(s.append("a", 5_000, "next".into()), Position { offset: 3, epoch: first.epoch.clone() });
    }

    #[test]
    fn the_memory_bound_drops_the_oldest_messages_of_any_topic_and_records_left_empty_while_over() {
        let unit = ENTRY_COST + 100;
        let records = 2 * (RECORD_COST + 1);
        let mut s = store(1000, None, records + 5 * unit);
        for i in 0..4 {
            s.append("a", i, "a".repeat(100));
        }
        let b = s.append("b", 10, "b".repeat(100));
        assert_eq!(s.len(), 5);
        assert!(s.bytes() <= records + 5 * unit);
        s.append("b", 11, "b".repeat(100));
        assert_eq!(s.len(), 5, "the oldest message of the store went: one of a's");
        assert_eq!(s.latest("a", 10, 11).unwrap().0.iter().map(|m| m.0).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(offsets(s.since("b", &b, 11, ALL)), vec![2]);
        // A record whose last message goes while the store is still over
        // goes too: its epoch ends.
        let mut s = store(1000, None, records + 2 * unit);
        let a = s.append("a", 0, "a".repeat(100));
        s.append("b", 1, "b".repeat(100));
        assert_eq!(s.bytes(), records + 2 * unit);
        s.append("c", 2, "c".repeat(100));
        assert!(s.position("a").is_none(), "a's message and record made room");
        assert_eq!(s.bytes(), records + 2 * unit);
        assert_eq!(s.since("a", &a, 3, ALL), Recovery::Lost);
        assert_ne!(s.append("a", 4, "again".into()).epoch, a.epoch, "a new history for a");
        // A record whose last message went while there was room stays: a
        // client that saw that message missed nothing.
        let mut s = store(1000, None, records + 3 * unit);
        let a = s.append("a", 0, "a".repeat(100));
        for i in 0..3 {
            s.append("b", i, "b".repeat(100));
        }
        assert_eq!(s.since("a", &a, 3, ALL), Recovery::Recovered(vec![]));
        assert_eq!(s.since("a", &Position { offset: 0, ..a.clone() }, 3, ALL), Recovery::Lost);
    }

    #[test]
    fn memory_is_given_back_as_messages_go() {
        let mut s = store(2, None, 1 << 20);
        for i in 0..1000 {
            s.append(&format!("t{}", i % 10), i, "x".repeat(50));
        }
        assert_eq!(s.len(), 20);
        assert!(s.order.len() <= 2 * 20 + 64, "the age queue is compacted: {}", s.order.len());
        assert_eq!(
            s.bytes(),
            20 * (ENTRY_COST + 50) + (0..10).map(|i| RECORD_COST + format!("t{i}").len()).sum::<usize>()
        );
    }

    #[test]
    fn a_paced_reader_pages_through_and_an_opened_topic_gives_a_position_before_its_first_message() {
        let mut s = store(100, None, 1 << 20);
        let start = s.open("a", 0);
        assert_eq!(start.offset, 0, "nothing published yet");
        assert_eq!(s.open("a", 0), start, "opening again changes nothing");
        let (third, kept) = {
            for i in 1..=2 {
                s.append("a", 0, format!("m{i}"));
            }
            s.append_with("a", 0, |position| format!("m{} of {}", position.offset, position.epoch))
        };
        assert_eq!((third.offset, kept), (3, format!("m3 of {}", start.epoch)));
        for i in 4..=10 {
            s.append("a", 0, format!("m{i}"));
        }
        let mut at = start.clone();
        let mut pages = Vec::new();
        loop {
            let Recovery::Recovered(page) = s.since("a", &at, 0, 4) else { panic!("lost") };
            let Some(&(last, _)) = page.last() else { break };
            pages.push(page.iter().map(|m| m.0).collect::<Vec<_>>());
            at.offset = last;
        }
        assert_eq!(pages, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]]);
    }

    #[test]
    fn a_flood_of_empty_records_goes_before_any_message() {
        let unit = ENTRY_COST + 100;
        let mut s = store(1000, None, 10 * unit + 50 * (RECORD_COST + 8));
        let a = s.append("a", 0, "a".repeat(100));
        for i in 0..10_000 {
            s.open(&format!("empty-{i:04}"), 1);
            assert!(s.bytes() <= 10 * unit + 50 * (RECORD_COST + 8));
        }
        assert_eq!(
            s.since("a", &Position { offset: 0, ..a.clone() }, 2, ALL),
            Recovery::Recovered(vec![(1, "a".repeat(100))])
        );
        assert!(s.position("empty-9999").is_some(), "the latest opened stays");
        assert!(s.position("empty-0000").is_none(), "the oldest empty went");
        assert!(s.empty.len() <= 2 * s.topics.len() + 64);
    }
}
