//! Delivering one message to a topic's local subscribers in both forms:
//! as sent to `/topics/{name}` rooms, wrapped in JSON to `/ws` clients.
//! HTTP publishes and messages arriving from the cluster bridge come this
//! way; a WebSocket publisher's own messages go through its `Ws` instead
//! (which skips the sender).

use ringcast::{Frame, Message, ServerHandle};
use serde_json::value::RawValue;

use crate::control;
use crate::handover::Form;
use crate::topic::{json_topic, raw_topic};

/// What a payload is: the three forms a publish can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text (a room's text message, an HTTP text body).
    Text,
    /// Bytes (a room's binary message, an HTTP binary body).
    Binary,
    /// A JSON value (the `data` of a `/ws` publish): rooms get a JSON
    /// string's contents, any other value as its JSON text.
    Json,
}

impl Kind {
    /// The name used on the wire between hubs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Binary => "binary",
            Kind::Json => "json",
        }
    }

    /// The kind a name stands for.
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "text" => Some(Kind::Text),
            "binary" => Some(Kind::Binary),
            "json" => Some(Kind::Json),
            _ => None,
        }
    }
}

/// A payload checked against its kind, ready to deliver: validated once,
/// by whoever received it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Binary(&'a [u8]),
    /// One JSON value.
    Json(&'a RawValue),
}

impl<'a> Payload<'a> {
    /// The bytes as they travel between hubs.
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Payload::Text(text) => text.as_bytes(),
            Payload::Binary(bytes) => bytes,
            Payload::Json(data) => data.get().as_bytes(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Text(_) => Kind::Text,
            Payload::Binary(_) => Kind::Binary,
            Payload::Json(_) => Kind::Json,
        }
    }
}

/// Publishes `payload` to every local subscriber of `name` (both forms;
/// each form framed once); returns the receivers.
pub fn to_local(handle: &ServerHandle, name: &str, payload: Payload<'_>) -> u64 {
    let (raw, json) = (raw_topic(name), json_topic(name));
    let mut receivers = 0;
    match payload {
        Payload::Text(_) | Payload::Binary(_) => {
            let message = match payload {
                Payload::Text(text) => Message::Text(text),
                _ => Message::Binary(payload.bytes()),
            };
            receivers += handle.publish(&raw, message);
            if handle.subscribers(&json) > 0 {
                let wrapped = control::delivery_raw(name, message.as_bytes(), message.is_text(), None);
                receivers += handle.publish(&json, Message::Text(&wrapped));
            }
        }
        Payload::Json(data) => {
            if handle.subscribers(&raw) > 0 {
                receivers += handle.publish(&raw, Message::Text(&control::raw_payload(data)));
            }
            if handle.subscribers(&json) > 0 {
                receivers += handle.publish(&json, Message::Text(&control::delivery_json(name, data.get(), None)));
            }
        }
    }
    receivers
}

/// `payload` published on `name` at `offset` of the history `epoch`,
/// framed once in each form: (raw for rooms, JSON with the offset for
/// `/ws`).
pub fn frames(handle: &ServerHandle, name: &str, payload: Payload<'_>, offset: u64, epoch: &str) -> (Frame, Frame) {
    (raw_frame(handle, payload), json_frame(handle, name, payload, offset, epoch))
}

/// Only the form `form` subscribers get (a replay to one connection).
pub fn frame_in(
    handle: &ServerHandle,
    form: Form,
    name: &str,
    payload: Payload<'_>,
    offset: u64,
    epoch: &str,
) -> Frame {
    match form {
        Form::Raw => raw_frame(handle, payload),
        Form::Json => json_frame(handle, name, payload, offset, epoch),
    }
}

/// What rooms get: the payload as sent (a JSON string's contents).
fn raw_frame(handle: &ServerHandle, payload: Payload<'_>) -> Frame {
    match payload {
        Payload::Text(text) => handle.frame(Message::Text(text)),
        Payload::Binary(bytes) => handle.frame(Message::Binary(bytes)),
        Payload::Json(data) => handle.frame(Message::Text(&control::raw_payload(data))),
    }
}

/// What `/ws` gets: the delivery with its place in the history.
fn json_frame(handle: &ServerHandle, name: &str, payload: Payload<'_>, offset: u64, epoch: &str) -> Frame {
    let place = control::at(offset, epoch);
    let json = match payload {
        Payload::Text(text) => control::delivery_raw(name, text.as_bytes(), true, Some(&place)),
        Payload::Binary(bytes) => control::delivery_raw(name, bytes, false, Some(&place)),
        Payload::Json(data) => control::delivery_json(name, data.get(), Some(&place)),
    };
    handle.frame(Message::Text(&json))
}

/// `payload` as what it claims to be (`claimed`): text that is not UTF-8
/// and JSON that does not parse are not delivered (`None`); an unlabelled
/// payload is text if it is UTF-8, else binary.
pub fn check(claimed: Option<Kind>, payload: &[u8]) -> Option<Payload<'_>> {
    let utf8 = std::str::from_utf8(payload).ok();
    match claimed {
        Some(Kind::Binary) => Some(Payload::Binary(payload)),
        Some(Kind::Text) => utf8.map(Payload::Text),
        Some(Kind::Json) => utf8.and_then(|t| control::json_value(t).ok()).map(Payload::Json),
        None => Some(utf8.map_or(Payload::Binary(payload), Payload::Text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_kind(claimed: Option<Kind>, payload: &[u8]) -> Option<Kind> {
        check(claimed, payload).map(|p| p.kind())
    }

    #[test]
    fn kinds_round_trip_and_payloads_are_checked() {
        for kind in [Kind::Text, Kind::Binary, Kind::Json] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("TEXT"), None);
        assert_eq!(check_kind(Some(Kind::Text), b"caf\xc3\xa9"), Some(Kind::Text));
        assert_eq!(check_kind(Some(Kind::Text), b"\xff"), None, "text must be UTF-8");
        assert_eq!(check_kind(Some(Kind::Binary), b"\xff"), Some(Kind::Binary));
        assert_eq!(check_kind(Some(Kind::Json), br#"{"a":[1]}"#), Some(Kind::Json));
        assert_eq!(check_kind(Some(Kind::Json), b"{nope"), None);
        assert_eq!(check_kind(Some(Kind::Json), b"1 2"), None, "one value only");
        assert_eq!(check_kind(None, b"plain"), Some(Kind::Text));
        assert_eq!(check_kind(None, b"\x00\xff"), Some(Kind::Binary));
    }
}
