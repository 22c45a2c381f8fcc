//! Unmasking throughput of every kernel against the scalar reference, from
//! 64 B to 1 MiB, on aligned and unaligned buffers.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast_benches::KEY;
use ringcast_proto::mask::{apply_mask, apply_mask_with, Kernel};
use std::hint::black_box;
use std::time::Duration;

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for size in [64usize, 512, 4 << 10, 64 << 10, 1 << 20] {
        group.throughput(Throughput::Bytes(size as u64));
        // 64 spare bytes so the slice can start at any alignment.
        let mut backing = vec![0x5au8; size + 64];
        let base = backing.as_ptr().align_offset(64);
        for (alignment, shift) in [("aligned", 0usize), ("unaligned", 1)] {
            let start = base + shift;
            let buf = &mut backing[start..start + size];
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_available()) {
                if kernel == Kernel::Scalar && size > (64 << 10) {
                    continue; // the reference is too slow to be interesting at 1 MiB
                }
                let id = BenchmarkId::new(format!("{kernel:?}/{alignment}"), size);
                group.bench_function(id, |b| b.iter(|| apply_mask_with(kernel, black_box(&mut *buf), KEY, 0)));
            }
            let id = BenchmarkId::new(format!("dispatch/{alignment}"), size);
            group.bench_function(id, |b| b.iter(|| apply_mask(black_box(&mut *buf), KEY, 0)));
        }
        // The machine's own ceiling at this size: copying the same number of
        // bytes (read + write, like unmasking in place) between two buffers.
        let src = vec![1u8; size];
        let mut dst = vec![0u8; size];
        let id = BenchmarkId::new("memcpy_reference", size);
        group.bench_function(id, |b| b.iter(|| dst.copy_from_slice(black_box(&src))));
    }
    group.finish();
}

criterion_group!(benches, unmask);
criterion_main!(benches);
