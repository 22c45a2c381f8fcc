//! x86_64 SIMD masking kernels.
//!
//! A long buffer is split at its vector alignment: the unaligned head and the
//! tail go through 64-bit words, the aligned body through vector XORs, with
//! the key rotated by the head length so the body and tail keep the payload's
//! phase. A short buffer (under 16 vectors) would spend most of its time in
//! that scalar head, so it is masked with unaligned vector loads instead.

#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm256_set1_epi32, _mm256_xor_si256, _mm512_set1_epi32, _mm512_xor_si512,
    _mm_set1_epi32, _mm_xor_si128,
};

use super::scalar::{mask_words, rotate_key};

/// Below this many vectors, unaligned loads beat splitting at the alignment:
/// the split's scalar head and tail cost more than the occasional load that
/// crosses a cache line (measured: 512 B unaligned, 94 vs 31 GiB/s with
/// AVX-512; 4 KiB unaligned, 90 vs 122 GiB/s the other way).
const UNALIGNED_UP_TO_VECTORS: usize = 16;

/// The x86 integer vector types: plain data, valid for every bit pattern.
/// Sealed (private to this module), so `mask_vectors` cannot be instantiated
/// with a type for which its byte reinterpretation would be unsound.
trait Vector: Copy {}
impl Vector for __m128i {}
impl Vector for __m256i {}
impl Vector for __m512i {}

/// Masks `buf` with vectors of type `V`: `splat` builds a vector of the key
/// (already rotated to the first byte it applies to), `xor` combines two.
#[inline(always)]
fn mask_vectors<V: Vector>(buf: &mut [u8], key: [u8; 4], splat: impl Fn([u8; 4]) -> V, xor: impl Fn(V, V) -> V) {
    let width = std::mem::size_of::<V>();
    if buf.len() < UNALIGNED_UP_TO_VECTORS * width {
        let k = splat(key);
        let mut chunks = buf.chunks_exact_mut(width);
        for chunk in &mut chunks {
            let p = chunk.as_mut_ptr().cast::<V>();
            // SAFETY: `chunk` is exactly `size_of::<V>()` writable bytes, and
            // the unaligned read and write of a plain-data vector type are
            // valid for any bit pattern and any address.
            unsafe { p.write_unaligned(xor(p.read_unaligned(), k)) };
        }
        // Whole vectors are a multiple of 4 bytes: the phase holds.
        mask_words(chunks.into_remainder(), key);
        return;
    }
    // SAFETY: `V` is one of the x86 integer vector types, which are plain
    // data valid for every bit pattern, so viewing aligned bytes as vectors
    // (and writing vectors back) cannot create an invalid value.
    let (head, body, tail) = unsafe { buf.align_to_mut::<V>() };
    mask_words(head, key);
    let key = rotate_key(key, head.len());
    let k = splat(key);
    for v in body.iter_mut() {
        *v = xor(*v, k);
    }
    // The body is a whole number of 16/32/64-byte vectors: the phase holds.
    mask_words(tail, key);
}

/// 16 bytes at a time. SSE2 is part of the x86_64 baseline.
pub(super) fn mask_sse2(buf: &mut [u8], key: [u8; 4]) {
    mask_vectors::<__m128i>(
        buf,
        key,
        // SAFETY: SSE2 is part of the x86_64 baseline.
        |k| unsafe { _mm_set1_epi32(i32::from_ne_bytes(k)) },
        // SAFETY: as above.
        |a, b| unsafe { _mm_xor_si128(a, b) },
    );
}

/// 32 bytes at a time; 64-bit words where the CPU lacks AVX2.
pub(super) fn mask_avx2(buf: &mut [u8], key: [u8; 4]) {
    // The standard library caches detection: this is one load and a branch.
    if !std::arch::is_x86_feature_detected!("avx2") {
        return mask_words(buf, key);
    }
    // SAFETY: AVX2 was detected on this CPU just above.
    unsafe { mask_avx2_inner(buf, key) }
}

#[target_feature(enable = "avx2")]
fn mask_avx2_inner(buf: &mut [u8], key: [u8; 4]) {
    mask_vectors::<__m256i>(buf, key, |k| _mm256_set1_epi32(i32::from_ne_bytes(k)), |a, b| _mm256_xor_si256(a, b));
}

/// 64 bytes at a time; 64-bit words where the CPU lacks AVX-512F.
pub(super) fn mask_avx512(buf: &mut [u8], key: [u8; 4]) {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return mask_words(buf, key);
    }
    // SAFETY: AVX-512F was detected on this CPU just above.
    unsafe { mask_avx512_inner(buf, key) }
}

#[target_feature(enable = "avx512f")]
fn mask_avx512_inner(buf: &mut [u8], key: [u8; 4]) {
    mask_vectors::<__m512i>(buf, key, |k| _mm512_set1_epi32(i32::from_ne_bytes(k)), |a, b| _mm512_xor_si512(a, b));
}
