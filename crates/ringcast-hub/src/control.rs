//! The JSON control protocol spoken on `/ws`: many topics per connection.
//!
//! Requests (text messages):
//! `{"op":"subscribe","topic":"a"}`, `{"op":"unsubscribe","topic":"a"}`,
//! `{"op":"publish","topic":"a","data":…}` where `data` is any JSON value.
//! An optional `"id"` (any JSON value) asks for an acknowledgement:
//! `{"id":…,"ok":true}` (publish adds `"receivers":N`). Deliveries are
//! `{"topic":"a","data":…}`; a binary payload published on
//! `/topics/a` or by HTTP arrives base64-encoded with `"encoding":"base64"`.
//! A bad request is answered `{"error":"…"}` (with its `id` when it had
//! one) and the connection stays open.
//!
//! With history on (README "History and recovery"): deliveries add
//! `"offset":N,"epoch":"E"`; a subscribe may carry
//! `"since":{"offset":N,"epoch":"E"}` and is then answered with
//! `"recovered":true|false` (and the topic's offset and epoch) whether or
//! not it has an `id`; `{"op":"history","topic":"a","limit":K}` answers the
//! latest K kept messages; `{"op":"presence","topic":"a"}` the number of
//! subscribers.

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One parsed request.
#[derive(Debug)]
pub enum Request<'a> {
    /// Join a topic, after the messages missed since a position if given.
    Subscribe { topic: String, since: Option<Since>, id: Option<&'a RawValue> },
    /// Leave a topic.
    Unsubscribe { topic: String, id: Option<&'a RawValue> },
    /// Send `data` (raw JSON text) to a topic's subscribers.
    Publish { topic: String, data: &'a RawValue, id: Option<&'a RawValue> },
    /// The latest kept messages of a topic (at most `limit`).
    History { topic: String, limit: Option<usize>, id: Option<&'a RawValue> },
    /// How many subscribe to a topic.
    Presence { topic: String, id: Option<&'a RawValue> },
}

/// The last message a client saw of a topic: `{"offset":N,"epoch":"E"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    /// Its offset (0: before the first message).
    pub offset: u64,
    /// The epoch of the history it belongs to.
    pub epoch: String,
}

#[derive(Deserialize)]
struct Wire<'a> {
    op: Option<String>,
    topic: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    since: Option<Since>,
    limit: Option<usize>,
}

/// A request the hub refuses, with the `id` to answer to if one was read.
#[derive(Debug)]
pub struct Refusal<'a> {
    /// Why.
    pub error: String,
    /// The request's `id`.
    pub id: Option<&'a RawValue>,
}

impl<'a> Refusal<'a> {
    fn new(error: impl Into<String>, id: Option<&'a RawValue>) -> Self {
        Refusal { error: error.into(), id }
    }
}

/// Parses one request.
pub fn parse(text: &str) -> Result<Request<'_>, Refusal<'_>> {
    let wire: Wire<'_> = serde_json::from_str(text).map_err(|e| Refusal::new(format!("invalid request: {e}"), None))?;
    let id = wire.id;
    let op = wire.op.ok_or_else(|| Refusal::new("missing \"op\"", id))?;
    let topic = wire.topic.ok_or_else(|| Refusal::new("missing \"topic\"", id))?;
    match op.as_str() {
        "subscribe" => Ok(Request::Subscribe { topic, since: wire.since, id }),
        "history" => Ok(Request::History { topic, limit: wire.limit, id }),
        "presence" => Ok(Request::Presence { topic, id }),
        "unsubscribe" => Ok(Request::Unsubscribe { topic, id }),
        "publish" => {
            let data = wire.data.ok_or_else(|| Refusal::new("missing \"data\"", id))?;
            Ok(Request::Publish { topic, data, id })
        }
        other => {
            Err(Refusal::new(format!("unknown op {other:?} (subscribe, unsubscribe, publish, history, presence)"), id))
        }
    }
}

/// `{"id":…,"ok":true}` or, with receivers, `{"id":…,"ok":true,"receivers":N}`.
pub fn ack(id: &RawValue, receivers: Option<u64>) -> String {
    match receivers {
        Some(n) => format!("{{\"id\":{},\"ok\":true,\"receivers\":{n}}}", id.get()),
        None => format!("{{\"id\":{},\"ok\":true}}", id.get()),
    }
}

/// `{"id":…,"ok":true,…}` with `fields` (rendered JSON members, e.g. from
/// [`at`]) after `ok`; without `id` when the request had none.
pub fn ack_with(id: Option<&RawValue>, fields: &str) -> String {
    match id {
        Some(id) => format!("{{\"id\":{},\"ok\":true,{fields}}}", id.get()),
        None => format!("{{\"ok\":true,{fields}}}"),
    }
}

/// `"offset":N,"epoch":"E"`: a place in a topic's history.
pub fn at(offset: u64, epoch: &str) -> String {
    format!("\"offset\":{offset},\"epoch\":{}", quote(epoch))
}

/// Told to a `/ws` client whose recovery broke off (it read slower than
/// the history kept its messages): live delivery goes on after `offset`,
/// and the client must resynchronise.
pub fn recovery_lost(topic: &str, offset: u64, epoch: &str) -> String {
    format!("{{\"topic\":{},\"recovered\":false,{}}}", quote(topic), at(offset, epoch))
}

/// `{"id":…,"error":"…"}` (without `id` when there is none).
pub fn error_text(id: Option<&RawValue>, why: &str) -> String {
    error(&Refusal { error: why.into(), id })
}

/// Told to a `/ws` client whose subscribe to `topic` could not be served
/// (the history is unreachable): it is not subscribed and may try again.
pub fn recovery_failed(topic: &str, why: &str) -> String {
    format!("{{\"topic\":{},\"error\":{}}}", quote(topic), quote(why))
}

/// `{"error":"…"}`, with the `id` if the request had one.
pub fn error(refusal: &Refusal<'_>) -> String {
    let message = serde_json::to_string(&refusal.error).unwrap_or_else(|_| "\"error\"".into());
    match refusal.id {
        Some(id) => format!("{{\"id\":{},\"error\":{message}}}", id.get()),
        None => format!("{{\"error\":{message}}}"),
    }
}

/// A delivery to JSON subscribers whose data is already JSON text, with
/// its place in the topic's history when kept (`at`, from [`at`]).
pub fn delivery_json(topic: &str, data: &str, at: Option<&str>) -> String {
    match at {
        Some(at) => format!("{{\"topic\":{},\"data\":{data},{at}}}", quote(topic)),
        None => format!("{{\"topic\":{},\"data\":{data}}}", quote(topic)),
    }
}

/// A delivery to JSON subscribers of a payload published raw: text becomes
/// a JSON string, binary becomes base64.
pub fn delivery_raw(topic: &str, payload: &[u8], is_text: bool, at: Option<&str>) -> String {
    match (is_text, std::str::from_utf8(payload)) {
        (true, Ok(text)) => delivery_json(topic, &quote(text), at),
        _ => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
            let data = format!("\"{encoded}\",\"encoding\":\"base64\"");
            delivery_json(topic, &data, at)
        }
    }
}

/// What raw subscribers get for a JSON publish: a JSON string's contents as
/// text, any other value as its JSON text.
pub fn raw_payload(data: &RawValue) -> std::borrow::Cow<'_, str> {
    let text = data.get();
    if text.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<std::borrow::Cow<'_, str>>(text) {
            return s;
        }
    }
    std::borrow::Cow::Borrowed(text)
}

/// Parses `text` as exactly one JSON value (whitespace around it allowed).
pub fn json_value(text: &str) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_str(text)
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_optional_ids() {
        let Ok(Request::Subscribe { topic, since: None, id: None }) = parse(r#"{"op":"subscribe","topic":"a"}"#) else {
            panic!()
        };
        assert_eq!(topic, "a");
        let request = r#"{"op":"subscribe","topic":"a","since":{"offset":7,"epoch":"e1"},"id":1}"#;
        let Ok(Request::Subscribe { since: Some(since), .. }) = parse(request) else { panic!() };
        assert_eq!(since, Since { offset: 7, epoch: "e1".into() });
        let Ok(Request::History { limit: Some(5), .. }) = parse(r#"{"op":"history","topic":"a","limit":5}"#) else {
            panic!()
        };
        assert!(matches!(parse(r#"{"op":"presence","topic":"a","id":3}"#), Ok(Request::Presence { .. })));
        let Ok(Request::Publish { topic, data, id: Some(id) }) =
            parse(r#"{"op":"publish","topic":"b","data":{"x":[1,2]},"id":7}"#)
        else {
            panic!()
        };
        assert_eq!((topic.as_str(), data.get(), id.get()), ("b", r#"{"x":[1,2]}"#, "7"));
        assert!(matches!(parse(r#"{"op":"unsubscribe","topic":"a"}"#), Ok(Request::Unsubscribe { .. })));
    }

    #[test]
    fn bad_requests_are_explained() {
        assert!(parse("not json").unwrap_err().error.starts_with("invalid request"));
        assert_eq!(parse(r#"{"topic":"a"}"#).unwrap_err().error, "missing \"op\"");
        let refusal = parse(r#"{"op":"publish","topic":"a","id":"q1"}"#).unwrap_err();
        assert_eq!(error(&refusal), r#"{"id":"q1","error":"missing \"data\""}"#);
        assert!(parse(r#"{"op":"shout","topic":"a"}"#).unwrap_err().error.contains("unknown op"));
        assert!(parse(r#"{"op":"subscribe","topic":5}"#).is_err());
        assert!(parse(r#"[1,2]"#).is_err());
        assert!(parse(r#"{"op":"subscribe","topic":"a","since":{"offset":-1,"epoch":"e"}}"#).is_err());
        assert!(parse(r#"{"op":"subscribe","topic":"a","since":{"offset":1}}"#).is_err(), "no epoch");
        assert!(parse(r#"{"op":"history","topic":"a","limit":"all"}"#).is_err());
    }

    #[test]
    fn deliveries_are_valid_json() {
        let text = delivery_raw("r\"oom", "hé \"quoted\"\n".as_bytes(), true, None);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["topic"], "r\"oom");
        assert_eq!(value["data"], "hé \"quoted\"\n");
        let binary = delivery_raw("t", &[0, 255, 1], false, Some(&at(9, "e\"1")));
        let value: serde_json::Value = serde_json::from_str(&binary).unwrap();
        assert_eq!((value["data"].as_str(), value["encoding"].as_str()), (Some("AP8B"), Some("base64")));
        assert_eq!((value["offset"].as_u64(), value["epoch"].as_str()), (Some(9), Some("e\"1")));
        let value: serde_json::Value = serde_json::from_str(&ack_with(None, &at(3, "e"))).unwrap();
        assert_eq!((value["ok"].as_bool(), value["offset"].as_u64()), (Some(true), Some(3)));
        let value: serde_json::Value = serde_json::from_str(&recovery_lost("t", 4, "e")).unwrap();
        assert_eq!(value["recovered"].as_bool(), Some(false));
        let raw = RawValue::from_string("\"a\\u0041\"".into()).unwrap();
        assert_eq!(raw_payload(&raw), "aA");
        let raw = RawValue::from_string("[1, 2]".into()).unwrap();
        assert_eq!(raw_payload(&raw), "[1, 2]");
    }
}
