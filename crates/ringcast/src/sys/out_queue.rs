//! A connection's outgoing bytes: a chain of segments, some of them in the
//! kernel's hands.
//!
//! Small frames are corked: appended to an owned buffer, so one send carries
//! every frame a turn produced. A large published frame is not copied: its
//! shared [`Bytes`] becomes a segment of its own in every subscriber's
//! chain, and the send hands the kernel a list of segments (`sendmsg` with
//! an iovec per segment). A large received message sent back joins the
//! chain the same way, as the bytes the shard took from the receiver.
//! While a send is in flight, the segments it covers are frozen: new frames
//! go to a segment after them.
//!
//! Nothing belongs to the connection for long. The chain's box and its
//! buffers come from the thread's pool when the first frame is written and
//! go back when everything is sent. The pool is a stack, so the next frame
//! is written into the buffer the kernel just finished reading, still in
//! cache, and an idle connection holds one empty pointer.
//!
//! **Sealing** (a transport such as TLS): the runtime queues plaintext as
//! above, and the transport turns it into wire bytes just before a send
//! ([`OutQueue::seal_with`]) or adds wire bytes of its own, such as
//! handshake records ([`OutQueue::push_wire`]). Once a transport has done
//! either, the chain is `[sealed segments][plaintext segments]` and only the
//! sealed ones are sent; frames are appended after the boundary only.
//! Without a transport that seals, every segment is sent, as before.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::Bytes;

/// Buffers kept per thread (shard) for reuse.
const POOL_BUFFERS: usize = 1024;
/// Larger buffers (after a big message) are freed rather than kept.
const POOL_MAX_CAPACITY: usize = 256 << 10;
/// Capacity the pool may hold in all, so that after a burst that filled
/// many queues the shard gives the memory back instead of keeping it warm.
const POOL_MAX_BYTES: usize = 8 << 20;
/// Shared frames at least this large are queued by reference; smaller ones
/// are copied into the cork buffer, where they cost less than an iovec
/// (and a reference count) of their own. Measured: see `docs/benchmarks.md`.
pub const SHARE_MIN: usize = 8 << 10;
/// The most segments one send hands the kernel (well under `IOV_MAX`).
const MAX_IOV: usize = 64;

/// A run of outgoing bytes.
#[derive(Debug)]
enum Segment {
    /// Frames written into a buffer of ours (from the pool).
    Owned(Vec<u8>),
    /// A frame shared with other connections, or a received message sent
    /// back, sent from where it is.
    Shared(Bytes),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Owned(buf) => buf,
            Segment::Shared(bytes) => bytes,
        }
    }

    /// The length of a segment no frame is appended to (0 for an owned
    /// buffer, whose length changes).
    fn fixed_len(&self) -> usize {
        match self {
            Segment::Owned(_) => 0,
            other => other.bytes().len(),
        }
    }
}

/// The segments of one connection, and the send descriptor the kernel
/// reads while a vectored send is in flight (boxed: its address must not
/// change, and an idle connection should not pay for it).
#[derive(Debug)]
struct Chain {
    segs: VecDeque<Segment>,
    /// Bytes of the front segment already sent.
    sent: usize,
    /// How many front segments the send in flight covers (0: none).
    flying: usize,
    /// Bytes of every segment but an owned tail (whose length changes as
    /// frames are appended, so it is read when asked).
    closed: usize,
    /// A transport seals this chain: only the first `sealed` segments hold
    /// wire bytes and may be sent.
    sealing: bool,
    /// How many front segments hold wire bytes (sealing only).
    sealed: usize,
    iov: Vec<libc::iovec>,
    msg: libc::msghdr,
}

impl Default for Chain {
    fn default() -> Self {
        // SAFETY: `msghdr` is a plain C struct for which all-zero bytes are
        // a valid value (no name, no iovecs, no control data).
        let msg = unsafe { std::mem::zeroed() };
        Chain { segs: VecDeque::new(), sent: 0, flying: 0, closed: 0, sealing: false, sealed: 0, iov: Vec::new(), msg }
    }
}

impl Chain {
    fn tail_len(&self) -> usize {
        match self.segs.back() {
            Some(Segment::Owned(buf)) => buf.len(),
            _ => 0,
        }
    }

    fn held(&self) -> usize {
        self.closed + self.tail_len()
    }

    fn push(&mut self, segment: Segment) {
        self.closed += self.tail_len() + segment.fixed_len();
        self.segs.push_back(segment);
    }

    fn pop_back(&mut self) -> Option<Segment> {
        let segment = self.segs.pop_back()?;
        self.closed -= segment.fixed_len() + self.tail_len();
        self.sealed = self.sealed.min(self.segs.len());
        Some(segment)
    }

    fn pop_front(&mut self) -> Option<Segment> {
        let segment = self.segs.pop_front()?;
        self.closed = if self.segs.is_empty() { 0 } else { self.closed - segment.bytes().len() };
        self.sealed = self.sealed.saturating_sub(1);
        Some(segment)
    }

    /// Segments before this index take no more frames: in flight, or
    /// sealed.
    fn frozen(&self) -> usize {
        self.flying.max(self.sealed)
    }

    /// How many front segments a send may cover.
    fn sendable(&self) -> usize {
        if self.sealing {
            self.sealed
        } else {
            self.segs.len()
        }
    }

    /// Drops the segments from index `keep` on, back to the pool.
    fn truncate(&mut self, keep: usize) {
        while self.segs.len() > keep {
            give_segment(self.pop_back().expect("a segment past `keep`"));
        }
    }

    /// Inserts `segment` as the last sealed one (its bytes counted as
    /// closed unless it becomes the tail).
    fn insert_sealed(&mut self, segment: Segment) {
        if self.sealed == self.segs.len() {
            self.push(segment);
        } else {
            self.closed += segment.bytes().len();
            self.segs.insert(self.sealed, segment);
        }
        self.sealed += 1;
    }
}

/// The calling thread's spare buffers and chains (each shard is a thread).
#[derive(Default)]
struct Pool {
    buffers: Vec<Vec<u8>>,
    /// Sum of the capacities in `buffers`.
    bytes: usize,
    #[allow(clippy::vec_box)] // the boxes are what connections hold: moved, not copied
    chains: Vec<Box<Chain>>,
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

fn give_segment(segment: Segment) {
    if let Segment::Owned(buf) = segment {
        give_buffer(buf);
    }
}

fn take_chain() -> Box<Chain> {
    POOL.with(|p| p.borrow_mut().chains.pop()).unwrap_or_default()
}

/// Returns an empty chain (nothing in flight) to the pool.
fn give_chain(mut chain: Box<Chain>) {
    debug_assert!(chain.flying == 0);
    for segment in chain.segs.drain(..) {
        give_segment(segment);
    }
    chain.sent = 0;
    chain.closed = 0;
    chain.sealing = false;
    chain.sealed = 0;
    chain.iov.clear();
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.chains.len() < POOL_BUFFERS {
            pool.chains.push(chain);
        }
    });
}

/// What the kernel is to send: one run of bytes, or a `sendmsg`
/// descriptor with several.
#[derive(Debug, Clone, Copy)]
pub(super) enum SendBuf {
    /// `send(ptr, len)`.
    One(*const u8, u32),
    /// `sendmsg(msg)`.
    Many(*const libc::msghdr),
}

/// Outgoing bytes of one connection. See the module docs.
#[derive(Debug, Default)]
pub struct OutQueue {
    chain: Option<Box<Chain>>,
}

impl OutQueue {
    fn chain(&mut self) -> &mut Chain {
        self.chain.get_or_insert_with(take_chain)
    }

    /// Gives the chain (nothing in flight) and its buffers back to the pool.
    fn give_back(&mut self) {
        if let Some(chain) = self.chain.take() {
            give_chain(chain);
        }
    }

    /// The buffer new frames are appended to. Never one the kernel is
    /// reading.
    pub fn queue(&mut self) -> &mut Vec<u8> {
        let chain = self.chain();
        let writable = chain.segs.len() > chain.frozen() && matches!(chain.segs.back(), Some(Segment::Owned(_)));
        if !writable {
            chain.push(Segment::Owned(take_buffer()));
        }
        match chain.segs.back_mut() {
            Some(Segment::Owned(buf)) => buf,
            _ => unreachable!("the tail is an owned buffer"),
        }
    }

    /// Queues bytes that are shared (a frame published to many
    /// connections, or a received payload sent back): by reference from
    /// [`SHARE_MIN`] bytes up, copied into the cork buffer below. Returns
    /// whether they were queued by reference.
    pub fn push_shared(&mut self, bytes: &Bytes) -> bool {
        if bytes.len() >= SHARE_MIN {
            self.chain().push(Segment::Shared(bytes.clone()));
            true
        } else {
            self.queue().extend_from_slice(bytes);
            false
        }
    }

    /// Bytes waiting to be sent, in flight or queued.
    pub fn buffered(&self) -> usize {
        self.chain.as_ref().map_or(0, |c| c.held() - c.sent)
    }

    /// Bytes of memory the queue holds: every segment's whole length (a
    /// buffer's sent part is freed only when all of it is; a shared frame
    /// is counted in full, as this connection alone may be keeping it).
    pub fn held(&self) -> usize {
        self.chain.as_ref().map_or(0, |c| c.held())
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
        self.chain.as_ref().is_some_and(|c| c.flying > 0)
    }

    /// Nothing queued and nothing in flight.
    pub fn is_empty(&self) -> bool {
        self.buffered() == 0
    }

    /// Marks the next bytes to send as in flight and says where they are.
    /// Called only by `Ring::send`, which hands them to the kernel.
    pub(super) fn begin_send(&mut self) -> Option<SendBuf> {
        let chain = self.chain.as_mut()?;
        if chain.flying > 0 {
            return None;
        }
        // An empty tail buffer (taken, then nothing written) is not sent.
        while chain.segs.len() > 1 && chain.segs.back().is_some_and(|s| s.bytes().is_empty()) {
            give_segment(chain.pop_back()?);
        }
        let sendable = chain.sendable();
        if sendable == 0 {
            return None; // plaintext only, not sealed yet
        }
        let front = chain.segs.front()?.bytes();
        if sendable == 1 {
            let rest = &front[chain.sent..];
            if rest.is_empty() {
                return None;
            }
            chain.flying = 1;
            return Some(SendBuf::One(rest.as_ptr(), u32::try_from(rest.len()).unwrap_or(u32::MAX)));
        }
        let count = sendable.min(MAX_IOV);
        chain.iov.clear();
        for (i, segment) in chain.segs.iter().take(count).enumerate() {
            let bytes = if i == 0 { &segment.bytes()[chain.sent..] } else { segment.bytes() };
            chain.iov.push(libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() });
        }
        chain.msg.msg_iov = chain.iov.as_mut_ptr();
        chain.msg.msg_iovlen = chain.iov.len() as _;
        chain.flying = count;
        Some(SendBuf::Many(&chain.msg))
    }

    /// The kernel sent `n` bytes of what was in flight. Returns true when
    /// all of it is out (false: send the rest).
    pub fn complete_send(&mut self, mut n: usize) -> bool {
        let Some(chain) = self.chain.as_mut() else { return true };
        debug_assert!(chain.flying > 0);
        let flying = std::mem::take(&mut chain.flying);
        let mut done = 0;
        while done < flying {
            let Some(front) = chain.segs.front() else { break };
            let rest = front.bytes().len() - chain.sent;
            if n < rest {
                chain.sent += n;
                return false;
            }
            n -= rest;
            chain.sent = 0;
            give_segment(chain.pop_front().expect("the front segment"));
            done += 1;
        }
        if chain.segs.is_empty() {
            self.give_back();
        }
        true
    }

    /// The send failed: the connection is going away, nothing is in flight.
    pub fn abort_send(&mut self) {
        if let Some(chain) = self.chain.as_mut() {
            chain.flying = 0;
        }
    }

    /// Gives an idle queue's memory back to the pool (after a turn that
    /// wrote nothing, or when the connection goes idle).
    pub fn release(&mut self) {
        if self.chain.as_ref().is_some_and(|c| c.flying == 0 && c.held() == 0) {
            self.give_back();
        }
    }

    /// Plaintext bytes waiting for the transport to seal them.
    pub fn unsealed(&self) -> usize {
        self.chain.as_ref().map_or(0, |c| c.segs.range(c.sealed..).map(|s| s.bytes().len()).sum())
    }

    /// Sealed bytes wait in the queue or are in flight: a transport that
    /// moves its encryption elsewhere must wait until they are sent.
    pub fn has_sealed(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| c.sealed > 0)
    }

    /// Marks the plaintext queued since the last seal as wire bytes as it
    /// is (the kernel encrypts it: kernel TLS). Returns how many bytes
    /// that was.
    #[cfg_attr(not(feature = "ktls"), allow(dead_code))]
    pub fn seal_as_is(&mut self) -> usize {
        let Some(chain) = self.chain.as_mut() else { return 0 };
        // Called only with nothing in flight, like `seal_with`.
        chain.sealing = true;
        let bytes = chain.segs.range(chain.sealed..).map(|s| s.bytes().len()).sum();
        chain.sealed = chain.segs.len();
        bytes
    }

    /// Appends wire bytes of the transport's own (handshake records, an
    /// alert, close_notify) after what is already sealed and before any
    /// plaintext not yet sealed: `write` appends them to the buffer it is
    /// given. From the first call on, only sealed bytes are sent.
    pub fn push_wire<R>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let chain = self.chain();
        chain.sealing = true;
        let at = chain.sealed;
        let reuse = at > chain.flying && matches!(chain.segs.get(at - 1), Some(Segment::Owned(_)));
        if !reuse {
            chain.insert_sealed(Segment::Owned(take_buffer()));
        }
        let index = chain.sealed - 1;
        let is_tail = index + 1 == chain.segs.len();
        let Some(Segment::Owned(buf)) = chain.segs.get_mut(index) else { unreachable!("an owned sealed buffer") };
        let before = buf.len();
        let result = write(buf);
        let grown = buf.len() - before;
        if !is_tail {
            chain.closed += grown;
        }
        result
    }

    /// Seals every plaintext segment: `encrypt` appends the wire bytes of
    /// each run of plaintext to the buffer it is given, and they replace
    /// the plaintext as one sealed segment. Called only with nothing in
    /// flight. On an error the plaintext stays (the connection is being
    /// cut anyway).
    pub fn seal_with<E>(&mut self, mut encrypt: impl FnMut(&[u8], &mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let Some(chain) = self.chain.as_mut() else { return Ok(()) };
        chain.sealing = true;
        if chain.sealed >= chain.segs.len() {
            return Ok(());
        }
        debug_assert!(chain.flying <= chain.sealed, "only sealed segments are ever in flight");
        let mut wire = take_buffer();
        for segment in chain.segs.range(chain.sealed..) {
            let plain = segment.bytes();
            if !plain.is_empty() {
                if let Err(e) = encrypt(plain, &mut wire) {
                    give_buffer(wire);
                    return Err(e);
                }
            }
        }
        chain.truncate(chain.sealed);
        if wire.is_empty() {
            give_buffer(wire);
        } else {
            chain.insert_sealed(Segment::Owned(wire));
        }
        Ok(())
    }

    /// Drops the plaintext not yet sealed (the transport failed; what it
    /// sealed, such as an alert, still goes). Without sealing, nothing is
    /// sealed and this is [`Self::discard_unsent`].
    pub fn discard_unsealed(&mut self) {
        let Some(chain) = self.chain.as_mut() else { return };
        chain.truncate(chain.frozen());
        if chain.segs.is_empty() {
            self.give_back();
        }
    }

    /// Drops everything not in the kernel's hands.
    pub fn discard_unsent(&mut self) {
        let Some(chain) = self.chain.as_mut() else { return };
        chain.truncate(chain.flying);
        if chain.flying == 0 {
            self.give_back();
        }
    }
}

impl Drop for OutQueue {
    fn drop(&mut self) {
        // Segments still in flight belong to the kernel until the ring is
        // torn down; they are freed, not pooled (`Io` has cancelled
        // everything by the time connections are dropped).
        if let Some(chain) = self.chain.take() {
            if chain.flying == 0 {
                give_chain(chain);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a send would hand the kernel, as bytes.
    fn pending(q: &mut OutQueue) -> Option<Vec<u8>> {
        let runs: Vec<(*const u8, usize)> = match q.begin_send()? {
            SendBuf::One(ptr, len) => vec![(ptr, len as usize)],
            SendBuf::Many(msg) => {
                // SAFETY: the descriptor lives in the queue's boxed chain,
                // untouched until `complete_send`.
                let msg = unsafe { &*msg };
                (0..msg.msg_iovlen)
                    .map(|i| {
                        // SAFETY: `msg_iov` points to `msg_iovlen` iovecs in the
                        // same chain.
                        let v = unsafe { &*msg.msg_iov.add(i) };
                        (v.iov_base as *const u8, v.iov_len)
                    })
                    .collect()
            }
        };
        let mut bytes = Vec::new();
        for (ptr, len) in runs {
            // SAFETY: every run lies in a segment the queue keeps frozen
            // until `complete_send`.
            bytes.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, len) });
        }
        Some(bytes)
    }

    #[test]
    fn queues_behind_a_send_in_flight_and_resumes_partial_sends() {
        let mut q = OutQueue::default();
        assert!(q.begin_send().is_none());
        q.queue().extend_from_slice(b"hello");
        let Some(SendBuf::One(ptr, len)) = q.begin_send() else { panic!("one buffer, one send") };
        assert_eq!(len, 5);
        // While in flight, new frames go to another buffer.
        q.queue().extend_from_slice(b"world");
        assert_ne!(q.queue().as_ptr(), ptr);
        assert!(q.begin_send().is_none(), "one send in flight at a time");
        assert_eq!(q.buffered(), 10);
        assert!(!q.complete_send(2));
        assert_eq!(pending(&mut q).unwrap(), b"lloworld", "the rest of a partial send, then the next buffer");
        assert!(q.complete_send(8));
        assert!(q.is_empty());
        assert!(q.chain.is_none(), "an idle queue holds nothing");
    }

    #[test]
    fn the_next_frame_reuses_the_buffer_the_kernel_just_sent() {
        let mut a = OutQueue::default();
        a.queue().extend_from_slice(&[1; 1000]);
        let Some(SendBuf::One(sent_from, _)) = a.begin_send() else { panic!() };
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
    fn large_shared_frames_go_by_reference_in_order_with_corked_ones() {
        let big = Bytes::from(vec![7u8; SHARE_MIN]);
        let small = Bytes::from_static(b"small");
        let mut q = OutQueue::default();
        q.queue().extend_from_slice(b"head");
        q.push_shared(&big);
        q.push_shared(&small);
        q.queue().extend_from_slice(b"tail");
        assert_eq!(q.held(), 4 + SHARE_MIN + 5 + 4);
        let chain = q.chain.as_ref().unwrap();
        assert_eq!(chain.segs.len(), 3, "head | shared frame | small + tail corked together");
        assert!(matches!(&chain.segs[1], Segment::Shared(b) if b.as_ptr() == big.as_ptr()), "not copied");
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&big);
        expected.extend_from_slice(b"smalltail");
        assert_eq!(pending(&mut q).unwrap(), expected);
        // Frozen while in flight: new frames start a segment after it.
        q.queue().extend_from_slice(b"later");
        assert_eq!(q.chain.as_ref().unwrap().segs.len(), 4);
        // The kernel took the head and half the shared frame.
        assert!(!q.complete_send(4 + SHARE_MIN / 2));
        assert_eq!(q.buffered(), SHARE_MIN / 2 + 9 + 5);
        assert_eq!(q.held(), SHARE_MIN + 9 + 5, "the shared frame is held whole until sent");
        let mut rest = vec![7u8; SHARE_MIN / 2];
        rest.extend_from_slice(b"smalltaillater");
        assert_eq!(pending(&mut q).unwrap(), rest);
        assert!(q.complete_send(rest.len()));
        assert!(q.is_empty());
        assert_eq!(Bytes::clone(&big).len(), SHARE_MIN);
    }

    #[test]
    fn a_send_covers_at_most_max_iov_segments() {
        let frames: Vec<Bytes> = (0..MAX_IOV + 10).map(|i| Bytes::from(vec![i as u8; SHARE_MIN])).collect();
        let mut q = OutQueue::default();
        for f in &frames {
            q.push_shared(f);
        }
        assert_eq!(pending(&mut q).unwrap().len(), MAX_IOV * SHARE_MIN);
        assert!(q.complete_send(MAX_IOV * SHARE_MIN));
        assert_eq!(q.buffered(), 10 * SHARE_MIN);
        assert_eq!(pending(&mut q).unwrap()[0], MAX_IOV as u8, "in order");
    }

    #[test]
    fn discarding_keeps_only_what_the_kernel_holds() {
        let big = Bytes::from(vec![1u8; SHARE_MIN]);
        let mut q = OutQueue::default();
        q.push_shared(&big);
        q.begin_send().unwrap();
        q.queue().extend_from_slice(b"never sent");
        q.push_shared(&big);
        q.discard_unsent();
        assert_eq!(q.held(), SHARE_MIN, "the frame in flight stays until its completion");
        assert!(q.in_flight());
        q.abort_send();
        q.discard_unsent();
        assert!(q.chain.is_none());
    }

    /// A stand-in cipher for the sealing tests: brackets each run.
    fn bracket(plain: &[u8], wire: &mut Vec<u8>) -> Result<(), ()> {
        wire.push(b'[');
        wire.extend_from_slice(plain);
        wire.push(b']');
        Ok(())
    }

    #[test]
    fn a_sealing_transport_sends_only_what_it_sealed_in_order() {
        let big = Bytes::from(vec![b'B'; SHARE_MIN]);
        let mut q = OutQueue::default();
        // Handshake bytes of the transport's own go out as they are.
        q.push_wire(|w| w.extend_from_slice(b"hello"));
        q.queue().extend_from_slice(b"early");
        assert_eq!(q.unsealed(), 5);
        assert_eq!(pending(&mut q).unwrap(), b"hello", "plaintext waits for its seal");
        // More wire bytes while that send is in flight go after it, and
        // still before the plaintext.
        q.push_wire(|w| w.extend_from_slice(b"ticket"));
        q.queue().extend_from_slice(b"+more");
        q.push_shared(&big);
        assert_eq!(q.held(), 5 + 6 + 10 + SHARE_MIN);
        assert!(q.complete_send(5));
        q.seal_with(bracket).unwrap();
        assert_eq!(q.unsealed(), 0);
        let mut expected = b"ticket[early+more][".to_vec();
        expected.extend_from_slice(&big);
        expected.push(b']');
        assert_eq!(q.held(), expected.len());
        assert_eq!(pending(&mut q).unwrap(), expected);
        // Frames queued while the sealed bytes fly wait for the next seal.
        q.queue().extend_from_slice(b"next");
        assert!(q.complete_send(expected.len()));
        assert_eq!(q.buffered(), 4);
        assert!(pending(&mut q).is_none());
        q.seal_with(bracket).unwrap();
        assert_eq!(pending(&mut q).unwrap(), b"[next]");
        assert!(q.complete_send(6));
        assert!(q.chain.is_none(), "an idle queue holds nothing");
        // A chain back from the pool sends everything again.
        let mut plain = OutQueue::default();
        plain.queue().extend_from_slice(b"plain");
        assert_eq!(pending(&mut plain).unwrap(), b"plain");
    }

    #[test]
    fn wire_bytes_between_sealed_and_plaintext_are_counted() {
        let mut q = OutQueue::default();
        q.push_wire(|w| w.extend_from_slice(b"ab"));
        q.queue().extend_from_slice(b"plain");
        // Appended to the sealed buffer, which is no longer the tail.
        q.push_wire(|w| w.extend_from_slice(b"cd"));
        assert_eq!(q.held(), 9);
        assert_eq!(q.chain.as_ref().unwrap().segs.len(), 2);
        let failed: Result<(), &str> = q.seal_with(|_, _| Err("cipher failed"));
        assert_eq!(failed, Err("cipher failed"));
        assert_eq!(q.unsealed(), 5, "the plaintext stays");
        assert_eq!(pending(&mut q).unwrap(), b"abcd");
    }

    #[test]
    fn plaintext_sealed_as_it_is_goes_after_the_wire_bytes_once_they_are_sent() {
        // The kernel TLS hand-over: the records the user-space session
        // sealed leave first; then the queue's plaintext is the wire.
        let big = Bytes::from(vec![b'B'; SHARE_MIN]);
        let mut q = OutQueue::default();
        q.push_wire(|w| w.extend_from_slice(b"ticket"));
        q.queue().extend_from_slice(b"plain");
        assert!(q.has_sealed());
        assert_eq!(pending(&mut q).unwrap(), b"ticket");
        assert!(q.complete_send(6));
        assert!(!q.has_sealed(), "the sealed bytes are out");
        q.push_shared(&big);
        assert_eq!(q.seal_as_is(), 5 + SHARE_MIN);
        let mut expected = b"plain".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(pending(&mut q).unwrap(), expected, "unchanged, the shared frame included");
        q.queue().extend_from_slice(b"later");
        assert!(q.complete_send(expected.len()));
        assert_eq!(q.seal_as_is(), 5, "only what came since the last seal");
        assert_eq!(pending(&mut q).unwrap(), b"later");
        assert!(q.complete_send(5));
        assert!(q.chain.is_none());
        // A queue that never sealed counts everything it holds.
        let mut fresh = OutQueue::default();
        fresh.queue().extend_from_slice(b"abc");
        assert_eq!(fresh.seal_as_is(), 3);
        assert_eq!(pending(&mut fresh).unwrap(), b"abc");
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
        let pooled = POOL.with(|p| p.borrow().bytes);
        assert!(pooled <= POOL_MAX_BYTES, "{pooled} bytes pooled");
        assert!(pooled >= POOL_MAX_BYTES / 2, "the pool still keeps warm buffers: {pooled}");
    }
}
