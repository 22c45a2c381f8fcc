//! The cluster bridge: hubs that share a NATS cluster behave as one hub.
//!
//! Every publish a hub takes (room message, `/ws` publish, HTTP publish)
//! is delivered to its own subscribers as before and handed, once, to this
//! bridge, which publishes it to the topic's NATS subject ([`subject`])
//! with two headers: `Rc-Origin` (this hub's random id) and `Rc-Kind`
//! (`text`, `binary` or `json`). A hub subscribes to a topic's subject
//! only while it has subscribers of that topic (the runtime's interest
//! watch tells it), and delivers what arrives to them, framed once per
//! form as any publish. The connection to NATS is made with `no_echo`,
//! and messages carrying this hub's own origin are skipped besides, so a
//! hub never delivers its own message twice.
//!
//! Guarantees: per publisher and topic, order is kept (one shard queues a
//! connection's publishes in order, one NATS connection carries them, NATS
//! keeps a connection's order per subject, and one task per topic delivers
//! them). Exactly once while NATS is reachable; at most once across an
//! outage: what this hub could not hand to NATS is counted in
//! `ringcast_bridge_lost_total`, and what NATS had accepted but could not
//! route (a dying node, a broken route) is lost without a count. Local
//! delivery never waits for NATS.
//!
//! With history (`--history-size`/`--history-ttl`), the topics' messages
//! live in a JetStream stream instead and every delivery, this hub's own
//! publishes included, comes from it, in the stream's order (`stream.rs`'s
//! documentation): one order and one offset per message across the
//! cluster, at the cost of a trip through NATS for local subscribers too,
//! and no delivery while NATS is unreachable.
//!
//! The NATS client (`async-nats`) runs on a thread of its own with a
//! single-threaded tokio runtime; shards only push to a queue bounded in
//! bytes and never block.

mod link;
mod presence;
mod state;
mod stream;
pub mod subject;

use std::sync::Arc;

use ringcast::ServerHandle;

pub(crate) use state::{Ack, Ask, Join};
pub use state::{Bridge, BridgeConfig, BridgeMetrics, StreamLimits};

impl Bridge {
    /// Starts the link's thread: it connects (retrying with backoff while
    /// NATS is unreachable) and serves until [`Bridge::stop`].
    pub fn start(self: &Arc<Self>, handle: ServerHandle) -> std::io::Result<()> {
        let Some(queue) = self.inbound_queue.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(()); // already started
        };
        let asks = self.ask_queue.lock().unwrap_or_else(|e| e.into_inner()).take().expect("taken with the queue");
        tracing::info!(servers = ?self.urls(), prefix = %self.config.prefix, "bridge: joining the NATS cluster");
        let bridge = self.clone();
        let thread = std::thread::Builder::new()
            .name("ringcast-bridge".into())
            .spawn(move || link::run(bridge, handle, queue, asks))?;
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(())
    }
}
