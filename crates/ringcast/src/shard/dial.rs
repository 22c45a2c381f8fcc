//! Client connections on a shard: the TCP connect, the upgrade request, the
//! server's response, then the same WebSocket path as accepted
//! connections.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use ringcast_proto::deflate::{client_accept, PerMessageDeflate};
use ringcast_proto::{Connection, ResponseError};
use socket2::{Domain, SockRef, Socket, Type};

use super::frames::on_frames;
use super::handshake::Rules;
use super::notify::{fail_connecting, with_ws};
use super::slot::{Dial, Phase, Slot};
use crate::callbacks::Callbacks;
use crate::dialer::Dialer;
use crate::error::ConnectError;
use crate::ws::{ConnId, ShardCtx};

/// What the response bytes led to.
pub enum Step {
    /// The response head is not complete yet.
    Waiting,
    /// The connection is open; this many messages were delivered from
    /// frames that followed the head in the same read.
    Opened(u64),
    /// The server refused or answered nonsense: the handler was told, the
    /// connection must be torn down.
    Failed,
}

/// Creates a non-blocking socket and starts connecting. `Ok(true)`: the
/// connection is already established (it happens on loopback).
pub fn start_socket(
    addr: SocketAddr,
    local: Option<SocketAddr>,
    send_buffer: Option<usize>,
) -> std::io::Result<(OwnedFd, bool)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), None)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(size) = send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(local) = local {
        socket.bind(&local.into())?;
    }
    let done = match socket.connect(&addr.into()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => return Err(e),
    };
    Ok((socket.into(), done))
}

/// Feeds received bytes to a connection waiting for its upgrade response.
/// Parses in place when the head arrives in one read; on a 101, bytes after
/// the head go straight to the WebSocket path. With `rules.deflate`, the
/// request offered permessage-deflate: the answer's parameters are checked
/// (invalid ones fail the connection, RFC 7692 §7.1) and the codec installed.
pub fn on_response<H: Callbacks, S>(
    handler: &mut H,
    slot: &mut Slot<H::Data, S>,
    input: &mut [u8],
    id: ConnId,
    rules: Rules,
    shard: &mut ShardCtx,
    dialer: &Dialer<H::Data>,
) -> Step {
    let Phase::Connecting(dial) = &mut slot.phase else { return Step::Waiting };
    let in_place = dial.head.is_empty();
    if !in_place {
        dial.head.extend_from_slice(input);
    }
    let Dial { handshake, head, .. } = &mut **dial;
    let buf: &mut [u8] = if in_place { &mut *input } else { head.as_mut_slice() };
    let (protocol, head_len, negotiated) = match handshake.read_response(buf) {
        Ok(None) => {
            if in_place {
                dial.head.extend_from_slice(input);
            }
            return Step::Waiting;
        }
        Err(e) => {
            fail_connecting(handler, slot, ConnectError::Handshake(e), dialer);
            return Step::Failed;
        }
        Ok(Some(response)) => {
            let negotiated = match rules.deflate.map(|d| client_accept(&response.extensions(), &d.negotiation())) {
                Some(Ok(negotiated)) => negotiated,
                None => None,
                Some(Err(_)) => {
                    let error = ResponseError::InvalidHeader("Sec-WebSocket-Extensions");
                    fail_connecting(handler, slot, ConnectError::Handshake(error), dialer);
                    return Step::Failed;
                }
            };
            (response.protocol().map(str::to_owned), response.head_len(), negotiated)
        }
    };
    let Phase::Connecting(dial) = std::mem::replace(&mut slot.phase, Phase::Finished) else { return Step::Failed };
    let Dial { data, addr, mut head, .. } = *dial;
    dialer.release(addr);
    let mut proto = Connection::client(rules.proto);
    if let (Some(negotiated), Some(deflate)) = (negotiated, rules.deflate) {
        proto = proto.with_extension(Box::new(PerMessageDeflate::new(negotiated, false, deflate.tuning())));
    }
    slot.phase = Phase::Open { proto, data };
    if !with_ws(handler, slot, id, shard, "connected", |handler, ws| handler.connected(ws, protocol.as_deref())) {
        return Step::Opened(0);
    }
    let rest = if in_place { &mut input[head_len..] } else { &mut head[head_len..] };
    Step::Opened(if rest.is_empty() { 0 } else { on_frames(handler, slot, rest, id, shard) })
}

/// Whether a connect that the ring reported with `result` succeeded: the
/// error of the poll, or the socket's pending error, if any.
pub fn connect_error(socket: &OwnedFd, result: i32) -> Option<std::io::Error> {
    if result < 0 {
        return Some(std::io::Error::from_raw_os_error(-result));
    }
    match SockRef::from(socket).take_error() {
        Ok(None) => None,
        Ok(Some(e)) | Err(e) => Some(e),
    }
}
