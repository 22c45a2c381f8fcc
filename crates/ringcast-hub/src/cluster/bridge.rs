//! The bridge's state shared by the shards (which queue publishes and note
//! interest changes, never blocking) and the link's thread (which serves
//! them): see the module above for what the bridge guarantees.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use ringcast::ConnId;

use super::presence::Elsewhere;
use super::subject;
use crate::control::Id;
use crate::error::ConfigError;
use crate::payload::Kind;
use crate::topic::Form;

/// What the bridge needs to know.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// NATS servers to try (any node of the cluster; others are learnt).
    pub urls: Vec<String>,
    /// Subject prefix of the topics.
    pub prefix: String,
    /// Bytes of publishes waiting for NATS before more are counted lost.
    pub max_pending: usize,
}

/// The bridge's counters, read by `/metrics`.
#[derive(Debug, Default)]
pub struct BridgeMetrics {
    /// 1 while connected to a NATS server.
    pub connected: AtomicBool,
    /// Messages handed to NATS.
    pub published: AtomicU64,
    /// Messages that could not be handed to NATS (disconnected, queue full,
    /// refused by the server's limits).
    pub lost: AtomicU64,
    /// Messages from NATS delivered here.
    pub received: AtomicU64,
    /// Messages from NATS not delivered: a kind the payload does not match,
    /// or the NATS client's own queue overflowing (slow consumer).
    pub dropped_in: AtomicU64,
    /// Topic subjects subscribed to now.
    pub subjects: AtomicU64,
    /// Connections (re)established.
    pub connects: AtomicU64,
}

/// A publish on its way to NATS.
pub(crate) struct Outbound {
    pub name: Box<str>,
    pub kind: Kind,
    pub payload: Bytes,
    /// The publishing connection, skipped in this form (with history,
    /// where its own hub delivers it from the stream too).
    pub except: Option<(ConnId, Form)>,
    /// With history: the acknowledgement to send once the stream took it.
    pub ack: Option<Ack>,
}

/// A publish acknowledgement sent once the stream has the message (it
/// then knows the offset).
pub(crate) struct Ack {
    pub conn: ConnId,
    /// The request's `id`.
    pub id: Id,
    /// The local receivers when it was published.
    pub receivers: u64,
}

/// The bridge as the shards and the hub see it.
pub struct Bridge {
    pub(super) config: BridgeConfig,
    /// This hub's id in the `Rc-Origin` header.
    pub(crate) origin: String,
    pub(super) outbound: mpsc::UnboundedSender<Outbound>,
    /// The receiving end, until the link's thread takes it.
    pub(super) inbound_queue: Mutex<Option<mpsc::UnboundedReceiver<Outbound>>>,
    /// Bytes in `outbound`.
    pub(super) pending: AtomicUsize,
    /// Topic names whose local interest changed since the link looked.
    pub(crate) dirty: Mutex<HashSet<Box<str>>>,
    /// Wakes the link: interest changed.
    pub(super) wake: Notify,
    /// Wakes the link: stop.
    pub(super) stop: Notify,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
    /// The counters.
    pub metrics: BridgeMetrics,
    /// Subscriber counts on the other hubs.
    pub(crate) elsewhere: Elsewhere,
    /// Topic names whose local interest changed since presence looked.
    pub(super) presence_dirty: Mutex<HashSet<Box<str>>>,
}

impl Bridge {
    /// A bridge not yet running (see [`Bridge::start`]).
    pub fn new(config: BridgeConfig) -> Result<Arc<Bridge>, ConfigError> {
        subject::check_prefix(&config.prefix)?;
        if config.urls.is_empty() {
            return Err(ConfigError::NoNatsServer);
        }
        for url in &config.urls {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|e| ConfigError::NatsAddress { url: url.clone(), why: e.to_string() })?;
        }
        let (outbound, queue) = mpsc::unbounded_channel();
        Ok(Arc::new(Bridge {
            config,
            origin: new_origin(),
            outbound,
            inbound_queue: Mutex::new(Some(queue)),
            pending: AtomicUsize::new(0),
            dirty: Mutex::default(),
            wake: Notify::new(),
            stop: Notify::new(),
            thread: Mutex::new(None),
            metrics: BridgeMetrics::default(),
            elsewhere: Elsewhere::default(),
            presence_dirty: Mutex::default(),
        }))
    }

    /// The runtime's interest watch: `server_topic` (`r:name` or `j:name`)
    /// gained its first subscriber here or lost its last. Runs under the
    /// runtime's interest lock: notes the name and wakes the link.
    pub fn interest_changed(&self, server_topic: &str) {
        let Some((name, _)) = crate::topic::name_of(server_topic) else { return };
        self.dirty.lock().unwrap_or_else(|e| e.into_inner()).insert(name.into());
        self.presence_dirty.lock().unwrap_or_else(|e| e.into_inner()).insert(name.into());
        self.wake.notify_one();
    }

    /// The subject prefix of the topics.
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// Whether the link is connected to NATS now.
    pub fn connected(&self) -> bool {
        self.metrics.connected.load(Ordering::Relaxed)
    }

    /// Hands a publish made on this hub to the cluster. Never blocks:
    /// counted lost when NATS is unreachable or the queue is full.
    pub fn forward(&self, name: &str, kind: Kind, payload: &[u8]) {
        let _ = self.forward_from(name, kind, payload, None, None);
    }

    /// [`forward`](Self::forward), naming the publishing connection and the
    /// form it is skipped in, and (with history) the acknowledgement to
    /// send it once the stream has the message. False if it was counted
    /// lost instead (then no acknowledgement comes).
    pub(crate) fn forward_from(
        &self,
        name: &str,
        kind: Kind,
        payload: &[u8],
        except: Option<(ConnId, Form)>,
        ack: Option<Ack>,
    ) -> bool {
        let lost = || {
            self.metrics.lost.fetch_add(1, Ordering::Relaxed);
            false
        };
        if !self.metrics.connected.load(Ordering::Relaxed) {
            return lost();
        }
        let len = payload.len();
        if self.pending.fetch_add(len, Ordering::Relaxed) + len > self.config.max_pending {
            self.pending.fetch_sub(len, Ordering::Relaxed);
            return lost();
        }
        let message = Outbound { name: name.into(), kind, payload: Bytes::copy_from_slice(payload), except, ack };
        if self.outbound.send(message).is_err() {
            self.pending.fetch_sub(len, Ordering::Relaxed);
            return lost();
        }
        true
    }

    /// Stops the link: what is queued is flushed to NATS (for up to a
    /// second), then the connection closes.
    pub fn stop(&self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }

    /// Subscribers of `name` on the other hubs, as last heard (about a
    /// second stale; see `presence.rs`).
    pub fn elsewhere(&self, name: &str) -> u64 {
        self.elsewhere.count(name)
    }

    /// The NATS servers to try.
    pub fn urls(&self) -> &[String] {
        &self.config.urls
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("urls", &self.config.urls)
            .field("prefix", &self.config.prefix)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// How long a hub waits for NATS at start before it says it serves alone.
pub(super) const FIRST_CONNECT_NOTICE: Duration = Duration::from_secs(2);

/// A random id for this hub process (the standard library's per-process
/// random hash keys, the process id and the clock).
fn new_origin() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(urls: &[&str], prefix: &str) -> BridgeConfig {
        BridgeConfig { urls: urls.iter().map(|u| u.to_string()).collect(), prefix: prefix.into(), max_pending: 100 }
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        assert!(Bridge::new(config(&["nats://127.0.0.1:4222", "127.0.0.1:4223"], "ringcast.topic")).is_ok());
        let why = |config| Bridge::new(config).unwrap_err().to_string();
        assert!(why(config(&[], "ringcast.topic")).contains("no NATS"));
        assert!(why(config(&["nats://127.0.0.1:4222"], "a.*")).contains("prefix"));
        assert!(why(config(&["http://[::1"], "a")).contains("invalid NATS address"));
    }

    #[test]
    fn forwarding_counts_losses_instead_of_blocking() {
        let bridge = Bridge::new(config(&["127.0.0.1:4222"], "t")).unwrap();
        bridge.forward("a", Kind::Text, b"while disconnected");
        assert_eq!(bridge.metrics.lost.load(Ordering::Relaxed), 1);
        bridge.metrics.connected.store(true, Ordering::Relaxed);
        bridge.forward("a", Kind::Binary, &[0; 60]);
        bridge.forward("a", Kind::Binary, &[0; 60]); // past max_pending (100 bytes)
        assert_eq!(bridge.metrics.lost.load(Ordering::Relaxed), 2);
        assert_eq!(bridge.pending.load(Ordering::Relaxed), 60);
    }

    #[test]
    fn interest_changes_are_noted_by_topic_name() {
        let bridge = Bridge::new(config(&["127.0.0.1:4222"], "t")).unwrap();
        bridge.interest_changed("r:prices");
        bridge.interest_changed("j:prices");
        bridge.interest_changed("j:café");
        let dirty = bridge.dirty.lock().unwrap();
        assert_eq!(dirty.len(), 2);
        assert!(dirty.contains("prices") && dirty.contains("café"));
    }

    #[test]
    fn origins_differ() {
        assert_ne!(new_origin(), new_origin());
    }
}
