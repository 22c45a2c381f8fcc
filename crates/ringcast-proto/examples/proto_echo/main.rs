//! `proto_echo`: a WebSocket echo server on blocking sockets, one thread per
//! connection, driven by `ringcast-proto` alone: how to use the protocol
//! core without the runtime. Not built for speed (see `examples/echo.rs`).
//!
//! ```text
//! cargo run --release --example proto_echo -- --listen 127.0.0.1:9001
//! ```
//! Every text or binary message comes back with its type; `GET /healthz`
//! answers `200 ok`; anything else gets the handshake statuses of RFC 6455.

mod server;

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mimalloc::MiMalloc;
use ringcast_proto::Config;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Connections served at once; more are refused with 503.
const MAX_CONNECTIONS: usize = 512;
/// How long a client may take to send its request head, and the longest
/// silence tolerated afterwards.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    let mut listen = "127.0.0.1:9001".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(addr)) => listen = addr,
            _ => {
                eprintln!("usage: proto_echo [--listen ADDR:PORT]");
                std::process::exit(2);
            }
        }
    }
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("proto_echo: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("proto_echo: ws://{listen}/ (echo), http://{listen}/healthz");
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            let mut out = Vec::new();
            let _ = ringcast_proto::handshake::write_response(503, &[], b"busy\n", &mut out);
            let _ = std::io::Write::write_all(&mut stream, &out);
            continue;
        }
        let active = Arc::clone(&active);
        std::thread::spawn(move || {
            let _ = handle(stream);
            active.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    server::serve(&mut stream, Config::default(), |s| s.set_read_timeout(Some(IDLE_TIMEOUT)))?;
    Ok(())
}
