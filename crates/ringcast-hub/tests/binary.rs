//! The `ringcast-hub` program itself: configuration from the environment,
//! SIGTERM → close 1001 to every client and exit 0, clear errors.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const HUB: &str = env!("CARGO_BIN_EXE_ringcast-hub");

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut child = Command::new(HUB)
        .env("RINGCAST_LISTEN", "127.0.0.1:0")
        .env("RINGCAST_SHARDS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the hub starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first.split_whitespace().nth(3).unwrap_or_else(|| panic!("no address in {first:?}"));
    assert!(first.contains("with 2 shards"), "{first}");
    let mut ws = connect(&format!("ws://{addr}/topics/a")).await;

    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let mut code = None;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if let Message::Close(Some(frame)) = message {
            code = Some(u16::from(frame.code));
        }
    }
    assert_eq!(code, Some(1001));
    drop(ws); // the server waits for our end of the TCP connection
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Starts the hub binary with `args` and returns it with its address.
fn spawn_hub(args: &[&str]) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = Command::new(HUB)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the hub starts");
    // Only the first line is read, and the pipe closed: the hub must not
    // mind (regression: it panicked on EPIPE printing the rest).
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.split_whitespace().nth(3).and_then(|a| a.parse().ok());
    (child, addr.unwrap_or_else(|| panic!("no address in {first:?}")))
}

#[test]
fn shutdown_ends_within_the_grace_when_clients_never_answer() {
    let grace = Duration::from_millis(1000);
    let (mut child, addr) = spawn_hub(&["--shards", "2", "--shutdown-grace", "1000ms"]);
    // Ten subscribers that never read (their kernel buffers fill with
    // queued deliveries) and so never answer the close.
    let stalled: Vec<Stalled> = (0..10).map(|_| Stalled::join(addr, "/topics/a")).collect();
    for _ in 0..4 {
        assert_eq!(publish(addr, "a", "application/octet-stream", &[7u8; 200_000]), 10);
    }
    let started = std::time::Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took >= grace - Duration::from_millis(100), "it waited for the closes: {took:?}");
    assert!(took <= grace + Duration::from_millis(250), "exited {took:?} after SIGTERM, grace {grace:?}");
    drop(stalled);
}

#[test]
fn bad_settings_are_explained() {
    let out = Command::new(HUB).args(["--max-backpressure", "lots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size"));
    let out = Command::new(HUB).args(["--slow-consumer", "maybe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(HUB).env("RINGCAST_LISTEN", "256.1.1.1:1").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("ringcast-hub: "), "one clear line");
}
