//! Why a runtime could not start, and why a client connection could not
//! open.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use ringcast_proto::{ResponseError, UsageError};

/// A runtime (server or client) failed to start. Errors once running are per connection and go
/// to the handler or the logs, never here.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A setting cannot work (API misuse): the message says which.
    Config(&'static str),
    /// The address did not resolve.
    Resolve(io::Error),
    /// A listening socket could not be bound (port in use, permission).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        source: io::Error,
    },
    /// io_uring could not be set up: see the message for the likely cause.
    IoUring(io::Error),
    /// A shard thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "invalid settings: {why}"),
            Error::Resolve(e) => write!(f, "cannot resolve the listen address: {e}"),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::IoUring(e) => {
                write!(f, "io_uring is unavailable: {e}")?;
                let hint = match e.raw_os_error() {
                    Some(libc::ENOSYS) => "the kernel was built without io_uring",
                    Some(libc::EPERM) | Some(libc::EACCES) => {
                        "it is disabled: check /proc/sys/kernel/io_uring_disabled and the container's seccomp profile"
                    }
                    Some(libc::ENOMEM) => {
                        "the locked-memory limit is too low: raise `ulimit -l` or use fewer receive buffers"
                    }
                    Some(libc::EINVAL) => "this kernel is too old: ringcast needs Linux 6.0 or later",
                    _ => "",
                };
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
            Error::Thread(e) => write!(f, "cannot start a shard thread: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve(e) | Error::IoUring(e) | Error::Thread(e) | Error::Bind { source: e, .. } => Some(e),
            Error::Config(_) => None,
        }
    }
}

/// A client connection that never opened: returned by
/// [`ClientHandle::connect`](crate::ClientHandle::connect) when the request
/// cannot even start, or handed to
/// [`ClientHandler::connect_failed`](crate::ClientHandler::connect_failed) when it
/// failed on its way.
///
/// Split by who is at fault, as the variants say: our caller (the URL, a
/// header), the network or the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL or a header field cannot be sent (API misuse).
    InvalidRequest(UsageError),
    /// Something this runtime does not do (the message says what).
    Unsupported(&'static str),
    /// The host name did not resolve (or resolved to nothing).
    Resolve(io::Error),
    /// The TCP connection failed: refused, unreachable, reset.
    Io(io::Error),
    /// No valid 101 response within the handshake timeout (TCP connect
    /// included).
    Timeout,
    /// The server answered, but not with a valid upgrade: a status other
    /// than 101 (`Status(403)`, `Status(404)`…), a wrong accept key, a
    /// subprotocol or extension we did not offer.
    Handshake(ResponseError),
    /// The server closed the connection before its response was complete.
    Closed,
    /// `wss://`: the TLS handshake failed (the server's certificate does
    /// not verify for the host, no common protocol version…), or no TLS
    /// client configuration could be made; the message is rustls'.
    Tls(String),
    /// The shard already holds its share of `max_connections`.
    Limit,
    /// The runtime is stopping.
    Stopping,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidRequest(e) => write!(f, "invalid connect request: {e}"),
            ConnectError::Unsupported(what) => write!(f, "unsupported: {what}"),
            ConnectError::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
            ConnectError::Io(e) => write!(f, "connection failed: {e}"),
            ConnectError::Timeout => f.write_str("no upgrade response within the handshake timeout"),
            ConnectError::Handshake(e) => write!(f, "upgrade refused or invalid: {e}"),
            ConnectError::Closed => f.write_str("the server closed the connection during the handshake"),
            ConnectError::Tls(why) => write!(f, "TLS: {why}"),
            ConnectError::Limit => f.write_str("connection limit reached"),
            ConnectError::Stopping => f.write_str("the runtime is stopping"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Resolve(e) | ConnectError::Io(e) => Some(e),
            ConnectError::Handshake(e) => Some(e),
            ConnectError::InvalidRequest(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`Ws::subscribe`](crate::Ws::subscribe) refused a topic. Both
/// limits are the server's own (the builder's
/// [`max_subscriptions`](crate::Builder::max_subscriptions) and
/// [`max_topic_len`](crate::Builder::max_topic_len)); the connection
/// stays open and keeps its other subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The connection already subscribes to as many topics as allowed.
    TooManyTopics {
        /// The limit.
        limit: usize,
    },
    /// The topic's name is longer than allowed.
    TopicTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::TooManyTopics { limit } => write!(f, "subscribed to {limit} topics already (the limit)"),
            SubscribeError::TopicTooLong { limit } => write!(f, "topic name longer than {limit} bytes"),
        }
    }
}

impl std::error::Error for SubscribeError {}
