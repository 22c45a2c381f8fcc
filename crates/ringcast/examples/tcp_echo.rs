//! Plain TCP echo on the ringcast runtime: the same shards, rings, receive
//! buffers and corked sends as the WebSocket server, minus the protocol.
//! It is the floor the WebSocket echo is measured against.
//!
//! ```text
//! cargo run --release --example tcp_echo -- --listen 127.0.0.1:9002 --shards 1
//! ```

use std::process::ExitCode;
use std::time::Duration;

use mimalloc::MiMalloc;
use ringcast::ServerBuilder;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let mut listen = "127.0.0.1:9002".to_string();
    let mut builder = ServerBuilder::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v,
            ("--shards", Some(v)) => match v.parse() {
                Ok(n) => builder = builder.shards(n),
                Err(_) => {
                    eprintln!("tcp_echo: --shards: not a number: {v}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: tcp_echo [--listen ADDR:PORT] [--shards N]");
                return ExitCode::from(2);
            }
        }
    }
    let server = match ringcast::bench::start_tcp_echo(builder, &listen) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("tcp_echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.shutdown_on_signals(Duration::from_secs(1)) {
        eprintln!("tcp_echo: cannot handle signals: {e}");
        server.shutdown(Duration::ZERO);
        return ExitCode::FAILURE;
    }
    println!("tcp_echo: listening on {} with {} shard(s)", server.local_addr(), server.shards());
    server.wait();
    let stats = server.stats();
    println!("tcp_echo: stopped; reads {} io_uring_enter {} turns {}", stats.messages, stats.enters, stats.turns);
    ExitCode::SUCCESS
}
