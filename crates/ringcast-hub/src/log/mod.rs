//! The topic log: the whole life of a topic's messages, chosen once when
//! the hub starts ([`choose`]) and asked through one trait ([`TopicLog`])
//! by the rooms, the `/ws` protocol and HTTP, which never ask which log
//! they have.
//!
//! - [`plain`]: no history. A publish is delivered to this hub's
//!   subscribers at once, framed once per form; in a cluster it is also
//!   handed to NATS once (`cluster::relay`), and the other hubs deliver
//!   it. Deliveries carry no offsets; a subscriber that comes back is told
//!   it missed whatever it missed (`"recovered":false`).
//! - [`embedded`]: history kept in memory on a hub that serves alone
//!   ([`store`]). A [`sequencer`] gives each publish its topic's next
//!   offset under one lock, keeps both forms and posts them to every
//!   subscriber in that order; a subscriber that comes back replays what
//!   it missed at its reading pace, then joins live delivery.
//! - [`jetstream`]: history across hubs in a NATS JetStream stream; every
//!   delivery, this hub's own publishes included, comes back from the
//!   stream through the bridge's thread, in the stream's order.
//!
//! Every log bounds what it keeps by the same [`Bounds`], and a replay to
//! one connection never queues more than the pace at a time.

mod contract;
mod embedded;
mod jetstream;
mod note;
mod plain;
mod sequencer;
mod store;

use std::sync::Arc;

use crate::cluster::{Bridge, BridgeConfig};
use crate::config::HubConfig;
use crate::error::ConfigError;

pub(crate) use contract::{Bounds, Published, Publisher, TopicLog, Unpublished};
pub(crate) use note::Note;

/// The log the settings ask for: history or not, alone or in a cluster.
pub(crate) fn choose(config: &HubConfig) -> Result<Arc<dyn TopicLog>, ConfigError> {
    let keeps = config.history_size.is_some() || config.history_ttl.is_some();
    let bounds = Bounds { size: config.history_size, ttl: config.history_ttl, memory: config.history_memory };
    // What a replay leaves queued on its connection at a time: well inside
    // the connection's backpressure budget.
    let pace = (config.max_backpressure / 4).clamp(1, 256 << 10);
    if config.nats.is_empty() {
        return Ok(match keeps {
            true => Arc::new(embedded::Embedded::new(&bounds, pace)),
            false => Arc::new(plain::Plain::alone()),
        });
    }
    let bridge = Bridge::new(BridgeConfig {
        urls: config.nats.clone(),
        prefix: config.nats_prefix.clone(),
        max_pending: config.nats_max_pending,
    })?;
    Ok(match keeps {
        true => Arc::new(jetstream::JetStream::new(bridge, bounds, pace)),
        false => Arc::new(plain::Plain::clustered(bridge)),
    })
}
