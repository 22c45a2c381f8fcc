//! Regression: the hub printed its banner with `println!`, which panics
//! when stdout is a closed pipe (a supervisor that does not read it, or a
//! test that read one line), so the hub died at start with exit code 101.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http;

const HUB: &str = env!("CARGO_BIN_EXE_ringcast-hub");

#[test]
fn a_hub_whose_stdout_is_closed_keeps_serving() {
    // Pick a free port, then hand it to the hub.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(HUB)
        .args(["--listen", &addr.to_string(), "--shards", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the hub starts");
    drop(child.stdout.take()); // closed before the hub writes a byte
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the hub exited: {:?}", child.try_wait());
        assert!(Instant::now() < until, "the hub never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _, body) = http(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body.trim()), (200, "ok"));
    assert!(child.try_wait().unwrap().is_none(), "still running after its banner");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
