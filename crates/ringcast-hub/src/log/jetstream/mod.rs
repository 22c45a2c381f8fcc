//! The JetStream log: history across hubs in one NATS JetStream stream,
//! every delivery from it (see [`stream`] for how offsets, epochs, joins
//! and replays work there). This side is the connections': a subscribe,
//! a recovery, a `history` request or a publish is handed to the bridge's
//! thread, and what it decides comes back as [`Note`]s in mailbox order
//! with the topic's live messages.

mod asks;
mod stream;
mod traffic;

use std::sync::{Arc, Mutex};

use ringcast::broker::{ServerExt as _, WsExt as _};
use ringcast::{CloseCode, ServerHandle, Ws};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use self::asks::{Ask, Subscription};
use self::stream::StreamLimits;
use self::traffic::JetTraffic;
use super::contract::{Bounds, Published, Publisher, RoomStart, TopicLog, Unpublished, LOST};
use super::note::Note;
use crate::cluster::{link, Ack, Bridge, BridgeMetrics};
use crate::conn::{Conn, Recovering};
use crate::control::{self, Reply};
use crate::payload::Payload;
use crate::position::Position;
use crate::topic::{Form, Topic};

/// The JetStream log.
pub(crate) struct JetStream {
    bridge: Arc<Bridge>,
    asks: mpsc::UnboundedSender<Ask>,
    /// The receiving end of `asks`, until the bridge's thread takes it.
    ask_queue: Mutex<Option<mpsc::UnboundedReceiver<Ask>>>,
    limits: StreamLimits,
}

impl JetStream {
    /// A log in the stream `bounds` describe, through `bridge`; replays
    /// hand a connection up to `pace` bytes at a time.
    pub fn new(bridge: Arc<Bridge>, bounds: Bounds, pace: usize) -> JetStream {
        let (asks, ask_queue) = mpsc::unbounded_channel();
        JetStream { bridge, asks, ask_queue: Mutex::new(Some(ask_queue)), limits: StreamLimits { bounds, pace } }
    }

    /// Asks the bridge's thread to subscribe a connection to `name`: the
    /// answer, the replay and the join come back as notes.
    fn ask_subscribe(
        &self,
        ws: &mut Ws<'_, Conn>,
        name: &Arc<str>,
        form: Form,
        since: Option<Position>,
        id: Option<&RawValue>,
    ) {
        let subscription =
            Subscription { conn: ws.id(), name: name.clone(), form, since, id: id.map(RawValue::to_owned) };
        if self.asks.send(Ask::Subscribe(subscription)).is_ok() {
            ws.data_mut().set_recovery(name, Recovering::Asked);
        }
    }
}

impl TopicLog for JetStream {
    fn start(&self, handle: &ServerHandle) -> std::io::Result<()> {
        let Some(asks) = self.ask_queue.lock().unwrap_or_else(|e| e.into_inner()).take() else { return Ok(()) };
        let notes =
            handle.notes::<Note>().ok_or_else(|| std::io::Error::other("the hub's handler takes no log notes"))?;
        let limits = self.limits;
        link::start(&self.bridge, handle.clone(), move || JetTraffic::new(limits, notes), asks)
    }

    fn stop(&self) {
        self.bridge.stop();
    }

    fn interest_changed(&self, server_topic: &str) {
        self.bridge.interest_changed(server_topic);
    }

    /// Into the stream: every hub delivers it from there, this one too
    /// (the publisher skipped in its form unless it asked for its own).
    fn publish(
        &self,
        from: Publisher<'_, '_>,
        topic: &Topic,
        payload: Payload<'_>,
        id: Option<&RawValue>,
    ) -> Published {
        let receivers = from.receivers(topic);
        let ack = match &from {
            Publisher::Conn { ws, .. } => id.map(|id| Ack { conn: ws.id(), id: id.to_owned(), receivers }),
            Publisher::Http(_) => None,
        };
        match self.bridge.forward_from(&topic.name, payload.kind(), payload.bytes(), from.except(), ack) {
            true => Published::Pending { receivers },
            false => Published::Refused(Unpublished::Unreachable),
        }
    }

    fn subscribe(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, since: Option<Position>, id: Option<&RawValue>) {
        self.ask_subscribe(ws, name, Form::Json, since, id);
    }

    /// A join costs JetStream work (and a marker for a topic with no
    /// message).
    fn subscribe_is_costly(&self) -> bool {
        true
    }

    /// Where the stream stands takes a trip: a room gets no headers here,
    /// and its recovery is checked when it opens.
    fn room_start(&self, _name: &str, since: Option<Position>) -> RoomStart {
        RoomStart { replay: since, ..RoomStart::default() }
    }

    fn open_room(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, from: Option<Position>) {
        self.ask_subscribe(ws, name, Form::Raw, from, None);
    }

    /// Each replay that sent a part asks for the next.
    fn drained(&self, ws: &mut Ws<'_, Conn>) {
        let conn = ws.id();
        for (name, _) in ws.data_mut().take_recoveries(|state| matches!(state, Recovering::Draining)) {
            let _ = self.asks.send(Ask::More(conn, name));
        }
    }

    fn noted(&self, ws: &mut Ws<'_, Conn>, note: Note) {
        match note {
            Note::Reply(reply) => control::send(ws, &reply),
            Note::Part { name, frames, more } => {
                if !ws.data().recovering(&name) {
                    return;
                }
                for frame in &frames {
                    if ws.send_frame(frame).is_err() {
                        return;
                    }
                }
                ws.data_mut().set_recovery(&name, if more { Recovering::Draining } else { Recovering::Asked });
            }
            // The runtime subscribed the connection (`Notes::join`)
            // before handing these over: one that gave the recovery up in
            // the meantime leaves again.
            Note::CaughtUp { name, form, reply } => {
                if recovery_over(ws, &name, form) {
                    if let Some(reply) = reply {
                        control::send(ws, &reply);
                    }
                }
            }
            Note::Lost { name, form, at } => {
                if !recovery_over(ws, &name, form) {
                    return;
                }
                match form {
                    Form::Json => control::send(ws, &Reply::Lost { topic: name, at }),
                    Form::Raw => {
                        let _ = ws.close(CloseCode::POLICY, LOST);
                    }
                }
            }
            Note::Failed { name, form, why } => {
                if !ws.data().recovering(&name) {
                    return;
                }
                if ws.data_mut().end_recovery(&name) {
                    ws.data_mut().unsubscribed();
                }
                match form {
                    Form::Json => control::send(ws, &Reply::Failed { topic: name, why }),
                    Form::Raw => {
                        let _ = ws.close(CloseCode::TRY_AGAIN_LATER, "history unavailable");
                    }
                }
            }
        }
    }

    fn history(
        &self,
        ws: &mut Ws<'_, Conn>,
        name: &Arc<str>,
        limit: usize,
        budget: usize,
        id: Option<&RawValue>,
    ) -> Option<Reply> {
        let id = id.map(RawValue::to_owned);
        let _ = self.asks.send(Ask::History { conn: ws.id(), name: name.clone(), limit, budget, id });
        None
    }

    fn elsewhere(&self, name: &str) -> u64 {
        self.bridge.elsewhere(name)
    }

    fn bridge_metrics(&self) -> Option<&BridgeMetrics> {
        Some(&self.bridge.metrics)
    }
}

/// The recovery of `name` is over (the runtime subscribed the connection
/// with the join): false, and the connection leaves the topic again, if it
/// had given the recovery up (unsubscribed) in the meantime.
fn recovery_over(ws: &mut Ws<'_, Conn>, name: &str, form: Form) -> bool {
    if !ws.data().recovering(name) {
        ws.unsubscribe(&form.topic(name));
        return false;
    }
    ws.data_mut().end_recovery(name);
    true
}
