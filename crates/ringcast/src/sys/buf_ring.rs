//! The provided buffer ring: one pool of receive buffers per shard, shared
//! by all its connections.
//!
//! The kernel picks a free buffer only when data arrives, so an idle
//! connection holds no receive memory at all; the runtime hands each buffer
//! back as soon as its bytes are consumed (within the same loop turn).
#![allow(unsafe_code)]

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::Ring;

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
    /// Buffer ids currently lent to the runtime (for debug checks).
    #[cfg(debug_assertions)]
    lent: Vec<bool>,
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
            #[cfg(debug_assertions)]
            lent: vec![true; usize::from(count)],
        };
        for id in 0..count {
            pool.recycle(id);
        }
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
        {
            debug_assert!(!self.lent[usize::from(id)], "buffer {id} lent twice");
            self.lent[usize::from(id)] = true;
        }
        // SAFETY: in range (checked above). The kernel put this buffer in a
        // completion, so it no longer writes to it, and it is not in the ring
        // until `recycle(id)`; the `&mut self` borrow keeps any other view of
        // the pool from existing meanwhile.
        unsafe {
            let start = self.buffers.ptr.as_ptr().add(usize::from(id) * self.size as usize);
            std::slice::from_raw_parts_mut(start, len)
        }
    }

    /// Gives buffer `id` back to the kernel (visible after [`publish`]).
    ///
    /// [`publish`]: BufRing::publish
    pub fn recycle(&mut self, id: u16) {
        assert!(id < self.count);
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.lent[usize::from(id)], "buffer {id} recycled twice");
            self.lent[usize::from(id)] = false;
        }
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot < count`, so the descriptor lies inside `entries`;
        // the kernel reads only descriptors between its head and the
        // published tail, and this one is past the published tail.
        let entry = unsafe { &mut *self.entries.ptr.as_ptr().cast::<BufRingEntry>().add(slot) };
        let addr = self.buffers.ptr.as_ptr() as u64 + u64::from(id) * u64::from(self.size);
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every recycled buffer visible to the kernel.
    pub fn publish(&mut self) {
        let base = self.entries.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: `base` is the first descriptor of a registered ring, whose
        // `resv` field of entry 0 is the shared tail; it is a naturally
        // aligned u16 that the kernel only reads, so an atomic release store
        // publishes the descriptors written before it.
        let tail = unsafe { &*BufRingEntry::tail(base).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// Keeps the mappings alive forever: used when the kernel could not be
    /// shown to have let go of them.
    pub fn leak(&mut self) {
        self.entries.len = 0;
        self.buffers.len = 0;
    }
}
