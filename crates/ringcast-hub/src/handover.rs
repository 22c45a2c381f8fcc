//! How a connection takes a topic, and what the cluster bridge hands a
//! connection when history lives in JetStream: answers, replayed
//! messages, and the moment it joins live delivery. The bridge posts these
//! with [`ringcast::ServerHandle::notify`] and joins with
//! [`ringcast::ServerHandle::join`], so they reach the connection in
//! mailbox order with the topic's live messages, which the bridge posts
//! too: a join posted after the live messages up to some offset starts the
//! connection exactly after them (the runtime counts it as a subscriber at
//! once, so no later post skips its shard).

use std::sync::Arc;

use ringcast::Frame;

use crate::topic::{json_topic, raw_topic};

/// The form a connection takes a topic in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// As published (`/topics/{name}` rooms).
    Raw,
    /// Wrapped in JSON (`/ws`).
    Json,
}

impl Form {
    /// The server topic of `name` in this form.
    pub fn topic(self, name: &str) -> String {
        match self {
            Form::Raw => raw_topic(name),
            Form::Json => json_topic(name),
        }
    }
}

/// A note from the bridge to one connection.
pub(crate) enum Note {
    /// A text message to send (an answer to a request).
    Send(String),
    /// Messages of `name` replayed in order; `more`: the replay goes on
    /// once the connection has drained (it asks the bridge for more).
    Replay { name: Arc<str>, frames: Vec<Frame>, more: bool },
    /// Caught up (or nothing to recover): the connection was just
    /// subscribed to `name` in `form` from offset `after` on
    /// (`ServerHandle::join`, which carries this note); send `answer` if
    /// any.
    Join { name: Arc<str>, form: Form, after: u64, answer: Option<String> },
    /// The replay of `name` broke off (the history dropped messages it
    /// still needed): the connection was subscribed after `after` (as for
    /// `Join`); `/ws` gets `text`, a room is closed.
    Lost { name: Arc<str>, form: Form, after: u64, text: String },
    /// The subscribe could not be served (the history is unreachable):
    /// `/ws` gets `text` and is not subscribed, a room is closed with 1013.
    Failed { name: Arc<str>, form: Form, text: String },
}
