//! Autobahn|Testsuite client driver: runs every case of a `wstest -m
//! fuzzingserver` against the ringcast client, echoing each message back
//! with its type, then asks the server to write its report.
//!
//! ```text
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 ringcast-client [--deflate]
//! ```
//!
//! `--deflate` offers permessage-deflate (cases 12.* and 13.*).
//!
//! The cases run one after the other (the fuzzing server expects that);
//! each connection is told its case number through its state.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use ringcast::{ClientBuilder, ClientHandler, CloseInfo, Connect, ConnectError, Handler, Message, Ws};

/// What the driver waits for.
enum Done {
    /// A connection ended; for `/getCaseCount`, with the number it heard.
    Ended(Option<u32>),
    Failed(String),
}

struct Echo {
    done: mpsc::Sender<Done>,
}

/// Per connection: whether it is the case-count query, and what it heard.
struct Conn {
    count_query: bool,
    heard: Option<u32>,
}

impl ClientHandler for Echo {
    fn connect_failed(&mut self, _conn: Conn, error: &ConnectError) {
        let _ = self.done.send(Done::Failed(error.to_string()));
    }
}

impl Handler for Echo {
    type Data = Conn;

    fn message(&mut self, ws: &mut Ws<'_, Conn>, message: Message<'_>) {
        if ws.data().count_query {
            if let Message::Text(text) = message {
                ws.data_mut().heard = text.trim().parse().ok();
            }
            return;
        }
        // Refused only when the connection is closing: nothing to do then.
        let _ = ws.send(message);
    }

    fn close(&mut self, conn: Conn, _info: CloseInfo<'_>) {
        let _ = self.done.send(Done::Ended(conn.heard));
    }
}

fn run(base: &str, agent: &str, deflate: bool) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let mut builder =
        ClientBuilder::new().max_message_size(64 << 20).max_frame_size(64 << 20).max_backpressure(64 << 20);
    if deflate {
        builder = builder.deflate(ringcast::Deflate::default());
    }
    let client = builder.start(move |_| Echo { done: tx.clone() }).map_err(|e| e.to_string())?;
    let visit = |path: String, count_query: bool| -> Result<Option<u32>, String> {
        let target = Connect::new(&format!("{base}{path}")).map_err(|e| format!("{path}: {e}"))?;
        client.connect(&target, Conn { count_query, heard: None }).map_err(|e| e.to_string())?;
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Done::Ended(heard)) => Ok(heard),
            Ok(Done::Failed(e)) => Err(format!("{path}: {e}")),
            Err(_) => Err(format!("{path}: no end within 120 s")),
        }
    };
    let cases = visit("/getCaseCount".into(), true)?.ok_or("the server did not say how many cases")?;
    eprintln!("autobahn client: {cases} cases");
    for case in 1..=cases {
        // A failed case connection is the suite's verdict to record, not
        // a reason to stop.
        if let Err(e) = visit(format!("/runCase?case={case}&agent={agent}"), false) {
            eprintln!("case {case}: {e}");
        }
    }
    visit(format!("/updateReports?agent={agent}"), false)?;
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

fn main() -> ExitCode {
    let (flags, mut args): (Vec<String>, Vec<String>) = std::env::args().skip(1).partition(|a| a.starts_with("--"));
    if let Some(unknown) = flags.iter().find(|f| *f != "--deflate") {
        eprintln!("autobahn client: unknown flag {unknown} (usage: autobahn_client [URL] [AGENT] [--deflate])");
        return ExitCode::from(2);
    }
    args.reverse();
    let base = args.pop().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.pop().unwrap_or_else(|| "ringcast-client".into());
    match run(base.trim_end_matches('/'), &agent, !flags.is_empty()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn client: {e}");
            ExitCode::FAILURE
        }
    }
}
