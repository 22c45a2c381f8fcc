//! The opening handshake on a shard: request head in, 101 or an HTTP
//! answer out.

use ringcast_proto::handshake::{write_response, Request};
use ringcast_proto::{Config, Connection};

use super::conn::{on_frames, Conn, Ctx, Phase};
use crate::handler::{Decision, Handler, Response};
use crate::Ws;

/// What the request led to, decided while the head is borrowed.
enum Next<C> {
    Open(C),
    Answered,
}

/// Feeds received bytes to a connection still reading its request head.
/// Parses in place when the head arrives in one read (the usual case) and
/// copies only a head split across reads. On an upgrade, bytes after the
/// head go straight to the WebSocket path. Returns the messages delivered.
pub fn on_data<H: Handler>(
    handler: &mut H,
    conn: &mut Conn<H::Conn>,
    input: &mut [u8],
    ctx: &Ctx,
    proto: Config,
) -> u64 {
    let Phase::Handshake(mut hs) = std::mem::replace(&mut conn.phase, Phase::Finished) else { return 0 };
    let in_place = hs.head.is_empty();
    if !in_place {
        hs.head.extend_from_slice(input);
    }
    let super::conn::Handshake { reader, head } = &mut *hs;
    let buf: &mut [u8] = if in_place { &mut *input } else { head.as_mut_slice() };
    let out = conn.out.queue();
    let step = match reader.poll(buf) {
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(conn = %ctx.id, error = %e, "refusing a request head");
            write_http(&Response::new(e.status()), out);
            Some((Next::Answered, 0))
        }
        Ok(Some(request)) => Some((decide(handler, &request, out), request.head_len())),
    };
    let Some((next, head_len)) = step else {
        if in_place {
            hs.head.extend_from_slice(input);
        }
        conn.phase = Phase::Handshake(hs);
        return 0;
    };
    let Next::Open(state) = next else { return 0 };
    conn.phase = Phase::Open { ws: Connection::server(proto), state };
    if let Phase::Open { ws, state } = &mut conn.phase {
        let tx = ws.sender();
        handler.open(&mut Ws { tx, out: &mut conn.out, state, max_backpressure: ctx.max_backpressure, id: ctx.id });
    }
    let rest = &mut buf[head_len..];
    if rest.is_empty() {
        0
    } else {
        on_frames(handler, conn, rest, ctx)
    }
}

/// Validates the request and asks the handler; queues the response.
fn decide<H: Handler>(handler: &mut H, request: &Request<'_>, out: &mut Vec<u8>) -> Next<H::Conn> {
    let upgrade = match request.validate() {
        Ok(upgrade) => upgrade,
        Err(why) => {
            let response = handler.http(request, why).unwrap_or_else(|| Response::new(why.status()));
            write_http(&response, out);
            return Next::Answered;
        }
    };
    match handler.upgrade(request) {
        Decision::Reject(response) => {
            write_http(&response, out);
            Next::Answered
        }
        Decision::Accept(accept) => {
            let extra: Vec<(&str, &str)> = accept.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            match upgrade.write_response(accept.protocol.as_deref(), &extra, out) {
                Ok(()) => Next::Open(accept.state),
                Err(e) => {
                    tracing::error!(error = %e, "the handler's 101 response is invalid; answering 500");
                    write_http(&Response::new(500), out);
                    Next::Answered
                }
            }
        }
    }
}

/// Queues a complete HTTP response, or a bare 500 if the handler's fields
/// would break it.
fn write_http(response: &Response, out: &mut Vec<u8>) {
    let extra: Vec<(&str, &str)> = response.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mark = out.len();
    if let Err(e) = write_response(response.status, &extra, &response.body, out) {
        tracing::error!(error = %e, status = response.status, "invalid HTTP response from the handler; answering 500");
        out.truncate(mark);
        let _ = write_response(500, &[], b"", out);
    }
}
