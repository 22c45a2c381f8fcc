//! The handle a callback gets to act on its connection.

use std::fmt;

use bytes::Bytes;

use ringcast_proto::connection::Sender;
use ringcast_proto::{CloseCode, MessageKind, Role, State, UsageError};

use crate::alarm::Alarms;
use crate::config::SlowConsumer;
use crate::error::SubscribeError;
use crate::message::Message;
use crate::pubsub::{self, Delivery, Frame, LocalTopics, Subscriptions};
use crate::stats::Stats;
use crate::sys::OutQueue;

/// Identifies a connection for logs and maps: unique within a runtime's life
/// as long as fewer than 2^24 connections reuse the same table slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(crate) shard: u16,
    pub(crate) key: u32,
    pub(crate) generation: u32,
}

impl ConnId {
    /// The shard (thread) that owns the connection.
    pub fn shard(&self) -> usize {
        usize::from(self.shard)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}.{}", self.shard, self.key, self.generation)
    }
}

/// Reads back what `Display` wrote (`shard:key.generation`), e.g. an id
/// carried through another system and handed back to
/// [`Notes::notify`](crate::broker::Notes::notify).
impl std::str::FromStr for ConnId {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = "not a connection id (shard:key.generation)";
        let (shard, rest) = text.split_once(':').ok_or(bad)?;
        let (key, generation) = rest.split_once('.').ok_or(bad)?;
        Ok(ConnId {
            shard: shard.parse().map_err(|_| bad)?,
            key: key.parse().map_err(|_| bad)?,
            generation: generation.parse().map_err(|_| bad)?,
        })
    }
}

/// Why a send was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was sent or received: no more messages may follow.
    Closed,
    /// The connection's queue of unsent bytes is past `max_backpressure`:
    /// the message was dropped and the connection is closing with 1008.
    Backpressure,
    /// The connection's queue is past `max_backpressure` and the policy is
    /// [`SlowConsumer::Drop`]: this message was dropped (and counted); the
    /// connection stays open.
    Dropped,
    /// The call was invalid (e.g. a close code that may not be sent, or a
    /// control payload over 125 bytes).
    Usage(UsageError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the connection is closing"),
            SendError::Backpressure => f.write_str("the peer is not reading: backpressure limit reached"),
            SendError::Dropped => f.write_str("the peer is not reading: message dropped"),
            SendError::Usage(e) => write!(f, "invalid send: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// A connection, as a callback sees it: send, ping, close, pub/sub, and
/// the application's per-connection data.
///
/// Everything sent during one loop turn leaves in one system call at the end
/// of the turn, whichever connection it is for.
pub struct Ws<'a, C> {
    tx: &'a mut Sender,
    out: &'a mut OutQueue,
    data: &'a mut C,
    subs: &'a mut Subscriptions,
    id: ConnId,
    shard: &'a mut ShardCtx,
    /// The message being handled, when the shard took it out of the
    /// receiver (a large message that arrived in pieces): a send of exactly
    /// these bytes queues them by reference instead of copying them.
    received: Option<&'a Bytes>,
}

/// The shard-wide part of a callback's context: what any connection's
/// callback may touch besides its own connection.
pub(crate) struct ShardCtx {
    /// The shard's topic index and the publishes not yet delivered.
    pub topics: LocalTopics,
    /// The shard's counters (published once per loop turn).
    pub stats: Stats,
    /// `max_backpressure`: the unsent bytes a connection may hold.
    pub budget: usize,
    /// What happens to a connection past its budget.
    pub policy: SlowConsumer,
    /// The alarms handlers set on their connections.
    pub alarms: Alarms,
}

impl<'a, C> Ws<'a, C> {
    /// The handle for one callback on one connection.
    pub(crate) fn new(
        tx: &'a mut Sender,
        out: &'a mut OutQueue,
        data: &'a mut C,
        subs: &'a mut Subscriptions,
        id: ConnId,
        shard: &'a mut ShardCtx,
    ) -> Self {
        Ws { tx, out, data, subs, id, shard, received: None }
    }

    /// The handle for a message the shard holds as `received` (see the
    /// field).
    pub(crate) fn with_received(mut self, received: &'a Bytes) -> Self {
        self.received = Some(received);
        self
    }
}

impl<C> Ws<'_, C> {
    /// The application's data for this connection ([`Handler::Data`](crate::Handler::Data)).
    pub fn data(&self) -> &C {
        self.data
    }

    /// The application's data for this connection, mutably.
    pub fn data_mut(&mut self) -> &mut C {
        self.data
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Bytes queued for this connection and not yet sent.
    pub fn buffered_amount(&self) -> usize {
        self.out.buffered()
    }

    /// True until a close frame was sent or received.
    pub fn is_open(&self) -> bool {
        self.tx.state() == State::Open
    }

    /// Messages dropped for this connection under [`SlowConsumer::Drop`].
    pub fn dropped(&self) -> u64 {
        self.subs.as_ref().map_or(0, |state| state.dropped)
    }

    /// Queues a message (text or binary, as given).
    ///
    /// A message is always accepted when nothing is queued, so one message
    /// of any allowed size can go out; past that, a queue above
    /// `max_backpressure` refuses the message and, by the slow-consumer
    /// policy, closes the connection with 1008 (default) or drops the
    /// message and counts it. Either way a peer that does not read holds
    /// bounded memory.
    pub fn send(&mut self, message: Message<'_>) -> Result<(), SendError> {
        match message {
            Message::Text(t) => self.send_kind(MessageKind::Text, t.as_bytes()),
            Message::Binary(b) => self.send_kind(MessageKind::Binary, b),
        }
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_kind(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_kind(MessageKind::Binary, data)
    }

    fn send_kind(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        if !self.is_open() {
            return Err(SendError::Closed);
        }
        if !self.out.admits(payload.len(), self.shard.budget) {
            let refused = refuse_over_budget(self.shard.policy, self.tx, self.out, self.subs, self.id);
            if refused == SendError::Dropped {
                self.shard.stats.dropped += 1;
            }
            return Err(refused);
        }
        let received = self.received.filter(|r| r.as_ptr() == payload.as_ptr() && r.len() == payload.len());
        match received {
            // The large message in hand sent back: the header is written,
            // the payload queued where it lies.
            Some(bytes) if self.tx.send_by_reference(kind, bytes.len(), self.out.queue()).map_err(map_usage)? => {
                if self.out.push_shared(bytes) {
                    self.shard.stats.messages_by_reference += 1;
                }
            }
            _ => self.tx.send(kind, payload, self.out.queue()).map_err(map_usage)?,
        }
        self.shard.stats.messages_out += 1;
        Ok(())
    }

    /// Sends a ping (payload at most 125 bytes); the peer's pong reaches
    /// [`Handler::pong`](crate::Handler::pong).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.tx.ping(payload, self.out.queue()).map_err(map_usage)
    }

    /// Starts the closing handshake: sends a close frame with `code` and
    /// `reason` (at most 123 bytes), then waits for the peer's close up to
    /// the close timeout. Messages that arrive meanwhile are dropped.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.tx.close(Some(code), reason, self.out.queue()).map_err(map_usage)
    }
}

impl<C> Ws<'_, C> {
    /// Sets this connection's alarm: [`Handler::alarm`](crate::Handler::alarm)
    /// is called once, `after` from now (on the shard's 16 ms timer tick),
    /// unless the connection has ended by then. One alarm per connection:
    /// setting it again replaces it. Durations past 24 days are cut to 24
    /// days (set it again when it rings). Costs nothing to connections that
    /// never set one.
    pub fn set_alarm(&mut self, after: std::time::Duration) {
        self.shard.alarms.set(self.id.key, self.id.generation, after);
    }

    /// Unsets this connection's alarm; false if none was set.
    pub fn clear_alarm(&mut self) -> bool {
        self.shard.alarms.clear(self.id.key, self.id.generation)
    }

    /// Subscribes this connection to `topic`: from now on it receives
    /// what is published there, from any connection or thread, until it
    /// unsubscribes or closes. `Ok(true)` when subscribed, `Ok(false)` if
    /// it already was. Refused past the server's limits (a topic name
    /// longer than `max_topic_len`, more than `max_subscriptions` topics):
    /// the connection stays as it was, and the error says which limit.
    pub fn subscribe(&mut self, topic: &str) -> Result<bool, SubscribeError> {
        self.shard.topics.subscribe(topic, (self.id.key, self.id.generation), self.subs)
    }

    /// See [`WsExt::subscribe_after`](crate::broker::WsExt::subscribe_after).
    pub(crate) fn subscribe_from(&mut self, topic: &str, seq: u64) -> Result<bool, SubscribeError> {
        self.shard.topics.subscribe_after(topic, (self.id.key, self.id.generation), self.subs, seq)
    }

    /// Unsubscribes this connection from `topic`. Returns false if it was
    /// not subscribed.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        self.shard.topics.unsubscribe(topic, self.subs)
    }

    /// Whether this connection is subscribed to `topic`.
    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.subs.as_ref().is_some_and(|state| state.topics.iter().any(|(t, _)| &**t == topic))
    }

    /// Subscribers of `topic` across all shards, this connection included
    /// (as of their last change): lets a handler skip building a message
    /// nobody would receive.
    pub fn subscribers(&self, topic: &str) -> u64 {
        self.shard.topics.exchange().subscribers(topic)
    }

    /// Publishes `message` to every subscriber of `topic` on every shard,
    /// except this connection (as uWebSockets' `ws->publish` does; the
    /// connection gets its own message too with
    /// [`publish_including_self`](Self::publish_including_self), and a
    /// publish from outside a callback,
    /// [`ServerHandle::publish`](crate::ServerHandle::publish), reaches
    /// every subscriber). The connection need not subscribe to `topic` to
    /// publish there. The frame is built once and shared. This
    /// shard's other subscribers get it once the shard has handled the
    /// completion whose callback published it (with that completion's other
    /// publishes, in publish order); other shards get it through their
    /// mailboxes at once. A subscriber past its backpressure budget is
    /// treated by the slow-consumer policy (closed with 1008, or the
    /// message is dropped for it and counted). Returns the number of
    /// receivers at the time of the call.
    pub fn publish(&mut self, topic: &str, message: Message<'_>) -> u64 {
        self.publish_from(topic, message, true)
    }

    /// See [`WsExt::frame`](crate::broker::WsExt::frame).
    pub(crate) fn exchange_frame(&self, message: Message<'_>) -> Frame {
        self.shard.topics.exchange().frame(message)
    }

    /// See [`WsExt::send_frame`](crate::broker::WsExt::send_frame).
    pub(crate) fn queue_frame(&mut self, frame: &Frame) -> Result<(), SendError> {
        let (budget, policy) = (self.shard.budget, self.shard.policy);
        match offer_frame(frame, self.tx, self.out, self.subs, self.id, budget, policy) {
            Offer::Queued { by_reference, compressed } => {
                self.count_queued(by_reference, compressed);
                Ok(())
            }
            Offer::Dropped => {
                self.shard.stats.dropped += 1;
                Err(SendError::Dropped)
            }
            Offer::Closing => Err(SendError::Backpressure),
            Offer::NotOpen => Err(SendError::Closed),
        }
    }

    fn count_queued(&mut self, by_reference: bool, compressed: bool) {
        self.shard.stats.messages_out += 1;
        self.shard.stats.messages_by_reference += u64::from(by_reference);
        self.shard.stats.publishes_deflated += u64::from(compressed);
    }

    /// Like [`publish`](Self::publish), but this connection receives the
    /// message too if it subscribes to `topic`: for rooms where a sender
    /// wants its own message back in the room's order (its confirmation
    /// that everybody was sent it).
    pub fn publish_including_self(&mut self, topic: &str, message: Message<'_>) -> u64 {
        self.publish_from(topic, message, false)
    }

    fn publish_from(&mut self, topic: &str, message: Message<'_>, exclude_self: bool) -> u64 {
        let me = (self.id.key, self.id.generation);
        // The shard's other subscribers get it after the callback; this
        // connection's copy (publish_including_self) is queued now, so that it keeps
        // its place among the frames this connection is sent: a close frame
        // queued later in the same read (a protocol error) must not
        // overtake it.
        let delivery = self.shard.topics.exchange().delivery(topic, message, Some(me));
        let remote = self.shard.topics.exchange().forward(&delivery, Some(self.shard.topics.shard()));
        let subscribed = self.is_subscribed(topic);
        let local = self.shard.topics.count(topic) - u64::from(subscribed);
        if subscribed && !exclude_self {
            self.queue_delivery(&delivery);
        }
        self.shard.topics.pending.push(delivery);
        remote + local + u64::from(subscribed && !exclude_self)
    }

    /// Queues a published frame on this connection, like any delivery.
    fn queue_delivery(&mut self, delivery: &Delivery) {
        let (budget, policy) = (self.shard.budget, self.shard.policy);
        match offer_frame(&delivery.frame, self.tx, self.out, self.subs, self.id, budget, policy) {
            Offer::Queued { by_reference, compressed } => self.count_queued(by_reference, compressed),
            Offer::Dropped => self.shard.stats.dropped += 1,
            Offer::Closing | Offer::NotOpen => {}
        }
    }
}

/// What became of a published frame offered to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued for sending: by reference (shared, not copied) or not.
    Queued {
        by_reference: bool,
        /// This offer compressed the publish (the first to need it).
        compressed: bool,
    },
    /// Over budget under the drop policy: dropped (and counted on the
    /// connection; the shard-wide counter is the caller's).
    Dropped,
    /// Over budget under the close policy: the connection is closing.
    Closing,
    /// The connection no longer takes messages (a close was sent or
    /// received).
    NotOpen,
}

/// Offers a published frame to one connection under its budget and the
/// slow-consumer policy. The one rule for deliveries, whether the shard
/// delivers after a callback or a publisher serves itself at once.
pub(crate) fn offer_frame(
    published: &Frame,
    tx: &mut Sender,
    out: &mut OutQueue,
    subs: &mut Subscriptions,
    id: ConnId,
    budget: usize,
    policy: SlowConsumer,
) -> Offer {
    if tx.state() != State::Open {
        return Offer::NotOpen;
    }
    // The shared frame fits everyone but connections that must encode their
    // own: clients (a mask key of their own) and connections whose
    // extension keeps state between messages (deflate context takeover).
    // A connection with deflate and no context takes the frame compressed
    // once for everyone.
    let encodes_alone = tx.extension_encodes_alone();
    let own_encoding = tx.role() == Role::Client || encodes_alone == Some(false);
    let mut compressed = false;
    let frame = match (own_encoding, encodes_alone, &published.deflated) {
        (false, Some(true), Some(deflated)) => deflated.frame(&published.bytes, &mut compressed),
        _ => &published.bytes,
    };
    if out.admits(frame.len(), budget) {
        if own_encoding {
            let (kind, payload) = pubsub::unframe(frame);
            let _ = tx.send(kind, payload, out.queue());
            return Offer::Queued { by_reference: false, compressed };
        }
        return Offer::Queued { by_reference: out.push_shared(frame), compressed };
    }
    match refuse_over_budget(policy, tx, out, subs, id) {
        SendError::Dropped => Offer::Dropped,
        _ => Offer::Closing,
    }
}

/// What a connection past its backpressure budget gets, by `policy`: the
/// message is dropped and counted on the connection, or the connection is
/// closed with 1008. Returns what the sender is told. (Shared by `Ws::send`
/// and pub/sub delivery; the shard-wide drop counter is the caller's.)
pub(crate) fn refuse_over_budget(
    policy: SlowConsumer,
    tx: &mut Sender,
    out: &mut OutQueue,
    subs: &mut Subscriptions,
    id: ConnId,
) -> SendError {
    match policy {
        SlowConsumer::Drop => {
            subs.get_or_insert_with(Default::default).dropped += 1;
            SendError::Dropped
        }
        SlowConsumer::Close => {
            tracing::debug!(conn = %id, buffered = out.buffered(), "backpressure limit: closing with 1008");
            let _ = tx.close(Some(CloseCode::POLICY), "backpressure", out.queue());
            SendError::Backpressure
        }
    }
}

fn map_usage(e: UsageError) -> SendError {
    match e {
        UsageError::Closing => SendError::Closed,
        other => SendError::Usage(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_id_reads_back_what_it_prints() {
        let id = ConnId { shard: 3, key: 70_000, generation: 0xFF_FFFF };
        assert_eq!(id.to_string().parse::<ConnId>(), Ok(id));
        for bad in ["", "1", "1:2", "1.2:3", "x:1.2", "1:2.3.4", "70000:1.1"] {
            assert!(bad.parse::<ConnId>().is_err(), "{bad}");
        }
    }
}
