//! What a broker built on this runtime needs beyond everyday pub/sub: the
//! machinery `ringcast-hub` uses for history, recovery and clustering,
//! kept apart so that the everyday API stays small.
//!
//! Everyday pub/sub ([`Ws::subscribe`], [`Ws::publish`],
//! [`ServerHandle::publish`]) delivers each publish once to the
//! subscribers of the moment, in the order the publisher made them. A
//! broker that keeps a topic's history and replays it to late or
//! returning subscribers needs more, and this module has it:
//!
//! - **Kept frames** ([`Frame`]): a message framed once, kept in a
//!   history, sent to a replaying connection by reference
//!   ([`WsExt::send_frame`]) and published without framing it again.
//! - **Sequenced publishes** ([`ServerExt::publish_sequenced`]): every
//!   subscriber gets the message through its shard's mailbox, so
//!   publishes made one after another under the lock that numbers the
//!   topic's messages reach every subscriber in that order, each with its
//!   place in the sequence.
//! - **Subscriptions from a place** ([`WsExt::subscribe_after`],
//!   [`Notes::join`]): deliveries at places already replayed are skipped,
//!   so a replay hands over to live delivery with no gap and no duplicate.
//! - **Notes** ([`Notes`], [`ServerExt::notes`]): typed values posted from
//!   any thread to one connection's [`Handler::notified`], in mailbox order
//!   with the deliveries posted before them.
//! - **Interest** ([`BuilderExt::on_interest`]): a call when a topic gains
//!   its first subscriber on the runtime and loses its last, for a bridge
//!   that subscribes to another broker only while someone here listens.
//!
//! The methods come as extension traits of the everyday types: bring them
//! in with `use ringcast::broker::{ServerExt, WsExt};`.
//!
//! [`Handler::notified`]: crate::Handler::notified

use crate::message::Message;
use crate::server::{ServerBuilder, ServerHandle};
use crate::ws::{ConnId, SendError, Ws};

pub use crate::notes::Notes;
pub use crate::pubsub::Frame;

/// A broker's calls on a running server.
pub trait ServerExt {
    /// `message` framed once, to publish or send any number of times
    /// ([`publish_sequenced`](Self::publish_sequenced),
    /// [`WsExt::send_frame`]).
    fn frame(&self, message: Message<'_>) -> Frame;

    /// Publishes a message framed before to every subscriber of `topic`,
    /// every one of them through its shard's mailbox (the caller's shard
    /// too: no subscriber is served ahead of the others), so that calls
    /// made one after another, e.g. under a lock that orders a topic's
    /// publishes, reach every subscriber in that order. `seq` (0: none)
    /// is the message's place in the topic's sequence, for subscriptions
    /// made with [`WsExt::subscribe_after`] or [`Notes::join`]; `except`
    /// (a publisher) does not receive it. Returns the subscribers it was
    /// posted for, `except` included if it subscribes.
    fn publish_sequenced(&self, topic: &str, frame: &Frame, seq: u64, except: Option<ConnId>) -> u64;

    /// The way to post notes of type `N` to this server's connections
    /// from any thread ([`Notes::notify`], [`Notes::join`]); `None` if `N`
    /// is not the note type of the server's handler
    /// ([`Handler<N>`](crate::Handler)).
    fn notes<N: Send + 'static>(&self) -> Option<Notes<N>>;
}

impl ServerExt for ServerHandle {
    fn frame(&self, message: Message<'_>) -> Frame {
        self.runtime().frame(message)
    }

    fn publish_sequenced(&self, topic: &str, frame: &Frame, seq: u64, except: Option<ConnId>) -> u64 {
        self.runtime().publish_sequenced(topic, frame, seq, except)
    }

    fn notes<N: Send + 'static>(&self) -> Option<Notes<N>> {
        Notes::of(self.runtime())
    }
}

/// A broker's calls on a connection, from its callbacks.
pub trait WsExt {
    /// `message` framed once, to send or publish any number of times
    /// ([`send_frame`](Self::send_frame),
    /// [`ServerExt::publish_sequenced`]).
    fn frame(&self, message: Message<'_>) -> Frame;

    /// Sends a message framed before: its bytes are queued by reference,
    /// not copied (a connection that encodes its own frames, a client or
    /// one with compression context, encodes it again). Past the
    /// backpressure budget the slow-consumer policy applies, as for
    /// published messages.
    fn send_frame(&mut self, frame: &Frame) -> Result<(), SendError>;

    /// Subscribes this connection to `topic` from the place `seq` in the
    /// topic's sequence on: messages published with
    /// [`ServerExt::publish_sequenced`] at places up to `seq` that have not
    /// reached this shard yet are skipped for it. The way to hand over
    /// from a replay of a history (sent with
    /// [`send_frame`](Self::send_frame)) to live delivery with no gap and
    /// no duplicate: take `seq` and subscribe under the same lock that
    /// orders the topic's publishes. Ok(false) if it already was subscribed
    /// (nothing changes); the limits of [`Ws::subscribe`] apply.
    fn subscribe_after(&mut self, topic: &str, seq: u64) -> Result<bool, crate::SubscribeError>;
}

impl<C> WsExt for Ws<'_, C> {
    fn frame(&self, message: Message<'_>) -> Frame {
        self.exchange_frame(message)
    }

    fn send_frame(&mut self, frame: &Frame) -> Result<(), SendError> {
        self.queue_frame(frame)
    }

    fn subscribe_after(&mut self, topic: &str, seq: u64) -> Result<bool, crate::SubscribeError> {
        self.subscribe_from(topic, seq)
    }
}

/// A broker's settings of a server.
pub trait BuilderExt: Sized {
    /// Calls `watch(topic, true)` when `topic` gains its first subscriber
    /// on this runtime (any shard) and `watch(topic, false)` when it loses
    /// its last: what a bridge to another broker needs to hold a
    /// subscription there only while someone here listens. The calls come
    /// in the order of the changes, from the shard thread that made the
    /// change, under the lock of the interest table: keep `watch` short
    /// (note the topic and wake your own thread) and do not call the
    /// handle's `publish` or `subscribers` from it, which take that lock.
    fn on_interest(self, watch: impl Fn(&str, bool) + Send + Sync + 'static) -> Self;
}

impl BuilderExt for ServerBuilder {
    fn on_interest(mut self, watch: impl Fn(&str, bool) + Send + Sync + 'static) -> Self {
        self.settings.interest_watch = Some(crate::config::Shared(std::sync::Arc::new(watch)));
        self
    }
}
