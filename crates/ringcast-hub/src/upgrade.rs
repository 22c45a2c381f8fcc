//! Who may open a WebSocket, and on which route: the `Origin` allow list,
//! the route (`/ws` or `/topics/{name}`), the token when the hub requires
//! one, the per-address limit, and for a room asked to recover, where its
//! topic's history stands (the 101's `Ringcast-*` headers).
//!
//! With tokens required, an upgrade without a valid one gets 401, a room
//! the token may not subscribe to 403; every connection is closed with
//! 1008 "token expired" when its token expires (see the handler's alarm).

use ringcast::Request;
use ringcast::{Accept, Decision, Peer, Response};

use crate::auth::{self, Grant};
use crate::conn::{Conn, Recovering, Route};
use crate::http;
use crate::limits::Bucket;
use crate::room;
use crate::state::Shard;
use crate::topic::Topic;

/// The answer to an upgrade request.
pub(crate) fn decide(shard: &Shard, request: &Request<'_>, peer: &Peer<'_>) -> Decision<Conn> {
    let state = &shard.state;
    if !state.origin_allowed(request) {
        return Decision::Reject(Response::new(403).body("origin not allowed\n"));
    }
    // The query is read once; a room's bad `since=` is answered after the
    // token and the limits.
    let query = room::query(request.query());
    let echo = query.as_ref().is_ok_and(|(echo, _)| *echo);
    let answer = route(request, echo).and_then(|route| Ok((grant(shard, request, &route)?, route)));
    let (grant, mut route) = match answer {
        Ok(ok) => ok,
        Err(response) => {
            shard.metrics().refused();
            return Decision::Reject(response);
        }
    };
    let ip = peer.addr().map(|a| a.ip());
    if let Some(ip) = ip {
        if !state.per_address.admit(ip) {
            shard.metrics().refused();
            let max = state.per_address.max();
            return Decision::Reject(http::error(429, &format!("at most {max} connections per address")));
        }
    }
    let mut headers: Vec<(&str, String)> = Vec::new();
    if let Route::Room { topic, recovery, .. } = &mut route {
        let since = match query {
            Ok((_, since)) => since,
            Err(e) => {
                if let Some(ip) = ip {
                    state.per_address.release(ip);
                }
                shard.metrics().refused();
                return Decision::Reject(Response::new(400).body(format!("{e}\n")));
            }
        };
        // Where the room's history stands, for clients that can read the
        // handshake's headers (browsers cannot), where the log has it at
        // hand.
        let start = state.log.room_start(&topic.name, since);
        if let Some(recovered) = start.recovered {
            headers.push(("Ringcast-Recovered", recovered.to_string()));
        }
        if let Some(at) = start.at {
            headers.push(("Ringcast-Offset", at.offset.to_string()));
            headers.push(("Ringcast-Epoch", at.epoch.to_string()));
        }
        *recovery = start.replay.map(|from| Box::new(Recovering::From(from)));
    }
    let bucket = Bucket::full(state.config.max_publish_rate);
    let accept = Accept::new(Conn { route, grant, bucket, ip });
    Decision::Accept(headers.into_iter().fold(accept, |accept, (name, value)| accept.header(name, value)))
}

/// The route of an upgrade request, or the answer refusing it.
fn route(request: &Request<'_>, echo: bool) -> Result<Route, Response> {
    let path = request.path();
    if path == "/ws" {
        return Ok(Route::Control { subscribed: 0, recoveries: Vec::new() });
    }
    let Some(segment) = path.strip_prefix("/topics/") else {
        return Err(Response::new(404).body("no WebSocket here: use /topics/{name} or /ws\n"));
    };
    match Topic::from_path(segment) {
        Ok(topic) => Ok(Route::Room { topic, echo, recovery: None }),
        Err(e) => Err(Response::new(400).body(format!("{e}\n"))),
    }
}

/// The token's grant, when the hub requires tokens.
fn grant(shard: &Shard, request: &Request<'_>, route: &Route) -> Result<Option<Box<Grant>>, Response> {
    let Some(verifier) = &shard.state.verifier else { return Ok(None) };
    let Some(token) = auth::token_of(request) else {
        return Err(http::unauthorized("a token is required: ?token=… or Authorization: Bearer …"));
    };
    let grant = verifier.verify(&token).map_err(|why| http::unauthorized(&why.to_string()))?;
    if let Route::Room { topic, .. } = route {
        if !grant.may_subscribe(&topic.name) {
            return Err(http::error(403, &format!("token may not subscribe to {:?}", &*topic.name)));
        }
    }
    tracing::debug!(sub = %grant.sub, "token accepted");
    Ok(Some(Box::new(grant)))
}
