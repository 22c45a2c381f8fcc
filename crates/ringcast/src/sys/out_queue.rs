//! A connection's outgoing bytes: the frames queued this turn and the buffer
//! the kernel is sending.
//!
//! Two buffers, because the kernel reads the in-flight one until its send
//! completes: appending to it could move it. Neither belongs to the
//! connection for long: a queue takes a buffer from its thread's pool when
//! the first frame is written, the buffer goes in flight at the next flush,
//! and returns to the pool when the send completes. The pool is a stack, so
//! the next frame is written into the buffer the kernel just finished
//! reading, still in cache; and an idle connection holds no buffer at all.

use std::cell::RefCell;

/// Buffers kept per thread (shard) for reuse.
const POOL_BUFFERS: usize = 1024;
/// Larger buffers (after a big message) are freed rather than kept.
const POOL_MAX_CAPACITY: usize = 256 << 10;
/// Capacity the pool may hold in all, so that after a burst that filled
/// many queues the shard gives the memory back instead of keeping it warm.
const POOL_MAX_BYTES: usize = 8 << 20;

/// A buffer handed to the kernel, and how much of it is sent.
#[derive(Debug, Default)]
struct Flight {
    buf: Vec<u8>,
    sent: usize,
    /// A send is in flight: `buf` is untouchable until it completes.
    busy: bool,
}

/// The calling thread's spare buffers (each shard is one thread).
#[derive(Default)]
struct Pool {
    buffers: Vec<Vec<u8>>,
    /// Sum of the capacities in `buffers`.
    bytes: usize,
    #[allow(clippy::vec_box)] // the boxes are what connections hold: moved, not copied
    flights: Vec<Box<Flight>>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::default();
}

fn take_buffer() -> Vec<u8> {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        let buf = pool.buffers.pop().unwrap_or_default();
        pool.bytes -= buf.capacity();
        buf
    })
}

fn give_buffer(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > POOL_MAX_CAPACITY {
        return;
    }
    buf.clear();
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.buffers.len() < POOL_BUFFERS && pool.bytes + buf.capacity() <= POOL_MAX_BYTES {
            pool.bytes += buf.capacity();
            pool.buffers.push(buf);
        }
    });
}

fn take_flight() -> Box<Flight> {
    POOL.with(|p| p.borrow_mut().flights.pop()).unwrap_or_default()
}

/// Returns a finished (or abandoned, not in-flight) flight and its buffer
/// to the pool.
fn recycle(mut flight: Box<Flight>) {
    give_buffer(std::mem::take(&mut flight.buf));
    give_flight(flight);
}

fn give_flight(flight: Box<Flight>) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.flights.len() < POOL_BUFFERS {
            pool.flights.push(flight);
        }
    });
}

/// Outgoing bytes of one connection. See the module docs.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// Written during this turn; not yet handed to the kernel.
    queued: Vec<u8>,
    /// Handed to the kernel (or partly sent and waiting to be resumed).
    flight: Option<Box<Flight>>,
}

impl OutQueue {
    /// The buffer new frames are appended to. Never the in-flight one.
    pub fn queue(&mut self) -> &mut Vec<u8> {
        if self.queued.capacity() == 0 {
            self.queued = take_buffer();
        }
        &mut self.queued
    }

    /// Bytes waiting to be sent, in flight or queued.
    pub fn buffered(&self) -> usize {
        self.queued.len() + self.flight.as_ref().map_or(0, |f| f.buf.len() - f.sent)
    }

    /// Bytes of memory the queue holds: the queued bytes and the whole
    /// buffer in flight (its sent part is freed only when all of it is).
    pub fn held(&self) -> usize {
        self.queued.len() + self.flight.as_ref().map_or(0, |f| f.buf.len())
    }

    /// Whether `len` more bytes fit the budget: a message always fits an
    /// empty queue (so one message of any allowed size can go out); past
    /// that, the memory held may not grow beyond `budget`. (Counting what
    /// is held, not what is unsent, is what bounds a connection's memory
    /// by its budget rather than by twice it.)
    pub fn admits(&self, len: usize, budget: usize) -> bool {
        let held = self.held();
        held == 0 || held + len <= budget
    }

    /// A send is in flight.
    pub fn in_flight(&self) -> bool {
        self.flight.as_ref().is_some_and(|f| f.busy)
    }

    /// Nothing queued and nothing in flight.
    pub fn is_empty(&self) -> bool {
        self.buffered() == 0
    }

    /// Marks the next bytes to send as in flight and returns where they are.
    /// Called only by `Ring::send`, which hands them to the kernel.
    pub(super) fn begin_send(&mut self) -> Option<(*const u8, u32)> {
        if self.in_flight() {
            return None;
        }
        if self.flight.is_none() {
            if self.queued.is_empty() {
                return None;
            }
            let mut flight = take_flight();
            flight.buf = std::mem::take(&mut self.queued);
            flight.sent = 0;
            self.flight = Some(flight);
        }
        let flight = self.flight.as_mut()?;
        flight.busy = true;
        let rest = &flight.buf[flight.sent..];
        Some((rest.as_ptr(), u32::try_from(rest.len()).unwrap_or(u32::MAX)))
    }

    /// The kernel sent `n` bytes of the in-flight buffer. Returns true when
    /// all of it is out (false: send the rest).
    pub fn complete_send(&mut self, n: usize) -> bool {
        let Some(flight) = self.flight.as_mut() else { return true };
        debug_assert!(flight.busy);
        flight.busy = false;
        flight.sent = (flight.sent + n).min(flight.buf.len());
        if flight.sent < flight.buf.len() {
            return false;
        }
        if let Some(flight) = self.flight.take() {
            recycle(flight);
        }
        true
    }

    /// The send failed: the connection is going away, nothing is in flight.
    pub fn abort_send(&mut self) {
        if let Some(flight) = self.flight.as_mut() {
            flight.busy = false;
        }
    }

    /// Gives an empty queue's buffer back to the pool (after a turn that
    /// wrote nothing, or when the connection goes idle).
    pub fn release(&mut self) {
        if self.queued.is_empty() {
            give_buffer(std::mem::take(&mut self.queued));
        }
    }

    /// Drops everything not in the kernel's hands: the queue, and a
    /// partly sent buffer that is not in flight.
    pub fn discard_unsent(&mut self) {
        self.queued.clear();
        self.release();
        if !self.in_flight() {
            if let Some(flight) = self.flight.take() {
                recycle(flight);
            }
        }
    }
}

impl Drop for OutQueue {
    fn drop(&mut self) {
        // A buffer still in flight belongs to the kernel until the ring is
        // torn down; it is freed, not pooled (`Io` has cancelled everything
        // by the time connections are dropped).
        if !self.in_flight() {
            if let Some(flight) = self.flight.take() {
                recycle(flight);
            }
        }
        give_buffer(std::mem::take(&mut self.queued));
    }
}

#[cfg(test)]
mod tests {
    use super::OutQueue;

    #[test]
    fn queues_behind_a_send_in_flight_and_resumes_partial_sends() {
        let mut q = OutQueue::default();
        assert!(q.begin_send().is_none());
        q.queue().extend_from_slice(b"hello");
        let (ptr, len) = q.begin_send().unwrap();
        assert_eq!(len, 5);
        // While in flight, new frames go to another buffer.
        q.queue().extend_from_slice(b"world");
        assert_ne!(q.queue().as_ptr(), ptr);
        assert!(q.begin_send().is_none(), "one send in flight at a time");
        assert_eq!(q.buffered(), 10);
        assert!(!q.complete_send(2));
        let (ptr2, len2) = q.begin_send().unwrap();
        assert_eq!((ptr2, len2), (ptr.wrapping_add(2), 3), "the rest of a partial send");
        assert!(q.complete_send(3));
        let (_, len3) = q.begin_send().unwrap();
        assert_eq!(len3, 5);
        assert!(q.complete_send(5));
        assert!(q.is_empty());
        q.release();
        assert_eq!(q.queued.capacity(), 0, "an idle queue holds no buffer");
    }

    #[test]
    fn the_next_frame_reuses_the_buffer_the_kernel_just_sent() {
        let mut a = OutQueue::default();
        a.queue().extend_from_slice(&[1; 1000]);
        let (sent_from, _) = a.begin_send().unwrap();
        assert!(a.complete_send(1000));
        let mut b = OutQueue::default();
        assert_eq!(b.queue().as_ptr(), sent_from, "the pool is a stack: the warm buffer comes back first");
    }

    #[test]
    fn the_budget_counts_memory_held_not_bytes_unsent() {
        let mut q = OutQueue::default();
        q.queue().extend_from_slice(&[0; 60]);
        q.begin_send().unwrap();
        assert!(!q.complete_send(50), "a partial send: 10 bytes left");
        assert_eq!((q.buffered(), q.held()), (10, 60));
        // 10 unsent bytes, but the 60-byte buffer is still held.
        assert!(q.admits(40, 100));
        assert!(!q.admits(41, 100));
        q.begin_send().unwrap();
        assert!(q.complete_send(10));
        assert!(q.admits(100, 100));
        assert!(q.admits(1000, 100), "an empty queue takes one message of any size");
    }

    #[test]
    fn the_pool_keeps_a_bounded_amount_of_memory() {
        let mut queues: Vec<OutQueue> = (0..64).map(|_| OutQueue::default()).collect();
        for q in &mut queues {
            q.queue().reserve_exact(256 << 10);
            q.queue().push(1);
            q.begin_send().unwrap();
        }
        for q in &mut queues {
            assert!(q.complete_send(1));
        }
        let pooled = super::POOL.with(|p| p.borrow().bytes);
        assert!(pooled <= super::POOL_MAX_BYTES, "{pooled} bytes pooled");
        assert!(pooled >= super::POOL_MAX_BYTES / 2, "the pool still keeps warm buffers: {pooled}");
    }
}
