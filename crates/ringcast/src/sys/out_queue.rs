//! A connection's outgoing bytes: the frames queued this turn and the buffer
//! the kernel is sending.
//!
//! Two buffers because the kernel reads the in-flight one until its send
//! completes: appending to it could move it. Handlers append to the queue;
//! when the send completes, the queue becomes the next in-flight buffer and
//! the emptied one is reused, so a busy connection allocates nothing.

/// Outgoing bytes of one connection. See the module docs.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// Written during this turn; not yet handed to the kernel.
    queued: Vec<u8>,
    /// Handed to the kernel; untouched while `in_flight`.
    flight: Vec<u8>,
    /// Bytes of `flight` the kernel has already sent (partial sends), with
    /// [`IN_FLIGHT`] or'ed in while a send is out (one word instead of two:
    /// every idle connection carries this struct).
    sent: usize,
}

/// The top bit of `sent`: a send is in flight. No buffer reaches 2^63 bytes.
const IN_FLIGHT: usize = 1 << (usize::BITS - 1);

impl OutQueue {
    /// The buffer new frames are appended to. Never the in-flight one.
    pub fn queue(&mut self) -> &mut Vec<u8> {
        &mut self.queued
    }

    /// Bytes waiting to be sent, in flight or queued.
    pub fn buffered(&self) -> usize {
        self.queued.len() + self.flight.len() - self.sent_bytes()
    }

    fn sent_bytes(&self) -> usize {
        self.sent & !IN_FLIGHT
    }

    /// A send is in flight.
    pub fn in_flight(&self) -> bool {
        self.sent & IN_FLIGHT != 0
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
        if self.sent == self.flight.len() {
            if self.queued.is_empty() {
                return None;
            }
            // The emptied in-flight buffer becomes the queue: its capacity is
            // reused instead of freed.
            self.flight.clear();
            std::mem::swap(&mut self.queued, &mut self.flight);
            self.sent = 0;
        }
        let rest = &self.flight[self.sent..];
        self.sent |= IN_FLIGHT;
        Some((rest.as_ptr(), u32::try_from(rest.len()).unwrap_or(u32::MAX)))
    }

    /// The kernel sent `n` bytes of the in-flight buffer. Returns true when
    /// all of it is out (false: send the rest).
    pub fn complete_send(&mut self, n: usize) -> bool {
        debug_assert!(self.in_flight());
        self.sent = (self.sent_bytes() + n).min(self.flight.len());
        self.sent == self.flight.len()
    }

    /// The send failed: the connection is going away, nothing is in flight.
    pub fn abort_send(&mut self) {
        self.sent = self.sent_bytes();
    }

    /// Frees the buffers' memory (nothing may be pending), for connections
    /// that go idle: memory follows traffic, not history.
    pub fn release(&mut self) {
        if !self.in_flight() && self.is_empty() {
            self.queued = Vec::new();
            self.flight = Vec::new();
            self.sent = 0;
        }
    }

    /// Drops whatever is queued but not yet in flight.
    pub fn discard_queued(&mut self) {
        self.queued.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::OutQueue;

    #[test]
    fn swaps_buffers_and_resumes_partial_sends() {
        let mut q = OutQueue::default();
        assert!(q.begin_send().is_none());
        q.queue().extend_from_slice(b"hello");
        let (ptr, len) = q.begin_send().unwrap();
        assert_eq!(len, 5);
        // While in flight, new frames go to the other buffer.
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
        assert_eq!(q.queue().capacity(), 0);
    }
}
