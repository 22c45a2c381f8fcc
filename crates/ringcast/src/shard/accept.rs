//! Accepting: the multishot accepts on a shard's listeners and what
//! happens to a connection just accepted.

use std::os::fd::AsRawFd;

use ringcast_proto::handshake::RequestReader;

use super::slot::{flag, Slot};
use super::token::{op, token};
use super::Shard;
use crate::callbacks::Callbacks;
use crate::sys::{self, Completion};
use crate::timer::reached;
use crate::transport::Transport;

/// The answer to a connection over the limit on a plain listener.
const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

impl<H: Callbacks, T: Transport> Shard<H, T> {
    pub(super) fn arm_accept(&mut self) {
        self.listeners.arm(&mut self.io.ring);
    }

    /// Arms again the accepts that failed, once their pause is over.
    pub(super) fn retry_accept(&mut self) {
        if self.stop_deadline.is_none() && self.listeners.retry_at.is_some_and(|at| reached(at, self.now)) {
            self.arm_accept();
        }
    }

    pub(super) fn on_accept(&mut self, index: usize, c: Completion) {
        if !c.more() {
            // A stopping shard closes the listener; a running one arms it
            // again.
            let stopping = self.stop_deadline.is_some();
            self.listeners.disarmed(index, stopping);
            if !stopping {
                if c.result < 0 {
                    // Out of descriptors or memory: retry shortly, not in a spin.
                    self.listeners.retry_at = Some(self.now.wrapping_add(100));
                } else {
                    self.arm_accept();
                }
            }
        }
        if c.result < 0 {
            if c.result != -libc::ECANCELED {
                let e = std::io::Error::from_raw_os_error(-c.result);
                tracing::warn!(error = %e, "accept failed");
            }
            return;
        }
        let socket = sys::adopt_fd(c.result);
        if self.stop_deadline.is_some() {
            return; // dropped: closed
        }
        let secure = self.listeners.secure(index);
        if self.conns.len() >= self.max_connections {
            tracing::warn!(limit = self.max_connections, "connection limit reached; refusing");
            if !secure {
                // A TLS client could not read a plain answer: it sees the
                // connection close.
                sys::refuse(socket, OVER_LIMIT);
            }
            return;
        }
        let session = match self.transport.accept(secure) {
            Ok(session) => session,
            Err(e) => {
                tracing::warn!(reason = e.reason, "the transport refused a connection");
                return;
            }
        };
        self.local.stats.accepted += 1;
        let generation = self.take_generation();
        let fd = socket.as_raw_fd();
        let reader = (!self.settings.tcp_echo).then(|| RequestReader::new(self.request_limits));
        let key = self.conns.insert(Slot::new(socket, generation, reader, self.now, session));
        tracing::debug!(conn = %self.id(key, generation), fd, secure, "accepted");
        self.io.ring.recv_multi(fd, self.io.bufs.group(), token(op::RECV, key, generation));
        let slot = &mut self.conns[key];
        slot.flags |= flag::RECV_ARMED;
        slot.deadline_in(&mut self.wheel, key, self.now, self.settings.handshake_timeout);
    }
}
