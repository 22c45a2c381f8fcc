//! The shard's io_uring: set up with the best flags the kernel accepts, and
//! the handful of operations the runtime issues.
//!
//! Every operation that hands the kernel a pointer is pushed here, so the
//! rules that keep that memory alive sit beside the `unsafe` that relies on
//! them: receive buffers belong to the [`BufRing`](super::BufRing), send
//! buffers to an [`OutQueue`] that refuses to touch them while a send is in
//! flight, and the wake-up counter to this struct. [`Io`](super::Io) cancels
//! everything, synchronously, before any of that memory is freed.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::out_queue::SendBuf;
use super::OutQueue;

/// A completion, copied out of the completion queue so the runtime can push
/// new operations while it handles it.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    /// The `user_data` the operation was pushed with.
    pub user_data: u64,
    /// The result: a byte count, a file descriptor or `-errno`.
    pub result: i32,
    /// Completion flags (`IORING_CQE_F_*`).
    pub flags: u32,
}

impl Completion {
    /// The multishot operation that posted this completion stays armed.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }

    /// The provided buffer the kernel filled, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }
}

/// Which optional setup flags the kernel accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupFlags {
    /// `IORING_SETUP_SINGLE_ISSUER` (6.0+).
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (6.1+): completions are only produced
    /// when we ask for them, so the kernel never interrupts the shard.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` (5.19+).
    pub coop_taskrun: bool,
}

/// One shard's ring.
pub struct Ring {
    ring: IoUring,
    flags: SetupFlags,
    /// Target of the read on the shard's eventfd. Boxed so its address is
    /// stable for the kernel however the `Ring` moves.
    wake_buf: Box<u64>,
    /// How many times we entered the kernel (for the stats).
    enters: u64,
    /// The kernel can wait for a batch with a bounded delay (6.12+).
    min_timeout: bool,
}

impl Ring {
    /// Creates a ring with `entries` submission slots, trying the fastest
    /// setup first and falling back when the kernel refuses a flag.
    pub fn new(entries: u32) -> io::Result<Ring> {
        let attempts = [
            SetupFlags { single_issuer: true, defer_taskrun: true, coop_taskrun: false },
            SetupFlags { single_issuer: true, defer_taskrun: false, coop_taskrun: true },
            SetupFlags { single_issuer: false, defer_taskrun: false, coop_taskrun: true },
            SetupFlags { single_issuer: false, defer_taskrun: false, coop_taskrun: false },
        ];
        let mut last = None;
        for flags in attempts {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(entries.saturating_mul(4)).setup_submit_all();
            if flags.single_issuer {
                builder.setup_single_issuer();
            }
            if flags.defer_taskrun {
                builder.setup_defer_taskrun();
            }
            if flags.coop_taskrun {
                builder.setup_coop_taskrun();
            }
            match builder.build(entries) {
                Ok(ring) => {
                    if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_nodrop() {
                        return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            "the kernel's io_uring lacks EXT_ARG or NODROP (Linux 5.11+ needed; 6.0+ for this runtime)",
                        ));
                    }
                    let min_timeout = ring.params().is_feature_min_timeout();
                    return Ok(Ring { ring, flags, wake_buf: Box::new(0), enters: 0, min_timeout });
                }
                // EINVAL: a flag this kernel does not know; try fewer.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("io_uring setup failed")))
    }

    /// The flags the kernel accepted.
    pub fn setup_flags(&self) -> SetupFlags {
        self.flags
    }

    /// Whether the kernel can wait for a batch with a deadline (6.12+
    /// `min_wait`); without it, [`submit_and_wait`](Self::submit_and_wait)
    /// ignores its `batch`.
    pub fn can_batch(&self) -> bool {
        self.min_timeout
    }

    /// How many times this ring entered the kernel.
    pub fn enters(&self) -> u64 {
        self.enters
    }

    pub(super) fn submitter(&self) -> io_uring::Submitter<'_> {
        self.ring.submitter()
    }

    /// Pushes an entry, flushing the queue to the kernel first if it is full.
    ///
    /// # Safety
    /// Whatever memory `entry` points to must stay valid until its
    /// completion arrives (or the ring is cancelled and dropped).
    unsafe fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: forwarded from this function's contract.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return;
            }
            // The queue is full: hand what is there to the kernel. Rare: the
            // queue holds several times the operations of a busy turn.
            self.enters += 1;
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EINTR) {
                    tracing::error!(error = %e, "io_uring submit failed while the queue was full");
                }
            }
        }
    }

    /// Accepts connections on `listener` until cancelled.
    pub fn accept_multi(&mut self, listener: RawFd, user_data: u64) {
        let entry =
            opcode::AcceptMulti::new(types::Fd(listener)).flags(libc::SOCK_CLOEXEC).build().user_data(user_data);
        // SAFETY: multishot accept without an address buffer references no
        // memory of ours.
        unsafe { self.push(&entry) }
    }

    /// Receives on `fd` into buffers of group `group` until the stream
    /// ends, fails or the group runs dry.
    pub fn recv_multi(&mut self, fd: RawFd, group: u16, user_data: u64) {
        let entry = opcode::RecvMulti::new(types::Fd(fd), group).build().user_data(user_data);
        // SAFETY: the kernel writes only into provided buffers of `group`,
        // which the shard's `BufRing` owns for the life of the ring (`Io`
        // cancels every operation before the buffers are unmapped).
        unsafe { self.push(&entry) }
    }

    /// Sends what `out` has queued (the rest of a partial send first): one
    /// `send` for a single buffer, one `sendmsg` over its segments when a
    /// shared frame is among them. Returns false when there is nothing to
    /// send or a send is already in flight.
    pub fn send(&mut self, fd: RawFd, out: &mut OutQueue, user_data: u64) -> bool {
        let entry = match out.begin_send() {
            None => return false,
            Some(SendBuf::One(ptr, len)) => {
                opcode::Send::new(types::Fd(fd), ptr, len).flags(libc::MSG_NOSIGNAL).build()
            }
            Some(SendBuf::Many(msg)) => {
                opcode::SendMsg::new(types::Fd(fd), msg).flags(libc::MSG_NOSIGNAL as u32).build()
            }
        };
        // SAFETY: `begin_send` froze what this send covers: the bytes of its
        // segments and, for `sendmsg`, the iovec array and the `msghdr` (in
        // the queue's boxed chain, whose address does not change). The
        // `OutQueue` neither writes, moves nor frees them until
        // `complete_send`, which the runtime calls only with this
        // operation's completion; the connection holding the queue is kept
        // until then, and `Io` cancels every operation before connections
        // are dropped on teardown.
        unsafe { self.push(&entry.user_data(user_data)) };
        true
    }

    /// Completes once `fd` is writable or in error: for a socket connecting
    /// in non-blocking mode, once the connect is done.
    pub fn poll_writable(&mut self, fd: RawFd, user_data: u64) {
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLOUT as u32).build().user_data(user_data);
        // SAFETY: a poll references no memory of ours.
        unsafe { self.push(&entry) }
    }

    /// Closes a file descriptor.
    pub fn close(&mut self, fd: RawFd, user_data: u64) {
        let entry = opcode::Close::new(types::Fd(fd)).build().user_data(user_data);
        // SAFETY: references no memory.
        unsafe { self.push(&entry) }
    }

    /// Cancels the operations pushed with `target`.
    pub fn cancel(&mut self, target: u64, user_data: u64) {
        let entry = opcode::AsyncCancel::new(target).build().user_data(user_data);
        // SAFETY: references no memory.
        unsafe { self.push(&entry) }
    }

    /// Reads the shard's eventfd (8 bytes) into the ring's own counter.
    pub fn read_wake(&mut self, eventfd: RawFd, user_data: u64) {
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(types::Fd(eventfd), buf.cast(), 8).build().user_data(user_data);
        // SAFETY: `wake_buf` is a heap allocation owned by this ring; it is
        // freed only when the ring is dropped, after `Io` cancelled every
        // operation.
        unsafe { self.push(&entry) }
    }

    /// Submits everything queued and waits, in one system call, for
    /// completions: at least one, or `timeout` passing. With `batch` =
    /// (n, µs) on kernels that support it (6.12+), the kernel waits up to
    /// that many microseconds for `n` completions before settling for one,
    /// so a busy shard handles more per system call.
    pub fn submit_and_wait(&mut self, timeout: Option<Duration>, batch: Option<(u32, u32)>) -> io::Result<()> {
        self.enters += 1;
        let (want, min_wait) = match batch {
            Some((n, usec)) if self.min_timeout => (n.max(1) as usize, usec),
            _ => (1, 0),
        };
        let args = types::SubmitArgs::new().min_wait_usec(min_wait);
        let ts;
        let result = match timeout {
            Some(t) => {
                ts = types::Timespec::new().sec(t.as_secs()).nsec(t.subsec_nanos());
                self.ring.submitter().submit_with_args(want, &args.timespec(&ts))
            }
            None if min_wait > 0 => self.ring.submitter().submit_with_args(want, &args),
            None => self.ring.submitter().submit_and_wait(1),
        };
        match result {
            Ok(_) => Ok(()),
            // ETIME: the timeout passed; EINTR: a signal; EBUSY: completions
            // are waiting to be reaped first. All mean "go and look".
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands queued operations to the kernel without waiting (used once, as
    /// a shard exits, so its last closes happen).
    pub fn submit(&mut self) {
        self.enters += 1;
        if let Err(e) = self.ring.submit() {
            tracing::warn!(error = %e, "io_uring submit failed");
        }
    }

    /// Moves every ready completion into `into`.
    pub fn reap(&mut self, into: &mut Vec<Completion>) {
        let mut cq = self.ring.completion();
        cq.sync();
        into.extend(cq.map(|c| Completion { user_data: c.user_data(), result: c.result(), flags: c.flags() }));
    }

    /// Cancels every operation in flight and waits (up to a second) until
    /// the kernel has let go of them. After `Ok`, no memory handed to the
    /// kernel is in use.
    pub fn cancel_all_sync(&mut self) -> io::Result<()> {
        let ts = types::Timespec::new().sec(1);
        match self.ring.submitter().register_sync_cancel(Some(ts), types::CancelBuilder::any()) {
            Ok(()) => Ok(()),
            // Nothing was in flight.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
