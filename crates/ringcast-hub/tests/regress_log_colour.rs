//! Regression: the hub's log carried ANSI colour codes (`ESC[2m`…) when
//! stderr was a file or a pipe, so `hub.log` was full of escape bytes.
//! Colour is for terminals only (and never with `NO_COLOR`).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::hub_binary;

#[test]
fn a_hub_logging_to_a_pipe_writes_no_colour_codes() {
    // No token settings: the hub warns at start, so its log is not empty.
    let (mut child, _) = hub_binary(
        |hub| {
            hub.env_remove("NO_COLOR").stdout(Stdio::null()).stderr(Stdio::piped());
        },
        |_| {},
    );
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(log.contains("WARN") && log.contains("no --jwt-secret"), "the start-up warning: {log}");
    assert!(!log.contains('\x1b'), "escape codes in a piped log: {log:?}");
}
