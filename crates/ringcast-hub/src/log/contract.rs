//! What every topic log promises ([`TopicLog`]) and the types it speaks
//! in, below the logs themselves so that they and the hub's routes import
//! this and not each other.

use std::sync::Arc;
use std::time::Duration;

use ringcast::{ConnId, ServerHandle, Ws};
use serde_json::value::RawValue;

use crate::cluster::BridgeMetrics;
use crate::conn::Conn;
use crate::control::Reply;
use crate::counters::HistorySize;
use crate::payload::Payload;
use crate::position::Position;
use crate::topic::{Form, Topic};

use super::note::Note;

/// Why a room whose replay broke off is closed (it cannot be told
/// in-band).
pub(crate) const LOST: &str = "history lost during recovery: resynchronise";

/// How much history to keep: the same bounds whichever log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Messages kept per topic (`None`: as many as the others allow).
    pub size: Option<u32>,
    /// How long a message is kept (`None`: as long as the others allow).
    pub ttl: Option<Duration>,
    /// Bytes kept over all topics.
    pub memory: usize,
}

/// Who publishes.
pub(crate) enum Publisher<'a, 'w> {
    /// A connection, from its shard: skipped in its `form` unless it asked
    /// for its own messages (`echo`).
    Conn { ws: &'a mut Ws<'w, Conn>, form: Form, echo: bool },
    /// `POST /publish`.
    Http(&'a ServerHandle),
}

impl Publisher<'_, '_> {
    /// The publishing connection and the form it is skipped in, unless it
    /// receives its own message.
    pub(crate) fn except(&self) -> Option<(ConnId, Form)> {
        match self {
            Publisher::Conn { ws, form, echo: false } => Some((ws.id(), *form)),
            _ => None,
        }
    }

    /// 1 if the publisher subscribes to `topic` in its form and is
    /// skipped (a count of subscribers that includes it is one too many).
    pub(crate) fn skipped(&self, topic: &Topic) -> u64 {
        match self {
            Publisher::Conn { ws, form, echo: false } => u64::from(ws.is_subscribed(topic.in_form(*form))),
            _ => 0,
        }
    }

    /// Subscribers of `topic` here (both forms), less a skipped publisher.
    pub(crate) fn receivers(&self, topic: &Topic) -> u64 {
        let here = match self {
            Publisher::Conn { ws, .. } => topic.subscribers(|t| ws.subscribers(t)),
            Publisher::Http(handle) => topic.subscribers(|t| handle.subscribers(t)),
        };
        here - self.skipped(topic)
    }
}

/// What became of a publish.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// Delivered to `receivers` here; kept `at` when the log keeps history.
    Done { receivers: u64, at: Option<Position> },
    /// Handed to the log's thread for `receivers` here; a connection's
    /// publish with an `id` is acknowledged by that thread once kept.
    Pending { receivers: u64 },
    /// Not published.
    Refused(Unpublished),
}

/// Why a publish was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unpublished {
    /// The server is not up yet (a moment at start).
    Starting,
    /// The history cannot be reached (JetStream while NATS is away).
    Unreachable,
}

impl Unpublished {
    /// What the publisher is told.
    pub fn why(self) -> &'static str {
        match self {
            Unpublished::Starting => "the hub is starting",
            Unpublished::Unreachable => "not published: the history (NATS JetStream) cannot be reached",
        }
    }
}

/// Where a room asked with `?since=` stands at its upgrade: for the 101's
/// headers, and the recovery to start when it opens.
#[derive(Debug, Default)]
pub(crate) struct RoomStart {
    /// `Ringcast-Recovered` (only when `since` was given).
    pub recovered: Option<bool>,
    /// `Ringcast-Offset` and `Ringcast-Epoch` (only where the answer is at
    /// hand).
    pub at: Option<Position>,
    /// The position to replay from when the room opens.
    pub replay: Option<Position>,
}

/// The topic log, as the connections, HTTP and the hub see it.
pub(crate) trait TopicLog: Send + Sync {
    /// The server is up: start what runs beside it (the bridge's thread).
    fn start(&self, handle: &ServerHandle) -> std::io::Result<()>;

    /// The server stopped: stop what runs beside it.
    fn stop(&self) {}

    /// The runtime's interest watch: `server_topic` gained its first
    /// subscriber here or lost its last.
    fn interest_changed(&self, server_topic: &str) {
        let _ = server_topic;
    }

    /// Publishes `payload` on `topic`.
    fn publish(&self, from: Publisher<'_, '_>, topic: &Topic, payload: Payload<'_>, id: Option<&RawValue>)
        -> Published;

    /// Subscribes a `/ws` connection to `name` (JSON form): from now on,
    /// or after the messages since `since`; answers it (see
    /// [`crate::control::Reply::Subscribed`]) now or from the log's
    /// thread.
    fn subscribe(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, since: Option<Position>, id: Option<&RawValue>);

    /// Whether a subscribe costs the log as much as a publish (and so
    /// counts against the publish rate).
    fn subscribe_is_costly(&self) -> bool {
        false
    }

    /// A room asked to recover from `since` at its upgrade.
    fn room_start(&self, name: &str, since: Option<Position>) -> RoomStart;

    /// A room opened: subscribes it to `name` (raw form), replaying from
    /// `from` first (its [`RoomStart::replay`]).
    fn open_room(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, from: Option<Position>);

    /// The connection's queue drained: recoveries waiting for room go on.
    fn drained(&self, ws: &mut Ws<'_, Conn>) {
        let _ = ws;
    }

    /// A note from the log's thread.
    fn noted(&self, ws: &mut Ws<'_, Conn>, note: Note) {
        let _ = (ws, note);
    }

    /// The answer to `history`: the latest `limit` kept messages of `name`
    /// within `budget` bytes, or why not; `None` when the log's thread
    /// answers.
    fn history(
        &self,
        ws: &mut Ws<'_, Conn>,
        name: &Arc<str>,
        limit: usize,
        budget: usize,
        id: Option<&RawValue>,
    ) -> Option<Reply>;

    /// Subscribers of `name` on the other hubs of the cluster (about a
    /// second stale; 0 alone).
    fn elsewhere(&self, name: &str) -> u64 {
        let _ = name;
        0
    }

    /// How much the history holds, when it is kept here.
    fn history_size(&self) -> Option<HistorySize> {
        None
    }

    /// The bridge's counters, in a cluster.
    fn bridge_metrics(&self) -> Option<&BridgeMetrics> {
        None
    }
}
