//! A peer that floods pings and never reads must not grow the server's
//! memory: pongs owed past the backpressure budget are merged, not queued.
//! Alone in its test binary because it measures the process's memory (a
//! panicking test elsewhere would load debug info for its backtrace).

mod common;

use std::time::Duration;

use common::*;
use ringcast::ServerBuilder;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_ping_flood_from_a_peer_that_never_reads_stays_bounded() {
    // A small receive pool, so that touching it for the first time (a fixed
    // cost, not a growth) stays far below what is measured.
    let server = TestServer::start(ServerBuilder::new().shards(1).max_backpressure(64 << 10).recv_buffers(16, 4096));
    let mut client = RawClient::open(server.addr());
    client.stream.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let before = rss_kib();
    // 200 000 pings of 125 bytes: 26 MB of pongs owed, far more than the
    // socket buffers hold while we do not read.
    let ping = masked(0x9, &[b'p'; 125]);
    let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 1000).collect();
    for _ in 0..200 {
        client.send_raw(&burst);
    }
    std::thread::sleep(Duration::from_millis(300));
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 4 << 10, "the server's memory grew by {grown} KiB under a ping flood");
    // Read everything owed: fewer pongs than pings (the excess were merged
    // while the queue was over budget), then the connection still echoes.
    let mut pongs = 0usize;
    while let Some(frame) = client.try_read_frame(Duration::from_millis(500)) {
        assert_eq!(frame.opcode, 0xA, "only pongs are owed");
        pongs += 1;
    }
    assert!(pongs > 0 && pongs < 200_000, "pongs were coalesced: {pongs}");
    client.send_raw(&masked(0x1, b"after the flood"));
    assert_eq!(client.read_frame().expect("the connection survives").payload, b"after the flood");
}
