//! `ringcast-bench`: drives WebSocket (or plain TCP) servers from one
//! thread on epoll, so that pinned to one CPU it measures a server pinned
//! to another.
//!
//! ```text
//! ringcast-bench echo --url ws://127.0.0.1:9001/ --connections 100 --size 20 --seconds 5
//! ringcast-bench echo --tcp 127.0.0.1:9002 --connections 100 --size 20
//! ringcast-bench idle --url ws://127.0.0.1:9001/ --connections 10000 --hold 30
//! ringcast-bench fanout --url 'ws://127.0.0.1:9001/topics/bench?echo=1' --connections 100
//! ringcast-bench broadcast --url ws://127.0.0.1:9001/topics/bench --subscribers 10000 --rate 100
//! ```

mod echo;
mod fanout;
mod frames;
mod idle;
mod wire;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(version, about = "Load and latency generator for WebSocket echo servers and pub/sub hubs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Each connection keeps one message in flight and sends the next as
    /// soon as the echo is back; reports echoes per second and round trips.
    Echo(echo::Args),
    /// Opens connections and holds them idle (for memory per connection).
    Idle(idle::Args),
    /// N clients in one hub room, each with one message in flight, every
    /// message reaching all N; reports deliveries per second.
    Fanout(fanout::FanoutArgs),
    /// One publisher at a fixed rate to N subscribers; reports delivery
    /// latency percentiles and losses.
    Broadcast(fanout::BroadcastArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo(args) => echo::run(&args),
        Command::Idle(args) => idle::run(&args),
        Command::Fanout(args) => fanout::run_fanout(&args),
        Command::Broadcast(args) => fanout::run_broadcast(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringcast-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
