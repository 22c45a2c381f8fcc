//! `ringcast-bench`: load and latency generator for WebSocket servers (and
//! plain TCP echo servers, as a floor). One mio event loop per thread
//! (`--threads`), no protocol code shared with the servers it measures, and
//! every received frame checked: any error makes the exit status 1.
//!
//! ```text
//! ringcast-bench echo --url ws://127.0.0.1:9001/ --connections 100 --size 20 --in-flight 4 --duration 5
//! ringcast-bench echo --tcp 127.0.0.1:9002 --connections 100 --size 20
//! ringcast-bench rate --url ws://127.0.0.1:9001/ --connections 100 --rate 50000
//! ringcast-bench fanout --url 'ws://127.0.0.1:9001/topics/bench?echo=1' --connections 100
//! ringcast-bench broadcast --url ws://127.0.0.1:9001/topics/bench --subscribers 10000 --rate 100 --via http
//! ringcast-bench connections --url ws://127.0.0.1:9001/ --connections 50000 --hold 10
//! ```
//!
//! Each prints one summary on stdout; `--json FILE` writes the result as
//! one JSON object, `--plot FILE.svg` draws it.

mod args;
mod broadcast;
mod check;
mod client;
mod clock;
mod connections;
mod deliver;
mod echo;
mod fanout;
mod frames;
mod http;
mod plot;
mod progress;
mod rate;
mod report;
mod rng;
mod runner;
mod stamp;
mod tls;
mod wire;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(version, about = "Load and latency generator for WebSocket servers and pub/sub hubs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Closed loop: each connection keeps K messages in flight and sends
    /// the next when an echo is back; messages/s and round-trip latency.
    Echo(echo::EchoArgs),
    /// Open loop at a fixed total rate; latency from the intended send time
    /// (corrected for coordinated omission).
    Rate(rate::RateArgs),
    /// N clients in one room, each publishing and waiting for all N
    /// messages of a round; deliveries/s.
    Fanout(fanout::FanoutArgs),
    /// S subscribers, P publishers (WebSocket or HTTP POST) at a fixed
    /// rate; delivery latency, losses and reorderings.
    Broadcast(broadcast::BroadcastArgs),
    /// Ramps to C connections and holds them with pings; connect rate,
    /// handshake latency, errors. (`idle` is an alias.)
    #[command(alias = "idle")]
    Connections(connections::ConnectionsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Echo(args) => echo::run(args),
        Command::Rate(args) => rate::run(args),
        Command::Fanout(args) => fanout::run(args),
        Command::Broadcast(args) => broadcast::run(args),
        Command::Connections(args) => connections::run(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ringcast-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
