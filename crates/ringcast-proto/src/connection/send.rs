//! The sending half: frames out, and the closing-handshake state both
//! halves share.

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

use super::shared::{Role, State};
use crate::close::{self, CloseCode};
use crate::error::UsageError;
use crate::extension::Extension;
use crate::frame::{encode_frame, encode_frame_rsv, FrameHeader, MessageKind, OpCode, MAX_HEADER_LEN};

/// Pongs kept in the queue before newer ones replace the newest: enough for
/// a burst of pings to each get its answer (Autobahn 2.10 sends nine at once).
pub const MAX_QUEUED_PONGS: u8 = 16;

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
    /// Unsent pongs in `pending`, and where the newest one starts. Every
    /// ping is answered up to [`MAX_QUEUED_PONGS`]; past that the newest pong
    /// replaces the previous one (RFC 6455 §5.5.3 allows answering only the
    /// latest ping), so a ping flood from a peer that never reads cannot grow
    /// the queue past about 2 KiB.
    queued_pongs: u8,
    last_pong_at: u32,
    /// What only some connections have, boxed so that an idle server
    /// connection without extensions stays small.
    cold: Option<Box<Cold>>,
    /// Matches the receiver of the same connection.
    pub(super) pair: u32,
}

/// The parts of a sender most server connections never use.
#[derive(Debug, Default)]
struct Cold {
    /// Source of masking keys (client role only), boxed apart: it is
    /// about 330 bytes, which a server connection with an extension (all
    /// its cold part) must not carry.
    rng: Option<Box<ChaCha8Rng>>,
    /// The negotiated extension, if any; the receiver reaches it through
    /// the sender it is given.
    extension: Option<Box<dyn Extension>>,
}

impl Sender {
    pub(super) fn new(role: Role, rng: Option<ChaCha8Rng>, pair: u32) -> Self {
        Sender {
            role,
            state: State::Open,
            sending: None,
            pending: Vec::new(),
            queued_pongs: 0,
            last_pong_at: 0,
            cold: rng.map(|rng| Box::new(Cold { rng: Some(Box::new(rng)), extension: None })),
            pair,
        }
    }

    /// Installs the negotiated extension (see [`crate::extension`]).
    pub(super) fn set_extension(&mut self, extension: Box<dyn Extension>) {
        self.cold.get_or_insert_with(Default::default).extension = Some(extension);
    }

    /// The negotiated extension, if any.
    pub(super) fn extension(&mut self) -> Option<&mut (dyn Extension + 'static)> {
        self.cold.as_mut().and_then(|cold| cold.extension.as_deref_mut())
    }

    /// The RSV bits the negotiated extension claims (0 without one).
    pub(super) fn claimed_rsv(&self) -> u8 {
        self.cold.as_ref().and_then(|cold| cold.extension.as_ref()).map_or(0, |e| e.rsv_bits() & 0b111)
    }

    /// Whether a negotiated extension transforms what this connection sends
    /// (`Some`), and whether it does so message by message with no state
    /// in between (`Some(true)`: an encoding made once may be shared).
    pub fn extension_encodes_alone(&self) -> Option<bool> {
        self.cold.as_ref().and_then(|cold| cold.extension.as_ref()).map(|e| e.encodes_alone())
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
        self.queued_pongs = 0;
        if self.pending.is_empty() {
            return;
        }
        // Hand the allocation over only when it saves a copy into a smaller
        // buffer; never take the caller's (possibly huge) buffer in exchange.
        if out.is_empty() && out.capacity() < self.pending.len() {
            std::mem::swap(out, &mut self.pending);
            self.pending = Vec::new();
        } else {
            out.append(&mut self.pending);
        }
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
    ///
    /// With a negotiated extension, the extension may transform the payload
    /// first and set RSV bits on the frame (see [`crate::extension`]).
    pub fn send(&mut self, kind: MessageKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.sending.is_some() {
            return Err(UsageError::FragmentState);
        }
        if let Some(extension) = self.extension() {
            let mut encoded = Vec::new();
            if let Some(rsv) = extension.encode(kind, payload, &mut encoded) {
                let rsv = rsv & extension.rsv_bits() & 0b111;
                return self.write_rsv(kind.opcode(), rsv, &encoded, out);
            }
        }
        self.write(kind.opcode(), true, payload, out)
    }

    /// Starts a whole message whose payload the caller queues itself,
    /// unchanged, right after what this writes to `out`: only the frame
    /// header is written, so a large payload can be sent from where it lies
    /// instead of being copied into `out`. Returns `Ok(false)` and writes
    /// nothing when the payload must be transformed on its way (a client
    /// masks it, a negotiated extension may encode it): use [`Self::send`]
    /// then.
    pub fn send_by_reference(&mut self, kind: MessageKind, len: usize, out: &mut Vec<u8>) -> Result<bool, UsageError> {
        if self.sending.is_some() {
            return Err(UsageError::FragmentState);
        }
        if self.state != State::Open {
            return Err(UsageError::Closing);
        }
        if self.role == Role::Client || self.cold.as_ref().is_some_and(|cold| cold.extension.is_some()) {
            return Ok(false);
        }
        let header = FrameHeader { fin: true, rsv: 0, opcode: kind.opcode(), mask: None, payload_len: len as u64 };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        out.extend_from_slice(&head[..head_len]);
        Ok(true)
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

    /// One final frame whose payload an extension transformed.
    fn write_rsv(&mut self, opcode: OpCode, rsv: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closing);
        }
        let key = self.next_key();
        encode_frame_rsv(out, true, rsv, opcode, payload, key);
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
        self.cold.as_mut().and_then(|cold| cold.rng.as_mut()).map(|rng| rng.next_u32().to_ne_bytes())
    }

    /// Queues the automatic answer to a ping (see `queued_pongs`).
    pub(super) fn queue_pong(&mut self, payload: &[u8]) {
        if self.queued_pongs >= MAX_QUEUED_PONGS {
            // The newest pong is last in the queue: nothing but a close can
            // follow it, and no pong is queued once a close is.
            self.pending.truncate(self.last_pong_at as usize);
        } else {
            self.queued_pongs += 1;
        }
        self.last_pong_at = self.pending.len() as u32;
        let key = self.next_key();
        encode_frame(&mut self.pending, true, OpCode::Pong, payload, key);
    }

    /// Queues a close frame (reply or failure) and ends the connection.
    pub(super) fn queue_close(&mut self, code: Option<CloseCode>, reason: &[u8]) {
        let mut payload = [0u8; 125];
        let len = close_payload(code, reason, &mut payload);
        let key = self.next_key();
        encode_frame(&mut self.pending, true, OpCode::Close, &payload[..len], key);
        self.queued_pongs = 0;
        self.state = State::Closed;
    }

    pub(super) fn set_closed(&mut self) {
        self.state = State::Closed;
    }
}

/// Writes a close payload (code, then reason) and returns its length. The
/// reason is cut to fit a control frame.
fn close_payload(code: Option<CloseCode>, reason: &[u8], out: &mut [u8; 125]) -> usize {
    let Some(code) = code else { return 0 };
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    let n = reason.len().min(close::MAX_REASON_LEN);
    out[2..2 + n].copy_from_slice(&reason[..n]);
    2 + n
}

#[cfg(test)]
mod tests {
    use super::Cold;

    #[test]
    fn the_cold_part_of_a_server_connection_is_two_pointers() {
        // A server connection with permessage-deflate holds this box and the
        // codec, and nothing else more than one without (idle memory).
        assert!(std::mem::size_of::<Cold>() <= 24, "Cold grew to {} bytes", std::mem::size_of::<Cold>());
    }
}
