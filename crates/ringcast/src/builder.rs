//! The settings every runtime has, whatever its role. [`ServerBuilder`]
//! and [`ClientBuilder`] are this one builder with a role attached: the
//! limits, timeouts and shard settings below are written once, for both;
//! each role adds its own settings and its `start`.
//!
//! [`ServerBuilder`]: crate::ServerBuilder
//! [`ClientBuilder`]: crate::ClientBuilder

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Settings, SlowConsumer};
use crate::error::Error;

/// Configures and starts a runtime; see [`ServerBuilder`](crate::ServerBuilder)
/// and [`ClientBuilder`](crate::ClientBuilder). Every limit has a safe
/// default. The limits protect either end from a hostile peer the same way.
#[derive(Debug, Clone)]
pub struct Builder<R> {
    pub(crate) settings: Settings,
    pub(crate) role: R,
}

impl<R> Builder<R> {
    pub(crate) fn with(settings: Settings, role: R) -> Self {
        Builder { settings, role }
    }

    /// The settings, checked for values that cannot work (the check both
    /// roles' `start` make first), and the role.
    pub(crate) fn into_checked(self) -> Result<(Arc<Settings>, R), Error> {
        self.settings.check().map_err(Error::Config)?;
        Ok((Arc::new(self.settings), self.role))
    }

    /// Number of shards (threads, each with its own ring; a server's each
    /// with its own listener). Default: a server runs one per CPU the
    /// process may use, a client one.
    pub fn shards(mut self, shards: usize) -> Self {
        self.settings.shards = shards;
        self
    }

    /// The number of shards `start` will run: for sizing per-shard state
    /// before starting.
    pub fn shard_count(&self) -> usize {
        self.settings.shards
    }

    /// Pin shard `i` to the `i`-th CPU the process may run on, so a shard
    /// never migrates and keeps its caches warm. Default: true for a
    /// server, false for a client (which usually shares the machine with
    /// other work).
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.settings.pin_threads = pin;
        self
    }

    /// Largest message the peer may send, all fragments together (default
    /// 16 MiB); larger closes the connection with 1009. A server also
    /// refuses plain HTTP request bodies above it (413).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes;
        self
    }

    /// Largest single frame (default 16 MiB); larger closes with 1009.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.settings.max_frame_size = bytes;
        self
    }

    /// Largest HTTP head the peer may send (default 8 KiB): a request head
    /// (larger is answered 431) or an upgrade response head (larger fails
    /// the connect).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_header_bytes = bytes;
        self
    }

    /// Unsent bytes a connection may hold (queued, plus the buffer the
    /// kernel is sending) before more sent or published to it meets the
    /// slow-consumer policy (default 1 MiB). One message is always accepted
    /// into an empty queue, whatever its size.
    pub fn max_backpressure(mut self, bytes: usize) -> Self {
        self.settings.max_backpressure = bytes;
        self
    }

    /// What to do with a connection past `max_backpressure`: close it with
    /// 1008 (default) or drop what is sent to it and count the drops.
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.settings.slow_consumer = policy;
        self
    }

    /// Open connections, split evenly over the shards (default 100 000).
    /// Past it a server answers new connections 503 and a client's
    /// connects fail with [`ConnectError::Limit`](crate::ConnectError::Limit).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.settings.max_connections = connections;
        self
    }

    /// Time for the opening handshake (default 10 s): a server's peer must
    /// send its whole request head within it; a client's TCP connect and
    /// upgrade response together must fit in it (else
    /// [`ConnectError::Timeout`](crate::ConnectError::Timeout)).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.settings.handshake_timeout = timeout;
        self
    }

    /// Silence after which a connection is pinged (default 120 s); `None`
    /// disables the check.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// Time the peer has to answer the idle ping with anything (default
    /// 30 s) before the connection is dropped.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.settings.pong_timeout = timeout;
        self
    }

    /// Time allowed for the closing handshake and for the peer to hang up
    /// after it (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.settings.close_timeout = timeout;
        self
    }

    /// Receive buffers per shard, shared by all its connections: `count`
    /// (a power of two) buffers of `size` bytes (default 128 × 128 KiB).
    /// A read fills one buffer; messages larger than a buffer are
    /// assembled, which costs a copy and, above all, one more receive per
    /// buffer (64 KiB echoes: 18 µs of server CPU each with 128 KiB
    /// buffers, 24 µs with 32 KiB ones). Only a window of the pool that
    /// follows the load is resident (8 buffers at least), so large buffers
    /// cost memory only while traffic needs them; `count` caps how many
    /// reads a turn can take before receives pause and re-arm.
    pub fn recv_buffers(mut self, count: u16, size: u32) -> Self {
        self.settings.recv_buffers = count;
        self.settings.recv_buffer_size = size;
        self
    }

    /// The kernel send buffer of every connection (`SO_SNDBUF`; Linux
    /// doubles the value for its bookkeeping). Default: unset, and the
    /// kernel autotunes each socket's buffer up to `net.ipv4.tcp_wmem`'s
    /// maximum (4 MiB on most systems), which no budget of ours bounds: a
    /// subscriber that stops reading costs its `max_backpressure` in the
    /// shard *plus* up to that much in the kernel. Setting it (say 64 KiB)
    /// bounds that second part and makes slow consumers visible sooner;
    /// the price is throughput on long fat links, where a connection can
    /// have no more than this in flight per round trip. From 4 KiB to
    /// 1 GiB.
    pub fn send_buffer_size(mut self, bytes: usize) -> Self {
        self.settings.send_buffer_size = Some(bytes);
        self
    }

    /// After a busy loop turn whose output went to many connections, how
    /// long the shard may wait for the next batch of completions to fill up
    /// before handling what it has (default 20 µs; kernels 6.12+; zero
    /// disables). In fan-out this lets one send per subscriber carry the
    /// frames of several publishes (1.3–2× the deliveries from 50
    /// connections up). The shard never waits after a quiet turn or one
    /// that wrote to few connections (a closed loop with a handful of
    /// peers would only wait for their answers to its own output), and
    /// stops waiting for a while when waits end short; the
    /// `batch_waits`/`batch_misses` counters show what it did.
    pub fn batch_wait(mut self, wait: Duration) -> Self {
        self.settings.batch_wait = wait;
        self
    }

    /// Topics one connection may subscribe to at once (default 1024):
    /// past it [`Ws::subscribe`](crate::Ws::subscribe) refuses with
    /// [`SubscribeError::TooManyTopics`](crate::SubscribeError::TooManyTopics).
    /// Each subscription costs the connection about 24 bytes and its
    /// topic's table a slot, so this bounds what one peer that asks for
    /// topics can make the server hold.
    pub fn max_subscriptions(mut self, topics: usize) -> Self {
        self.settings.max_subscriptions = topics;
        self
    }

    /// The longest topic name a connection may subscribe to, in bytes
    /// (default 256): past it [`Ws::subscribe`](crate::Ws::subscribe)
    /// refuses with
    /// [`SubscribeError::TopicTooLong`](crate::SubscribeError::TopicTooLong).
    /// Publishing to a longer name is allowed and reaches nobody.
    pub fn max_topic_len(mut self, bytes: usize) -> Self {
        self.settings.max_topic_len = bytes;
        self
    }

    /// Negotiates permessage-deflate (RFC 7692): a server accepts it from
    /// peers that offer it (every browser does), a client offers it in
    /// every request. A server compresses a published message once for all
    /// its subscribers that negotiated it, and keeps no compression state
    /// per connection unless `settings` asks for context takeover. A
    /// server's answer with invalid parameters fails the client's connect
    /// (`ConnectError::Handshake`). Default: off.
    pub fn deflate(mut self, settings: crate::config::Deflate) -> Self {
        self.settings.deflate = Some(settings);
        self
    }
}
