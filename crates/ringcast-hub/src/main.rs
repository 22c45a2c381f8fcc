//! `ringcast-hub`: the pub/sub hub as a program.
//!
//! ```text
//! cargo run --release -p ringcast-hub                 # 127.0.0.1:9001
//! cargo run --release -p ringcast-hub -- --help
//! ```
//!
//! SIGINT or SIGTERM closes every connection with 1001 (waiting up to
//! `--shutdown-grace`, 5 s by default, for the closing handshakes) and
//! exits 0. SIGHUP reads the `--tls-cert` and `--tls-key` files again.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use ringcast_hub::Hub;
use ringcast_hub::HubConfig;
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::Signals;

/// Colour in the log only on a terminal, and not when `NO_COLOR` is set
/// (no-color.org): a log file or a pipe gets plain text.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let config = HubConfig::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ringcast=info,ringcast_hub=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .init();
    let grace = config.shutdown_grace;
    let handle = match ringcast_hub::start(config) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("ringcast-hub: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = handle.server();
    let signals = server.shutdown_on_signals(grace).and_then(|()| reload_on_hangup(handle.clone()));
    if let Err(e) = signals {
        eprintln!("ringcast-hub: cannot install signal handlers: {e}");
        handle.shutdown(grace);
        return ExitCode::FAILURE;
    }
    // Where the pages are: the TLS address when everything is TLS.
    let (addr, http, ws) = match server.tls_addr() {
        Some(tls) if tls == server.local_addr() => (tls, "https", "wss"),
        _ => (server.local_addr(), "http", "ws"),
    };
    let also = match server.tls_addr() {
        Some(tls) if tls != server.local_addr() => format!("  TLS          https://{tls}/ and wss://{tls}/\n"),
        _ => String::new(),
    };
    // A closed stdout (a supervisor that does not read it) must not take
    // the hub down: println! would panic on EPIPE.
    let banner = format!(
        "ringcast-hub listening on {addr} with {} shards\n  chat page    {http}://{addr}/\n  \
         rooms        {ws}://{addr}/topics/{{name}}\n  JSON control {ws}://{addr}/ws\n  \
         publish      curl -H 'Content-Type: text/plain' -d 'hello' {http}://{addr}/publish/{{name}}\n  \
         metrics      {http}://{addr}/metrics (live: {http}://{addr}/dashboard)\n{also}",
        server.shards()
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
    drop(stdout);
    // Until SIGINT or SIGTERM has closed every connection.
    server.wait();
    let report = handle.shutdown(grace);
    let stats = handle.server().stats();
    eprintln!(
        "ringcast-hub: stopped; accepted {} connections, received {} messages, sent {}, dropped {}, {} cut at the deadline",
        stats.accepted, stats.messages, stats.messages_out, stats.dropped, report.forced
    );
    ExitCode::SUCCESS
}

/// SIGHUP reads the TLS certificate and key files again, on a thread of
/// its own for the life of the process.
fn reload_on_hangup(hub: Hub) -> std::io::Result<()> {
    let mut hangups = Signals::new([SIGHUP])?;
    std::thread::Builder::new().name("ringcast-hub-sighup".into()).spawn(move || {
        for _ in hangups.forever() {
            match hub.reload_tls() {
                Ok(()) => eprintln!("ringcast-hub: SIGHUP: TLS certificate files read again"),
                Err(e) => eprintln!("ringcast-hub: SIGHUP: keeping the certificate in use: {e}"),
            }
        }
    })?;
    Ok(())
}
