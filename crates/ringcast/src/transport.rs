//! The transport seam: where the bytes a socket delivers become the
//! plaintext the WebSocket layer reads, and where the plaintext it queued
//! becomes the bytes the socket sends.
//!
//! A shard calls its [`Transport`] at exactly two points, and the HTTP and
//! WebSocket code above never sees the difference:
//!
//! - **in**: every receive completion's bytes go through [`Transport::open`]
//!   before the handshake or frame parser looks at them;
//! - **out**: just before a connection's queued bytes are handed to the
//!   kernel, [`Transport::seal`] turns them into wire bytes in place.
//!
//! Each connection carries a [`Transport::Session`] in its slot, made when
//! it is accepted ([`Transport::accept`]) or opened
//! ([`Transport::connect`]). Plain TCP ([`Plain`]) has a zero-sized
//! session and calls that compile to nothing, so the seam costs a plain
//! server's idle connection no bytes and a message no instructions.
//!
//! TLS (`crate::tls`, rustls in user space) implements the same calls:
//! `accept`/`connect` make a rustls connection; `open` feeds the records in
//! `wire` to it and hands back the plaintext (gathered in `scratch`),
//! queueing any records it owes the peer in `out` as wire bytes; `seal`
//! encrypts the queued plaintext into records; `finish` queues close_notify
//! before the shard shuts its side of the socket. Where the kernel offers
//! TLS offload (kTLS, feature `ktls`), a server session hands its keys to
//! the socket after the handshake ([`Transport::offload`]) and from then
//! on both calls pass bytes through, as for `Plain`.
//! The 503 written straight to a socket over the connection limit
//! (`sys::refuse`) bypasses the seam: a TLS listener's connection over the
//! limit is closed instead.

use std::os::fd::RawFd;

use crate::sys::OutQueue;

/// What the layers above may ask of a connection's transport session.
pub(crate) trait Session {
    /// The server name a TLS client asked for (SNI).
    fn server_name(&self) -> Option<&str> {
        None
    }

    /// The connection is encrypted.
    fn is_secure(&self) -> bool {
        false
    }
}

impl Session for () {}

/// Turns socket bytes into plaintext and back, per connection.
pub(crate) trait Transport: Send + 'static {
    /// What the transport keeps per connection (a TLS session; nothing for
    /// plain TCP).
    type Session: Session;

    /// A session for a connection the shard accepted from a listener that
    /// is `secure` (TLS) or not.
    fn accept(&self, secure: bool) -> Result<Self::Session, TransportError>;

    /// A session for a connection the shard opens to `server_name` (the
    /// host of the URL, for TLS server name indication and certificate
    /// checks), over TLS if `secure` (`wss://`).
    fn connect(&self, server_name: &str, secure: bool) -> Result<Self::Session, TransportError>;

    /// Bytes arrived on the socket: returns the plaintext they carry, which
    /// lies in `wire` (decrypted in place) or in `scratch` (the shard's
    /// buffer, emptied by the caller's next use). Bytes the transport
    /// itself owes the peer (handshake records) go to `out`.
    fn open<'w>(
        &self,
        session: &mut Self::Session,
        wire: &'w mut [u8],
        scratch: &'w mut Vec<u8>,
        out: &mut OutQueue,
    ) -> Result<&'w mut [u8], TransportError>;

    /// The queued bytes are about to be sent: turns the plaintext queued
    /// since the last call into wire bytes, in the queue.
    fn seal(&self, session: &mut Self::Session, out: &mut OutQueue) -> Result<(), TransportError>;

    /// Everything is sent and the shard is about to shut its side of the
    /// socket: queues the transport's own farewell (TLS close_notify) and
    /// returns true if it did, so that the shutdown waits for it.
    fn finish(&self, session: &mut Self::Session, out: &mut OutQueue) -> bool;

    /// The session could move its record work into the kernel now (kernel
    /// TLS, feature `ktls`). The shard then stops receiving and, once no
    /// receive is armed and nothing sealed is queued or in flight, calls
    /// [`Transport::offload`], so that no byte is decrypted or encrypted
    /// twice. Asked after every receive of an open connection.
    fn wants_offload(&self, _session: &Self::Session) -> bool {
        false
    }

    /// Moves the session's record work into the kernel for socket `fd`, or
    /// leaves it where it is when the kernel cannot take it (either is
    /// `Ok`, and either way `wants_offload` is false from now on). An
    /// error fails the connection.
    fn offload(&self, _session: &mut Self::Session, _fd: RawFd) -> Result<(), TransportError> {
        Ok(())
    }
}

/// The transport failed a connection (e.g. a TLS alert): it is cut, and
/// the handler hears 1006 with this reason (a client's connect fails with
/// `ConnectError::Tls` and the detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransportError {
    /// What went wrong, for the logs and `CloseInfo::reason`.
    pub reason: &'static str,
    /// What the TLS library said, when it said something.
    pub detail: Option<Box<str>>,
}

impl TransportError {
    pub fn new(reason: &'static str) -> Self {
        TransportError { reason, detail: None }
    }

    /// With what the library said.
    pub fn detail(mut self, detail: impl std::fmt::Display) -> Self {
        self.detail = Some(detail.to_string().into());
        self
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.reason),
            None => f.write_str(self.reason),
        }
    }
}

/// Plain TCP: the bytes are the plaintext.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plain;

impl Transport for Plain {
    type Session = ();

    #[inline]
    fn accept(&self, _secure: bool) -> Result<(), TransportError> {
        Ok(())
    }

    #[inline]
    fn connect(&self, _server_name: &str, secure: bool) -> Result<(), TransportError> {
        match secure {
            false => Ok(()),
            true => Err(TransportError::new("wss:// on a runtime without TLS")),
        }
    }

    #[inline]
    fn open<'w>(
        &self,
        _session: &mut (),
        wire: &'w mut [u8],
        _scratch: &'w mut Vec<u8>,
        _out: &mut OutQueue,
    ) -> Result<&'w mut [u8], TransportError> {
        Ok(wire)
    }

    #[inline]
    fn seal(&self, _session: &mut (), _out: &mut OutQueue) -> Result<(), TransportError> {
        Ok(())
    }

    #[inline]
    fn finish(&self, _session: &mut (), _out: &mut OutQueue) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hands_the_received_bytes_over_as_they_are_and_seals_nothing() {
        let mut wire = *b"GET / HTTP/1.1\r\n";
        let mut scratch = Vec::new();
        let mut out = OutQueue::default();
        out.queue().extend_from_slice(b"queued");
        let plain = Plain.open(&mut (), &mut wire, &mut scratch, &mut out).unwrap();
        assert_eq!(plain, b"GET / HTTP/1.1\r\n");
        Plain.seal(&mut (), &mut out).unwrap();
        assert_eq!(out.queue().as_slice(), b"queued");
        assert_eq!(std::mem::size_of::<<Plain as Transport>::Session>(), 0);
    }
}
