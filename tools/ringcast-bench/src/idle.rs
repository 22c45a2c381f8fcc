//! Idle connections, for measuring what a server keeps per connection.

use std::time::Duration;

use crate::wire::{self, Target};

/// Options of `ringcast-bench idle`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// WebSocket URL of the server.
    #[arg(long)]
    url: String,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Seconds to hold them open once all are up.
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
}

/// Opens the connections (each completes its handshake), says so on
/// stdout, holds them, then closes them all.
pub fn run(args: &Args) -> Result<(), String> {
    let target = Target::parse(&args.url)?;
    let mut open = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        open.push(wire::open(&target).map_err(|e| format!("connection {i}: {e}"))?);
    }
    println!("ready connections={}", open.len());
    std::thread::sleep(Duration::from_secs_f64(args.hold));
    Ok(())
}
