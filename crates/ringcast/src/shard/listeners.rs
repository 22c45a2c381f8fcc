//! A shard's listening sockets: none for a client runtime, one for a
//! server, two when it serves plain and TLS WebSockets on two addresses.
//! Each has its own multishot accept, whose token carries its index.

use std::os::fd::AsRawFd;

use socket2::Socket;

use super::token::{op, token};
use crate::sys::Ring;
use crate::timer::Millis;

/// One listening socket of a shard.
pub(crate) struct Listener {
    socket: Socket,
    /// Its connections speak TLS.
    secure: bool,
    /// A multishot accept is armed on it.
    armed: bool,
}

/// The shard's listening sockets; the index of each is the key of its
/// accept token.
#[derive(Default)]
pub(crate) struct Listeners {
    list: Vec<Option<Listener>>,
    /// When to arm again the accepts that ended in an error.
    pub retry_at: Option<Millis>,
}

impl Listeners {
    /// The sockets a shard listens on: `(socket, secure)`.
    pub fn new(sockets: Vec<(Socket, bool)>) -> Listeners {
        let list =
            sockets.into_iter().map(|(socket, secure)| Some(Listener { socket, secure, armed: false })).collect();
        Listeners { list, retry_at: None }
    }

    /// An accept is still armed (a stopping shard waits for its end).
    pub fn any_armed(&self) -> bool {
        self.list.iter().flatten().any(|l| l.armed)
    }

    /// Arms a multishot accept on every listener that has none.
    pub fn arm(&mut self, ring: &mut Ring) {
        for (index, listener) in self.list.iter_mut().enumerate() {
            if let Some(listener) = listener.as_mut().filter(|l| !l.armed) {
                ring.accept_multi(listener.socket.as_raw_fd(), token(op::ACCEPT, index, 0));
                listener.armed = true;
            }
        }
        self.retry_at = None;
    }

    /// Stops listening: armed accepts are cancelled (their sockets close
    /// when the cancellation completes), the others close now.
    pub fn stop(&mut self, ring: &mut Ring) {
        for (index, slot) in self.list.iter_mut().enumerate() {
            match slot {
                Some(listener) if listener.armed => ring.cancel(token(op::ACCEPT, index, 0), token(op::IGNORE, 0, 0)),
                _ => *slot = None,
            }
        }
    }

    /// The accept on listener `index` ended; a stopping shard closes it.
    pub fn disarmed(&mut self, index: usize, close: bool) {
        if let Some(slot) = self.list.get_mut(index) {
            if close {
                *slot = None;
            } else if let Some(listener) = slot {
                listener.armed = false;
            }
        }
    }

    /// Whether the listener at `index` is TLS.
    pub fn secure(&self, index: usize) -> bool {
        self.list.get(index).and_then(Option::as_ref).is_some_and(|l| l.secure)
    }
}
