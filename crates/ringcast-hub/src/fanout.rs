//! One message to a topic's local subscribers in both forms: as sent to
//! `/topics/{name}` rooms, wrapped in JSON to `/ws` clients, each form
//! framed once. Every publish that is delivered here without a sequence
//! (the plain log: a room's or `/ws` message, an HTTP publish, a message
//! from the cluster) goes through [`to_local`]; the logs that keep
//! history frame both forms once with [`frames`] and keep them.

use ringcast::broker::{Frame, ServerExt as _};
use ringcast::{Message, ServerHandle, Ws};

use crate::control;
use crate::payload::Payload;
use crate::topic::{Form, Topic};

/// Where a publish is handed to the runtime: the server (from any thread)
/// or the publishing connection's shard.
pub(crate) trait Fanout {
    /// Publishes `message` to the subscribers of server topic `topic`;
    /// returns how many it was addressed to.
    fn publish(&mut self, topic: &str, message: Message<'_>) -> u64;
    /// Subscribers of server topic `topic`.
    fn subscribers(&self, topic: &str) -> u64;
}

impl Fanout for &ServerHandle {
    fn publish(&mut self, topic: &str, message: Message<'_>) -> u64 {
        ServerHandle::publish(self, topic, message)
    }

    fn subscribers(&self, topic: &str) -> u64 {
        ServerHandle::subscribers(self, topic)
    }
}

/// A connection publishing from its shard: it does not receive its own
/// message unless it asked to (`echo`, a room's `?echo=1`).
pub(crate) struct FromConn<'a, 'w, C: 'static> {
    pub ws: &'a mut Ws<'w, C>,
    pub echo: bool,
}

impl<C> Fanout for FromConn<'_, '_, C> {
    fn publish(&mut self, topic: &str, message: Message<'_>) -> u64 {
        match self.echo {
            true => self.ws.publish_including_self(topic, message),
            false => self.ws.publish(topic, message),
        }
    }

    fn subscribers(&self, topic: &str) -> u64 {
        self.ws.subscribers(topic)
    }
}

/// Publishes `payload` to every local subscriber of `topic` in both forms
/// (each form framed once, and only if it has subscribers); returns the
/// receivers.
pub(crate) fn to_local(out: &mut impl Fanout, topic: &Topic, payload: Payload<'_>) -> u64 {
    let mut receivers = 0;
    if out.subscribers(&topic.raw) > 0 {
        receivers += match payload {
            Payload::Text(text) => out.publish(&topic.raw, Message::Text(text)),
            Payload::Binary(bytes) => out.publish(&topic.raw, Message::Binary(bytes)),
            Payload::Json(data) => out.publish(&topic.raw, Message::Text(&control::raw_payload(data))),
        };
    }
    if out.subscribers(&topic.json) > 0 {
        receivers += out.publish(&topic.json, Message::Text(&json_text(&topic.name, payload, None)));
    }
    receivers
}

/// `payload` published on `name` at `offset` of the history `epoch`,
/// framed once in each form: (raw for rooms, JSON with the offset for
/// `/ws`).
pub(crate) fn frames(
    handle: &ServerHandle,
    name: &str,
    payload: Payload<'_>,
    offset: u64,
    epoch: &str,
) -> (Frame, Frame) {
    (
        frame_in(handle, Form::Raw, name, payload, offset, epoch),
        frame_in(handle, Form::Json, name, payload, offset, epoch),
    )
}

/// Only the form `form` subscribers get (a replay to one connection).
pub(crate) fn frame_in(
    handle: &ServerHandle,
    form: Form,
    name: &str,
    payload: Payload<'_>,
    offset: u64,
    epoch: &str,
) -> Frame {
    match (form, payload) {
        (Form::Raw, Payload::Text(text)) => handle.frame(Message::Text(text)),
        (Form::Raw, Payload::Binary(bytes)) => handle.frame(Message::Binary(bytes)),
        (Form::Raw, Payload::Json(data)) => handle.frame(Message::Text(&control::raw_payload(data))),
        (Form::Json, _) => {
            let place = control::at(offset, epoch);
            handle.frame(Message::Text(&json_text(name, payload, Some(&place))))
        }
    }
}

/// What `/ws` gets: the delivery, with its place in the history when kept
/// (`at`, from [`control::at`]).
fn json_text(name: &str, payload: Payload<'_>, at: Option<&str>) -> String {
    match payload {
        Payload::Text(text) => control::delivery_raw(name, text.as_bytes(), true, at),
        Payload::Binary(bytes) => control::delivery_raw(name, bytes, false, at),
        Payload::Json(data) => control::delivery_json(name, data.get(), at),
    }
}
