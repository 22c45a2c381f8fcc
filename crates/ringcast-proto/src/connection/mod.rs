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
//!
//! A [`Connection`] is a [`Receiver`] and a [`Sender`]. Events borrow only
//! the receiver (and the input), so after [`Connection::split`] a handler can
//! answer a message through the sender while it still holds the message:
//! an echo needs no copy.

mod read;
mod send;
mod shared;

use rand_chacha::rand_core::SeedableRng;
use std::sync::atomic::{AtomicU32, Ordering};

use rand_chacha::ChaCha8Rng;

use crate::close::CloseCode;
use crate::error::{Error, UsageError};
use crate::extension::Extension;
use crate::utf8::OwnedMessage;

pub use crate::frame::MessageKind;
pub use read::{CloseFrame, Event, Read, Receiver};
pub use send::Sender;
pub use shared::{Config, Role, State};

/// One WebSocket connection after a successful opening handshake.
#[derive(Debug)]
pub struct Connection {
    rx: Receiver,
    tx: Sender,
}

impl Connection {
    /// A server-side connection.
    pub fn server(config: Config) -> Self {
        let pair = next_pair_id();
        Connection { rx: Receiver::new(config, pair), tx: Sender::new(Role::Server, None, pair) }
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
        let rng = ChaCha8Rng::from_seed(seed);
        let pair = next_pair_id();
        Connection { rx: Receiver::new(config, pair), tx: Sender::new(Role::Client, Some(rng), pair) }
    }

    /// Gives the connection a negotiated extension: it claims RSV bits and
    /// transforms whole messages both ways (see [`crate::extension`]).
    pub fn with_extension(mut self, extension: Box<dyn Extension>) -> Self {
        self.tx.set_extension(extension);
        self
    }

    /// The two halves: read with [`Receiver::read`] (passing the sender),
    /// answer through the [`Sender`] while the event is still borrowed.
    pub fn split(&mut self) -> (&mut Receiver, &mut Sender) {
        (&mut self.rx, &mut self.tx)
    }

    /// The sending half.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.tx
    }

    /// Reads frames from `input`; see [`Receiver::read`]. The event borrows
    /// the whole connection: use [`Connection::split`] to send while holding
    /// it.
    pub fn read<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Read<'a>, Error> {
        self.rx.read(&mut self.tx, input)
    }

    /// See [`Receiver::take_message`].
    pub fn take_message(&mut self) -> Option<OwnedMessage> {
        self.rx.take_message()
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.tx.role()
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.tx.state()
    }

    /// The limits in force (values above 4 GiB read back as 4 GiB - 1).
    pub fn config(&self) -> Config {
        self.rx.config()
    }

    /// Whether frames wait in the internal queue; see [`Sender::take_pending`].
    pub fn has_pending(&self) -> bool {
        self.tx.has_pending()
    }

    /// See [`Sender::take_pending`].
    pub fn take_pending(&mut self, out: &mut Vec<u8>) {
        self.tx.take_pending(out)
    }

    /// See [`Sender::send_text`].
    pub fn send_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.tx.send_text(text, out)
    }

    /// See [`Sender::send_binary`].
    pub fn send_binary(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.tx.send_binary(data, out)
    }

    /// See [`Sender::send`].
    pub fn send(&mut self, kind: MessageKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.tx.send(kind, payload, out)
    }

    /// See [`Sender::send_fragment`].
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        self.tx.send_fragment(kind, payload, fin, out)
    }

    /// See [`Sender::ping`].
    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.tx.ping(payload, out)
    }

    /// See [`Sender::pong`].
    pub fn pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.tx.pong(payload, out)
    }

    /// See [`Sender::close`].
    pub fn close(&mut self, code: Option<CloseCode>, reason: &str, out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.tx.close(code, reason, out)
    }
}

/// A number shared by the two halves of one connection, so that passing a
/// receiver another connection's sender is caught instead of sending pongs
/// and closes to the wrong peer.
fn next_pair_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests;
