//! The operating-system edge of the runtime: the ring, its receive buffers,
//! the send queue whose memory the kernel reads, and the eventfd that wakes
//! a shard from other threads.
//!
//! This module and its children are the only places of the crate allowed
//! `unsafe`; each block says why it is sound.

mod buf_ring;
#[cfg(feature = "ktls")]
pub mod ktls;
mod out_queue;
mod ring;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub use buf_ring::BufRing;
pub use out_queue::{OutQueue, SHARE_MIN};
pub use ring::{Completion, Ring};

/// A shard's ring and receive pool, torn down in the one safe order: every
/// operation cancelled (synchronously) before any buffer is freed.
pub struct Io {
    /// The ring.
    pub ring: Ring,
    /// The receive buffers.
    pub bufs: BufRing,
}

impl Io {
    /// Sets up a ring and its buffer pool.
    pub fn new(entries: u32, buffers: u16, buffer_size: u32) -> io::Result<Io> {
        let ring = Ring::new(entries)?;
        let bufs = BufRing::new(&ring, buffers, buffer_size, 0)?;
        Ok(Io { ring, bufs })
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        if let Err(e) = self.ring.cancel_all_sync() {
            // The kernel may still write into the buffers: never unmap them.
            tracing::error!(error = %e, "could not cancel io_uring operations; leaking the receive buffers");
            self.bufs.leak();
        }
    }
}

/// Wakes a shard from any thread: a write to an eventfd the shard's ring is
/// reading.
#[derive(Debug)]
pub struct Waker {
    file: File,
}

impl Waker {
    /// Creates a non-blocking eventfd.
    pub fn new() -> io::Result<Waker> {
        #[allow(unsafe_code)]
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor that nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        #[allow(unsafe_code)]
        // SAFETY: `fd` was just created and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker { file: File::from(owned) })
    }

    /// Wakes the shard.
    pub fn wake(&self) {
        // EAGAIN means the counter is already non-zero: the shard will wake.
        let _ = (&self.file).write(&1u64.to_ne_bytes());
    }

    /// The descriptor the shard reads.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Takes ownership of a descriptor the kernel just handed us in an accept
/// completion.
pub fn adopt_fd(fd: RawFd) -> OwnedFd {
    #[allow(unsafe_code)]
    // SAFETY: an accept completion's result is a new descriptor that
    // nothing else in the process owns.
    unsafe {
        OwnedFd::from_raw_fd(fd)
    }
}

/// Answers a connection the shard will not take (e.g. over the connection
/// limit) with a short response and closes it, without the ring: it never
/// gets a slot, so it has nothing to keep a send buffer in.
pub fn refuse(fd: OwnedFd, response: &[u8]) {
    let stream = std::net::TcpStream::from(fd);
    // A fresh socket's send buffer is empty: a short write does not block,
    // and non-blocking mode makes sure of it.
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write(response);
}
