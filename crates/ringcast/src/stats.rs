//! The counters a shard keeps and publishes. Each counter is named once, in
//! the list below: the public [`Stats`] field, the shard's atomic copy and
//! the sum over shards all come from it, so a new metric is one line.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[doc = $doc:expr])+ $name:ident,)+) => {
        /// Counters summed over the shards, as of their last loop turn.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        impl std::ops::AddAssign for Stats {
            fn add_assign(&mut self, other: Stats) {
                $(self.$name += other.$name;)+
            }
        }

        /// One shard's counters as the other threads read them: the shard
        /// keeps a plain [`Stats`] and stores it here once per loop turn.
        #[derive(Debug, Default)]
        pub(crate) struct SharedStats {
            $($name: AtomicU64,)+
            /// Connections cut at the stop deadline (for the shutdown
            /// report, not a running counter).
            forced: AtomicU64,
        }

        impl SharedStats {
            /// Publishes the shard's counters.
            pub fn store(&self, stats: &Stats) {
                $(self.$name.store(stats.$name, Ordering::Relaxed);)+
            }

            /// The counters as last published.
            pub fn load(&self) -> Stats {
                Stats { $($name: self.$name.load(Ordering::Relaxed),)+ }
            }
        }
    };
}

counters! {
    /// Connections in the tables now (any phase).
    connections,
    /// Connections accepted since the start (for a client: connections
    /// whose TCP connect completed).
    accepted,
    /// Messages received and handed to the handler.
    messages,
    /// Receive completions that carried bytes.
    reads,
    /// Loop turns.
    turns,
    /// `io_uring_enter` system calls.
    enters,
    /// Enters that waited for a batch of completions (see
    /// [`batch_wait`](crate::ServerBuilder::batch_wait)).
    batch_waits,
    /// Batch waits that ended at the deadline short of their batch: the
    /// shard then stops batching for a while.
    batch_misses,
    /// Messages dropped under [`SlowConsumer::Drop`](crate::SlowConsumer).
    dropped,
    /// Data messages queued for sending: handler sends plus pub/sub
    /// deliveries (one per receiving connection).
    messages_out,
    /// Of those, messages whose payload was queued by reference instead of
    /// copied: published frames and received messages sent back, from
    /// 8 KiB up (see `docs/architecture.md`, "Send").
    messages_by_reference,
    /// Published messages compressed for permessage-deflate subscribers:
    /// one per publish (on the shard that needed it first), whatever the
    /// number of such subscribers.
    publishes_deflated,
    /// Bytes received from the kernel (all connections, any phase).
    bytes_in,
    /// Bytes the kernel accepted for sending.
    bytes_out,
}

impl SharedStats {
    /// Counts connections cut at the stop deadline.
    pub fn add_forced(&self, connections: u64) {
        self.forced.fetch_add(connections, Ordering::Relaxed);
    }

    /// Connections cut at the stop deadline so far.
    pub fn forced(&self) -> u64 {
        self.forced.load(Ordering::Relaxed)
    }
}
