//! Regression: the hub printed its banner with `println!`, which panics
//! when stdout is a closed pipe (a supervisor that does not read it, or a
//! test that read one line), so the hub died at start with exit code 101.

mod common;

use std::process::{Command, Stdio};

use common::{http, hub_binary};

#[test]
fn a_hub_whose_stdout_is_closed_keeps_serving() {
    let (mut child, addr) = hub_binary(
        |hub| {
            hub.stdout(Stdio::piped()).stderr(Stdio::null());
        },
        |child| drop(child.stdout.take()), // closed before the hub writes a byte
    );
    let (status, _, body) = http(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body.trim()), (200, "ok"));
    assert!(child.try_wait().unwrap().is_none(), "still running after its banner");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
