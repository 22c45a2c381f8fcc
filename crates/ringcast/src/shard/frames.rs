//! The WebSocket receive path of an open connection: frames in, handler
//! callbacks out, and the frames the protocol layer owes the peer moved to
//! the send queue under the backpressure budget.

use ringcast_proto::connection::Sender;
use ringcast_proto::{CloseCode, Error, Event, OwnedMessage, State};

use super::notify::{finish, guarded};
use super::slot::{Phase, Slot};
use crate::callbacks::Callbacks;
use crate::message::Message;
use crate::sys::{OutQueue, SHARE_MIN};
use crate::ws::{ConnId, ShardCtx, Ws};

/// Feeds received bytes to an open connection, calling the handler for
/// every event. Ends the connection (phase `Finished`, handler told) on a
/// close frame or a protocol violation; the close frame owed to the peer is
/// then in the out queue. Returns how many messages were delivered.
pub fn on_frames<H: Callbacks, S>(
    handler: &mut H,
    slot: &mut Slot<H::Data, S>,
    input: &mut [u8],
    id: ConnId,
    shard: &mut ShardCtx,
) -> u64 {
    let Phase::Open { proto, data } = &mut slot.phase else { return 0 };
    let out = &mut slot.out;
    let subs = &mut slot.subs;
    let budget = shard.budget;
    let (rx, tx) = proto.split();
    let mut messages = 0;
    let mut pos = 0;
    // Set when the connection ends: code, reason (copied: it may be lent
    // from the connection's own buffer), whether the peer started it.
    let mut ended: Option<(CloseCode, ReasonBuf, bool)> = None;
    while ended.is_none() {
        let we_closed_first = tx.state() == State::CloseSent;
        let read = match rx.read(tx, &mut input[pos..]) {
            Ok(read) => read,
            Err(e) => {
                let code = match e {
                    Error::Protocol(p) => p.close_code(),
                    _ => CloseCode::INTERNAL_ERROR,
                };
                tracing::debug!(conn = %id, error = %e, %code, "closing on protocol violation");
                ended = Some((code, ReasonBuf::from_display(&e), false));
                break;
            }
        };
        pos += read.consumed;
        let assembled = read.is_assembled();
        let Some(event) = read.event else { break };
        let large = match event {
            Event::Text(text) => text.len() >= SHARE_MIN,
            Event::Binary(data) => data.len() >= SHARE_MIN,
            _ => false,
        };
        let mut handle = Ws::new(&mut *tx, &mut *out, &mut *data, &mut *subs, id, &mut *shard);
        let survived = if assembled && large {
            // A large message that arrived in pieces sits in the receiver's
            // own buffer: the shard takes it, so that a handler sending it
            // back (an echo) queues it by reference instead of copying it.
            // The receiver starts its next message in a new buffer.
            let owned = rx.take_message();
            debug_assert!(owned.is_some(), "an assembled event can be taken");
            let Some(owned) = owned else { continue };
            messages += 1;
            let message = match &owned {
                OwnedMessage::Text(text) => Message::Text(text.as_str()),
                OwnedMessage::Binary(bytes) => Message::Binary(bytes),
            };
            let mut handle = handle.with_received(owned.bytes());
            guarded("message", Some(id), || handler.message(&mut handle, message))
        } else {
            match event {
                Event::Text(text) => {
                    messages += 1;
                    guarded("message", Some(id), || handler.message(&mut handle, Message::Text(text)))
                }
                Event::Binary(data) => {
                    messages += 1;
                    guarded("message", Some(id), || handler.message(&mut handle, Message::Binary(data)))
                }
                Event::Pong(payload) => guarded("pong", Some(id), || handler.pong(&mut handle, payload)),
                Event::Close(frame) => {
                    let code = frame.code.unwrap_or(CloseCode::NO_STATUS);
                    ended = Some((code, ReasonBuf::new(frame.reason), !we_closed_first));
                    true
                }
                // Pings are answered by the protocol layer.
                _ => true,
            }
        };
        if !survived {
            let _ = tx.close(Some(CloseCode::INTERNAL_ERROR), "", out.queue());
            ended = Some((CloseCode::INTERNAL_ERROR, ReasonBuf::new("handler panicked"), false));
        }
        move_pending(tx, out, ended.is_some(), budget);
    }
    move_pending(tx, out, ended.is_some(), budget);
    if let Some((code, reason, by_peer)) = ended {
        finish(handler, slot, code, reason.as_str(), by_peer);
    }
    messages
}

/// Moves the frames the protocol layer owes the peer (pongs, close replies)
/// to the send queue, unless the queue is over the backpressure budget and
/// the connection is not ending: then pongs wait inside the protocol layer,
/// which keeps at most 16 (newest replacing newest), so a peer that floods
/// pings and never reads cannot grow the queue. They move once it drains.
pub fn move_pending(tx: &mut Sender, out: &mut OutQueue, ending: bool, max_backpressure: usize) {
    if tx.has_pending() && (ending || out.buffered() <= max_backpressure) {
        tx.take_pending(out.queue());
    }
}

/// A close reason copied out of a frame (at most 123 bytes).
struct ReasonBuf {
    bytes: [u8; 123],
    len: u8,
}

impl ReasonBuf {
    fn new(reason: &str) -> Self {
        let mut buf = ReasonBuf { bytes: [0; 123], len: 0 };
        // Cut at a character boundary so the copy stays valid UTF-8.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        buf.bytes[..end].copy_from_slice(&reason.as_bytes()[..end]);
        buf.len = end as u8;
        buf
    }

    fn from_display(e: &impl std::fmt::Display) -> Self {
        Self::new(&e.to_string())
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}
