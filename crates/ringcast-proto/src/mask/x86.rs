//! x86_64 SIMD masking kernels. Each kernel masks the unaligned head and the
//! tail with 64-bit words and the aligned body with vector XORs, rotating the
//! key by the head length so the body and tail keep the payload's phase.

#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm256_set1_epi32, _mm256_xor_si256, _mm512_set1_epi32, _mm512_xor_si512,
    _mm_set1_epi32, _mm_xor_si128,
};

use super::{mask_words, rotate_key};

/// Splits `buf` at its vector alignment and masks the pieces. `body_xor`
/// gets the body as vectors and the key rotated to the body's phase.
#[inline(always)]
fn split_and_mask<V>(buf: &mut [u8], key: [u8; 4], body_xor: impl FnOnce(&mut [V], [u8; 4])) {
    // SAFETY: `V` is one of the x86 integer vector types, which are plain
    // data valid for every bit pattern, so viewing aligned bytes as vectors
    // (and writing vectors back) cannot create an invalid value.
    let (head, body, tail) = unsafe { buf.align_to_mut::<V>() };
    mask_words(head, key);
    let key = rotate_key(key, head.len());
    body_xor(body, key);
    // The body is a whole number of 16/32/64-byte vectors: the phase holds.
    mask_words(tail, key);
}

/// 16 bytes at a time. SSE2 is part of the x86_64 baseline.
pub(super) fn mask_sse2(buf: &mut [u8], key: [u8; 4]) {
    split_and_mask::<__m128i>(buf, key, |body, key| {
        // SAFETY: SSE2 is always present on x86_64.
        let k = unsafe { _mm_set1_epi32(i32::from_ne_bytes(key)) };
        for v in body {
            // SAFETY: as above.
            *v = unsafe { _mm_xor_si128(*v, k) };
        }
    });
}

/// 32 bytes at a time. Call only where AVX2 was detected.
pub(super) fn mask_avx2(buf: &mut [u8], key: [u8; 4]) {
    debug_assert!(std::arch::is_x86_feature_detected!("avx2"));
    // SAFETY: `Kernel::is_available` checked AVX2 before this kernel could be
    // chosen.
    unsafe { mask_avx2_inner(buf, key) }
}

#[target_feature(enable = "avx2")]
fn mask_avx2_inner(buf: &mut [u8], key: [u8; 4]) {
    split_and_mask::<__m256i>(buf, key, |body, key| {
        let k = _mm256_set1_epi32(i32::from_ne_bytes(key));
        for v in body {
            *v = _mm256_xor_si256(*v, k);
        }
    });
}

/// 64 bytes at a time. Call only where AVX-512F was detected.
pub(super) fn mask_avx512(buf: &mut [u8], key: [u8; 4]) {
    debug_assert!(std::arch::is_x86_feature_detected!("avx512f"));
    // SAFETY: `Kernel::is_available` checked AVX-512F before this kernel
    // could be chosen.
    unsafe { mask_avx512_inner(buf, key) }
}

#[target_feature(enable = "avx512f")]
fn mask_avx512_inner(buf: &mut [u8], key: [u8; 4]) {
    split_and_mask::<__m512i>(buf, key, |body, key| {
        let k = _mm512_set1_epi32(i32::from_ne_bytes(key));
        for v in body {
            *v = _mm512_xor_si512(*v, k);
        }
    });
}
