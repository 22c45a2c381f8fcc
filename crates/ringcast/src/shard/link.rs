//! What a shard shares with the threads around it. Each part is owned by
//! the module that produces it: deliveries by `pubsub` (the mailbox and the
//! topic table), connect requests by `dialer`, counters by `stats`; the stop
//! signal is the shard's own, set by the runtime handle. All of them wake
//! the shard through the one eventfd its ring reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::dialer::Dialer;
use crate::pubsub::{Exchange, Mailbox};
use crate::stats::SharedStats;
use crate::sys::Waker;

/// The request to stop, with the grace period for open connections.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    requested: AtomicBool,
    grace_ms: AtomicU64,
}

impl Stop {
    /// Asks the shard to stop (the first request's grace period counts).
    /// Returns false if a stop had already been asked for.
    pub fn request(&self, grace: Duration) -> bool {
        if self.requested.load(Ordering::Acquire) {
            return false;
        }
        let grace_ms = grace.as_millis().min(u128::from(u32::MAX / 2)) as u64;
        self.grace_ms.store(grace_ms, Ordering::Release);
        self.requested.store(true, Ordering::Release);
        true
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// The grace period asked for.
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms.load(Ordering::Acquire))
    }
}

/// Everything a shard is handed at start-up besides its ring and handler.
pub(crate) struct Links<C> {
    /// The eventfd the shard's ring reads; everybody below writes to it.
    pub waker: Arc<Waker>,
    /// The shard's stop signal.
    pub stop: Arc<Stop>,
    /// Where the shard publishes its counters.
    pub stats: Arc<SharedStats>,
    /// Deliveries from other shards and from handles.
    pub mailbox: Arc<Mailbox>,
    /// The cross-shard topic table.
    pub exchange: Arc<Exchange>,
    /// Client connect requests and the CONNECTING rule.
    pub dialer: Arc<Dialer<C>>,
}
