//! The WebSocket connection state machine for both roles, after the
//! handshake: bytes in, events and bytes out, no I/O and no clock.
//!
//! Input is read in place from a caller-owned `&mut [u8]`: frames are
//! unmasked where they lie, and a message whose single frame is whole in the
//! input reaches the caller as a slice of that input, uncopied. Only a
//! message split over several frames or reads is copied, into an assembly
//! buffer bounded by [`Config::max_message_size`].
//!
//! Output goes to caller-owned `Vec<u8>`s. Frames the connection must send on
//! its own (pongs, close replies, the close that fails a connection) wait in
//! an internal queue until [`Connection::take_pending`] moves them out.

mod read;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::close::{self, CloseCode};
use crate::error::{ProtocolError, UsageError};
use crate::frame::{encode_frame, OpCode, MAX_HEADER_LEN};
use crate::utf8::MessageBuffer;

pub use read::{CloseFrame, Event, Read};

/// Which end of the connection we are: servers receive masked frames and
/// send unmasked ones, clients the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection.
    Server,
    /// Opened the connection.
    Client,
}

/// Where the closing handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's; incoming data is
    /// discarded.
    CloseSent,
    /// Both closes were exchanged, or the connection failed. A server now
    /// closes the TCP connection once its pending output is written; a
    /// client waits for the server to do so.
    Closed,
}

/// Whether a message is text (UTF-8) or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Validated UTF-8.
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl MessageKind {
    fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// Limits that keep one peer from consuming unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload of a single frame; larger fails with 1009.
    /// Default 16 MiB.
    pub max_frame_size: usize,
    /// Largest message, all fragments together; larger fails with 1009.
    /// Default 16 MiB.
    pub max_message_size: usize,
    /// Capacity the assembly buffer keeps between messages. Larger buffers
    /// are shrunk back, so memory follows the traffic instead of the largest
    /// message ever seen. Default 4 KiB.
    pub retain_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_frame_size: 16 << 20, max_message_size: 16 << 20, retain_capacity: 4 << 10 }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`Config::retain_capacity`].
    pub fn retain_capacity(mut self, bytes: usize) -> Self {
        self.retain_capacity = bytes;
        self
    }
}

/// A frame whose payload is still arriving.
#[derive(Debug, Clone, Copy)]
struct PartialFrame {
    opcode: OpCode,
    fin: bool,
    key: Option<[u8; 4]>,
    /// Payload bytes received so far: the masking phase of the next byte.
    received: u64,
    remaining: u64,
    /// Data that arrives after we sent close is dropped unread.
    discard: bool,
}

/// Which internal buffer the last event lent out, to be emptied on the next
/// call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lent {
    Nothing,
    Message,
    Control,
}

/// One WebSocket connection after a successful opening handshake.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    state: State,
    config: Config,
    /// Header bytes of a frame whose header was cut by the end of a read.
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    frame: Option<PartialFrame>,
    /// The data message in progress, if its frames or bytes span reads.
    message: Option<MessageKind>,
    assembly: MessageBuffer,
    /// Payload of a control frame that spans reads (at most 125 bytes).
    control: Vec<u8>,
    lent: Lent,
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

impl Connection {
    /// A server-side connection.
    pub fn server(config: Config) -> Self {
        Self::new(Role::Server, config, None)
    }

    /// A client-side connection whose masking keys come from a ChaCha8
    /// stream seeded by the operating system (RFC 6455 §5.3 asks for keys a
    /// script cannot predict).
    ///
    /// # Panics
    /// If the operating system has no entropy to give, which Linux only
    /// does before its random pool is initialised at boot.
    pub fn client(config: Config) -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the OS random source is unavailable");
        Self::client_with_seed(config, seed)
    }

    /// A client-side connection with masking keys from a fixed seed: for
    /// reproducible tests, never for traffic a hostile script could observe.
    pub fn client_with_seed(config: Config, seed: [u8; 32]) -> Self {
        Self::new(Role::Client, config, Some(Box::new(ChaCha8Rng::from_seed(seed))))
    }

    fn new(role: Role, config: Config, rng: Option<Box<ChaCha8Rng>>) -> Self {
        Connection {
            role,
            state: State::Open,
            config,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            assembly: MessageBuffer::default(),
            control: Vec::new(),
            lent: Lent::Nothing,
            sending: None,
            pending: Vec::new(),
            pending_pong: None,
            rng,
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
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
        self.write_data(kind.opcode(), true, payload, out)
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
        self.write_data(opcode, fin, payload, out)?;
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

    fn write_data(&mut self, opcode: OpCode, fin: bool, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
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
        if self.state != State::Open {
            return Err(UsageError::Closing);
        }
        let key = self.next_key();
        encode_frame(out, true, opcode, payload, key);
        Ok(())
    }

    /// A fresh masking key for a client frame; `None` for a server.
    fn next_key(&mut self) -> Option<[u8; 4]> {
        self.rng.as_mut().map(|rng| rng.next_u32().to_ne_bytes())
    }

    /// Queues the automatic answer to a ping, replacing an unsent one.
    fn queue_pong(&mut self, payload: &[u8]) {
        if let Some(at) = self.pending_pong.take() {
            self.pending.truncate(at);
        }
        self.pending_pong = Some(self.pending.len());
        let key = self.next_key();
        encode_frame(&mut self.pending, true, OpCode::Pong, payload, key);
    }

    /// Queues a close frame (reply or failure) and ends the connection.
    fn queue_close(&mut self, code: Option<CloseCode>, reason: &[u8]) {
        let mut payload = [0u8; 125];
        let len = close_payload(code, reason, &mut payload);
        let key = self.next_key();
        encode_frame(&mut self.pending, true, OpCode::Close, &payload[..len], key);
        self.pending_pong = None;
        self.state = State::Closed;
    }

    /// Fails the connection (RFC 6455 §7.1.7): sends a close with the code
    /// the violation calls for, unless a close was already sent, and stops
    /// reading.
    fn fail(&mut self, error: ProtocolError) {
        if self.state == State::Open {
            let reason = error.to_string();
            let reason = &reason.as_bytes()[..reason.len().min(close::MAX_REASON_LEN)];
            self.queue_close(Some(error.close_code()), reason);
        }
        self.state = State::Closed;
        self.frame = None;
        self.message = None;
        self.header_len = 0;
        self.assembly.clear(0);
        self.control = Vec::new();
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
mod tests;
