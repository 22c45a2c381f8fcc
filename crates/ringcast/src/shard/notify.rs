//! Telling the handler what happened, safely: every callback runs under one
//! panic guard, so a panicking handler costs its own connection (1011, or a
//! 500 for a plain request), never the shard and its other connections.

use std::net::SocketAddr;

use ringcast_proto::CloseCode;

use super::slot::{Phase, Slot};
use crate::callbacks::Callbacks;
use crate::dialer::Dialer;
use crate::error::ConnectError;
use crate::handler::CloseInfo;
use crate::ws::{ConnId, ShardCtx, Ws};

/// Runs a handler callback, catching a panic. Returns false if it
/// panicked; the caller decides what the connection gets.
pub fn guarded(callback: &'static str, conn: Option<ConnId>, f: impl FnOnce()) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(_) => {
            match conn {
                Some(conn) => tracing::error!(%conn, callback, "the handler panicked"),
                None => tracing::error!(callback, "the handler panicked"),
            }
            false
        }
    }
}

/// Runs a callback on an open connection with its [`Ws`] handle; if it
/// panics, the connection closes with 1011 and the handler hears `close`.
/// Returns false then. Does nothing (and returns true) in other phases.
pub fn with_ws<H: Callbacks, S>(
    handler: &mut H,
    slot: &mut Slot<H::Data, S>,
    id: ConnId,
    shard: &mut ShardCtx,
    callback: &'static str,
    call: impl FnOnce(&mut H, &mut Ws<'_, H::Data>),
) -> bool {
    let Phase::Open { proto, data } = &mut slot.phase else { return true };
    let mut handle = Ws::new(proto.sender(), &mut slot.out, data, &mut slot.subs, id, shard);
    if guarded(callback, Some(id), || call(handler, &mut handle)) {
        return true;
    }
    fail_internal(handler, slot);
    false
}

/// Closes an open connection with 1011 after its handler panicked, and
/// tells the handler it is over.
pub fn fail_internal<H: Callbacks, S>(handler: &mut H, slot: &mut Slot<H::Data, S>) {
    if let Phase::Open { proto, .. } = &mut slot.phase {
        let _ = proto.close(Some(CloseCode::INTERNAL_ERROR), "", slot.out.queue());
    }
    finish(handler, slot, CloseCode::INTERNAL_ERROR, "handler panicked", false);
}

/// Ends an open connection: hands the data back to the handler and moves to
/// `Finished`. Does nothing in other phases.
pub fn finish<H: Callbacks, S>(
    handler: &mut H,
    slot: &mut Slot<H::Data, S>,
    code: CloseCode,
    reason: &str,
    by_peer: bool,
) {
    if let Phase::Open { .. } = slot.phase {
        if let Phase::Open { data, .. } = std::mem::replace(&mut slot.phase, Phase::Finished) {
            // Nothing is left to clean up if `close` itself panics.
            guarded("close", None, || handler.close(data, CloseInfo { code, reason, by_peer }));
        }
    }
}

/// Ends a connection still in CONNECTING (does nothing in other phases):
/// see [`connect_failed`].
pub fn fail_connecting<H: Callbacks, S>(
    handler: &mut H,
    slot: &mut Slot<H::Data, S>,
    error: ConnectError,
    dialer: &Dialer<H::Data>,
) {
    if let Phase::Connecting(_) = slot.phase {
        if let Phase::Connecting(dial) = std::mem::replace(&mut slot.phase, Phase::Finished) {
            connect_failed(handler, dial.data, dial.addr, error, dialer);
        }
    }
}

/// A connect request that will not open: its address is free for the next
/// one, and the handler gets the data back with the reason.
pub fn connect_failed<H: Callbacks>(
    handler: &mut H,
    data: H::Data,
    addr: SocketAddr,
    error: ConnectError,
    dialer: &Dialer<H::Data>,
) {
    dialer.release(addr);
    tracing::debug!(%addr, %error, "connect failed");
    guarded("connect_failed", None, || handler.connect_failed(data, &error));
}
