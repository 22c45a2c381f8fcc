//! The server handshake: find the head, parse, validate, write the 101.

use criterion::{criterion_group, criterion_main, Criterion};
use ringcast_benches::REQUEST;
use ringcast_proto::handshake::{RequestLimits, RequestReader};
use std::hint::black_box;
use std::time::Duration;

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    group.bench_function("parse_validate_respond", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            let mut reader = RequestReader::new(RequestLimits::default());
            let request = reader.poll(black_box(REQUEST)).unwrap().unwrap();
            let upgrade = request.validate().unwrap();
            let protocol = upgrade.choose_protocol(&["chat"]);
            out.clear();
            upgrade.write_response(protocol, &[], &mut out).unwrap();
            out.len()
        })
    });
    group.bench_function("parse_only", |b| {
        b.iter(|| {
            let mut reader = RequestReader::new(RequestLimits::default());
            reader.poll(black_box(REQUEST)).unwrap().map(|r| r.head_len())
        })
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
