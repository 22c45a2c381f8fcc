//! Which deflate to use for permessage-deflate (RFC 7692), measured on
//! what a hub carries: a JSON feed and English-like prose, 64 B to 64 KiB
//! per message, each message compressed on its own (no context takeover,
//! what lets a hub compress a publish once for every subscriber).
//!
//! - `flate2`, zlib-rs backend: raw deflate, reset per message, sync flush
//!   and the `00 00 ff ff` tail stripped, as RFC 7692 frames it.
//! - `libdeflater` (libdeflate): whole-buffer raw deflate; a final block,
//!   which RFC 7692 §7.2.3.3 allows.
//!
//! Compression at levels 1 and 6, and decompression of each library's own
//! output. The compressed size of each input is printed once.
//!
//! Group `codec`: ringcast's own compression of a publish
//! (`PerMessageDeflate::compress_alone`, zlib-rs called directly) at
//! memory levels 8 and 1, beside flate2 at the same level.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use libdeflater::{CompressionLvl, Compressor, Decompressor};
use ringcast_benches::{json_feed, prose};
use ringcast_proto::deflate::{PerMessageDeflate, Tuning};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 6] = [64, 256, 1024, 4096, 16384, 65536];
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// flate2: one message, as permessage-deflate sends it.
fn flate2_compress(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    c.reset();
    out.clear();
    out.reserve(input.len() + 64);
    loop {
        let before = c.total_in() as usize;
        c.compress_vec(&input[before..], out, FlushCompress::Sync).expect("deflate");
        if c.total_in() as usize == input.len() && out.ends_with(&TAIL) {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    out.truncate(out.len() - 4);
}

fn flate2_decompress(d: &mut Decompress, input: &[u8], out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    d.reset(false);
    out.clear();
    scratch.clear();
    scratch.extend_from_slice(input);
    scratch.extend_from_slice(&TAIL);
    loop {
        let before = d.total_in() as usize;
        out.reserve(scratch.len() * 4);
        d.decompress_vec(&scratch[before..], out, FlushDecompress::Sync).expect("inflate");
        if d.total_in() as usize == scratch.len() {
            break;
        }
    }
}

fn deflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for (corpus, make) in [("json", json_feed as fn(usize) -> Vec<u8>), ("prose", prose)] {
        for size in SIZES {
            let input = make(size);
            group.throughput(Throughput::Bytes(size as u64));
            // zlib-rs's middle levels: level 1 is its "quick" strategy,
            // fast with a poor ratio.
            for level in [2u32, 3, 4] {
                let mut zc = Compress::new(Compression::new(level), false);
                let mut out = Vec::new();
                flate2_compress(&mut zc, &input, &mut out);
                eprintln!(
                    "size {corpus} {size} level {level}: flate2 {} B ({:.2})",
                    out.len(),
                    out.len() as f64 / size as f64
                );
                group.bench_function(BenchmarkId::new(format!("flate2_zlib-rs_l{level}/{corpus}"), size), |b| {
                    b.iter(|| flate2_compress(&mut zc, black_box(&input), &mut out))
                });
            }
            for level in [1u32, 6] {
                let mut zc = Compress::new(Compression::new(level), false);
                let mut out = Vec::new();
                flate2_compress(&mut zc, &input, &mut out);
                let flate2_len = out.len();
                group.bench_function(BenchmarkId::new(format!("flate2_zlib-rs_l{level}/{corpus}"), size), |b| {
                    b.iter(|| flate2_compress(&mut zc, black_box(&input), &mut out))
                });
                let mut lc = Compressor::new(CompressionLvl::new(level as i32).unwrap());
                let mut lout = vec![0u8; lc.deflate_compress_bound(size)];
                let libdeflate_len = lc.deflate_compress(&input, &mut lout).unwrap();
                group.bench_function(BenchmarkId::new(format!("libdeflate_l{level}/{corpus}"), size), |b| {
                    b.iter(|| lc.deflate_compress(black_box(&input), &mut lout).unwrap())
                });
                eprintln!(
                    "size {corpus} {size} level {level}: flate2 {flate2_len} B ({:.2}), libdeflate {libdeflate_len} B ({:.2})",
                    flate2_len as f64 / size as f64,
                    libdeflate_len as f64 / size as f64
                );
                if level == 6 {
                    let (mut zd, mut back, mut scratch) = (Decompress::new(false), Vec::new(), Vec::new());
                    flate2_decompress(&mut zd, &out, &mut back, &mut scratch);
                    assert_eq!(back, input, "flate2 round trip");
                    group.bench_function(BenchmarkId::new(format!("flate2_zlib-rs_inflate/{corpus}"), size), |b| {
                        b.iter(|| flate2_decompress(&mut zd, black_box(&out), &mut back, &mut scratch))
                    });
                    let mut ld = Decompressor::new();
                    let compressed = lout[..libdeflate_len].to_vec();
                    let mut lback = vec![0u8; size];
                    assert_eq!(ld.deflate_decompress(&compressed, &mut lback).unwrap(), size);
                    assert_eq!(lback, input, "libdeflate round trip");
                    group.bench_function(BenchmarkId::new(format!("libdeflate_inflate/{corpus}"), size), |b| {
                        b.iter(|| ld.deflate_decompress(black_box(&compressed), &mut lback).unwrap())
                    });
                }
            }
        }
    }
    group.finish();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for (corpus, make) in [("json", json_feed as fn(usize) -> Vec<u8>), ("prose", prose)] {
        for size in [256, 1024, 16384, 65536] {
            let input = make(size);
            group.throughput(Throughput::Bytes(size as u64));
            let mut out = Vec::new();
            let mut zc = Compress::new(Compression::new(2), false);
            group.bench_function(BenchmarkId::new(format!("flate2_l2/{corpus}"), size), |b| {
                b.iter(|| flate2_compress(&mut zc, black_box(&input), &mut out))
            });
            for memory in [8u8, 1] {
                let tuning = Tuning { memory, ..Tuning::default() };
                PerMessageDeflate::compress_alone(&input, &tuning, &mut out);
                eprintln!(
                    "size {corpus} {size} memory {memory}: {} B ({:.3})",
                    out.len(),
                    out.len() as f64 / size as f64
                );
                group.bench_function(BenchmarkId::new(format!("compress_alone_l2_m{memory}/{corpus}"), size), |b| {
                    b.iter(|| PerMessageDeflate::compress_alone(black_box(&input), &tuning, &mut out))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, deflate, codec);
criterion_main!(benches);
