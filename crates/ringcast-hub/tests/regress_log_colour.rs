//! Regression: the hub's log carried ANSI colour codes (`ESC[2m`…) when
//! stderr was a file or a pipe, so `hub.log` was full of escape bytes.
//! Colour is for terminals only (and never with `NO_COLOR`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HUB: &str = env!("CARGO_BIN_EXE_ringcast-hub");

#[test]
fn a_hub_logging_to_a_pipe_writes_no_colour_codes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // No token settings: the hub warns at start, so its log is not empty.
    let mut child = Command::new(HUB)
        .args(["--listen", &addr.to_string(), "--shards", "1"])
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the hub starts");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the hub exited: {:?}", child.try_wait());
        assert!(Instant::now() < until, "the hub never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(log.contains("WARN") && log.contains("no --jwt-secret"), "the start-up warning: {log}");
    assert!(!log.contains('\x1b'), "escape codes in a piped log: {log:?}");
}
