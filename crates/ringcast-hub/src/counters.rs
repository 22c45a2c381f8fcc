//! The hub's own counters: per shard (publishes, refusals, closes), the
//! topics with subscribers here, what the history holds. Read by
//! `/metrics` ([`crate::prometheus`]); written without locks on the hot
//! paths.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters one shard's handler keeps (written only by that shard; relaxed
/// atomics so `/metrics` on any shard can read them).
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Publishes made (WebSocket and HTTP).
    pub publishes: AtomicU64,
    /// Deliveries those publishes were addressed to.
    pub receivers: AtomicU64,
    /// Control-protocol requests refused with `{"error"}`.
    pub request_errors: AtomicU64,
    /// Upgrades refused and connections closed by the access rules and
    /// limits (401, 403, 429, 1008 for a publish not allowed or too fast).
    pub refusals: AtomicU64,
    /// Closed connections by close code.
    closes: Mutex<BTreeMap<u16, u64>>,
}

impl ShardMetrics {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Counts a publish and the receivers it was addressed to.
    pub fn published(&self, receivers: u64) {
        Self::bump(&self.publishes, 1);
        Self::bump(&self.receivers, receivers);
    }

    /// Counts a `/ws` request answered with `{"error"}`.
    pub fn request_error(&self) {
        Self::bump(&self.request_errors, 1);
    }

    /// Counts a refusal by the access rules or limits.
    pub fn refused(&self) {
        Self::bump(&self.refusals, 1);
    }

    /// Counts a closed connection.
    pub fn closed(&self, code: u16) {
        *self.closes.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
    }

    /// Closed connections by close code.
    pub fn closes(&self) -> BTreeMap<u16, u64> {
        self.closes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Topics with subscribers on this hub, whatever the form they subscribe
/// in (rooms, `/ws`), kept from the runtime's interest watch.
#[derive(Debug, Default)]
pub struct TopicCount {
    /// Name → forms with subscribers (bit 0: rooms, bit 1: `/ws`).
    names: Mutex<std::collections::HashMap<Box<str>, u8>>,
}

impl TopicCount {
    /// The watch: `server_topic` gained its first subscriber (`on`) or lost
    /// its last.
    pub fn changed(&self, server_topic: &str, on: bool) {
        let Some((name, json)) = crate::topic::name_of(server_topic) else { return };
        let bit = if json { 2 } else { 1 };
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            *names.entry(name.into()).or_default() |= bit;
        } else if let Some(forms) = names.get_mut(name) {
            *forms &= !bit;
            if *forms == 0 {
                names.remove(name);
            }
        }
    }

    /// Topics with subscribers now.
    pub fn count(&self) -> usize {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// How much the history holds.
#[derive(Debug, Clone, Copy)]
pub struct HistorySize {
    /// Messages kept.
    pub messages: usize,
    /// Bytes counted against the memory bound.
    pub bytes: usize,
}
