//! Serving the `/ws` JSON protocol ([`crate::control`] reads and writes
//! it): subscribe, unsubscribe, publish, history and presence, each
//! checked against the topic rules, the token's lists and the limits,
//! then handed to the topic log. A bad request is answered with
//! `{"error"}` (and counted); the connection stays open.

use ringcast::{Message, Ws};
use serde_json::value::RawValue;

use crate::conn::{Conn, Route};
use crate::control::{self, Refusal, Reply, Request, DEFAULT_HISTORY, MAX_HISTORY};
use crate::log::{Published, Publisher};
use crate::payload::Payload;
use crate::state::Shard;
use crate::topic::{Form, Topic};

/// What a request asks of the token: subscribe rights (subscribe,
/// history, presence) or publish rights.
#[derive(Clone, Copy)]
enum Right {
    Subscribe,
    Publish,
}

/// A message from a `/ws` connection: one request.
pub(crate) fn serve(shard: &Shard, ws: &mut Ws<'_, Conn>, message: Message<'_>) {
    let Message::Text(text) = message else {
        return refuse(shard, ws, &Refusal { error: "requests are JSON text messages".into(), id: None });
    };
    let request = match control::parse(text) {
        Ok(request) => request,
        Err(refusal) => return refuse(shard, ws, &refusal),
    };
    match request {
        Request::Subscribe { topic, since, id } => {
            let Some(topic) = may(shard, ws, &topic, Right::Subscribe, id) else { return };
            if ws.is_subscribed(&topic.json) || ws.data().recovering(&topic.name) {
                return control::send(ws, &Reply::Done { id: id.map(RawValue::to_owned) });
            }
            let max = shard.state.config.max_topics_per_connection;
            let Conn { route: Route::Control { subscribed, .. }, .. } = ws.data_mut() else { return };
            if *subscribed >= max {
                let error = format!("at most {max} topics per connection");
                return refuse(shard, ws, &Refusal { error, id });
            }
            *subscribed += 1;
            if shard.state.log.subscribe_is_costly() && !shard.within_rate(&mut ws.data_mut().bucket) {
                ws.data_mut().unsubscribed();
                let error = format!("over {} publishes and subscribes per second", shard.state.config.max_publish_rate);
                return refuse(shard, ws, &Refusal { error, id });
            }
            shard.state.log.subscribe(ws, &topic.name, since.map(Into::into), id);
        }
        Request::Unsubscribe { topic, id } => {
            let was_recovering = ws.data_mut().end_recovery(&topic);
            if ws.unsubscribe(&Form::Json.topic(&topic)) || was_recovering {
                ws.data_mut().unsubscribed();
            }
            control::send(ws, &Reply::Done { id: id.map(RawValue::to_owned) });
        }
        Request::History { topic, limit, id } => {
            let Some(topic) = may(shard, ws, &topic, Right::Subscribe, id) else { return };
            let limit = limit.unwrap_or(DEFAULT_HISTORY).min(MAX_HISTORY);
            let budget = shard.state.config.max_backpressure / 2;
            if let Some(reply) = shard.state.log.history(ws, &topic.name, limit, budget, id) {
                send_counted(shard, ws, &reply);
            }
        }
        Request::Presence { topic, id } => {
            let Some(topic) = may(shard, ws, &topic, Right::Subscribe, id) else { return };
            let here = topic.subscribers(|t| ws.subscribers(t));
            let subscribers = here + shard.state.log.elsewhere(&topic.name);
            control::send(ws, &Reply::Presence { id: id.map(RawValue::to_owned), subscribers });
        }
        Request::Publish { topic, data, id } => {
            let Some(topic) = may(shard, ws, &topic, Right::Publish, id) else { return };
            if !shard.within_rate(&mut ws.data_mut().bucket) {
                let error = format!("over {} publishes per second", shard.state.config.max_publish_rate);
                return refuse(shard, ws, &Refusal { error, id });
            }
            let from = Publisher::Conn { ws, form: Form::Json, echo: false };
            match shard.state.log.publish(from, &topic, Payload::Json(data), id) {
                Published::Done { receivers, at } => {
                    shard.metrics().published(receivers);
                    if let Some(id) = id {
                        control::send(ws, &Reply::Published { id: id.to_owned(), receivers, at });
                    }
                }
                // Acknowledged by the log's thread once kept.
                Published::Pending { receivers } => shard.metrics().published(receivers),
                Published::Refused(why) => refuse(shard, ws, &Refusal { error: why.why().into(), id }),
            }
        }
    }
}

/// The topic named `name`, if it is a valid name the connection's token
/// allows this on; if not, the request is answered with why.
fn may(shard: &Shard, ws: &mut Ws<'_, Conn>, name: &str, right: Right, id: Option<&RawValue>) -> Option<Topic> {
    let error = match Topic::new(name) {
        Err(e) => e.to_string(),
        Ok(topic) => {
            let grant = ws.data().grant.as_ref();
            match right {
                Right::Subscribe if grant.is_some_and(|g| !g.may_subscribe(name)) => {
                    format!("token may not subscribe to {name:?}")
                }
                Right::Publish if grant.is_some_and(|g| !g.may_publish(name)) => {
                    format!("token may not publish to {name:?}")
                }
                _ => return Some(topic),
            }
        }
    };
    refuse(shard, ws, &Refusal { error, id });
    None
}

/// Sends `reply`, counting a refusal as a request error.
fn send_counted(shard: &Shard, ws: &mut Ws<'_, Conn>, reply: &Reply) {
    if matches!(reply, Reply::Refused { .. }) {
        shard.metrics().request_error();
    }
    control::send(ws, reply);
}

/// Answers a request with `{"error"}` and counts it.
fn refuse(shard: &Shard, ws: &mut Ws<'_, Conn>, refusal: &Refusal<'_>) {
    shard.metrics().request_error();
    let _ = ws.send_text(&control::error(refusal));
}
