//! The embedded log: history in this hub's memory ([`super::store`]), in
//! one order per topic ([`super::sequencer`]). A subscriber that comes
//! back with a position is answered whether nothing was missed, then
//! replays what it missed a page at a time as its queue drains, then
//! joins live delivery under the sequencer's lock: no gap, no duplicate.

use std::sync::{Arc, OnceLock};

use ringcast::{CloseCode, ServerHandle, Ws};
use serde_json::value::RawValue;

use super::contract::{Bounds, Published, Publisher, RoomStart, TopicLog, Unpublished, LOST};
use super::sequencer::{Sequencer, Step};
use crate::conn::{Conn, Recovering};
use crate::control::{self, Newest, Reply};
use crate::counters::HistorySize;
use crate::payload::Payload;
use crate::position::Position;
use crate::topic::{Form, Topic};

/// The embedded log.
pub(crate) struct Embedded {
    sequencer: Sequencer,
    /// The server, once started: publishes frame and post through it.
    handle: OnceLock<ServerHandle>,
}

impl Embedded {
    /// A log keeping what `bounds` allow; replays queue up to `pace` bytes
    /// at a time.
    pub fn new(bounds: &Bounds, pace: usize) -> Embedded {
        Embedded { sequencer: Sequencer::new(bounds, pace), handle: OnceLock::new() }
    }

    /// One more stretch of a `/ws` replay of `name` from `from`.
    fn go_on_json(&self, ws: &mut Ws<'_, Conn>, name: Arc<str>, from: Position) {
        match self.sequencer.replay(ws, &name, Form::Json, from) {
            Step::Paused(at) => ws.data_mut().set_recovery(&name, Recovering::From(at)),
            Step::Lost(at) => control::send(ws, &Reply::Lost { topic: name, at }),
            Step::Live(_) | Step::Closed => {}
        }
    }

    /// One more stretch of a room's replay; a room whose history broke off
    /// during the replay (a reader slower than the history's bounds) is
    /// closed with 1008, having no way to be told in-band.
    fn go_on_room(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, from: Position) {
        match self.sequencer.replay(ws, name, Form::Raw, from) {
            Step::Paused(at) => ws.data_mut().set_recovery(name, Recovering::From(at)),
            Step::Lost(_) => {
                let _ = ws.close(CloseCode::POLICY, LOST);
            }
            Step::Live(_) | Step::Closed => {}
        }
    }
}

impl TopicLog for Embedded {
    fn start(&self, handle: &ServerHandle) -> std::io::Result<()> {
        let _ = self.handle.set(handle.clone());
        Ok(())
    }

    fn publish(&self, from: Publisher<'_, '_>, topic: &Topic, payload: Payload<'_>, _: Option<&RawValue>) -> Published {
        let Some(handle) = self.handle.get() else { return Published::Refused(Unpublished::Starting) };
        let (receivers, at) = self.sequencer.publish(handle, &topic.name, payload, from.except());
        Published::Done { receivers: receivers - from.skipped(topic), at: Some(at) }
    }

    /// From now on, answered with the topic's position; or after the
    /// messages since `since`, answered with `"recovered"`, then replayed
    /// (paced), then live.
    fn subscribe(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, since: Option<Position>, id: Option<&RawValue>) {
        let id = id.map(RawValue::to_owned);
        let Some(since) = since else {
            let at = self.sequencer.subscribe(ws, name, Form::Json);
            return control::send(ws, &Reply::Subscribed { id, recovered: None, at: Some(at) });
        };
        let (kept, at) = self.sequencer.covers(name, &since);
        if !kept {
            let at = self.sequencer.subscribe(ws, name, Form::Json);
            return control::send(ws, &Reply::Subscribed { id, recovered: Some(false), at: Some(at) });
        }
        control::send(ws, &Reply::Subscribed { id, recovered: Some(true), at: Some(at) });
        self.go_on_json(ws, name.clone(), since);
    }

    fn room_start(&self, name: &str, since: Option<Position>) -> RoomStart {
        match since {
            Some(since) => {
                let (kept, at) = self.sequencer.covers(name, &since);
                RoomStart { recovered: Some(kept), at: Some(at), replay: kept.then_some(since) }
            }
            None => RoomStart { recovered: None, at: Some(self.sequencer.position(name)), replay: None },
        }
    }

    fn open_room(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, from: Option<Position>) {
        match from {
            Some(from) => self.go_on_room(ws, name, from),
            None => {
                self.sequencer.subscribe(ws, name, Form::Raw);
            }
        }
    }

    /// Each recovery waiting for room goes on from where it stopped.
    fn drained(&self, ws: &mut Ws<'_, Conn>) {
        let room = matches!(ws.data().route, crate::conn::Route::Room { .. });
        for (name, state) in ws.data_mut().take_recoveries(|state| matches!(state, Recovering::From(_))) {
            let Recovering::From(from) = state else { continue };
            ws.data_mut().end_recovery(&name);
            match room {
                true => self.go_on_room(ws, &name, from),
                false => self.go_on_json(ws, name, from),
            }
        }
    }

    fn history(
        &self,
        _: &mut Ws<'_, Conn>,
        name: &Arc<str>,
        limit: usize,
        budget: usize,
        id: Option<&RawValue>,
    ) -> Option<Reply> {
        let (latest, at) = self.sequencer.latest(name, limit);
        let mut newest = Newest::new(limit, budget);
        for (_, kept) in latest {
            newest.push(kept.frame(Form::Json).clone());
        }
        Some(Reply::History { id: id.map(RawValue::to_owned), at, messages: newest.into_frames() })
    }

    fn history_size(&self) -> Option<HistorySize> {
        Some(self.sequencer.size())
    }
}
