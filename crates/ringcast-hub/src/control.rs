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

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One parsed request.
#[derive(Debug)]
pub enum Request<'a> {
    /// Join a topic.
    Subscribe { topic: String, id: Option<&'a RawValue> },
    /// Leave a topic.
    Unsubscribe { topic: String, id: Option<&'a RawValue> },
    /// Send `data` (raw JSON text) to a topic's subscribers.
    Publish { topic: String, data: &'a RawValue, id: Option<&'a RawValue> },
}

#[derive(Deserialize)]
struct Wire<'a> {
    op: Option<String>,
    topic: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
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
        "subscribe" => Ok(Request::Subscribe { topic, id }),
        "unsubscribe" => Ok(Request::Unsubscribe { topic, id }),
        "publish" => {
            let data = wire.data.ok_or_else(|| Refusal::new("missing \"data\"", id))?;
            Ok(Request::Publish { topic, data, id })
        }
        other => Err(Refusal::new(format!("unknown op {other:?} (subscribe, unsubscribe, publish)"), id)),
    }
}

/// `{"id":…,"ok":true}` or, with receivers, `{"id":…,"ok":true,"receivers":N}`.
pub fn ack(id: &RawValue, receivers: Option<u64>) -> String {
    match receivers {
        Some(n) => format!("{{\"id\":{},\"ok\":true,\"receivers\":{n}}}", id.get()),
        None => format!("{{\"id\":{},\"ok\":true}}", id.get()),
    }
}

/// `{"error":"…"}`, with the `id` if the request had one.
pub fn error(refusal: &Refusal<'_>) -> String {
    let message = serde_json::to_string(&refusal.error).unwrap_or_else(|_| "\"error\"".into());
    match refusal.id {
        Some(id) => format!("{{\"id\":{},\"error\":{message}}}", id.get()),
        None => format!("{{\"error\":{message}}}"),
    }
}

/// A delivery to JSON subscribers whose data is already JSON text.
pub fn delivery_json(topic: &str, data: &str) -> String {
    format!("{{\"topic\":{},\"data\":{data}}}", quote(topic))
}

/// A delivery to JSON subscribers of a payload published raw: text becomes
/// a JSON string, binary becomes base64.
pub fn delivery_raw(topic: &str, payload: &[u8], is_text: bool) -> String {
    match (is_text, std::str::from_utf8(payload)) {
        (true, Ok(text)) => delivery_json(topic, &quote(text)),
        _ => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
            format!("{{\"topic\":{},\"data\":\"{encoded}\",\"encoding\":\"base64\"}}", quote(topic))
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
        let Ok(Request::Subscribe { topic, id: None }) = parse(r#"{"op":"subscribe","topic":"a"}"#) else { panic!() };
        assert_eq!(topic, "a");
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
    }

    #[test]
    fn deliveries_are_valid_json() {
        let text = delivery_raw("r\"oom", "hé \"quoted\"\n".as_bytes(), true);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["topic"], "r\"oom");
        assert_eq!(value["data"], "hé \"quoted\"\n");
        let binary = delivery_raw("t", &[0, 255, 1], false);
        let value: serde_json::Value = serde_json::from_str(&binary).unwrap();
        assert_eq!((value["data"].as_str(), value["encoding"].as_str()), (Some("AP8B"), Some("base64")));
        let raw = RawValue::from_string("\"a\\u0041\"".into()).unwrap();
        assert_eq!(raw_payload(&raw), "aA");
        let raw = RawValue::from_string("[1, 2]".into()).unwrap();
        assert_eq!(raw_payload(&raw), "[1, 2]");
    }
}
