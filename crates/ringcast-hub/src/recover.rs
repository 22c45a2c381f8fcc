//! What a client that comes back gets: `/ws` subscribes with `since`, the
//! `history` answer, rooms opened with `?since=N&epoch=E`, and the paced
//! replays that go on as each connection's queue drains; from the
//! embedded store, or through the cluster bridge's notes when history
//! lives in JetStream.

use std::sync::Arc;

use ringcast::{CloseCode, Ws};
use serde_json::value::RawValue;

use crate::bridge::{Ask, Bridge, Join};
use crate::control::{self, Since};
use crate::handover::{Form, Note};
use crate::history::Position;
use crate::sequencer::{Sequencer, Step};
use crate::shared::{Conn, Replay, Route};
use crate::topic::percent_decode;

/// Why a room whose replay broke off is closed (it cannot be told
/// in-band).
const LOST: &str = "history lost during recovery: resynchronise";

/// Most messages a `history` answer holds.
pub const MAX_HISTORY: usize = 1000;
/// Messages a `history` request without `limit` gets.
pub const DEFAULT_HISTORY: usize = 100;

/// Whether a `/ws` connection is still recovering `name`.
pub fn recovering(conn: &Conn, name: &str) -> bool {
    matches!(&conn.route, Route::Control { replays, .. } if replays.iter().any(|(n, _)| **n == *name))
}

/// Forgets a `/ws` connection's recovery of `name`; false if it had none.
pub fn forget(conn: &mut Conn, name: &str) -> bool {
    let Route::Control { replays, .. } = &mut conn.route else { return false };
    let before = replays.len();
    replays.retain(|(n, _)| **n != *name);
    replays.len() < before
}

/// Sets where a connection's recovery of `name` stands.
fn set(conn: &mut Conn, name: &Arc<str>, replay: Replay) {
    match &mut conn.route {
        Route::Control { replays, .. } => match replays.iter_mut().find(|(n, _)| n == name) {
            Some((_, state)) => *state = replay,
            None => replays.push((name.clone(), replay)),
        },
        Route::Room { replay: state, .. } => *state = Some(Box::new(replay)),
    }
}

/// Whether the connection is still recovering `name` (a note for a
/// recovery it gave up, by unsubscribing, finds none).
fn expects(conn: &Conn, name: &str) -> bool {
    match &conn.route {
        Route::Control { replays, .. } => replays.iter().any(|(n, _)| **n == *name),
        Route::Room { replay, .. } => replay.is_some(),
    }
}

/// Subscribes a `/ws` connection to `name` on a hub with history (the
/// caller checked the request): from now on, answered with the topic's
/// position; or after the messages since `since`, answered with
/// `"recovered"`, then replayed (paced), then live.
pub fn subscribe(
    sequencer: &Sequencer,
    ws: &mut Ws<'_, Conn>,
    name: &str,
    since: Option<Since>,
    id: Option<&RawValue>,
) {
    let Some(since) = since else {
        let at = sequencer.join(ws, name, Form::Json);
        if id.is_some() {
            let _ = ws.send_text(&control::ack_with(id, &control::at(at.offset, &at.epoch)));
        }
        return;
    };
    let from = Position { offset: since.offset, epoch: since.epoch.into() };
    let (kept, at) = sequencer.check(name, &from);
    if !kept {
        let at = sequencer.join(ws, name, Form::Json);
        let fields = format!("\"recovered\":false,{}", control::at(at.offset, &at.epoch));
        let _ = ws.send_text(&control::ack_with(id, &fields));
        return;
    }
    let fields = format!("\"recovered\":true,{}", control::at(at.offset, &at.epoch));
    let _ = ws.send_text(&control::ack_with(id, &fields));
    continue_json(sequencer, ws, Arc::from(name), from);
}

/// Asks the cluster bridge to subscribe a connection to `name` (history
/// in JetStream): the answer, the replay and the join come back as notes.
pub fn subscribe_remote(
    bridge: &Bridge,
    ws: &mut Ws<'_, Conn>,
    name: &str,
    form: Form,
    since: Option<Position>,
    id: Option<&RawValue>,
) {
    let name: Arc<str> = Arc::from(name);
    let join = Join { conn: ws.id(), name: name.clone(), form, since, id: id.map(RawValue::to_owned) };
    if bridge.ask(Ask::Join(join)) {
        set(ws.data_mut(), &name, Replay::Asked);
    }
}

/// One more stretch of a `/ws` replay of `name` from `from`.
fn continue_json(sequencer: &Sequencer, ws: &mut Ws<'_, Conn>, name: Arc<str>, from: Position) {
    match sequencer.replay(ws, &name, Form::Json, from) {
        Step::Paused(at) => set(ws.data_mut(), &name, Replay::From(at)),
        Step::Lost(at) => {
            let _ = ws.send_text(&control::recovery_lost(&name, at.offset, &at.epoch));
        }
        Step::Live(_) | Step::Closed => {}
    }
}

/// A room connection's replay from where it asked, then live; a room
/// whose history broke off during the replay (a reader slower than the
/// history's bounds) is closed with 1008, having no way to be told
/// in-band.
pub fn continue_room(sequencer: &Sequencer, ws: &mut Ws<'_, Conn>, name: &Arc<str>, from: Position) {
    match sequencer.replay(ws, name, Form::Raw, from) {
        Step::Paused(at) => set(ws.data_mut(), name, Replay::From(at)),
        Step::Lost(_) => {
            let _ = ws.close(CloseCode::POLICY, LOST);
        }
        Step::Live(_) | Step::Closed => {}
    }
}

/// Goes on with the connection's recoveries (its queue drained): the
/// embedded store's from where each stopped, the bridge's by asking for
/// the next part.
pub fn resume(sequencer: Option<&Sequencer>, bridge: Option<&Bridge>, ws: &mut Ws<'_, Conn>) {
    let conn = ws.id();
    match &mut ws.data_mut().route {
        Route::Control { replays, .. } if !replays.is_empty() => {
            let mut embedded = Vec::new();
            for (name, state) in replays.iter_mut() {
                match state {
                    Replay::From(_) => {
                        let Replay::From(from) = std::mem::replace(state, Replay::Asked) else { unreachable!() };
                        embedded.push((name.clone(), from));
                    }
                    Replay::Draining => {
                        *state = Replay::Asked;
                        if let Some(bridge) = bridge {
                            bridge.ask(Ask::More(conn, name.clone()));
                        }
                    }
                    Replay::Asked => {}
                }
            }
            if let Some(sequencer) = sequencer {
                for (name, from) in embedded {
                    forget(ws.data_mut(), &name);
                    continue_json(sequencer, ws, name, from);
                }
            }
        }
        Route::Room { topic, replay, .. } => match replay.as_deref() {
            Some(Replay::From(_)) => {
                let Some(Replay::From(from)) = replay.take().map(|r| *r) else { unreachable!() };
                let name = topic.name.clone();
                if let Some(sequencer) = sequencer {
                    continue_room(sequencer, ws, &name, from);
                }
            }
            Some(Replay::Draining) => {
                *replay = Some(Box::new(Replay::Asked));
                if let Some(bridge) = bridge {
                    bridge.ask(Ask::More(conn, topic.name.clone()));
                }
            }
            Some(Replay::Asked) | None => {}
        },
        Route::Control { .. } => {}
    }
}

/// Applies a note from the cluster bridge.
pub fn apply(ws: &mut Ws<'_, Conn>, note: Note) {
    match note {
        Note::Send(text) => {
            let _ = ws.send_text(&text);
        }
        Note::Replay { name, frames, more } => {
            if !expects(ws.data(), &name) {
                return;
            }
            for frame in &frames {
                if ws.send_frame(frame).is_err() {
                    return;
                }
            }
            set(ws.data_mut(), &name, if more { Replay::Draining } else { Replay::Asked });
        }
        // The runtime subscribed the connection (`ServerHandle::join`)
        // before handing these over: one that gave the recovery up in the
        // meantime leaves again.
        Note::Join { name, form, answer, .. } => {
            if !recovery_over(ws, &name, form) {
                return;
            }
            if let Some(answer) = answer {
                let _ = ws.send_text(&answer);
            }
        }
        Note::Lost { name, form, text, .. } => {
            if !recovery_over(ws, &name, form) {
                return;
            }
            match form {
                Form::Json => {
                    let _ = ws.send_text(&text);
                }
                Form::Raw => {
                    let _ = ws.close(CloseCode::POLICY, LOST);
                }
            }
        }
        Note::Failed { name, form, text } => {
            if !expects(ws.data(), &name) {
                return;
            }
            end(ws.data_mut());
            if forget(ws.data_mut(), &name) {
                if let Conn { route: Route::Control { subscribed, .. }, .. } = ws.data_mut() {
                    *subscribed -= 1;
                }
            }
            match form {
                Form::Json => {
                    let _ = ws.send_text(&text);
                }
                Form::Raw => {
                    let _ = ws.close(CloseCode::TRY_AGAIN_LATER, "history unavailable");
                }
            }
        }
    }
}

/// The recovery of `name` is over (the runtime subscribed the connection
/// with the join): false, and the connection leaves the topic again, if it
/// had given the recovery up (unsubscribed) in the meantime.
fn recovery_over(ws: &mut Ws<'_, Conn>, name: &str, form: Form) -> bool {
    if !expects(ws.data(), name) {
        ws.unsubscribe(&form.topic(name));
        return false;
    }
    end(ws.data_mut());
    forget(ws.data_mut(), name);
    true
}

/// A room's recovery is over.
fn end(conn: &mut Conn) {
    if let Route::Room { replay, .. } = &mut conn.route {
        *replay = None;
    }
}

/// The answer to `history`: the latest `limit` kept messages of `name`
/// (the deliveries as sent, with their offsets), oldest first, as many of
/// the newest as fit in `budget` bytes, with the topic's position.
pub fn history(
    sequencer: &Sequencer,
    name: &str,
    limit: Option<usize>,
    budget: usize,
    id: Option<&RawValue>,
) -> String {
    let limit = limit.unwrap_or(DEFAULT_HISTORY).min(MAX_HISTORY);
    let (latest, at) = sequencer.latest(name, limit);
    let mut size = 0;
    let fit = latest
        .iter()
        .rev()
        .take_while(|(_, kept)| {
            size += kept.frame(Form::Json).payload().len() + 1;
            size <= budget
        })
        .count();
    let mut messages = String::with_capacity(size + 2);
    messages.push('[');
    for (i, (_, kept)) in latest[latest.len() - fit..].iter().enumerate() {
        if i > 0 {
            messages.push(',');
        }
        // The JSON form is built from JSON text by the hub: UTF-8.
        messages.push_str(std::str::from_utf8(kept.frame(Form::Json).payload()).unwrap_or("null"));
    }
    messages.push(']');
    control::ack_with(id, &format!("{},\"messages\":{messages}", control::at(at.offset, &at.epoch)))
}

/// The position a room's query asks to recover from: `since=N&epoch=E`
/// (`None`: neither given).
pub fn since_of(query: Option<&str>) -> Result<Option<Position>, &'static str> {
    let (mut offset, mut epoch) = (None, None);
    for pair in query.unwrap_or("").split('&') {
        if let Some(n) = pair.strip_prefix("since=") {
            offset = Some(n.parse::<u64>().map_err(|_| "since= takes an offset (a number)")?);
        } else if let Some(e) = pair.strip_prefix("epoch=") {
            epoch = Some(percent_decode(e).ok_or("bad percent-encoding in epoch=")?);
        }
    }
    match (offset, epoch) {
        (Some(offset), Some(epoch)) => Ok(Some(Position { offset, epoch: epoch.into() })),
        (None, None) => Ok(None),
        _ => Err("since= and epoch= go together"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_query_names_a_position_with_both_parts_or_none() {
        assert_eq!(since_of(Some("since=7&epoch=ab-1")), Ok(Some(Position { offset: 7, epoch: "ab-1".into() })));
        assert_eq!(since_of(Some("echo=1&epoch=a%2Db&since=0")), Ok(Some(Position { offset: 0, epoch: "a-b".into() })));
        assert_eq!(since_of(Some("echo=1")), Ok(None));
        assert_eq!(since_of(None), Ok(None));
        assert!(since_of(Some("since=7")).is_err());
        assert!(since_of(Some("epoch=e")).is_err());
        assert!(since_of(Some("since=-1&epoch=e")).is_err());
        assert!(since_of(Some("since=1&epoch=%zz")).is_err());
    }
}
