//! Why a server could not start.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A server failed to start. Errors once running are per connection and go
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
            Error::Config(why) => write!(f, "invalid server settings: {why}"),
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
