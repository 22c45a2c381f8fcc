//! The opening handshake on a shard: request head in, 101 or an HTTP
//! answer out.

use std::os::fd::AsFd;

use ringcast_proto::deflate::{server_accept, Negotiated, PerMessageDeflate};
use ringcast_proto::handshake::{write_response, Request, RequestLimits, RequestReader};
use ringcast_proto::{Config, Connection};

use super::frames::on_frames;
use super::notify::{guarded, with_ws};
use super::slot::{Handshake, Phase, Slot};
use crate::callbacks::Callbacks;
use crate::config::{Deflate, Settings};
use crate::handler::{Decision, Peer, Response};
use crate::transport::Session;
use crate::ws::{ConnId, ShardCtx};

/// What the request led to, decided while the head is borrowed.
enum Next<C> {
    /// Upgraded, with permessage-deflate if it was negotiated.
    Open(C, Option<Negotiated>),
    Answered,
}

/// What an upgrade is checked and answered against (server role), or a
/// server's answer read with (client role).
#[derive(Clone, Copy)]
pub struct Rules {
    pub proto: Config,
    /// The largest request body.
    pub max_body: usize,
    /// permessage-deflate, when the server accepts or the client offers it.
    pub deflate: Option<Deflate>,
}

impl Rules {
    /// The rules of a shard with `settings`, whose protocol config is `proto`.
    pub fn of(proto: Config, settings: &Settings) -> Rules {
        Rules { proto, max_body: settings.max_message_size, deflate: settings.deflate }
    }
}

/// Feeds received bytes to a connection still reading its request head.
/// Parses in place when the head arrives in one read (the usual case) and
/// copies only a head split across reads. On an upgrade, bytes after the
/// head go straight to the WebSocket path. Returns the messages delivered.
pub fn on_data<H: Callbacks, S: Session>(
    handler: &mut H,
    slot: &mut Slot<H::Data, S>,
    input: &mut [u8],
    id: ConnId,
    rules: Rules,
    shard: &mut ShardCtx,
) -> u64 {
    let (config, max_body, deflate) = (rules.proto, rules.max_body, rules.deflate);
    let Phase::Handshake(mut hs) = std::mem::replace(&mut slot.phase, Phase::Finished) else { return 0 };
    let in_place = hs.head.is_empty();
    if !in_place {
        hs.head.extend_from_slice(input);
    }
    let Handshake { reader, head, body } = &mut *hs;
    let buf: &mut [u8] = if in_place { &mut *input } else { head.as_mut_slice() };
    let peer = Peer::new(slot.socket.as_fd(), slot.session.server_name(), slot.session.is_secure());
    let out = slot.out.queue();
    let step = match *body {
        // The head was complete; its body was not.
        Some((_, total)) if buf.len() < total => None,
        Some((head_len, total)) => {
            let mut again = RequestReader::new(RequestLimits::default().max_head_bytes(head_len));
            match again.poll(&buf[..head_len]) {
                Ok(Some(request)) => {
                    Some((decide(handler, &request, &buf[head_len..total], &peer, deflate, out), total))
                }
                _ => {
                    write_http(&Response::new(400), out);
                    Some((Next::Answered, 0))
                }
            }
        }
        None => match reader.poll(buf) {
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(conn = %id, error = %e, "refusing a request head");
                write_http(&Response::new(e.status()), out);
                Some((Next::Answered, 0))
            }
            Ok(Some(request)) => {
                let head_len = request.head_len();
                match body_length(&request, max_body) {
                    Err(status) => {
                        write_http(&Response::new(status), out);
                        Some((Next::Answered, 0))
                    }
                    Ok(len) if buf.len() < head_len + len => {
                        *body = Some((head_len, head_len + len));
                        None
                    }
                    Ok(len) => Some((
                        decide(handler, &request, &buf[head_len..head_len + len], &peer, deflate, out),
                        head_len + len,
                    )),
                }
            }
        },
    };
    // `consumed`: the request's head and body; what follows belongs to the
    // WebSocket stream.
    let Some((next, consumed)) = step else {
        if in_place {
            hs.head.extend_from_slice(input);
        }
        slot.phase = Phase::Handshake(hs);
        return 0;
    };
    let Next::Open(data, negotiated) = next else { return 0 };
    let mut proto = Connection::server(config);
    if let (Some(negotiated), Some(deflate)) = (negotiated, deflate) {
        proto = proto.with_extension(Box::new(PerMessageDeflate::new(negotiated, true, deflate.tuning())));
    }
    slot.phase = Phase::Open { proto, data };
    if !with_ws(handler, slot, id, shard, "open", |handler, ws| handler.open(ws)) {
        return 0;
    }
    let rest = &mut buf[consumed..];
    if rest.is_empty() {
        0
    } else {
        on_frames(handler, slot, rest, id, shard)
    }
}

/// Validates the request and asks the handler; queues the response.
fn decide<H: Callbacks>(
    handler: &mut H,
    request: &Request<'_>,
    body: &[u8],
    peer: &Peer<'_>,
    deflate: Option<Deflate>,
    out: &mut Vec<u8>,
) -> Next<H::Data> {
    let upgrade = match request.validate() {
        Ok(upgrade) => upgrade,
        Err(why) => {
            let mut answer = None;
            if !guarded("http", None, || answer = handler.http(request, body, why)) {
                answer = Some(Response::new(500));
            }
            let response = answer.unwrap_or_else(|| Response::new(why.status()));
            write_http(&response, out);
            return Next::Answered;
        }
    };
    let mut decision = None;
    if !guarded("upgrade", None, || decision = Some(handler.upgrade(request, peer))) {
        write_http(&Response::new(500), out);
        return Next::Answered;
    }
    let Some(decision) = decision else { return Next::Answered };
    match decision {
        Decision::Reject(response) => {
            write_http(&response, out);
            Next::Answered
        }
        Decision::Accept(accept) => {
            let mut headers = fields(&accept.headers);
            // permessage-deflate, unless the handler answered extensions itself.
            let answered = accept.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Extensions"));
            let agreed = deflate
                .filter(|_| !answered)
                .and_then(|deflate| server_accept(&request.extensions(), &deflate.negotiation()));
            if let Some((_, answer)) = &agreed {
                headers.push(("Sec-WebSocket-Extensions", answer));
            }
            match upgrade.write_response(accept.protocol.as_deref(), &headers, out) {
                Ok(()) => Next::Open(accept.data, agreed.map(|(negotiated, _)| negotiated)),
                Err(e) => {
                    tracing::error!(error = %e, "the handler's 101 response is invalid; answering 500");
                    write_http(&Response::new(500), out);
                    Next::Answered
                }
            }
        }
    }
}

/// The length of the request's body: its `Content-Length`, at most `max`
/// (else 413). Chunked bodies are not supported (501); a malformed or
/// repeated length is 400.
fn body_length(request: &Request<'_>, max: usize) -> Result<usize, u16> {
    if request.header("Transfer-Encoding").is_some() {
        return Err(501);
    }
    let mut lengths = request.header_all("Content-Length");
    let Some(value) = lengths.next() else { return Ok(0) };
    if lengths.next().is_some() {
        return Err(400);
    }
    let digits = std::str::from_utf8(value).ok().filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    let len: usize = digits.and_then(|v| v.parse().ok()).ok_or(400u16)?;
    if len > max {
        return Err(413);
    }
    Ok(len)
}

/// Header fields as the protocol core's writers take them.
fn fields(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

/// Queues a complete HTTP response, or a bare 500 if the handler's fields
/// would break it.
fn write_http(response: &Response, out: &mut Vec<u8>) {
    let mark = out.len();
    if let Err(e) = write_response(response.status, &fields(&response.headers), &response.body, out) {
        tracing::error!(error = %e, status = response.status, "invalid HTTP response from the handler; answering 500");
        out.truncate(mark);
        let _ = write_response(500, &[], b"", out);
    }
}
