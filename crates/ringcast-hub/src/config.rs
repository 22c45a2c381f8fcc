//! The hub's settings: command-line flags, each with an environment variable
//! (flags win), so the same binary runs from a shell or a container.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use ringcast::SlowConsumer;

/// `ringcast-hub` settings. Every limit has a safe default.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ringcast-hub",
    version,
    about = "WebSocket pub/sub hub: /topics/{name} rooms, a JSON protocol on /ws, POST /publish/{name}, /metrics"
)]
#[non_exhaustive]
pub struct HubConfig {
    /// Address to listen on.
    #[arg(long, env = "RINGCAST_LISTEN", default_value = "127.0.0.1:9001")]
    pub listen: String,

    /// PEM certificate chain: serve https:// and wss:// (on --listen, or on
    /// --tls-listen beside plain ws://). The files are read again on
    /// SIGHUP.
    #[arg(long, env = "RINGCAST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "RINGCAST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Serve TLS on this address and plain HTTP/WebSocket on --listen; the
    /// rooms span both.
    #[arg(long, env = "RINGCAST_TLS_LISTEN", requires = "tls_cert")]
    pub tls_listen: Option<String>,

    /// Shards (threads, one io_uring each); default: one per allowed CPU.
    #[arg(long, env = "RINGCAST_SHARDS")]
    pub shards: Option<usize>,

    /// Unsent bytes a connection may hold before the slow-consumer policy
    /// applies (accepts suffixes: 64KiB, 1MiB).
    #[arg(long, env = "RINGCAST_MAX_BACKPRESSURE", default_value = "1MiB", value_parser = parse_size)]
    pub max_backpressure: usize,

    /// What happens to a subscriber past its backpressure budget: `close`
    /// it with 1008, or `drop` the message and count it.
    #[arg(long, env = "RINGCAST_SLOW_CONSUMER", value_enum, default_value_t = Policy::Close)]
    pub slow_consumer: Policy,

    /// An Origin allowed to connect (repeatable; the variable takes a comma
    /// separated list). Unset: any origin. Requests without an Origin
    /// (non-browser clients) are always allowed.
    #[arg(long = "allowed-origin", env = "RINGCAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Largest message (and HTTP publish body) accepted; larger ones close
    /// the connection with 1009 (HTTP: 413).
    #[arg(long, env = "RINGCAST_MAX_MESSAGE_SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_message_size: usize,

    /// Topics one `/ws` connection may subscribe to.
    #[arg(long, env = "RINGCAST_MAX_TOPICS_PER_CONNECTION", default_value_t = 1024)]
    pub max_topics_per_connection: usize,

    /// Open connections the hub admits (more get 503).
    #[arg(long, env = "RINGCAST_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Kernel send buffer per connection (SO_SNDBUF, e.g. 64KiB). Unset:
    /// the kernel autotunes it, up to 4 MiB per socket that stops reading,
    /// on top of --max-backpressure. Smaller bounds memory under slow
    /// consumers; too small limits throughput to distant clients.
    #[arg(long, env = "RINGCAST_SEND_BUFFER_SIZE", value_parser = parse_size)]
    pub send_buffer_size: Option<usize>,

    /// After a busy loop turn, how long (µs) a shard may wait for more
    /// completions to arrive before handling them; 0 never waits. The
    /// shard stops waiting by itself where waits do not fill (see the
    /// library's `batch_wait`).
    #[arg(long, env = "RINGCAST_BATCH_WAIT_US", default_value_t = 20)]
    pub batch_wait_us: u64,

    /// Negotiate permessage-deflate with clients that offer it (browsers
    /// do): each publish is compressed once for every subscriber that
    /// negotiated it; no compression state is kept per connection.
    #[arg(long, env = "RINGCAST_COMPRESSION")]
    pub compression: bool,

    /// With --compression: messages shorter than this go uncompressed.
    #[arg(long, env = "RINGCAST_COMPRESSION_THRESHOLD", default_value = "128", value_parser = parse_size)]
    pub compression_threshold: usize,

    /// With --compression: keep each subscriber's compression window
    /// between messages when its browser allows (a better ratio on
    /// similar messages). Costs about 300 KiB per subscriber that received
    /// a compressed message, and a publish is then compressed once per
    /// such subscriber instead of once for all. Default off.
    #[arg(long, env = "RINGCAST_COMPRESSION_CONTEXT_TAKEOVER")]
    pub compression_context_takeover: bool,

    /// With --compression: the hub's compression window, 9 to 15 bits (512
    /// B to 32 KiB). Smaller saves memory only with context takeover and
    /// costs ratio.
    #[arg(long, env = "RINGCAST_COMPRESSION_WINDOW_BITS", default_value_t = 15,
          value_parser = clap::value_parser!(u8).range(9..=15))]
    pub compression_window_bits: u8,

    /// With --compression: zlib's memory level, 1 to 9. With context
    /// takeover, 1 saves up to 111 KiB per subscriber (52 KiB measured on 1
    /// KiB messages), at some ratio and speed.
    #[arg(long, env = "RINGCAST_COMPRESSION_MEMORY_LEVEL", default_value_t = 8,
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub compression_memory_level: u8,

    /// Secret of the HS256 tokens clients must present (`?token=` or
    /// `Authorization: Bearer`). Unset, with no --jwt-public-key: any
    /// client may subscribe and publish anywhere.
    #[arg(long, env = "RINGCAST_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// PEM file with the RSA (RS256) or P-256 (ES256) public key of the
    /// tokens clients must present.
    #[arg(long, env = "RINGCAST_JWT_PUBLIC_KEY", conflicts_with = "jwt_secret")]
    pub jwt_public_key: Option<std::path::PathBuf>,

    /// A key that `POST /publish` must present as `Authorization: Bearer
    /// KEY` (repeatable; the variable takes a comma separated list).
    /// Unset: anyone may publish over HTTP.
    #[arg(long = "api-key", env = "RINGCAST_API_KEY", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<Secret>,

    /// A key that `GET /metrics` and `GET /healthz` must present as
    /// `Authorization: Bearer KEY` (the dashboard passes its `?key=`).
    /// Unset: both are open.
    #[arg(long, env = "RINGCAST_METRICS_KEY", hide_env_values = true)]
    pub metrics_key: Option<Secret>,

    /// Publishes per second one connection may make (bursts up to as many);
    /// past it `/ws` gets an error, a room connection is closed with 1008.
    /// 0: no limit.
    #[arg(long, env = "RINGCAST_MAX_PUBLISH_RATE", default_value_t = 1000)]
    pub max_publish_rate: u32,

    /// WebSocket connections one client address may hold (more get 429).
    /// 0: no limit.
    #[arg(long, env = "RINGCAST_MAX_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub max_connections_per_ip: u32,

    /// A NATS server of the cluster that joins hubs into one (repeatable;
    /// the variable takes a comma separated list; other nodes are learnt
    /// from the server). Unset: this hub serves alone.
    #[arg(long = "nats", env = "RINGCAST_NATS", value_delimiter = ',')]
    pub nats: Vec<String>,

    /// Subject prefix of the topics on NATS: topic `a` is `{prefix}.a`.
    /// Hubs that share a prefix share their topics.
    #[arg(long, env = "RINGCAST_NATS_PREFIX", default_value = "ringcast.topic")]
    pub nats_prefix: String,

    /// Bytes of publishes waiting to be handed to NATS; past it (NATS slower
    /// than the hub) publishes still reach this hub's subscribers, and are
    /// counted in ringcast_bridge_lost_total instead of forwarded.
    #[arg(long, env = "RINGCAST_NATS_MAX_PENDING", default_value = "64MiB", value_parser = parse_size)]
    pub nats_max_pending: usize,

    /// Messages kept per topic, so that a client that reconnects gets what
    /// it missed (docs/hub.md, "History and recovery"). With --history-ttl,
    /// whichever bound is reached first. Neither set: no history, and
    /// deliveries carry no offsets.
    #[arg(long, env = "RINGCAST_HISTORY_SIZE", value_parser = clap::value_parser!(u32).range(1..))]
    pub history_size: Option<u32>,

    /// How long a topic's messages are kept (500ms, 30s, 10m, 2h).
    #[arg(long, env = "RINGCAST_HISTORY_TTL", value_parser = parse_duration)]
    pub history_ttl: Option<Duration>,

    /// Bytes the history may hold over all topics; past it the oldest
    /// messages of any topic go first (their frames and bookkeeping are
    /// counted; a compressed form made later for --compression is not).
    #[arg(long, env = "RINGCAST_HISTORY_MEMORY", default_value = "64MiB", value_parser = parse_size)]
    pub history_memory: usize,

    /// On SIGINT/SIGTERM, how long to wait for clients to answer the 1001
    /// close before cutting them; the process exits within this plus a
    /// fraction of a second (accepts 500ms, 5s, 1m).
    #[arg(long, env = "RINGCAST_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig::parse_from(["ringcast-hub"])
    }
}

/// A secret setting (a JWT secret, an API key): printed as `***` by
/// `Debug`, so logging the settings does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret(text.to_owned())
    }
}

/// The slow-consumer policy, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Policy {
    /// Close with 1008.
    Close,
    /// Drop the message and count it.
    Drop,
}

impl From<Policy> for SlowConsumer {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::Close => SlowConsumer::Close,
            Policy::Drop => SlowConsumer::Drop,
        }
    }
}

/// A setting's value that does not parse (the operator's fault: the
/// command line is refused with this).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// Not a number with a unit.
    NotASize(String),
    /// A size unit other than B, KiB, MiB, GiB.
    SizeUnit(String),
    /// Zero, or past the address space.
    SizeRange(String),
    /// Not a number with a unit.
    NotADuration(String),
    /// A duration unit other than ms, s, m, h.
    DurationUnit(String),
    /// Past what a duration holds.
    DurationRange(String),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueError::NotASize(text) => write!(f, "not a size: {text:?} (examples: 65536, 64KiB, 1MiB)"),
            ValueError::SizeUnit(unit) => write!(f, "unknown size unit {unit:?} (use KiB, MiB or GiB)"),
            ValueError::SizeRange(text) => write!(f, "size out of range: {text:?}"),
            ValueError::NotADuration(text) => write!(f, "not a duration: {text:?} (examples: 500ms, 5s, 1m)"),
            ValueError::DurationUnit(unit) => write!(f, "unknown duration unit {unit:?} (use ms, s, m or h)"),
            ValueError::DurationRange(text) => write!(f, "duration out of range: {text:?}"),
        }
    }
}

impl std::error::Error for ValueError {}

/// Parses `4096`, `64k`, `64KiB`, `1m`, `1MiB`, `1g` (binary multiples).
pub fn parse_size(text: &str) -> Result<usize, ValueError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: usize = digits.parse().map_err(|_| ValueError::NotASize(text.to_owned()))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(ValueError::SizeUnit(other.to_owned())),
    };
    number.checked_mul(1 << shift).filter(|&n| n > 0).ok_or_else(|| ValueError::SizeRange(text.to_owned()))
}

/// Parses `250ms`, `5s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| ValueError::NotADuration(text.to_owned()))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" | "min" | "h" => {
            let unit = if unit.trim() == "h" { 3600 } else { 60 };
            number.checked_mul(unit).map(Duration::from_secs).ok_or_else(|| ValueError::DurationRange(text.to_owned()))
        }
        other => Err(ValueError::DurationUnit(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("99999999999999999999m").is_err());
    }

    #[test]
    fn flags_override_defaults_and_origins_repeat() {
        let config = HubConfig::parse_from([
            "ringcast-hub",
            "--listen",
            "0.0.0.0:80",
            "--slow-consumer",
            "drop",
            "--allowed-origin",
            "https://a.example",
            "--allowed-origin",
            "https://b.example",
            "--max-backpressure",
            "64KiB",
        ]);
        assert_eq!(config.listen, "0.0.0.0:80");
        assert_eq!(config.slow_consumer, Policy::Drop);
        assert_eq!(config.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(config.max_backpressure, 64 << 10);
        assert_eq!(HubConfig::default().max_message_size, 1 << 20);
        assert_eq!(HubConfig::default().send_buffer_size, None, "the kernel autotunes unless told");
        assert_eq!(HubConfig::default().shutdown_grace, Duration::from_secs(5));
        let tuned = HubConfig::parse_from([
            "ringcast-hub",
            "--send-buffer-size",
            "64KiB",
            "--shutdown-grace",
            "750ms",
            "--batch-wait-us",
            "0",
        ]);
        assert_eq!(tuned.send_buffer_size, Some(64 << 10));
        assert_eq!(tuned.shutdown_grace, Duration::from_millis(750));
        assert_eq!(tuned.batch_wait_us, 0);
        let keyed =
            HubConfig::parse_from(["ringcast-hub", "--jwt-secret", "hush", "--api-key", "k1", "--api-key", "k2"]);
        assert_eq!(keyed.jwt_secret.as_ref().map(Secret::expose), Some("hush"));
        assert_eq!(keyed.api_keys.iter().map(Secret::expose).collect::<Vec<_>>(), ["k1", "k2"]);
        let printed = format!("{keyed:?}");
        assert!(!printed.contains("hush") && !printed.contains("k1"), "{printed}");
        assert_eq!(HubConfig::default().compression_window_bits, 15);
        let window = HubConfig::try_parse_from(["ringcast-hub", "--compression", "--compression-window-bits", "10"]);
        assert_eq!(window.map(|c| c.compression_window_bits).ok(), Some(10));
        for bad in ["8", "16", "x"] {
            let refused = HubConfig::try_parse_from(["ringcast-hub", "--compression-window-bits", bad]);
            assert!(refused.is_err(), "{bad} accepted");
        }
        assert_eq!((HubConfig::default().history_size, HubConfig::default().history_ttl), (None, None));
        let history = HubConfig::parse_from(["ringcast-hub", "--history-size", "100", "--history-ttl", "10m"]);
        assert_eq!((history.history_size, history.history_ttl), (Some(100), Some(Duration::from_secs(600))));
        assert_eq!(history.history_memory, 64 << 20);
        assert!(HubConfig::try_parse_from(["ringcast-hub", "--history-size", "0"]).is_err());
        assert_eq!(HubConfig::default().compression_memory_level, 8);
        let memory = HubConfig::try_parse_from(["ringcast-hub", "--compression-memory-level", "1"]);
        assert_eq!(memory.map(|c| c.compression_memory_level).ok(), Some(1));
        for bad in ["0", "10", "x"] {
            let refused = HubConfig::try_parse_from(["ringcast-hub", "--compression-memory-level", bad]);
            assert!(refused.is_err(), "{bad} accepted");
        }
    }
}
