//! Memory that stays inside its budget: a subscriber that never reads costs
//! the hub its backpressure budget, not what is published past it.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const HUB: &str = env!("CARGO_BIN_EXE_ringcast-hub");

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the hub's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("VmRSS in kB") * 1024
}

#[test]
fn publishing_64_mib_past_a_stalled_subscriber_raises_rss_by_at_most_8_mib() {
    let mut child = Command::new(HUB)
        .args(["--listen", "127.0.0.1:0", "--shards", "2", "--max-backpressure", "1MiB"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the hub starts");
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    let addr: std::net::SocketAddr = first.split_whitespace().nth(3).and_then(|a| a.parse().ok()).expect("address");
    let mut stalled = Stalled::join(addr, "/topics/feed");
    // Warm up: the same publish path, once, with nobody stalled behind it.
    assert_eq!(publish(addr, "warm", "application/octet-stream", &[1u8; 256 << 10]), 0);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_bytes(child.id());
    let body = vec![0x5au8; 256 << 10];
    let mut peak = before;
    for _ in 0..256 {
        // Counted as a receiver until the budget closes it, then not.
        assert!(publish(addr, "feed", "application/octet-stream", &body) <= 1);
        peak = peak.max(rss_bytes(child.id()));
    }
    std::thread::sleep(Duration::from_millis(200));
    peak = peak.max(rss_bytes(child.id()));
    let grew = peak.saturating_sub(before);
    assert!(grew <= 8 << 20, "RSS grew by {} KiB (from {} KiB)", grew >> 10, before >> 10);
    // The subscriber was cut at its budget with 1008, after what fit.
    let mut frames = 0;
    let close = loop {
        let frame = stalled.read_frame().expect("frames, then a close");
        if frame.opcode == 0x8 {
            break frame;
        }
        assert_eq!(frame.payload.len(), 256 << 10);
        frames += 1;
    };
    assert_eq!(u16::from_be_bytes([close.payload[0], close.payload[1]]), 1008);
    assert!(frames < 40, "{frames} messages reached a subscriber that stopped reading");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}
