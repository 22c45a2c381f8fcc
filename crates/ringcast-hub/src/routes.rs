//! The hub's handler: which path does what, and who may.
//!
//! - WebSocket `/topics/{name}`: a room. The connection subscribes to
//!   `name`; each message it sends (type kept) goes to every other
//!   subscriber (`?echo=1`: to itself too, in the room's order).
//! - WebSocket `/ws`: the JSON control protocol ([`crate::control`]).
//! - Plain HTTP: [`crate::http`].
//!
//! With tokens required, an upgrade without a valid one gets 401, a room
//! the token may not subscribe to 403; a room connection that publishes
//! without the right is closed with 1008, a `/ws` request outside the
//! token's lists gets `{"error"}`; every connection is closed with 1008
//! "token expired" when its token expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast::proto::handshake::Request;
use ringcast::proto::RequestError;
use ringcast::{Accept, CloseCode, CloseInfo, Decision, Handler, Message, Peer, Response, Ws};
use serde_json::value::RawValue;

use crate::auth;
use crate::bridge::{Ack, Ask, Bridge};
use crate::control::{self, Refusal};
use crate::deliver::{Kind, Payload};
use crate::handover::{Form, Note};
use crate::history::Position;
use crate::http;
use crate::limits::Bucket;
use crate::metrics::ShardMetrics;
use crate::recover::{self, recovering};
use crate::shared::{Conn, Replay, Route, Shared};
use crate::topic::{self, Topic};

/// One shard's handler.
pub(crate) struct HubHandler {
    pub shard: usize,
    pub shared: Arc<Shared>,
}

impl HubHandler {
    fn metrics(&self) -> &ShardMetrics {
        &self.shared.metrics[self.shard]
    }

    /// The bridge, when history lives in JetStream (every delivery then
    /// comes from the stream).
    fn history_bridge(&self) -> Option<&Arc<Bridge>> {
        self.shared.bridge.as_ref().filter(|b| b.keeps_history())
    }

    /// Takes one publish from the connection's bucket.
    fn within_rate(&self, conn: &mut Conn) -> bool {
        conn.bucket.take(self.shared.config.max_publish_rate, Instant::now())
    }

    fn room_message(&mut self, ws: &mut Ws<'_, Conn>, message: Message<'_>) {
        let rate = self.shared.config.max_publish_rate;
        let allowed = self.within_rate(ws.data_mut());
        let Conn { route: Route::Room { topic, echo, .. }, grant, .. } = ws.data() else { return };
        if grant.as_ref().is_some_and(|g| !g.may_publish(&topic.name)) {
            self.metrics().refused();
            let _ = ws.close(CloseCode::POLICY, "token may not publish to this topic");
            return;
        }
        if !allowed {
            self.metrics().refused();
            let _ = ws.close(CloseCode::POLICY, &format!("over {rate} publishes per second"));
            return;
        }
        let (raw, json, name, echo) = (topic.raw.clone(), topic.json.clone(), topic.name.clone(), *echo);
        if let Some(sequencer) = &self.shared.sequencer {
            let Some(handle) = self.shared.handle.get() else {
                let _ = ws.close(CloseCode::TRY_AGAIN_LATER, "the hub is starting");
                return;
            };
            let payload = match message {
                Message::Text(text) => Payload::Text(text),
                Message::Binary(bytes) => Payload::Binary(bytes),
            };
            let except = (!echo).then_some((ws.id(), Form::Raw));
            let (receivers, _) = sequencer.publish(handle, &name, payload, except);
            let me = u64::from(!echo && ws.is_subscribed(&raw));
            self.metrics().published(receivers - me);
            return;
        }
        let kind = if message.is_text() { Kind::Text } else { Kind::Binary };
        if let Some(bridge) = self.history_bridge() {
            let _ = bridge.forward_from(&name, kind, message.as_bytes(), (!echo).then_some((ws.id(), Form::Raw)), None);
            let me = u64::from(!echo && ws.is_subscribed(&raw));
            self.metrics().published(ws.subscribers(&raw) + ws.subscribers(&json) - me);
            return;
        }
        let mut receivers = if echo { ws.publish_to_all(&raw, message) } else { ws.publish(&raw, message) };
        if ws.subscribers(&json) > 0 {
            let wrapped = control::delivery_raw(&name, message.as_bytes(), message.is_text(), None);
            receivers += ws.publish(&json, Message::Text(&wrapped));
        }
        self.metrics().published(receivers);
        self.shared.forward(&name, kind, message.as_bytes());
    }

    fn control_message(&mut self, ws: &mut Ws<'_, Conn>, message: Message<'_>) {
        let Message::Text(text) = message else {
            return self.refuse(ws, &Refusal { error: "requests are JSON text messages".into(), id: None });
        };
        let request = match control::parse(text) {
            Ok(request) => request,
            Err(refusal) => return self.refuse(ws, &refusal),
        };
        match request {
            control::Request::Subscribe { topic, since, id } => {
                if !self.may(ws, &topic, Right::Subscribe, id) {
                    return;
                }
                let json = topic::json_topic(&topic);
                if ws.is_subscribed(&json) || recovering(ws.data(), &topic) {
                    if let Some(id) = id {
                        let _ = ws.send_text(&control::ack(id, None));
                    }
                    return;
                }
                let max = self.shared.config.max_topics_per_connection;
                let Conn { route: Route::Control { subscribed, .. }, .. } = ws.data_mut() else { return };
                if *subscribed >= max {
                    let error = format!("at most {max} topics per connection");
                    return self.refuse(ws, &Refusal { error, id });
                }
                *subscribed += 1;
                if let Some(bridge) = self.history_bridge() {
                    // A join costs JetStream work (and a marker for a topic
                    // with no message): it counts as a publish.
                    if !self.within_rate(ws.data_mut()) {
                        if let Conn { route: Route::Control { subscribed, .. }, .. } = ws.data_mut() {
                            *subscribed -= 1;
                        }
                        let error =
                            format!("over {} publishes and subscribes per second", self.shared.config.max_publish_rate);
                        return self.refuse(ws, &Refusal { error, id });
                    }
                    let since = since.map(|s| Position { offset: s.offset, epoch: s.epoch.into() });
                    return recover::subscribe_remote(bridge, ws, &topic, Form::Json, since, id);
                }
                match &self.shared.sequencer {
                    Some(sequencer) => recover::subscribe(sequencer, ws, &topic, since, id),
                    None => {
                        ws.subscribe(&json);
                        if since.is_some() {
                            let _ = ws.send_text(&control::ack_with(id, "\"recovered\":false"));
                        } else if let Some(id) = id {
                            let _ = ws.send_text(&control::ack(id, None));
                        }
                    }
                }
            }
            control::Request::Unsubscribe { topic, id } => {
                let was_recovering = recover::forget(ws.data_mut(), &topic);
                if ws.unsubscribe(&topic::json_topic(&topic)) || was_recovering {
                    if let Conn { route: Route::Control { subscribed, .. }, .. } = ws.data_mut() {
                        *subscribed -= 1;
                    }
                }
                if let Some(id) = id {
                    let _ = ws.send_text(&control::ack(id, None));
                }
            }
            control::Request::History { topic, limit, id } => {
                if !self.may(ws, &topic, Right::Subscribe, id) {
                    return;
                }
                let budget = self.shared.config.max_backpressure / 2;
                if let Some(bridge) = self.history_bridge() {
                    let limit = limit.unwrap_or(recover::DEFAULT_HISTORY).min(recover::MAX_HISTORY);
                    let id = id.map(RawValue::to_owned);
                    bridge.ask(Ask::History { conn: ws.id(), name: Arc::from(topic.as_str()), limit, budget, id });
                    return;
                }
                let Some(sequencer) = &self.shared.sequencer else {
                    let error = "this hub keeps no history (--history-size, --history-ttl)".into();
                    return self.refuse(ws, &Refusal { error, id });
                };
                let _ = ws.send_text(&recover::history(sequencer, &topic, limit, budget, id));
            }
            control::Request::Presence { topic, id } => {
                if !self.may(ws, &topic, Right::Subscribe, id) {
                    return;
                }
                let here = ws.subscribers(&topic::raw_topic(&topic)) + ws.subscribers(&topic::json_topic(&topic));
                let count = here + self.shared.bridge.as_ref().map_or(0, |b| b.elsewhere(&topic));
                let _ = ws.send_text(&control::ack_with(id, &format!("\"subscribers\":{count}")));
            }
            control::Request::Publish { topic, data, id } => {
                if !self.may(ws, &topic, Right::Publish, id) {
                    return;
                }
                if !self.within_rate(ws.data_mut()) {
                    let error = format!("over {} publishes per second", self.shared.config.max_publish_rate);
                    return self.refuse(ws, &Refusal { error, id });
                }
                if let Some(sequencer) = &self.shared.sequencer {
                    let Some(handle) = self.shared.handle.get() else {
                        return self.refuse(ws, &Refusal { error: "the hub is starting".into(), id });
                    };
                    let except = Some((ws.id(), Form::Json));
                    let (receivers, at) = sequencer.publish(handle, &topic, Payload::Json(data), except);
                    let receivers = receivers - u64::from(ws.is_subscribed(&topic::json_topic(&topic)));
                    self.metrics().published(receivers);
                    if let Some(id) = id {
                        let fields = format!("\"receivers\":{receivers},{}", control::at(at.offset, &at.epoch));
                        let _ = ws.send_text(&control::ack_with(Some(id), &fields));
                    }
                    return;
                }
                if let Some(bridge) = self.history_bridge() {
                    // Acknowledged by the bridge once the stream has it.
                    let (raw, json) = (topic::raw_topic(&topic), topic::json_topic(&topic));
                    let receivers = ws.subscribers(&raw) + ws.subscribers(&json) - u64::from(ws.is_subscribed(&json));
                    self.metrics().published(receivers);
                    let ack = id.map(|id| Ack { conn: ws.id(), id: id.to_owned(), receivers });
                    let payload = data.get().as_bytes();
                    if !bridge.forward_from(&topic, Kind::Json, payload, Some((ws.id(), Form::Json)), ack) {
                        let error = "not published: the history (NATS JetStream) cannot be reached".into();
                        return self.refuse(ws, &Refusal { error, id });
                    }
                    return;
                }
                let mut receivers = 0;
                let raw = topic::raw_topic(&topic);
                if ws.subscribers(&raw) > 0 {
                    receivers += ws.publish(&raw, Message::Text(&control::raw_payload(data)));
                }
                let wrapped = control::delivery_json(&topic, data.get(), None);
                receivers += ws.publish(&topic::json_topic(&topic), Message::Text(&wrapped));
                self.metrics().published(receivers);
                self.shared.forward(&topic, Kind::Json, data.get().as_bytes());
                if let Some(id) = id {
                    let _ = ws.send_text(&control::ack(id, Some(receivers)));
                }
            }
        }
    }

    /// Whether `topic` is a valid name the connection's token allows this
    /// on; if not, the request is answered with why.
    fn may(&self, ws: &mut Ws<'_, Conn>, topic: &str, right: Right, id: Option<&RawValue>) -> bool {
        let error = match topic::check(topic) {
            Err(e) => e.to_owned(),
            Ok(()) => {
                let grant = ws.data().grant.as_ref();
                match right {
                    Right::Subscribe if grant.is_some_and(|g| !g.may_subscribe(topic)) => {
                        format!("token may not subscribe to {topic:?}")
                    }
                    Right::Publish if grant.is_some_and(|g| !g.may_publish(topic)) => {
                        format!("token may not publish to {topic:?}")
                    }
                    _ => return true,
                }
            }
        };
        self.refuse(ws, &Refusal { error, id });
        false
    }

    fn refuse(&self, ws: &mut Ws<'_, Conn>, refusal: &Refusal<'_>) {
        ShardMetrics::bump(&self.metrics().request_errors, 1);
        let _ = ws.send_text(&control::error(refusal));
    }

    /// The route of an upgrade request, or the answer refusing it.
    fn route(&self, request: &Request<'_>) -> Result<Route, Response> {
        let path = request.path();
        if path == "/ws" {
            return Ok(Route::Control { subscribed: 0, replays: Vec::new() });
        }
        let Some(segment) = path.strip_prefix("/topics/") else {
            return Err(Response::new(404).body("no WebSocket here: use /topics/{name} or /ws\n"));
        };
        match Topic::from_path(segment) {
            Ok(topic) => Ok(Route::Room { topic, echo: echo_requested(request.query()), replay: None }),
            Err(e) => Err(Response::new(400).body(format!("{e}\n"))),
        }
    }

    /// The token's grant, when the hub requires tokens.
    fn grant(&self, request: &Request<'_>, route: &Route) -> Result<Option<Box<auth::Grant>>, Response> {
        let Some(verifier) = &self.shared.verifier else { return Ok(None) };
        let Some(token) = auth::token_of(request) else {
            return Err(http::unauthorized("a token is required: ?token=… or Authorization: Bearer …"));
        };
        let grant = verifier.verify(&token).map_err(|why| http::unauthorized(&why))?;
        if let Route::Room { topic, .. } = route {
            if !grant.may_subscribe(&topic.name) {
                return Err(http::error(403, &format!("token may not subscribe to {:?}", &*topic.name)));
            }
        }
        tracing::debug!(sub = %grant.sub, "token accepted");
        Ok(Some(Box::new(grant)))
    }
}

/// What a request asks of the token: subscribe rights (subscribe,
/// history, presence) or publish rights.
#[derive(Clone, Copy)]
enum Right {
    Subscribe,
    Publish,
}

/// `?echo=1` or `?echo=true`.
fn echo_requested(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| matches!(pair, "echo" | "echo=1" | "echo=true")))
}

impl Handler for HubHandler {
    type Data = Conn;

    fn upgrade(&mut self, _request: &Request<'_>) -> Decision<Conn> {
        Decision::reject(500) // the runtime calls upgrade_from
    }

    fn upgrade_from(&mut self, request: &Request<'_>, peer: &Peer<'_>) -> Decision<Conn> {
        if !self.shared.origin_allowed(request) {
            return Decision::Reject(Response::new(403).body("origin not allowed\n"));
        }
        let answer = self.route(request).and_then(|route| Ok((self.grant(request, &route)?, route)));
        let (grant, route) = match answer {
            Ok(ok) => ok,
            Err(response) => {
                self.metrics().refused();
                return Decision::Reject(response);
            }
        };
        let ip = peer.addr().map(|a| a.ip());
        if let Some(ip) = ip {
            if !self.shared.per_address.admit(ip) {
                self.metrics().refused();
                let max = self.shared.per_address.max();
                return Decision::Reject(http::error(429, &format!("at most {max} connections per address")));
            }
        }
        let bucket = Bucket::full(self.shared.config.max_publish_rate);
        let mut route = route;
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Route::Room { topic, replay, .. } = &mut route {
            // Where the room's history stands, for clients that can read
            // the handshake's headers (browsers cannot; nor can anyone on a
            // hub whose history is in JetStream, where this takes a trip).
            let since = match recover::since_of(request.query()) {
                Ok(since) => since,
                Err(e) => {
                    if let Some(ip) = ip {
                        self.shared.per_address.release(ip);
                    }
                    self.metrics().refused();
                    return Decision::Reject(Response::new(400).body(format!("{e}\n")));
                }
            };
            match (&self.shared.sequencer, self.history_bridge()) {
                (Some(sequencer), _) => {
                    let (kept, at) = match &since {
                        Some(since) => sequencer.check(&topic.name, since),
                        None => (false, sequencer.position(&topic.name)),
                    };
                    if since.is_some() {
                        headers.push(("Ringcast-Recovered", kept.to_string()));
                    }
                    headers.push(("Ringcast-Offset", at.offset.to_string()));
                    headers.push(("Ringcast-Epoch", at.epoch.to_string()));
                    *replay = since.filter(|_| kept).map(|from| Box::new(Replay::From(from)));
                }
                (None, Some(_)) => *replay = since.map(|from| Box::new(Replay::From(from))),
                (None, None) if since.is_some() => headers.push(("Ringcast-Recovered", "false".into())),
                (None, None) => {}
            }
        }
        let accept = Accept::new(Conn { route, grant, bucket, ip });
        Decision::Accept(headers.into_iter().fold(accept, |accept, (name, value)| accept.header(name, value)))
    }

    fn http(&mut self, request: &Request<'_>, body: &[u8], _why: RequestError) -> Option<Response> {
        http::answer(&self.shared, self.shard, request, body)
    }

    fn open(&mut self, ws: &mut Ws<'_, Conn>) {
        if let Some(grant) = &ws.data().grant {
            let left = grant.remaining();
            ws.set_alarm(left);
        }
        let Conn { route: Route::Room { topic, replay, .. }, .. } = ws.data_mut() else { return };
        let (name, raw) = (topic.name.clone(), topic.raw.clone());
        let from = match replay.take().map(|r| *r) {
            Some(Replay::From(from)) => Some(from),
            _ => None,
        };
        if let Some(bridge) = self.history_bridge() {
            return recover::subscribe_remote(bridge, ws, &name, Form::Raw, from, None);
        }
        match (&self.shared.sequencer, from) {
            (Some(sequencer), Some(from)) => recover::continue_room(sequencer, ws, &name, from),
            (Some(sequencer), None) => {
                sequencer.join(ws, &name, Form::Raw);
            }
            (None, _) => {
                ws.subscribe(&raw);
            }
        }
    }

    /// A recovery waiting for room goes on.
    fn drain(&mut self, ws: &mut Ws<'_, Conn>) {
        recover::resume(self.shared.sequencer.as_ref(), self.history_bridge().map(|b| &**b), ws);
    }

    /// The cluster bridge's answers, replays and joins.
    fn notified(&mut self, ws: &mut Ws<'_, Conn>, note: Box<dyn std::any::Any + Send>) {
        if let Ok(note) = note.downcast::<Note>() {
            recover::apply(ws, *note);
        }
    }

    fn message(&mut self, ws: &mut Ws<'_, Conn>, message: Message<'_>) {
        match ws.data().route {
            Route::Room { .. } => self.room_message(ws, message),
            Route::Control { .. } => self.control_message(ws, message),
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
            self.shared.per_address.release(ip);
        }
        self.metrics().closed(info.code.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_opt_in() {
        assert!(echo_requested(Some("echo=1")));
        assert!(echo_requested(Some("a=b&echo")));
        assert!(!echo_requested(Some("echo=0")));
        assert!(!echo_requested(Some("noecho=1")));
        assert!(!echo_requested(None));
    }
}
