//! The hub's handler: which path does what.
//!
//! - WebSocket `/topics/{name}`: a room. The connection subscribes to
//!   `name`; each message it sends (type kept) goes to every other
//!   subscriber (`?echo=1`: to itself too, in the room's order).
//! - WebSocket `/ws`: the JSON control protocol ([`crate::control`]).
//! - `POST /publish/{name}`, `GET /metrics`, `GET /healthz`, `GET /` (the
//!   chat page).

use std::sync::{Arc, OnceLock};

use ringcast::proto::handshake::Request;
use ringcast::proto::RequestError;
use ringcast::{CloseInfo, Decision, Handler, Message, Response, ServerHandle, Ws};

use crate::bridge::Bridge;
use crate::config::HubConfig;
use crate::control::{self, Refusal};
use crate::deliver::{self, Kind};
use crate::metrics::{self, ShardMetrics};
use crate::topic::{self, Topic};

/// What every shard's handler shares.
pub(crate) struct Shared {
    pub config: HubConfig,
    /// Set right after the server started: HTTP publishes and `/metrics`
    /// need it.
    pub handle: OnceLock<ServerHandle>,
    pub metrics: Vec<ShardMetrics>,
    /// The cluster bridge, when the hub has one.
    pub bridge: Option<Arc<Bridge>>,
}

/// One shard's handler.
pub(crate) struct HubHandler {
    pub shard: usize,
    pub shared: Arc<Shared>,
}

/// The route a connection came in on, with that route's state (the
/// handler's per-connection data).
pub(crate) enum Route {
    /// `/topics/{name}`.
    Room { topic: Topic, echo: bool },
    /// `/ws`, with the number of topics it subscribes to.
    Control { subscribed: usize },
}

const CHAT_PAGE: &str = include_str!("chat.html");

impl HubHandler {
    fn metrics(&self) -> &ShardMetrics {
        &self.shared.metrics[self.shard]
    }

    /// Browsers always send `Origin`; other clients may not, and are let in.
    fn origin_allowed(&self, request: &Request<'_>) -> bool {
        let allowed = &self.shared.config.allowed_origins;
        match request.origin() {
            Some(origin) if !allowed.is_empty() => allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)),
            _ => true,
        }
    }

    fn room_message(&mut self, ws: &mut Ws<'_, Route>, message: Message<'_>) {
        let Route::Room { topic, echo } = ws.data() else { return };
        let (raw, json, name, echo) = (topic.raw.clone(), topic.json.clone(), topic.name.clone(), *echo);
        let mut receivers = if echo { ws.publish_to_all(&raw, message) } else { ws.publish(&raw, message) };
        if ws.subscribers(&json) > 0 {
            let wrapped = control::delivery_raw(&name, message.as_bytes(), message.is_text());
            receivers += ws.publish(&json, Message::Text(&wrapped));
        }
        self.count_publish(receivers);
        let kind = if message.is_text() { Kind::Text } else { Kind::Binary };
        self.forward(&name, kind, message.as_bytes());
    }

    /// Hands a publish made here to the other hubs of the cluster.
    fn forward(&self, name: &str, kind: Kind, payload: &[u8]) {
        if let Some(bridge) = &self.shared.bridge {
            bridge.forward(name, kind, payload);
        }
    }

    fn count_publish(&self, receivers: u64) {
        ShardMetrics::bump(&self.metrics().publishes, 1);
        ShardMetrics::bump(&self.metrics().receivers, receivers);
    }

    fn control_message(&mut self, ws: &mut Ws<'_, Route>, message: Message<'_>) {
        let Message::Text(text) = message else {
            return self.refuse(ws, &Refusal { error: "requests are JSON text messages".into(), id: None });
        };
        let request = match control::parse(text) {
            Ok(request) => request,
            Err(refusal) => return self.refuse(ws, &refusal),
        };
        match request {
            control::Request::Subscribe { topic, id } => {
                if let Err(e) = topic::check(&topic) {
                    return self.refuse(ws, &Refusal { error: e.into(), id });
                }
                let json = topic::json_topic(&topic);
                if !ws.is_subscribed(&json) {
                    let max = self.shared.config.max_topics_per_connection;
                    let Route::Control { subscribed } = ws.data_mut() else { return };
                    if *subscribed >= max {
                        let error = format!("at most {max} topics per connection");
                        return self.refuse(ws, &Refusal { error, id });
                    }
                    *subscribed += 1;
                    ws.subscribe(&json);
                }
                if let Some(id) = id {
                    let _ = ws.send_text(&control::ack(id, None));
                }
            }
            control::Request::Unsubscribe { topic, id } => {
                if ws.unsubscribe(&topic::json_topic(&topic)) {
                    if let Route::Control { subscribed } = ws.data_mut() {
                        *subscribed -= 1;
                    }
                }
                if let Some(id) = id {
                    let _ = ws.send_text(&control::ack(id, None));
                }
            }
            control::Request::Publish { topic, data, id } => {
                if let Err(e) = topic::check(&topic) {
                    return self.refuse(ws, &Refusal { error: e.into(), id });
                }
                let mut receivers = 0;
                let raw = topic::raw_topic(&topic);
                if ws.subscribers(&raw) > 0 {
                    receivers += ws.publish(&raw, Message::Text(&control::raw_payload(data)));
                }
                let wrapped = control::delivery_json(&topic, data.get());
                receivers += ws.publish(&topic::json_topic(&topic), Message::Text(&wrapped));
                self.count_publish(receivers);
                self.forward(&topic, Kind::Json, data.get().as_bytes());
                if let Some(id) = id {
                    let _ = ws.send_text(&control::ack(id, Some(receivers)));
                }
            }
        }
    }

    fn refuse(&self, ws: &mut Ws<'_, Route>, refusal: &Refusal<'_>) {
        ShardMetrics::bump(&self.metrics().request_errors, 1);
        let _ = ws.send_text(&control::error(refusal));
    }

    fn http_publish(&self, request: &Request<'_>, segment: &str, body: &[u8]) -> Response {
        let Some(handle) = self.shared.handle.get() else { return Response::new(503).body("starting\n") };
        let topic = match Topic::from_path(segment) {
            Ok(topic) => topic,
            Err(e) => return Response::new(400).body(format!("{e}\n")),
        };
        let content_type = request.header("content-type").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("");
        let kind = match std::str::from_utf8(body) {
            Ok(_) if is_textual(content_type) => Kind::Text,
            _ => Kind::Binary,
        };
        let receivers = deliver::to_local(handle, &topic.name, kind, body);
        self.count_publish(receivers);
        self.forward(&topic.name, kind, body);
        json_response(200, format!("{{\"receivers\":{receivers}}}\n"))
    }
}

/// Text and JSON content types publish as text messages.
fn is_textual(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media.starts_with("text/") || media == "application/json" || media.ends_with("+json")
}

fn json_response(status: u16, body: String) -> Response {
    Response::new(status).header("Content-Type", "application/json").body(body)
}

fn method_not_allowed(allow: &str) -> Response {
    Response::new(405).header("Allow", allow).body(format!("use {allow}\n"))
}

fn is_websocket_path(path: &str) -> bool {
    path == "/ws" || path.starts_with("/topics/")
}

/// `?echo=1` or `?echo=true`.
fn echo_requested(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| matches!(pair, "echo" | "echo=1" | "echo=true")))
}

impl Handler for HubHandler {
    type Data = Route;

    fn upgrade(&mut self, request: &Request<'_>) -> Decision<Route> {
        if !self.origin_allowed(request) {
            return Decision::Reject(Response::new(403).body("origin not allowed\n"));
        }
        let path = request.path();
        if path == "/ws" {
            return Decision::accept(Route::Control { subscribed: 0 });
        }
        let Some(segment) = path.strip_prefix("/topics/") else {
            return Decision::Reject(Response::new(404).body("no WebSocket here: use /topics/{name} or /ws\n"));
        };
        match Topic::from_path(segment) {
            Ok(topic) => Decision::accept(Route::Room { topic, echo: echo_requested(request.query()) }),
            Err(e) => Decision::Reject(Response::new(400).body(format!("{e}\n"))),
        }
    }

    fn http(&mut self, request: &Request<'_>, body: &[u8], _why: RequestError) -> Option<Response> {
        let path = request.path();
        if is_websocket_path(path) {
            return None; // not a valid upgrade: the handshake's status
        }
        let get = request.method() == "GET";
        Some(match path {
            "/" if get => Response::new(200).header("Content-Type", "text/html; charset=utf-8").body(CHAT_PAGE),
            "/healthz" if get => Response::new(200).body("ok\n"),
            "/metrics" if get => match self.shared.handle.get() {
                Some(handle) => Response::new(200)
                    .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(metrics::render(
                        &handle.shard_stats(),
                        &self.shared.metrics,
                        self.shared.bridge.as_deref().map(|b| &b.metrics),
                    )),
                None => Response::new(503).body("starting\n"),
            },
            "/" | "/healthz" | "/metrics" => method_not_allowed("GET"),
            _ => match path.strip_prefix("/publish/") {
                Some(_) if !self.origin_allowed(request) => Response::new(403).body("origin not allowed\n"),
                Some(segment) if request.method() == "POST" => self.http_publish(request, segment, body),
                Some(_) => method_not_allowed("POST"),
                None => Response::new(404).body("not found\n"),
            },
        })
    }

    fn open(&mut self, ws: &mut Ws<'_, Route>) {
        if let Route::Room { topic, .. } = ws.data() {
            let raw = topic.raw.clone();
            ws.subscribe(&raw);
        }
    }

    fn message(&mut self, ws: &mut Ws<'_, Route>, message: Message<'_>) {
        match ws.data() {
            Route::Room { .. } => self.room_message(ws, message),
            Route::Control { .. } => self.control_message(ws, message),
        }
    }

    fn close(&mut self, _route: Route, info: CloseInfo<'_>) {
        self.metrics().closed(info.code.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_that_publish_text() {
        assert!(is_textual("text/plain"));
        assert!(is_textual("Text/Plain; charset=utf-8"));
        assert!(is_textual("application/json"));
        assert!(is_textual("application/ld+json"));
        assert!(!is_textual("application/octet-stream"));
        assert!(!is_textual(""));
    }

    #[test]
    fn echo_is_opt_in() {
        assert!(echo_requested(Some("echo=1")));
        assert!(echo_requested(Some("a=b&echo")));
        assert!(!echo_requested(Some("echo=0")));
        assert!(!echo_requested(Some("noecho=1")));
        assert!(!echo_requested(None));
    }
}
