//! Rooms: a WebSocket on `/topics/{name}` subscribes to `name`, and each
//! message it sends (text or binary, kept as it is) goes to every other
//! subscriber (`?echo=1`: to itself too, in the room's order). With
//! history, `?since=N&epoch=E` replays what the room missed first.
//!
//! A room connection that publishes without its token's right, or faster
//! than the publish rate, is closed with 1008: a room has no way to be
//! answered in-band.

use ringcast::{CloseCode, Message, Ws};

use crate::conn::{Conn, Route};
use crate::log::{Published, Publisher, Unpublished};
use crate::position::Position;
use crate::state::Shard;
use crate::topic::{percent_decode, Form};

/// A message from a room connection: published to the room.
pub(crate) fn message(shard: &Shard, ws: &mut Ws<'_, Conn>, message: Message<'_>) {
    let Conn { route: Route::Room { topic, echo, .. }, grant, bucket, .. } = ws.data_mut() else { return };
    if grant.as_ref().is_some_and(|g| !g.may_publish(&topic.name)) {
        shard.metrics().refused();
        let _ = ws.close(CloseCode::POLICY, "token may not publish to this topic");
        return;
    }
    if !shard.within_rate(bucket) {
        shard.metrics().refused();
        let rate = shard.state.config.max_publish_rate;
        let _ = ws.close(CloseCode::POLICY, &format!("over {rate} publishes per second"));
        return;
    }
    let (topic, echo) = (topic.clone(), *echo);
    let from = Publisher::Conn { ws, form: Form::Raw, echo };
    match shard.state.log.publish(from, &topic, message.into(), None) {
        Published::Done { receivers, .. } | Published::Pending { receivers } => shard.metrics().published(receivers),
        Published::Refused(Unpublished::Starting) => {
            let _ = ws.close(CloseCode::TRY_AGAIN_LATER, Unpublished::Starting.why());
        }
        // Counted lost by the bridge; the room cannot be told in-band.
        Published::Refused(Unpublished::Unreachable) => {}
    }
}

/// Why a room's query is refused (the client's fault: 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// `since=` is not an offset.
    Since,
    /// `epoch=` has a broken `%XX` escape.
    Epoch,
    /// One of `since=` and `epoch=` without the other.
    Half,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueryError::Since => "since= takes an offset (a number)",
            QueryError::Epoch => "bad percent-encoding in epoch=",
            QueryError::Half => "since= and epoch= go together",
        })
    }
}

/// What a room's query asks: `echo` (`?echo`, `?echo=1`, `?echo=true`)
/// and the position to recover from (`since=N&epoch=E`, both or neither).
pub(crate) fn query(query: Option<&str>) -> Result<(bool, Option<Position>), QueryError> {
    let (mut echo, mut offset, mut epoch) = (false, None, None);
    for pair in query.unwrap_or("").split('&') {
        if matches!(pair, "echo" | "echo=1" | "echo=true") {
            echo = true;
        } else if let Some(n) = pair.strip_prefix("since=") {
            offset = Some(n.parse::<u64>().map_err(|_| QueryError::Since)?);
        } else if let Some(e) = pair.strip_prefix("epoch=") {
            epoch = Some(percent_decode(e).ok_or(QueryError::Epoch)?);
        }
    }
    match (offset, epoch) {
        (Some(offset), Some(epoch)) => Ok((echo, Some(Position { offset, epoch: epoch.into() }))),
        (None, None) => Ok((echo, None)),
        _ => Err(QueryError::Half),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(q: Option<&str>) -> bool {
        query(q).unwrap().0
    }

    fn since(q: Option<&str>) -> Result<Option<Position>, QueryError> {
        query(q).map(|(_, since)| since)
    }

    #[test]
    fn echo_is_opt_in() {
        assert!(echo(Some("echo=1")));
        assert!(echo(Some("a=b&echo")));
        assert!(!echo(Some("echo=0")));
        assert!(!echo(Some("noecho=1")));
        assert!(!echo(None));
    }

    #[test]
    fn a_room_query_names_a_position_with_both_parts_or_none() {
        assert_eq!(since(Some("since=7&epoch=ab-1")), Ok(Some(Position { offset: 7, epoch: "ab-1".into() })));
        assert_eq!(since(Some("echo=1&epoch=a%2Db&since=0")), Ok(Some(Position { offset: 0, epoch: "a-b".into() })));
        assert_eq!(since(Some("echo=1")), Ok(None));
        assert_eq!(since(None), Ok(None));
        assert!(since(Some("since=7")).is_err());
        assert!(since(Some("epoch=e")).is_err());
        assert!(since(Some("since=-1&epoch=e")).is_err());
        assert!(since(Some("since=1&epoch=%zz")).is_err());
    }
}
