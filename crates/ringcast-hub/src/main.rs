//! `ringcast-hub`: the pub/sub hub as a program.
//!
//! ```text
//! cargo run --release -p ringcast-hub                 # 127.0.0.1:9001
//! cargo run --release -p ringcast-hub -- --help
//! ```
//!
//! SIGINT or SIGTERM closes every connection with 1001 (waiting up to
//! `--shutdown-grace`, 5 s by default, for the closing handshakes) and
//! exits 0.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ringcast_hub::HubConfig;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let config = HubConfig::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ringcast=info,ringcast_hub=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("ringcast-hub: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let grace = config.shutdown_grace;
    let handle = match ringcast_hub::start(config) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("ringcast-hub: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = handle.server().local_addr();
    // A closed stdout (a supervisor that does not read it) must not take
    // the hub down: println! would panic on EPIPE.
    let banner = format!(
        "ringcast-hub listening on {addr} with {} shards\n  chat page    http://{addr}/\n  \
         rooms        ws://{addr}/topics/{{name}}\n  JSON control ws://{addr}/ws\n  \
         publish      curl -H 'Content-Type: text/plain' -d 'hello' http://{addr}/publish/{{name}}\n  \
         metrics      http://{addr}/metrics (live: http://{addr}/dashboard)\n",
        handle.server().shards()
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Some(signal) = signals.forever().next() {
        eprintln!("ringcast-hub: signal {signal}: closing connections (up to {grace:?})");
    }
    let report = handle.shutdown(grace);
    let stats = handle.server().stats();
    eprintln!(
        "ringcast-hub: stopped; accepted {} connections, received {} messages, sent {}, dropped {}, {} cut at the deadline",
        stats.accepted, stats.messages, stats.messages_out, stats.dropped, report.forced
    );
    ExitCode::SUCCESS
}
