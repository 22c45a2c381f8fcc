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
//! publishes included, comes from it (the JetStream topic log,
//! `log/jetstream`, carried over this bridge's link): one order and one
//! offset per message across the cluster, at the cost of a trip through
//! NATS for local subscribers too, and no delivery while NATS is
//! unreachable.
//!
//! What travels over the link is a [`link::Traffic`]: the plain relay
//! here ([`relay`]) or the JetStream log's. The link itself knows only
//! NATS: the connection, the queue of publishes, interest changes and the
//! presence gossip ([`presence`]).
//!
//! The NATS client (`async-nats`) runs on a thread of its own with a
//! single-threaded tokio runtime; shards only push to a queue bounded in
//! bytes and never block.

mod bridge;
pub(crate) mod link;
mod presence;
pub(crate) mod relay;
pub(crate) mod subject;

pub(crate) use bridge::{Ack, Bridge, BridgeConfig, BridgeMetrics, Outbound};
