//! The sending half: frames out, and the closing-handshake state both
//! halves share.

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

use super::{close_payload, MessageKind, Role, State};
use crate::close::{self, CloseCode};
use crate::error::UsageError;
use crate::frame::{encode_frame, OpCode};

/// Writes frames for one connection and holds the closing-handshake state.
///
/// Server frames are unmasked; client frames get a fresh masking key each.
#[derive(Debug)]
pub struct Sender {
    role: Role,
    state: State,
    /// A fragmented message we are sending: its kind.
    sending: Option<MessageKind>,
    /// Frames the connection owes the peer (pong, close).
    pending: Vec<u8>,
    /// Where an unsent pong starts in `pending`: a newer ping replaces it
    /// (RFC 6455 §5.5.3), so a ping flood cannot grow the queue.
    pending_pong: Option<usize>,
    /// Source of masking keys (client role only).
    rng: Option<Box<ChaCha8Rng>>,
}

impl Sender {
    pub(super) fn new(role: Role, rng: Option<Box<ChaCha8Rng>>) -> Self {
        Sender { role, state: State::Open, sending: None, pending: Vec::new(), pending_pong: None, rng }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether frames wait in the internal queue (see [`Self::take_pending`]).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Moves the frames the connection owes the peer (pongs, close replies,
    /// the close that failed the connection) to the end of `out`. Call it
    /// after reading, once the output you queued yourself is in `out`, so a
    /// close always leaves last.
    pub fn take_pending(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.pending);
        } else {
            out.append(&mut self.pending);
        }
        self.pending_pong = None;
    }

    /// Sends a whole text message.
    pub fn send_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.send(MessageKind::Text, text.as_bytes(), out)
    }

    /// Sends a whole binary message.
    pub fn send_binary(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.send(MessageKind::Binary, data, out)
    }

    /// Sends a whole message as one frame. The caller guarantees that a
    /// `Text` payload is UTF-8 (it is unchecked here, because callers
    /// usually hold a `&str` already).
    pub fn send(&mut self, kind: MessageKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.sending.is_some() {
            return Err(UsageError::FragmentState);
        }
        self.write(kind.opcode(), true, payload, out)
    }

    /// Sends one fragment of a message: the first call starts a message of
    /// `kind`, later calls continue it (their `kind` must match), and
    /// `fin = true` ends it. Control frames may be sent between fragments.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        let opcode = match self.sending {
            None => kind.opcode(),
            Some(current) if current == kind => OpCode::Continuation,
            Some(_) => return Err(UsageError::FragmentState),
        };
        self.write(opcode, fin, payload, out)?;
        self.sending = if fin { None } else { Some(kind) };
        Ok(())
    }

    /// Sends a ping (at most 125 bytes of payload).
    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.write_control(OpCode::Ping, payload, out)
    }

    /// Sends an unsolicited pong, e.g. as a heartbeat (RFC 6455 §5.5.3).
    pub fn pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.write_control(OpCode::Pong, payload, out)
    }

    /// Starts the closing handshake. Frames still pending go first. After
    /// this, incoming data is discarded until the peer's close arrives.
    pub fn close(&mut self, code: Option<CloseCode>, reason: &str, out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closing);
        }
        close::check_outgoing(code, reason)?;
        self.take_pending(out);
        let mut payload = [0u8; 125];
        let len = close_payload(code, reason.as_bytes(), &mut payload);
        let key = self.next_key();
        encode_frame(out, true, OpCode::Close, &payload[..len], key);
        self.state = State::CloseSent;
        Ok(())
    }

    fn write(&mut self, opcode: OpCode, fin: bool, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closing);
        }
        let key = self.next_key();
        encode_frame(out, fin, opcode, payload, key);
        Ok(())
    }

    fn write_control(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        if payload.len() > 125 {
            return Err(UsageError::ControlTooLong);
        }
        self.write(opcode, true, payload, out)
    }

    /// A fresh masking key for a client frame; `None` for a server.
    fn next_key(&mut self) -> Option<[u8; 4]> {
        self.rng.as_mut().map(|rng| rng.next_u32().to_ne_bytes())
    }

    /// Queues the automatic answer to a ping, replacing an unsent one.
    pub(super) fn queue_pong(&mut self, payload: &[u8]) {
        if let Some(at) = self.pending_pong.take() {
            self.pending.truncate(at);
        }
        self.pending_pong = Some(self.pending.len());
        let key = self.next_key();
        encode_frame(&mut self.pending, true, OpCode::Pong, payload, key);
    }

    /// Queues a close frame (reply or failure) and ends the connection.
    pub(super) fn queue_close(&mut self, code: Option<CloseCode>, reason: &[u8]) {
        let mut payload = [0u8; 125];
        let len = close_payload(code, reason, &mut payload);
        let key = self.next_key();
        encode_frame(&mut self.pending, true, OpCode::Close, &payload[..len], key);
        self.pending_pong = None;
        self.state = State::Closed;
    }

    pub(super) fn set_closed(&mut self) {
        self.state = State::Closed;
    }
}
