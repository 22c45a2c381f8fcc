//! The provided buffer ring: one pool of receive buffers per shard, shared
//! by all its connections.
//!
//! The kernel picks a free buffer only when data arrives, so an idle
//! connection holds no receive memory at all; the runtime hands each buffer
//! back as soon as its bytes are consumed (within the same loop turn).
//!
//! The kernel takes buffers from the ring in order, so a ring holding the
//! whole pool would cycle through every buffer and make all of them
//! resident, however light the load (128 × 128 KiB: 16 MiB per shard
//! after a few large messages). Only a *window* of the pool is in the ring; the
//! rest wait on a stack, and a returned buffer goes on top, so the same
//! warm buffers circulate. The window doubles when the ring runs dry or a
//! turn nearly empties it, and halves after a long stretch of turns that
//! used less than a quarter of it: resident receive memory follows the load.
#![allow(unsafe_code)]

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::Ring;

/// Buffers the ring holds at least (when the pool has that many).
const MIN_WINDOW: u16 = 8;
/// Turns over which the window's use is judged before it shrinks.
const STRETCH: u16 = 4096;

/// How many buffers the ring holds: see the module docs.
#[derive(Debug)]
struct Window {
    size: u16,
    /// The pool's size: the window never exceeds it.
    max: u16,
    /// The most buffers one turn took over the current stretch.
    peak: u16,
    turns: u16,
}

impl Window {
    fn new(max: u16) -> Window {
        Window { size: MIN_WINDOW.min(max), max, peak: 0, turns: 0 }
    }

    fn grow(&mut self) {
        self.size = self.size.saturating_mul(2).min(self.max);
    }

    /// A turn took `taken` buffers: grow when that was ≥ 3/4 of the
    /// window, shrink when a stretch of [`STRETCH`] turns never took a
    /// quarter (so the halved window is still under 3/4 used: no flapping).
    fn turn(&mut self, taken: u16) {
        if taken >= self.size - self.size / 4 {
            self.grow();
        }
        self.peak = self.peak.max(taken);
        self.turns += 1;
        if self.turns == STRETCH {
            if self.peak < self.size / 4 && self.size > MIN_WINDOW {
                self.size /= 2;
            }
            self.peak = 0;
            self.turns = 0;
        }
    }
}

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous private mapping of a non-zero length at an
        // address of the kernel's choosing touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: NonNull::new(ptr.cast()).expect("mmap returned null"), len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len == 0 {
            return; // leaked on purpose
        }
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing refers
        // to the mapping any more (see `BufRing`'s drop rules).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A registered ring of `count` receive buffers of `size` bytes each.
pub struct BufRing {
    /// The ring of buffer descriptors the kernel reads (page aligned).
    entries: Mapping,
    /// The buffers, `count * size` bytes.
    buffers: Mapping,
    count: u16,
    size: u32,
    group: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    /// Buffers back from the kernel and not in the ring, the warmest last.
    spare: Vec<u16>,
    /// Buffers in the ring (published, not yet seen in a completion).
    in_ring: u16,
    /// How many buffers the ring is filled up to.
    window: Window,
    /// Buffers returned since the last publish (= taken by the kernel in
    /// this turn).
    returned: u16,
    /// Buffers the kernel holds (in the ring, or filled and not yet seen in
    /// a completion's `recycle`), for debug checks.
    #[cfg(debug_assertions)]
    in_kernel: Vec<bool>,
}

impl BufRing {
    /// Maps, registers and fills a ring of `count` buffers (a power of two,
    /// at most 32768) of `size` bytes as buffer group `group` of `ring`.
    pub fn new(ring: &Ring, count: u16, size: u32, group: u16) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 1 << 15 || size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "buffer count must be a power of two ≤ 32768"));
        }
        let entries = Mapping::new(usize::from(count) * size_of::<BufRingEntry>())?;
        let buffers = Mapping::new(usize::from(count) * size as usize)?;
        // SAFETY: `entries` is a page-aligned mapping large enough for
        // `count` descriptors; it outlives the registration because `Io`
        // drops the ring (and with it the registration) first... and even if
        // the kernel still held it, `Io` cancels all operations before any
        // mapping is unmapped.
        unsafe { ring.submitter().register_buf_ring_with_flags(entries.ptr.as_ptr() as u64, count, group, 0)? };
        let mut pool = BufRing {
            entries,
            buffers,
            count,
            size,
            group,
            tail: 0,
            // Buffer 0 on top: the lowest addresses are used first.
            spare: (0..count).rev().collect(),
            in_ring: 0,
            window: Window::new(count),
            returned: 0,
            #[cfg(debug_assertions)]
            in_kernel: vec![false; usize::from(count)],
        };
        pool.publish();
        Ok(pool)
    }

    /// The buffer group id to pass to receive operations.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// The first `len` bytes of buffer `id`, which the kernel just filled
    /// and handed to us in a completion.
    pub fn filled(&mut self, id: u16, len: usize) -> &mut [u8] {
        assert!(id < self.count && len <= self.size as usize, "buffer {id} / {len} bytes out of range");
        #[cfg(debug_assertions)]
        debug_assert!(self.in_kernel[usize::from(id)], "buffer {id} was not the kernel's to fill");
        // SAFETY: in range (checked above). The kernel put this buffer in a
        // completion, so it no longer writes to it, and it is not in the ring
        // until `recycle(id)`; the `&mut self` borrow keeps any other view of
        // the pool from existing meanwhile.
        unsafe {
            let start = self.buffers.ptr.as_ptr().add(usize::from(id) * self.size as usize);
            std::slice::from_raw_parts_mut(start, len)
        }
    }

    /// Takes back buffer `id`, which the kernel handed over in a
    /// completion (whether or not its bytes were looked at); it returns to
    /// the ring at the next [`publish`] if the window has room.
    ///
    /// [`publish`]: BufRing::publish
    pub fn recycle(&mut self, id: u16) {
        assert!(id < self.count);
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.in_kernel[usize::from(id)], "buffer {id} recycled twice");
            self.in_kernel[usize::from(id)] = false;
        }
        self.in_ring = self.in_ring.saturating_sub(1);
        self.returned = self.returned.saturating_add(1);
        self.spare.push(id);
    }

    /// The ring ran dry (a receive ended with `ENOBUFS`): widen the window.
    pub fn starved(&mut self) {
        self.window.grow();
    }

    /// Refills the ring up to the window from the top of the spare stack
    /// and makes the new descriptors visible to the kernel. Called once per
    /// loop turn, after every completion was handled.
    pub fn publish(&mut self) {
        self.window.turn(std::mem::take(&mut self.returned));
        while self.in_ring < self.window.size {
            let Some(id) = self.spare.pop() else { break };
            self.push_descriptor(id);
            self.in_ring += 1;
        }
        let base = self.entries.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: `base` is the first descriptor of a registered ring, whose
        // `resv` field of entry 0 is the shared tail; it is a naturally
        // aligned u16 that the kernel only reads, so an atomic release store
        // publishes the descriptors written before it.
        let tail = unsafe { &*BufRingEntry::tail(base).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    fn push_descriptor(&mut self, id: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot < count`, so the descriptor lies inside `entries`;
        // the kernel reads only descriptors between its head and the
        // published tail, and this one is past the published tail (at most
        // `count` buffers are ever in the ring).
        let entry = unsafe { &mut *self.entries.ptr.as_ptr().cast::<BufRingEntry>().add(slot) };
        let addr = self.buffers.ptr.as_ptr() as u64 + u64::from(id) * u64::from(self.size);
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
        #[cfg(debug_assertions)]
        {
            self.in_kernel[usize::from(id)] = true;
        }
    }

    /// Keeps the mappings alive forever: used when the kernel could not be
    /// shown to have let go of them.
    pub fn leak(&mut self) {
        self.entries.len = 0;
        self.buffers.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_grows_with_use_and_starvation_and_shrinks_after_a_quiet_stretch() {
        let mut w = Window::new(512);
        assert_eq!(w.size, MIN_WINDOW);
        w.turn(2);
        assert_eq!(w.size, 8, "a light turn changes nothing");
        w.turn(6);
        assert_eq!(w.size, 16, "a turn that took 3/4 of the window doubles it");
        w.grow();
        w.grow();
        w.grow();
        w.grow();
        w.grow();
        assert_eq!(w.size, 512, "never past the pool");
        for _ in 0..STRETCH {
            w.turn(100);
        }
        assert_eq!(w.size, 256, "a stretch that never took a quarter halves it");
        for _ in 0..3 * STRETCH {
            w.turn(100);
        }
        assert_eq!(w.size, 256, "and the halved window is not too small for that load");
        for _ in 0..10 * u32::from(STRETCH) {
            w.turn(0);
        }
        assert_eq!(w.size, MIN_WINDOW, "never below the minimum");
        assert_eq!(Window::new(4).size, 4, "a small pool is all in the ring");
    }
}
