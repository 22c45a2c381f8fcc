//! Runtime settings, for servers and clients alike: every limit a peer
//! could push against, with a safe default.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The settings of a runtime, built with [`Builder`](crate::Builder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub shards: usize,
    pub pin_threads: bool,
    pub max_message_size: usize,
    pub max_frame_size: usize,
    pub max_header_bytes: usize,
    pub max_backpressure: usize,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub pong_timeout: Duration,
    pub close_timeout: Duration,
    pub recv_buffers: u16,
    pub recv_buffer_size: u32,
    pub ring_entries: u32,
    pub batch_wait: Duration,
    /// `SO_SNDBUF` of every connection; `None`: the kernel's autotuning.
    pub send_buffer_size: Option<usize>,
    pub slow_consumer: SlowConsumer,
    /// Topics one connection may subscribe to at once.
    pub max_subscriptions: usize,
    /// The longest topic name a connection may subscribe to, in bytes.
    pub max_topic_len: usize,
    pub listen_backlog: i32,
    /// Serve plain TCP echo instead of WebSocket (the benchmark floor).
    pub tcp_echo: bool,
    /// Told when a topic gains its first subscriber or loses its last.
    pub interest_watch: Option<InterestWatch>,
    /// permessage-deflate, when enabled.
    pub deflate: Option<Deflate>,
    /// TLS, when the server serves `wss://`.
    pub tls: Option<TlsConfig>,
    /// Where TLS is served when the main address stays plain.
    pub tls_address: Option<SocketAddr>,
    /// A client's TLS configuration for `wss://` (the system's roots when
    /// unset).
    pub tls_client: Option<TlsClientConfig>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin_threads: true,
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            max_header_bytes: 8 << 10,
            max_backpressure: 1 << 20,
            max_connections: 100_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(120)),
            pong_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            recv_buffers: 128,
            recv_buffer_size: 128 << 10,
            ring_entries: 4096,
            batch_wait: Duration::from_micros(20),
            send_buffer_size: None,
            slow_consumer: SlowConsumer::Close,
            max_subscriptions: 1024,
            max_topic_len: 256,
            listen_backlog: 4096,
            tcp_echo: false,
            interest_watch: None,
            deflate: None,
            tls: None,
            tls_address: None,
            tls_client: None,
        }
    }
}

/// The longest timeout the shard timers represent (their clock is a
/// wrapping 32-bit count of milliseconds).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 24 * 3600);

impl Settings {
    /// Checks the settings for values that cannot work.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.shards == 0 || self.shards > usize::from(u16::MAX) {
            return Err("shards must be between 1 and 65535");
        }
        if self.max_message_size == 0 || self.max_frame_size == 0 {
            return Err("message and frame size limits must be positive");
        }
        if self.max_header_bytes < 256 {
            return Err("max_header_bytes must be at least 256");
        }
        if self.max_connections == 0 {
            return Err("max_connections must be positive");
        }
        if !self.recv_buffers.is_power_of_two() || self.recv_buffers > 1 << 15 {
            return Err("recv_buffers must be a power of two, at most 32768");
        }
        if self.recv_buffer_size < 1024 || self.recv_buffer_size > 1 << 24 {
            return Err("recv_buffer_size must be between 1 KiB and 16 MiB");
        }
        if self.send_buffer_size.is_some_and(|n| !(4096..=1 << 30).contains(&n)) {
            return Err("send_buffer_size must be between 4 KiB and 1 GiB");
        }
        let timeouts =
            [Some(self.handshake_timeout), self.idle_timeout, Some(self.pong_timeout), Some(self.close_timeout)];
        if timeouts.into_iter().flatten().any(|t| t.is_zero() || t > MAX_TIMEOUT) {
            return Err("timeouts must be positive and at most 24 days");
        }
        if self.max_subscriptions == 0 || self.max_topic_len == 0 {
            return Err("max_subscriptions and max_topic_len must be positive");
        }
        if self.tls_address.is_some() && self.tls.is_none() {
            return Err("tls_address needs a TLS configuration (tls)");
        }
        Ok(())
    }

    /// Connections one shard admits: the server's limit split evenly.
    pub fn max_connections_per_shard(&self) -> usize {
        self.max_connections.div_ceil(self.shards)
    }
}

/// What happens to a connection whose queue of unsent bytes is past
/// `max_backpressure` when more is sent or published to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Close it with 1008: the peer learns why, memory is freed (default).
    #[default]
    Close,
    /// Keep it, drop the message and count it (`Ws::dropped`,
    /// `Stats::dropped`): for feeds where the latest data matters more than
    /// completeness.
    Drop,
}

/// Something settings share with the shards by reference (a rustls
/// configuration, a callback): two are the same when they are the same
/// object, and `Debug` names the type.
pub(crate) struct Shared<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T: ?Sized> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared<{}>", std::any::type_name::<T>())
    }
}

impl<T: ?Sized> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: ?Sized> Eq for Shared<T> {}

/// A server's rustls configuration, as the shards use it (see
/// `crate::tls::server_config`).
pub(crate) type TlsConfig = Shared<rustls::ServerConfig>;

/// A client's rustls configuration (see `crate::tls::client_config`).
pub(crate) type TlsClientConfig = Shared<rustls::ClientConfig>;

/// The callback of [`Builder::on_interest`](crate::Builder::on_interest):
/// told when a topic gains its first subscriber on the runtime (`true`) or
/// loses its last (`false`).
pub(crate) type InterestWatch = Shared<WatchFn>;

/// The watch's signature: the topic, and whether it gained interest.
pub(crate) type WatchFn = dyn Fn(&str, bool) + Send + Sync;

/// permessage-deflate (RFC 7692) settings, for
/// [`Builder::deflate`](crate::Builder::deflate). Every setting has a safe
/// default; see `docs/benchmarks.md` for the figures behind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deflate {
    /// zlib level, 0 to 9 (default 2: within about 10 % of level 6's size
    /// on JSON, 1.1–4.9× faster).
    pub level: u32,
    /// Messages shorter than this many bytes go uncompressed (default 128).
    pub threshold: usize,
    /// Keep the compressor's window between a connection's messages: a
    /// better ratio, but about 300 KiB of state per connection that has
    /// sent a compressed message, and publishes compressed per subscriber
    /// instead of once. Default false.
    pub server_context_takeover: bool,
    /// Let clients keep their window between their messages (a
    /// decompressor per such connection on the server). Default false.
    pub client_context_takeover: bool,
    /// The server's compression window, 9 to 15 bits (512 B to 32 KiB;
    /// default 15). Smaller costs ratio and saves memory only where a
    /// compressor is kept per connection (context takeover): without it,
    /// each shard's one compressor serves every connection.
    pub window_bits: u8,
    /// zlib's memory level, 1 to 9 (default 8). With context takeover a
    /// connection's compressor holds `448 << memory_level` bytes of symbol
    /// buffers (112 KiB at 8, 896 B at 1) beside its window and 128 KiB
    /// hash table; lower ends deflate blocks sooner in long messages, at
    /// some cost in ratio. Without context takeover it only tunes each
    /// shard's one compressor.
    pub memory_level: u8,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate {
            level: 2,
            threshold: 128,
            server_context_takeover: false,
            client_context_takeover: false,
            window_bits: 15,
            memory_level: 8,
        }
    }
}

impl Deflate {
    /// The zlib level (capped at 9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Messages shorter than `bytes` go uncompressed.
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Keep the server's compression window between messages.
    pub fn server_context_takeover(mut self, keep: bool) -> Self {
        self.server_context_takeover = keep;
        self
    }

    /// Let clients keep their compression window between messages.
    pub fn client_context_takeover(mut self, keep: bool) -> Self {
        self.client_context_takeover = keep;
        self
    }

    /// The server's compression window in bits (clamped to 9..=15; zlib
    /// has no 8).
    pub fn window_bits(mut self, bits: u8) -> Self {
        self.window_bits = bits.clamp(9, 15);
        self
    }

    /// zlib's memory level (clamped to 1..=9).
    pub fn memory_level(mut self, level: u8) -> Self {
        self.memory_level = level.clamp(1, 9);
        self
    }

    /// The window in bits zlib can use: `window_bits` is a public field,
    /// so it may hold what the setter would have clamped.
    fn window(&self) -> u8 {
        self.window_bits.clamp(9, 15)
    }

    /// What the negotiation may agree to.
    pub(crate) fn negotiation(&self) -> ringcast_proto::deflate::DeflateConfig {
        let mut config = ringcast_proto::deflate::DeflateConfig::default();
        config.server_context_takeover = self.server_context_takeover;
        config.client_context_takeover = self.client_context_takeover;
        config.server_max_window_bits = self.window();
        config
    }

    /// How messages are compressed.
    pub(crate) fn tuning(&self) -> ringcast_proto::deflate::Tuning {
        ringcast_proto::deflate::Tuning {
            level: self.level,
            threshold: self.threshold,
            window: self.window(),
            memory: self.memory_level.clamp(1, 9),
        }
    }
}
