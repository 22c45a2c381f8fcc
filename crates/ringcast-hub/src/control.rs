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
//! With history on (docs/hub.md, "History and recovery"): deliveries add
//! `"offset":N,"epoch":"E"`; a subscribe may carry
//! `"since":{"offset":N,"epoch":"E"}` and is then answered with
//! `"recovered":true|false` (and the topic's offset and epoch) whether or
//! not it has an `id`; `{"op":"history","topic":"a","limit":K}` answers the
//! latest K kept messages; `{"op":"presence","topic":"a"}` the number of
//! subscribers.

use std::sync::Arc;

use base64::Engine;
use ringcast::broker::Frame;
use ringcast::Ws;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::position::Position;

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

impl From<Since> for Position {
    fn from(since: Since) -> Position {
        Position { offset: since.offset, epoch: since.epoch.into() }
    }
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

/// A request's `id`, owned: an answer may be made on another thread.
pub type Id = Box<RawValue>;

/// An answer to a `/ws` request, or a notice about a subscription, as
/// data: whoever decides it (the connection's shard, a log's thread) hands
/// this over, and the connection renders it with [`render`].
#[derive(Debug)]
pub enum Reply {
    /// Done, nothing to add: `{"id":…,"ok":true}` (nothing without an id).
    Done { id: Option<Id> },
    /// Subscribed: `recovered` when the request carried `since` (always
    /// answered then), `at` where the topic stood when the log keeps
    /// history.
    Subscribed { id: Option<Id>, recovered: Option<bool>, at: Option<Position> },
    /// Published to `receivers` subscribers here; `at` where it was kept.
    Published { id: Id, receivers: u64, at: Option<Position> },
    /// Subscribers of a topic (this hub's and, in a cluster, the others').
    Presence { id: Option<Id>, subscribers: u64 },
    /// The latest kept messages (the deliveries as sent, oldest first) and
    /// where the topic stands.
    History { id: Option<Id>, at: Position, messages: Vec<Frame> },
    /// A request refused, and why.
    Refused { id: Option<Id>, why: String },
    /// A recovery broke off (the client read slower than the history kept
    /// its messages): live delivery goes on after `at`, and the client
    /// must resynchronise.
    Lost { topic: Arc<str>, at: Position },
    /// A subscribe could not be served (the history is unreachable): the
    /// client is not subscribed and may try again.
    Failed { topic: Arc<str>, why: String },
}

/// The text of `reply` (`None`: nothing to send, e.g. a subscribe without
/// `id` or `since`).
pub fn render(reply: &Reply) -> Option<String> {
    let ok = |id: Option<&RawValue>, fields: &str| match id {
        Some(id) => format!("{{\"id\":{},\"ok\":true{fields}}}", id.get()),
        None => format!("{{\"ok\":true{fields}}}"),
    };
    Some(match reply {
        Reply::Done { id: None } | Reply::Subscribed { id: None, recovered: None, .. } => return None,
        Reply::Done { id } => ok(id.as_deref(), ""),
        Reply::Subscribed { id, recovered, at } => {
            let mut fields = String::new();
            if let Some(recovered) = recovered {
                fields.push_str(&format!(",\"recovered\":{recovered}"));
            }
            if let Some(at) = at {
                fields.push_str(&format!(",{}", place(at)));
            }
            ok(id.as_deref(), &fields)
        }
        Reply::Published { id, receivers, at } => {
            let at = at.as_ref().map(|at| format!(",{}", place(at))).unwrap_or_default();
            ok(Some(id), &format!(",\"receivers\":{receivers}{at}"))
        }
        Reply::Presence { id, subscribers } => ok(id.as_deref(), &format!(",\"subscribers\":{subscribers}")),
        Reply::History { id, at, messages } => {
            let size = messages.iter().map(|m| m.payload().len() + 1).sum::<usize>();
            let mut list = String::with_capacity(size + 2);
            list.push('[');
            for (i, message) in messages.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                // The JSON form is built from JSON text by the hub: UTF-8.
                list.push_str(std::str::from_utf8(message.payload()).unwrap_or("null"));
            }
            list.push(']');
            ok(id.as_deref(), &format!(",{},\"messages\":{list}", place(at)))
        }
        Reply::Refused { id, why } => error(&Refusal { error: why.clone(), id: id.as_deref() }),
        Reply::Lost { topic, at } => format!("{{\"topic\":{},\"recovered\":false,{}}}", quote(topic), place(at)),
        Reply::Failed { topic, why } => format!("{{\"topic\":{},\"error\":{}}}", quote(topic), quote(why)),
    })
}

/// Sends `reply` on `ws` if it says anything.
pub fn send<C>(ws: &mut Ws<'_, C>, reply: &Reply) {
    if let Some(text) = render(reply) {
        let _ = ws.send_text(&text);
    }
}

/// `"offset":N,"epoch":"E"`: a place in a topic's history.
pub fn at(offset: u64, epoch: &str) -> String {
    format!("\"offset\":{offset},\"epoch\":{}", quote(epoch))
}

fn place(at: &Position) -> String {
    self::at(at.offset, &at.epoch)
}

/// Most messages a `history` answer holds.
pub const MAX_HISTORY: usize = 1000;
/// Messages a `history` request without `limit` gets.
pub const DEFAULT_HISTORY: usize = 100;

/// The messages of a `history` answer, gathered oldest first: the newest
/// `limit` that fit in `budget` bytes.
pub(crate) struct Newest {
    limit: usize,
    budget: usize,
    size: usize,
    frames: std::collections::VecDeque<Frame>,
}

impl Newest {
    pub fn new(limit: usize, budget: usize) -> Newest {
        Newest { limit, budget, size: 0, frames: Default::default() }
    }

    /// Takes the next (newer) message; the oldest go when over a bound.
    pub fn push(&mut self, frame: Frame) {
        self.size += frame.payload().len() + 1;
        self.frames.push_back(frame);
        while self.frames.len() > self.limit || self.size > self.budget {
            let Some(oldest) = self.frames.pop_front() else { break };
            self.size -= oldest.payload().len() + 1;
        }
    }

    pub fn into_frames(self) -> Vec<Frame> {
        self.frames.into()
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

    fn id(text: &str) -> Id {
        RawValue::from_string(text.into()).unwrap()
    }

    fn position(offset: u64, epoch: &str) -> Position {
        Position { offset, epoch: epoch.into() }
    }

    #[test]
    fn replies_render_as_the_protocol_says() {
        let render = |reply: Reply| render(&reply);
        assert_eq!(render(Reply::Done { id: None }), None);
        assert_eq!(render(Reply::Done { id: Some(id("7")) }).unwrap(), r#"{"id":7,"ok":true}"#);
        let since = Reply::Subscribed { id: None, recovered: Some(false), at: None };
        assert_eq!(render(since).unwrap(), r#"{"ok":true,"recovered":false}"#, "since is always answered");
        let recovered = Reply::Subscribed { id: Some(id("\"a\"")), recovered: Some(true), at: Some(position(9, "e")) };
        assert_eq!(render(recovered).unwrap(), r#"{"id":"a","ok":true,"recovered":true,"offset":9,"epoch":"e"}"#);
        let published = Reply::Published { id: id("2"), receivers: 5, at: None };
        assert_eq!(render(published).unwrap(), r#"{"id":2,"ok":true,"receivers":5}"#);
        let kept = Reply::Published { id: id("2"), receivers: 5, at: Some(position(1, "e")) };
        assert_eq!(render(kept).unwrap(), r#"{"id":2,"ok":true,"receivers":5,"offset":1,"epoch":"e"}"#);
        assert_eq!(render(Reply::Presence { id: None, subscribers: 3 }).unwrap(), r#"{"ok":true,"subscribers":3}"#);
        let refused = Reply::Refused { id: Some(id("4")), why: "no \"x\"".into() };
        assert_eq!(render(refused).unwrap(), r#"{"id":4,"error":"no \"x\""}"#);
        let failed = Reply::Failed { topic: "t".into(), why: "down".into() };
        assert_eq!(render(failed).unwrap(), r#"{"topic":"t","error":"down"}"#);
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
        let subscribed = Reply::Subscribed { id: None, recovered: None, at: Some(position(3, "e")) };
        assert_eq!(render(&subscribed), None, "no id, no since: nothing to say");
        let subscribed = Reply::Subscribed { id: Some(id("1")), recovered: None, at: Some(position(3, "e")) };
        let value: serde_json::Value = serde_json::from_str(&render(&subscribed).unwrap()).unwrap();
        assert_eq!(
            (value["ok"].as_bool(), value["offset"].as_u64(), value["id"].as_u64()),
            (Some(true), Some(3), Some(1))
        );
        let lost = Reply::Lost { topic: "t".into(), at: position(4, "e") };
        let value: serde_json::Value = serde_json::from_str(&render(&lost).unwrap()).unwrap();
        assert_eq!((value["recovered"].as_bool(), value["topic"].as_str()), (Some(false), Some("t")));
        let raw = RawValue::from_string("\"a\\u0041\"".into()).unwrap();
        assert_eq!(raw_payload(&raw), "aA");
        let raw = RawValue::from_string("[1, 2]".into()).unwrap();
        assert_eq!(raw_payload(&raw), "[1, 2]");
    }
}
