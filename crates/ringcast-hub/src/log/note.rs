//! What a log's own thread hands one connection (the JetStream log's
//! answers, replayed parts, the moment it joins live delivery), as data:
//! posted with [`ringcast::broker::Notes::notify`] or carried by
//! [`ringcast::broker::Notes::join`], so it reaches the connection in
//! mailbox order with the topic's live messages; the connection applies
//! it with [`super::TopicLog::noted`] and renders what it says.

use std::sync::Arc;

use ringcast::broker::Frame;

use crate::control::Reply;
use crate::position::Position;
use crate::topic::Form;

/// A note for one connection.
#[derive(Debug)]
pub(crate) enum Note {
    /// An answer to send.
    Reply(Reply),
    /// Messages of `name` replayed in order; `more`: the replay goes on
    /// once the connection has drained (it asks for the next part).
    Part { name: Arc<str>, frames: Vec<Frame>, more: bool },
    /// Caught up (or nothing to recover): the connection was just
    /// subscribed to `name` in `form` (by the `join` carrying this note);
    /// send `reply` if any.
    CaughtUp { name: Arc<str>, form: Form, reply: Option<Reply> },
    /// The replay of `name` broke off (the history dropped messages it
    /// still needed): the connection was subscribed after `at` (as for
    /// `CaughtUp`); `/ws` is told, a room is closed.
    Lost { name: Arc<str>, form: Form, at: Position },
    /// The subscribe could not be served (the history is unreachable):
    /// `/ws` is told `why` and is not subscribed, a room is closed with
    /// 1013.
    Failed { name: Arc<str>, form: Form, why: String },
}
