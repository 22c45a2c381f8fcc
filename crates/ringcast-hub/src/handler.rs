//! The hub's handler: what each path is, dispatched to the file that
//! serves it.
//!
//! - WebSocket upgrades: [`crate::upgrade`] decides.
//! - WebSocket `/topics/{name}`: a room ([`crate::room`]).
//! - WebSocket `/ws`: the JSON control protocol ([`crate::requests`]).
//! - Plain HTTP: [`crate::http`].
//!
//! Subscribing, recovering and the log's notes go to the topic log
//! ([`crate::log`]); the token's expiry closes a connection with 1008.

use std::time::Duration;

use ringcast::{
    CloseCode, CloseInfo, Decision, Handler, Message, Peer, Request, RequestError, Response, ServerHandler, Ws,
};

use crate::conn::{Conn, Recovering, Route};
use crate::http;
use crate::log::Note;
use crate::requests;
use crate::room;
use crate::state::Shard;
use crate::upgrade;

/// One shard's handler.
pub(crate) struct HubHandler {
    pub shard: Shard,
}

impl ServerHandler<Note> for HubHandler {
    fn upgrade(&mut self, request: &Request<'_>, peer: &Peer<'_>) -> Decision<Conn> {
        upgrade::decide(&self.shard, request, peer)
    }

    fn http(&mut self, request: &Request<'_>, body: &[u8], _why: RequestError) -> Option<Response> {
        http::answer(&self.shard, request, body)
    }
}

/// Its notes are the topic log's (the JetStream log's thread posts them).
impl Handler<Note> for HubHandler {
    type Data = Conn;

    fn open(&mut self, ws: &mut Ws<'_, Conn>) {
        if let Some(grant) = &ws.data().grant {
            let left = grant.remaining();
            ws.set_alarm(left);
        }
        let Conn { route: Route::Room { topic, recovery, .. }, .. } = ws.data_mut() else { return };
        let name = topic.name.clone();
        let from = match recovery.take().map(|r| *r) {
            Some(Recovering::From(from)) => Some(from),
            _ => None,
        };
        self.shard.state.log.open_room(ws, &name, from);
    }

    /// Recoveries waiting for room go on.
    fn drain(&mut self, ws: &mut Ws<'_, Conn>) {
        self.shard.state.log.drained(ws);
    }

    /// The log's answers, replays and joins.
    fn notified(&mut self, ws: &mut Ws<'_, Conn>, note: Note) {
        self.shard.state.log.noted(ws, note);
    }

    fn message(&mut self, ws: &mut Ws<'_, Conn>, message: Message<'_>) {
        match ws.data().route {
            Route::Room { .. } => room::message(&self.shard, ws, message),
            Route::Control { .. } => requests::serve(&self.shard, ws, message),
        }
    }

    /// The token's expiry (alarms past 24 days ring early: look again).
    fn alarm(&mut self, ws: &mut Ws<'_, Conn>) {
        let Some(left) = ws.data().grant.as_ref().map(|g| g.remaining()) else { return };
        if left > Duration::ZERO {
            ws.set_alarm(left);
            return;
        }
        if let Some(grant) = &ws.data().grant {
            tracing::debug!(sub = %grant.sub, "token expired: closing");
        }
        let _ = ws.close(CloseCode::POLICY, "token expired");
    }

    fn close(&mut self, conn: Conn, info: CloseInfo<'_>) {
        if let Some(ip) = conn.ip {
            self.shard.state.per_address.release(ip);
        }
        self.shard.metrics().closed(info.code.0);
    }
}
