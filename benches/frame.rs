//! Frame parsing: the header decoder alone, and the whole receive path
//! (decode, unmask in place, validate, hand over) on streams of small and
//! large masked text frames.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ringcast_benches::client_stream;
use ringcast_proto::frame::{FrameHeader, OpCode};
use ringcast_proto::{Config, Connection, Event};
use std::hint::black_box;
use std::time::Duration;

fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let headers: [(&str, &[u8]); 3] = [
        ("7bit", &[0x81, 0x94, 1, 2, 3, 4]),
        ("16bit", &[0x82, 0xFE, 0x40, 0x00, 1, 2, 3, 4]),
        ("64bit", &[0x82, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]),
    ];
    for (name, bytes) in headers {
        group.bench_function(BenchmarkId::new("decode_header", name), |b| {
            b.iter(|| FrameHeader::decode(black_box(bytes)))
        });
    }
    for (count, size) in [(100usize, 20usize), (16, 16 << 10)] {
        let stream = client_stream(count, size, OpCode::Text);
        group.throughput(Throughput::Elements(count as u64));
        let mut conn = Connection::server(Config::default());
        group.bench_function(BenchmarkId::new("read_text_frames", format!("{count}x{size}B")), |b| {
            // Unmasking is in place, so every iteration gets fresh bytes; the
            // copy is set-up, outside the timing.
            b.iter_batched_ref(
                || stream.clone(),
                |work| {
                    let mut pos = 0;
                    let mut total = 0usize;
                    loop {
                        let read = conn.read(&mut work[pos..]).unwrap();
                        pos += read.consumed;
                        match read.event {
                            Some(Event::Text(t)) => total += t.len(),
                            Some(_) => unreachable!(),
                            None => break,
                        }
                    }
                    assert_eq!(total, count * size);
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
