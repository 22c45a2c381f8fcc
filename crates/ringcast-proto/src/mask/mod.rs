//! Masking and unmasking of payloads (RFC 6455 §5.3), the hottest loop of a
//! server: every byte a client sends passes through it.
//!
//! The kernel is picked once, at run time, from what the CPU offers
//! (AVX-512, AVX2, SSE2, then 64-bit words), because a default build may only
//! assume SSE2 and the wide kernels are 1.3–1.7× faster on the CPUs our users
//! run. Every kernel takes the key already rotated to the payload offset of
//! the first byte, so a payload that arrives in pieces is unmasked piece by
//! piece with the same result.

use std::sync::atomic::{AtomicU8, Ordering};

mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use scalar::{mask_scalar, mask_words, rotate_key};

/// Below this length the dispatch costs more than the wide kernels save
/// (measured at 64 B: words 25.7 GiB/s, dispatched AVX-512 16.5 GiB/s).
const SMALL: usize = 128;

/// A masking implementation. Exposed so benchmarks and tests can compare
/// them; normal code calls [`apply_mask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kernel {
    /// One byte at a time: the reference the others are checked against.
    Scalar,
    /// Eight bytes at a time in a general-purpose register.
    Words,
    /// 16 bytes at a time (x86_64 baseline).
    Sse2,
    /// 32 bytes at a time.
    Avx2,
    /// 64 bytes at a time.
    Avx512,
}

impl Kernel {
    /// Every kernel, narrowest first.
    pub const ALL: [Kernel; 5] = [Kernel::Scalar, Kernel::Words, Kernel::Sse2, Kernel::Avx2, Kernel::Avx512];

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Scalar | Kernel::Words => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The widest kernel this CPU can run (what [`apply_mask`] uses).
    pub fn best() -> Kernel {
        static CHOSEN: AtomicU8 = AtomicU8::new(u8::MAX);
        let cached = CHOSEN.load(Ordering::Relaxed);
        if let Some(k) = Kernel::ALL.get(usize::from(cached)) {
            return *k;
        }
        let (index, best) = Kernel::ALL
            .iter()
            .enumerate()
            .rev()
            .find(|(_, k)| k.is_available())
            .map(|(i, k)| (i, *k))
            .unwrap_or((1, Kernel::Words));
        CHOSEN.store(index as u8, Ordering::Relaxed);
        best
    }
}

/// XORs `buf` with `key`, where `buf[0]` is the payload byte at `offset`.
/// Masking and unmasking are the same operation.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    if buf.len() < SMALL {
        mask_words(buf, key);
    } else {
        run(Kernel::best(), buf, key);
    }
}

/// [`apply_mask`] with a chosen kernel. Falls back to [`Kernel::Words`] when
/// the CPU cannot run `kernel`.
pub fn apply_mask_with(kernel: Kernel, buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let kernel = if kernel.is_available() { kernel } else { Kernel::Words };
    run(kernel, buf, key);
}

#[inline]
fn run(kernel: Kernel, buf: &mut [u8], key: [u8; 4]) {
    match kernel {
        Kernel::Scalar => mask_scalar(buf, key),
        #[cfg(target_arch = "x86_64")]
        Kernel::Sse2 => x86::mask_sse2(buf, key),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => x86::mask_avx2(buf, key),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => x86::mask_avx512(buf, key),
        _ => mask_words(buf, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn every_kernel_matches_scalar_at_every_alignment_and_phase() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let backing = pattern(600);
        for kernel in Kernel::ALL {
            for start in 0..70 {
                for len in [0, 1, 3, 7, 8, 15, 63, 64, 65, 127, 200, 511] {
                    if start + len > backing.len() {
                        continue;
                    }
                    for offset in 0..4 {
                        let mut expected = backing.clone();
                        mask_scalar(&mut expected[start..start + len], rotate_key(key, offset));
                        let mut got = backing.clone();
                        apply_mask_with(kernel, &mut got[start..start + len], key, offset);
                        assert_eq!(got, expected, "{kernel:?} start {start} len {len} offset {offset}");
                    }
                }
            }
        }
    }

    #[test]
    fn rfc_example_hello() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut data = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&data, b"Hello");
    }

    #[test]
    fn pieces_equal_whole() {
        let key = [1, 2, 3, 250];
        let mut whole = pattern(1000);
        let mut pieces = whole.clone();
        apply_mask(&mut whole, key, 0);
        let (a, rest) = pieces.split_at_mut(333);
        let (b, c) = rest.split_at_mut(101);
        apply_mask(a, key, 0);
        apply_mask(b, key, 333);
        apply_mask(c, key, 434);
        assert_eq!(whole, pieces);
    }

    #[test]
    fn best_is_available_and_stable() {
        let k = Kernel::best();
        assert!(k.is_available());
        assert_eq!(Kernel::best(), k);
    }
}
