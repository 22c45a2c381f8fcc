//! Publish/subscribe: each shard indexes its own subscribers by topic; a
//! shared interest table says which shards have subscribers of a topic; a
//! message is framed once and handed to every interested shard through its
//! mailbox (the shard's ring wakes on its eventfd).
//!
//! Ordering: a shard delivers its own publishes and its mailbox in arrival
//! order, and one publisher's messages enter every mailbox in publish order,
//! so per topic one publisher's messages arrive in order everywhere; per
//! connection, bytes leave in the order they were queued.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use ringcast_proto::deflate::Tuning;
use slab::Slab;

use crate::config::InterestWatch;
use crate::error::SubscribeError;
use crate::inbox::Inbox;
use crate::message::Message;

/// A message framed once, to publish or send any number of times: server
/// frames are unmasked, so every receiver gets the same bytes, shared, not
/// copied. Its compressed form, when the server negotiates
/// permessage-deflate and the message is over the threshold, is made by the
/// first connection that takes it and shared from then on. Made by
/// [`ServerExt::frame`](crate::broker::ServerExt::frame) or
/// [`WsExt::frame`](crate::broker::WsExt::frame); keep one to send it
/// again later (a history of messages), with
/// [`WsExt::send_frame`](crate::broker::WsExt::send_frame).
#[derive(Debug, Clone)]
pub struct Frame {
    /// The whole server frame.
    pub(crate) bytes: Bytes,
    /// Its compressed form, when the runtime negotiates permessage-deflate.
    pub(crate) deflated: Option<Arc<Deflated>>,
}

impl Frame {
    /// The message's payload (what a receiver gets).
    pub fn payload(&self) -> &[u8] {
        unframe(&self.bytes).1
    }

    /// Whether it is a text message.
    pub fn is_text(&self) -> bool {
        unframe(&self.bytes).0 == ringcast_proto::MessageKind::Text
    }

    /// The bytes it holds: the frame, and its compressed form once made.
    pub fn memory(&self) -> usize {
        let compressed = self.deflated.as_ref().and_then(|d| d.frame.get()).map_or(0, |f| f.len());
        self.bytes.len() + compressed
    }
}

/// A framed message on its way to a topic's subscribers.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub topic: Arc<str>,
    pub frame: Frame,
    /// The publishing connection (table key, generation), skipped on its
    /// own shard.
    pub exclude: Option<(u32, u32)>,
    /// Its place in its topic's sequence (0: none), for subscriptions made
    /// after a given place ([`LocalTopics::subscribe_after`]).
    pub seq: u64,
}

/// A published message's permessage-deflate frame (compressed on its own,
/// RSV1 set), made by whichever shard first delivers the message to a
/// connection that takes it, then shared by every such connection on every
/// shard: one compression per publish. Only messages at or above the
/// compression threshold carry one ([`Exchange::delivery`]).
#[derive(Debug)]
pub(crate) struct Deflated {
    tuning: Tuning,
    frame: OnceLock<Bytes>,
}

impl Deflated {
    /// The compressed form of `plain` (the message's frame). `made` is set
    /// when this call compressed it.
    pub fn frame(&self, plain: &Bytes, made: &mut bool) -> &Bytes {
        self.frame.get_or_init(|| {
            *made = true;
            let (kind, payload) = unframe(plain);
            let mut compressed = Vec::with_capacity(payload.len() / 2 + 16);
            ringcast_proto::deflate::PerMessageDeflate::compress_alone(payload, &self.tuning, &mut compressed);
            let mut out = Vec::with_capacity(compressed.len() + 10);
            ringcast_proto::frame::encode_frame_rsv(&mut out, true, 0b100, kind.opcode(), &compressed, None);
            Bytes::from(out)
        })
    }
}

/// Subscriber counts of one topic, per shard.
#[derive(Debug)]
struct Interest {
    per_shard: Box<[AtomicU64]>,
}

/// What a shard's mailbox carries.
pub(crate) enum Post {
    /// A publish to deliver to the topic's local subscribers.
    Delivery(Delivery),
    /// A note for one connection (table key, generation), handed to the
    /// handler's `notified` in mailbox order.
    Note((u32, u32), Box<dyn Any + Send>),
    /// Subscribes one connection to a topic after a place, then hands it
    /// the note; the topic's interest on this shard was counted when this
    /// was posted (so deliveries posted after it come here).
    Join { conn: (u32, u32), topic: Arc<str>, after: u64, note: Box<dyn Any + Send> },
}

/// A shard's mailbox: deliveries and notes from other shards and from the
/// handle.
pub(crate) type Mailbox = Inbox<Post>;

/// The runtime's pub/sub exchange, what the shards and the handle share:
/// which shards have subscribers of which topic, and each shard's mailbox.
pub(crate) struct Exchange {
    interest: RwLock<HashMap<Arc<str>, Arc<Interest>>>,
    mailboxes: Vec<Arc<Mailbox>>,
    /// Told of every entry the table gains or loses, under its write lock,
    /// so the calls come in the order of the table's changes.
    watch: Option<InterestWatch>,
    /// permessage-deflate's level, threshold and shared window, when
    /// negotiated.
    deflate: Option<Tuning>,
}

impl Exchange {
    pub fn new(mailboxes: Vec<Arc<Mailbox>>, watch: Option<InterestWatch>, deflate: Option<Tuning>) -> Self {
        Exchange { interest: RwLock::default(), mailboxes, watch, deflate }
    }

    /// `message` framed once (and compressed once later, if a subscriber
    /// takes that form).
    pub fn frame(&self, message: Message<'_>) -> Frame {
        let deflated = self
            .deflate
            .filter(|tuning| message.as_bytes().len() >= tuning.threshold)
            .map(|tuning| Arc::new(Deflated { tuning, frame: OnceLock::new() }));
        Frame { bytes: frame(message), deflated }
    }

    /// A publish of `message` on `topic`.
    pub fn delivery(&self, topic: &str, message: Message<'_>, exclude: Option<(u32, u32)>) -> Delivery {
        Delivery { topic: Arc::from(topic), frame: self.frame(message), exclude, seq: 0 }
    }

    fn interest(&self, topic: &str) -> Option<Arc<Interest>> {
        self.interest.read().unwrap_or_else(|e| e.into_inner()).get(topic).cloned()
    }

    /// Subscribers of `topic` on every shard.
    pub fn subscribers(&self, topic: &str) -> u64 {
        self.interest(topic).map_or(0, |i| i.per_shard.iter().map(|c| c.load(Ordering::Relaxed)).sum())
    }

    fn add(&self, topic: &Arc<str>, shard: usize) {
        {
            // The count goes up under the read lock: `remove` decides that
            // an entry is empty under the write lock, so it cannot drop an
            // entry between our lookup and our increment.
            let table = self.interest.read().unwrap_or_else(|e| e.into_inner());
            if let Some(interest) = table.get(topic) {
                interest.per_shard[shard].fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut table = self.interest.write().unwrap_or_else(|e| e.into_inner());
        let mut created = false;
        let interest = table.entry(topic.clone()).or_insert_with(|| {
            created = true;
            Arc::new(Interest { per_shard: (0..self.mailboxes.len()).map(|_| AtomicU64::new(0)).collect() })
        });
        interest.per_shard[shard].fetch_add(1, Ordering::Relaxed);
        if created {
            if let Some(watch) = &self.watch {
                (watch.0)(topic, true);
            }
        }
    }

    fn remove(&self, topic: &str, shard: usize) {
        let last_here = {
            let table = self.interest.read().unwrap_or_else(|e| e.into_inner());
            let Some(interest) = table.get(topic) else { return };
            interest.per_shard[shard].fetch_sub(1, Ordering::Relaxed) == 1
        };
        if last_here {
            // Possibly the last subscriber anywhere: drop the entry if so
            // (re-checked under the write lock, which holds off `add`).
            let mut table = self.interest.write().unwrap_or_else(|e| e.into_inner());
            let empty = table.get(topic).is_some_and(|i| i.per_shard.iter().all(|c| c.load(Ordering::Relaxed) == 0));
            if empty {
                table.remove(topic);
                if let Some(watch) = &self.watch {
                    (watch.0)(topic, false);
                }
            }
        }
    }

    /// Hands `delivery` to every shard with subscribers of its topic,
    /// except `skip` (the publishing shard, which delivers itself).
    pub fn forward(&self, delivery: &Delivery, skip: Option<usize>) -> u64 {
        self.post(delivery, |shard| (Some(shard) != skip).then_some(None))
    }

    /// Hands `delivery` to every shard with subscribers of its topic, the
    /// caller's own included, so that deliveries posted in some order reach
    /// every subscriber in that order; `except` (shard, connection) is
    /// skipped on its shard.
    pub fn forward_all(&self, delivery: &Delivery, except: Option<(usize, (u32, u32))>) -> u64 {
        self.post(delivery, |shard| Some(except.filter(|(s, _)| *s == shard).map(|(_, conn)| conn)))
    }

    /// Posts a note for connection `conn` (table key, generation) on
    /// `shard`, behind whatever that shard's mailbox holds.
    pub fn notify(&self, shard: usize, conn: (u32, u32), note: Box<dyn Any + Send>) {
        if let Some(mailbox) = self.mailboxes.get(shard) {
            mailbox.post(Post::Note(conn, note));
        }
    }

    /// Counts connection `conn` of `shard` as a subscriber of `topic` now
    /// and posts its subscription (with `note`) behind whatever that
    /// shard's mailbox holds.
    pub fn join(&self, shard: usize, conn: (u32, u32), topic: &str, after: u64, note: Box<dyn Any + Send>) {
        let Some(mailbox) = self.mailboxes.get(shard) else { return };
        let topic: Arc<str> = Arc::from(topic);
        self.add(&topic, shard);
        mailbox.post(Post::Join { conn, topic, after, note });
    }

    /// Takes back a count made by [`join`](Self::join) whose subscription
    /// did not happen (the connection was gone or already subscribed).
    pub fn unjoin(&self, topic: &str, shard: usize) {
        self.remove(topic, shard);
    }

    /// Posts `delivery` to each interested shard that `exclude` (given the
    /// shard) answers, with the connection it answers skipped there;
    /// returns the subscribers of those shards (a skipped one included).
    fn post(&self, delivery: &Delivery, exclude: impl Fn(usize) -> Option<Option<(u32, u32)>>) -> u64 {
        let Some(interest) = self.interest(&delivery.topic) else { return 0 };
        let mut receivers = 0;
        for (shard, count) in interest.per_shard.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let Some(skip) = exclude(shard) else { continue };
            receivers += count;
            self.mailboxes[shard].post(Post::Delivery(Delivery { exclude: skip, ..delivery.clone() }));
        }
        receivers
    }
}

/// Frames a message once, for any number of receivers: server frames are
/// unmasked, so every receiver gets the same bytes.
pub(crate) fn frame(message: Message<'_>) -> Bytes {
    use ringcast_proto::frame::{encode_frame, OpCode};
    let (opcode, payload) = match message {
        Message::Text(t) => (OpCode::Text, t.as_bytes()),
        Message::Binary(b) => (OpCode::Binary, b),
    };
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_frame(&mut out, true, opcode, payload, None);
    Bytes::from(out)
}

/// The kind and payload of a frame built by [`frame`] (unmasked, final,
/// any length), for connections that must re-encode it (clients mask).
pub(crate) fn unframe(frame: &[u8]) -> (ringcast_proto::MessageKind, &[u8]) {
    let kind =
        if frame[0] & 0x0f == 0x1 { ringcast_proto::MessageKind::Text } else { ringcast_proto::MessageKind::Binary };
    let header = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    (kind, &frame[header..])
}

/// What a connection keeps about pub/sub: each topic with its slot in the
/// topic's subscriber table, and the messages dropped for it under the
/// drop policy.
#[derive(Debug, Default)]
pub(crate) struct SubState {
    pub topics: Vec<(Arc<str>, usize)>,
    pub dropped: u64,
}

/// Boxed and allocated on first use: most connections never subscribe, and
/// the slot of an idle connection stays small.
pub(crate) type Subscriptions = Option<Box<SubState>>;

/// One shard's topic index and the publishes its callbacks made.
pub(crate) struct LocalTopics {
    shard: usize,
    exchange: Arc<Exchange>,
    topics: HashMap<Arc<str>, Slab<(u32, u32)>>,
    /// Published by handlers and not yet delivered on this shard: the
    /// shard delivers them once it has handled the completion whose
    /// callbacks published them.
    pub pending: Vec<Delivery>,
    /// Subscriptions made after a place in their topic's sequence
    /// (topic, connection, place): deliveries up to that place, still in
    /// the mailbox, are not theirs. Each goes once a later delivery of its
    /// topic arrives (mailboxes are in order) or the subscription ends.
    fences: Vec<(Arc<str>, (u32, u32), u64)>,
    /// What one connection may subscribe to.
    limits: TopicLimits,
}

/// The subscription limits of every connection (the builder's
/// `max_subscriptions` and `max_topic_len`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicLimits {
    pub subscriptions: usize,
    pub name: usize,
}

impl LocalTopics {
    pub fn new(shard: usize, exchange: Arc<Exchange>, limits: TopicLimits) -> Self {
        LocalTopics { shard, exchange, topics: HashMap::new(), pending: Vec::new(), fences: Vec::new(), limits }
    }

    pub fn exchange(&self) -> &Arc<Exchange> {
        &self.exchange
    }

    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Subscribes connection `conn`; Ok(false) if it already was.
    pub fn subscribe(
        &mut self,
        topic: &str,
        conn: (u32, u32),
        subs: &mut Subscriptions,
    ) -> Result<bool, SubscribeError> {
        let Some(name) = self.insert(topic, conn, subs)? else { return Ok(false) };
        self.exchange.add(&name, self.shard);
        Ok(true)
    }

    /// Enters connection `conn` in the shard's index of `topic` (the shared
    /// interest count is the caller's); `None` if it already was; an error
    /// past the connection's limits.
    fn insert(
        &mut self,
        topic: &str,
        conn: (u32, u32),
        subs: &mut Subscriptions,
    ) -> Result<Option<Arc<str>>, SubscribeError> {
        if topic.len() > self.limits.name {
            return Err(SubscribeError::TopicTooLong { limit: self.limits.name });
        }
        let list = &mut subs.get_or_insert_with(Default::default).topics;
        if list.iter().any(|(t, _)| &**t == topic) {
            return Ok(None);
        }
        if list.len() >= self.limits.subscriptions {
            return Err(SubscribeError::TooManyTopics { limit: self.limits.subscriptions });
        }
        let name = match self.topics.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => Arc::from(topic),
        };
        let slot = self.topics.entry(name.clone()).or_default().insert(conn);
        list.push((name.clone(), slot));
        Ok(Some(name))
    }

    /// A subscription posted by [`Exchange::join`], whose interest was counted
    /// then: enters it from the place `after` on; false (and the count
    /// taken back) if it already was subscribed or is past the limits.
    pub fn joined(&mut self, topic: &str, conn: (u32, u32), subs: &mut Subscriptions, after: u64) -> bool {
        let name = match self.insert(topic, conn, subs) {
            Ok(Some(name)) => name,
            not_entered => {
                if let Err(refused) = not_entered {
                    tracing::debug!(%refused, "a joined subscription was refused");
                }
                self.exchange.unjoin(topic, self.shard);
                return false;
            }
        };
        if after > 0 {
            self.fences.push((name, conn, after));
        }
        true
    }

    /// Subscribes connection `conn` from the place `after` on: deliveries
    /// of `topic` whose place ([`Delivery::seq`]) is at most `after` are
    /// skipped for it. Ok(false) if it already was subscribed (it stays as
    /// it was).
    pub fn subscribe_after(
        &mut self,
        topic: &str,
        conn: (u32, u32),
        subs: &mut Subscriptions,
        after: u64,
    ) -> Result<bool, SubscribeError> {
        let Some(name) = self.insert(topic, conn, subs)? else { return Ok(false) };
        self.exchange.add(&name, self.shard);
        if after > 0 {
            self.fences.push((name, conn, after));
        }
        Ok(true)
    }

    /// The connections a delivery of `topic` at place `seq` skips (their
    /// subscription starts after it); fences it passes are taken down.
    pub fn fenced(&mut self, topic: &str, seq: u64) -> Vec<(u32, u32)> {
        let mut skip = Vec::new();
        if seq == 0 || self.fences.is_empty() {
            return skip;
        }
        self.fences.retain(|(name, conn, after)| {
            if **name != *topic {
                return true;
            }
            if seq <= *after {
                skip.push(*conn);
                return true;
            }
            false
        });
        skip
    }

    /// Unsubscribes; false if it was not subscribed.
    pub fn unsubscribe(&mut self, topic: &str, subs: &mut Subscriptions) -> bool {
        let Some(state) = subs.as_mut() else { return false };
        let Some(at) = state.topics.iter().position(|(t, _)| &**t == topic) else { return false };
        let (name, slot) = state.topics.swap_remove(at);
        self.drop_slot(&name, slot);
        if state.topics.is_empty() && state.dropped == 0 {
            *subs = None;
        }
        true
    }

    /// Unsubscribes from everything (the connection is going away).
    pub fn unsubscribe_all(&mut self, subs: &mut Subscriptions) {
        if let Some(state) = subs.take() {
            for (name, slot) in state.topics {
                self.drop_slot(&name, slot);
            }
        }
    }

    fn drop_slot(&mut self, name: &Arc<str>, slot: usize) {
        if let Some(subscribers) = self.topics.get_mut(name) {
            let conn = subscribers.try_remove(slot);
            if !self.fences.is_empty() {
                self.fences.retain(|(topic, fenced, _)| !(topic == name && Some(*fenced) == conn));
            }
            if subscribers.is_empty() {
                self.topics.remove(name);
            }
            self.exchange.remove(name, self.shard);
        }
    }

    /// How many local connections subscribe to `topic`.
    pub fn count(&self, topic: &str) -> u64 {
        self.topics.get(topic).map_or(0, |s| s.len() as u64)
    }

    /// The local subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.topics.get(topic).into_iter().flat_map(|s| s.iter().map(|(_, conn)| *conn))
    }
}
