//! What a publish carries: text, bytes or a JSON value, checked once by
//! whoever received it (a room, `/ws`, HTTP, a message from NATS).

use serde_json::value::RawValue;

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
    /// `bytes` as what they claim to be (`claimed`): text that is not
    /// UTF-8 and JSON that does not parse are refused (`None`); unlabelled
    /// bytes are text if they are UTF-8, else binary.
    pub fn read(claimed: Option<Kind>, bytes: &'a [u8]) -> Option<Payload<'a>> {
        let utf8 = std::str::from_utf8(bytes).ok();
        match claimed {
            Some(Kind::Binary) => Some(Payload::Binary(bytes)),
            Some(Kind::Text) => utf8.map(Payload::Text),
            Some(Kind::Json) => utf8.and_then(|t| serde_json::from_str::<&RawValue>(t).ok()).map(Payload::Json),
            None => Some(utf8.map_or(Payload::Binary(bytes), Payload::Text)),
        }
    }

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

impl<'a> From<ringcast::Message<'a>> for Payload<'a> {
    fn from(message: ringcast::Message<'a>) -> Self {
        match message {
            ringcast::Message::Text(text) => Payload::Text(text),
            ringcast::Message::Binary(bytes) => Payload::Binary(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_kind(claimed: Option<Kind>, bytes: &[u8]) -> Option<Kind> {
        Payload::read(claimed, bytes).map(|p| p.kind())
    }

    #[test]
    fn kinds_round_trip_and_payloads_are_checked() {
        for kind in [Kind::Text, Kind::Binary, Kind::Json] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("TEXT"), None);
        assert_eq!(read_kind(Some(Kind::Text), b"caf\xc3\xa9"), Some(Kind::Text));
        assert_eq!(read_kind(Some(Kind::Text), b"\xff"), None, "text must be UTF-8");
        assert_eq!(read_kind(Some(Kind::Binary), b"\xff"), Some(Kind::Binary));
        assert_eq!(read_kind(Some(Kind::Json), br#"{"a":[1]}"#), Some(Kind::Json));
        assert_eq!(read_kind(Some(Kind::Json), b"{nope"), None);
        assert_eq!(read_kind(Some(Kind::Json), b"1 2"), None, "one value only");
        assert_eq!(read_kind(None, b"plain"), Some(Kind::Text));
        assert_eq!(read_kind(None, b"\x00\xff"), Some(Kind::Binary));
    }
}
