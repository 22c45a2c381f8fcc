//! What a connection's shard asks the JetStream log's thread (the bridge's
//! link); the answers come back as [`crate::log::Note`]s.

use std::sync::Arc;

use ringcast::ConnId;

use crate::control::Id;
use crate::position::Position;
use crate::topic::Form;

/// A connection subscribing to a topic.
pub(crate) struct Subscription {
    pub conn: ConnId,
    pub name: Arc<str>,
    pub form: Form,
    /// The position to recover from.
    pub since: Option<Position>,
    /// The request's `id`, for the answer.
    pub id: Option<Id>,
}

/// An ask.
pub(crate) enum Ask {
    /// Subscribe, recovering first if asked.
    Subscribe(Subscription),
    /// The connection drained: the next part of its replay of the topic.
    More(ConnId, Arc<str>),
    /// The latest `limit` messages, answered within `budget` bytes.
    History { conn: ConnId, name: Arc<str>, limit: usize, budget: usize, id: Option<Id> },
}
