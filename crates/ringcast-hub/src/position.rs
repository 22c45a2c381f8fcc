//! A place in a topic's history: what a client keeps to come back with.
//!
//! Every backend of the topic log ([`crate::log`]) speaks in positions:
//! the embedded store counts offsets from 1 per topic, JetStream uses its
//! stream's sequence. The epoch names one unbroken history, so an offset
//! from another history (a restarted hub, a stream made again) is never
//! taken for one of this one. Below the log and the protocol so both can
//! name it without importing each other.

use std::sync::Arc;

/// The last message a client saw of a topic (offset 0: none yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The message's offset in its topic.
    pub offset: u64,
    /// The history it belongs to.
    pub epoch: Arc<str>,
}
