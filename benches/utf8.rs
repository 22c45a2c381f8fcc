//! Our incremental UTF-8 validation against raw simdutf8 (and std) on the
//! same input, whole and in 4 KiB pieces.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast_benches::{ascii, mixed};
use ringcast_proto::utf8::Utf8Validator;
use std::hint::black_box;
use std::time::Duration;

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for (name, input) in [("ascii", ascii(64 << 10)), ("mixed", mixed(64 << 10))] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        let len = input.len();
        group.bench_function(BenchmarkId::new(format!("simdutf8_basic/{name}"), len), |b| {
            b.iter(|| simdutf8::basic::from_utf8(black_box(&input)).is_ok())
        });
        group.bench_function(BenchmarkId::new(format!("ringcast_whole/{name}"), len), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(&input)).and_then(|()| v.finish()).is_ok()
            })
        });
        group.bench_function(BenchmarkId::new(format!("ringcast_4k_pieces/{name}"), len), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                black_box(&input).chunks(4096).try_for_each(|p| v.feed(p)).and_then(|()| v.finish()).is_ok()
            })
        });
        if name == "ascii" {
            // What a non-incremental validator costs on the same pieces. Only
            // meaningful for ASCII: on mixed text it would stop (wrongly) at
            // the first code point cut between pieces.
            group.bench_function(BenchmarkId::new(format!("simdutf8_basic_4k_pieces/{name}"), len), |b| {
                b.iter(|| black_box(&input).chunks(4096).all(|p| simdutf8::basic::from_utf8(p).is_ok()))
            });
        }
        group.bench_function(BenchmarkId::new(format!("std/{name}"), len), |b| {
            b.iter(|| std::str::from_utf8(black_box(&input)).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, utf8);
criterion_main!(benches);
