//! Delivering one message to a topic's local subscribers in both forms:
//! as sent to `/topics/{name}` rooms, wrapped in JSON to `/ws` clients.
//! HTTP publishes and messages arriving from the cluster bridge come this
//! way; a WebSocket publisher's own messages go through its `Ws` instead
//! (which skips the sender).

use ringcast::{Message, ServerHandle};

use crate::control;
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

/// Publishes `payload` to every local subscriber of `name` (both forms;
/// each form framed once); returns the receivers. `payload` must match
/// `kind` (UTF-8 for text, one JSON value for JSON): see [`check`].
pub fn to_local(handle: &ServerHandle, name: &str, kind: Kind, payload: &[u8]) -> u64 {
    let (raw, json) = (raw_topic(name), json_topic(name));
    let mut receivers = 0;
    match kind {
        Kind::Text | Kind::Binary => {
            let text = if kind == Kind::Text { std::str::from_utf8(payload).ok() } else { None };
            let message = text.map_or(Message::Binary(payload), Message::Text);
            receivers += handle.publish(&raw, message);
            if handle.subscribers(&json) > 0 {
                let wrapped = control::delivery_raw(name, payload, text.is_some());
                receivers += handle.publish(&json, Message::Text(&wrapped));
            }
        }
        Kind::Json => {
            let Some(data) = std::str::from_utf8(payload).ok().and_then(|t| control::json_value(t).ok()) else {
                return 0;
            };
            if handle.subscribers(&raw) > 0 {
                receivers += handle.publish(&raw, Message::Text(&control::raw_payload(data)));
            }
            if handle.subscribers(&json) > 0 {
                receivers += handle.publish(&json, Message::Text(&control::delivery_json(name, data.get())));
            }
        }
    }
    receivers
}

/// The kind `payload` can be delivered as when it claims `claimed`: text
/// that is not UTF-8 and JSON that does not parse are not delivered
/// (`None`); an unlabelled payload is text if it is UTF-8, else binary.
pub fn check(claimed: Option<Kind>, payload: &[u8]) -> Option<Kind> {
    let utf8 = std::str::from_utf8(payload).ok();
    match claimed {
        Some(Kind::Binary) => Some(Kind::Binary),
        Some(Kind::Text) => utf8.map(|_| Kind::Text),
        Some(Kind::Json) => utf8.filter(|t| control::json_value(t).is_ok()).map(|_| Kind::Json),
        None => Some(if utf8.is_some() { Kind::Text } else { Kind::Binary }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_payloads_are_checked() {
        for kind in [Kind::Text, Kind::Binary, Kind::Json] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("TEXT"), None);
        assert_eq!(check(Some(Kind::Text), b"caf\xc3\xa9"), Some(Kind::Text));
        assert_eq!(check(Some(Kind::Text), b"\xff"), None, "text must be UTF-8");
        assert_eq!(check(Some(Kind::Binary), b"\xff"), Some(Kind::Binary));
        assert_eq!(check(Some(Kind::Json), br#"{"a":[1]}"#), Some(Kind::Json));
        assert_eq!(check(Some(Kind::Json), b"{nope"), None);
        assert_eq!(check(Some(Kind::Json), b"1 2"), None, "one value only");
        assert_eq!(check(None, b"plain"), Some(Kind::Text));
        assert_eq!(check(None, b"\x00\xff"), Some(Kind::Binary));
    }
}
