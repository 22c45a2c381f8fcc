//! The hub's plain HTTP answers: `POST /publish/{name}`, `GET /metrics`,
//! `GET /healthz`, the chat page at `/` and the live dashboard at
//! `/dashboard`.

use ringcast::Request;
use ringcast::Response;

use crate::auth::{bearer, key_matches};
use crate::control;
use crate::log::{Published, Publisher};
use crate::payload::Payload;
use crate::prometheus;
use crate::state::{HubState, Shard};
use crate::topic::Topic;

const CHAT_PAGE: &str = include_str!("chat.html");
const DASHBOARD: &str = include_str!("dashboard.html");

/// Answers a request that is not a WebSocket upgrade (`None`: a WebSocket
/// path, answered with the handshake's status).
pub(crate) fn answer(shard: &Shard, request: &Request<'_>, body: &[u8]) -> Option<Response> {
    let state = &*shard.state;
    let path = request.path();
    if path == "/ws" || path.starts_with("/topics/") {
        return None;
    }
    let get = request.method() == "GET";
    Some(match path {
        "/" if get => Response::new(200).header("Content-Type", "text/html; charset=utf-8").body(CHAT_PAGE),
        "/healthz" | "/metrics" if get && !metrics_key_ok(state, request) => {
            unauthorized("missing or wrong metrics key (Authorization: Bearer KEY)")
        }
        "/healthz" if get => Response::new(200).body("ok\n"),
        "/metrics" if get => metrics_page(state),
        // The page holds no data: it reads /metrics with the key it is given.
        "/dashboard" if get => Response::new(200).header("Content-Type", "text/html; charset=utf-8").body(DASHBOARD),
        "/" | "/healthz" | "/metrics" | "/dashboard" => method_not_allowed("GET"),
        _ => match path.strip_prefix("/publish/") {
            Some(_) if !state.origin_allowed(request) => Response::new(403).body("origin not allowed\n"),
            Some(segment) if request.method() == "POST" => publish(shard, request, segment, body),
            Some(_) => method_not_allowed("POST"),
            None => Response::new(404).body("not found\n"),
        },
    })
}

/// `/metrics` and `/healthz` are open unless the hub has a metrics key.
fn metrics_key_ok(state: &HubState, request: &Request<'_>) -> bool {
    match &state.config.metrics_key {
        Some(key) => key_matches(std::slice::from_ref(key), bearer(request)),
        None => true,
    }
}

fn metrics_page(state: &HubState) -> Response {
    let Some(handle) = state.handle.get() else { return Response::new(503).body("starting\n") };
    Response::new(200).header("Content-Type", "text/plain; version=0.0.4; charset=utf-8").body(prometheus::render(
        &handle.shard_stats(),
        &state.metrics,
        &state.topics,
        state.log.bridge_metrics(),
        state.log.history_size(),
    ))
}

fn publish(shard: &Shard, request: &Request<'_>, segment: &str, body: &[u8]) -> Response {
    let state = &*shard.state;
    if !state.config.api_keys.is_empty() && !key_matches(&state.config.api_keys, bearer(request)) {
        return unauthorized("missing or wrong API key (Authorization: Bearer KEY)");
    }
    let Some(handle) = state.handle.get() else { return Response::new(503).body("starting\n") };
    let topic = match Topic::from_path(segment) {
        Ok(topic) => topic,
        Err(e) => return Response::new(400).body(format!("{e}\n")),
    };
    let content_type = request.header("content-type").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("");
    let payload = match std::str::from_utf8(body) {
        Ok(text) if is_textual(content_type) => Payload::Text(text),
        _ => Payload::Binary(body),
    };
    match state.log.publish(Publisher::Http(handle), &topic, payload, None) {
        Published::Done { receivers, at } => {
            shard.metrics().published(receivers);
            let at = at.map(|at| format!(",{}", control::at(at.offset, &at.epoch))).unwrap_or_default();
            json(200, format!("{{\"receivers\":{receivers}{at}}}\n"))
        }
        // Every hub delivers it from the stream, this one too.
        Published::Pending { receivers } => {
            shard.metrics().published(receivers);
            json(200, format!("{{\"receivers\":{receivers}}}\n"))
        }
        Published::Refused(why) => error(503, why.why()),
    }
}

/// A JSON answer.
pub(crate) fn json(status: u16, body: String) -> Response {
    Response::new(status).header("Content-Type", "application/json").body(body)
}

/// `{"error":"…"}` with this status.
pub(crate) fn error(status: u16, why: &str) -> Response {
    let why = serde_json::to_string(why).unwrap_or_else(|_| "\"error\"".into());
    json(status, format!("{{\"error\":{why}}}\n"))
}

/// 401 with the scheme to use.
pub(crate) fn unauthorized(why: &str) -> Response {
    let response = error(401, why);
    response.header("WWW-Authenticate", "Bearer")
}

/// Text and JSON content types publish as text messages.
fn is_textual(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media.starts_with("text/") || media == "application/json" || media.ends_with("+json")
}

fn method_not_allowed(allow: &str) -> Response {
    Response::new(405).header("Allow", allow).body(format!("use {allow}\n"))
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
}
