//! Echo server: every text or binary message comes back with its type.
//!
//! ```text
//! cargo run --release --example echo -- --listen 127.0.0.1:9001 --shards 2
//! ```
//!
//! `GET /healthz` answers 200 without upgrading. SIGINT or SIGTERM closes
//! every connection with 1001 (waiting up to 5 s for the closes) and exits.

use std::process::ExitCode;
use std::time::Duration;

use mimalloc::MiMalloc;
use ringcast::{Decision, Handler, Message, Peer, Request, RequestError, Response, ServerBuilder, ServerHandler, Ws};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

struct Echo;

impl ServerHandler for Echo {
    fn upgrade(&mut self, _request: &Request<'_>, _peer: &Peer<'_>) -> Decision<()> {
        Decision::accept(())
    }

    fn http(&mut self, request: &Request<'_>, _body: &[u8], _why: RequestError) -> Option<Response> {
        (request.path() == "/healthz").then(|| Response::new(200).body("ok\n"))
    }
}

impl Handler for Echo {
    type Data = ();

    fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
        // Only fails when the peer is past the backpressure limit, and then
        // the connection is already closing with 1008.
        let _ = ws.send(message);
    }
}

struct Args {
    listen: String,
    shards: Option<usize>,
    recv_buffers: Option<(u16, u32)>,
    handshake_timeout: Option<Duration>,
    batch_wait: Option<Duration>,
    deflate: bool,
    max_backpressure: Option<usize>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:9001".into(),
        shards: None,
        recv_buffers: None,
        handshake_timeout: None,
        batch_wait: None,
        deflate: false,
        max_backpressure: None,
        tls_cert: None,
        tls_key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => args.listen = value("--listen")?,
            "--shards" => {
                let n = value("--shards")?;
                args.shards = Some(n.parse().map_err(|_| format!("--shards: not a number: {n}"))?);
            }
            "--recv-buffers" => {
                let v = value("--recv-buffers")?;
                let parsed = v.split_once('x').and_then(|(n, s)| Some((n.parse().ok()?, s.parse().ok()?)));
                args.recv_buffers = Some(parsed.ok_or(format!("--recv-buffers: expected COUNTxBYTES, got {v}"))?);
            }
            "--handshake-timeout-ms" => {
                let v = value("--handshake-timeout-ms")?;
                let ms = v.parse().map_err(|_| format!("--handshake-timeout-ms: not a number: {v}"))?;
                args.handshake_timeout = Some(Duration::from_millis(ms));
            }
            "--batch-wait-us" => {
                let v = value("--batch-wait-us")?;
                let us = v.parse().map_err(|_| format!("--batch-wait-us: not a number: {v}"))?;
                args.batch_wait = Some(Duration::from_micros(us));
            }
            // permessage-deflate (default settings): for the conformance runs.
            "--deflate" => args.deflate = true,
            // Unsent bytes a connection may hold (a conformance run's slow
            // reader should not be cut as a slow consumer).
            "--max-backpressure" => {
                let v = value("--max-backpressure")?;
                args.max_backpressure = Some(v.parse().map_err(|_| format!("--max-backpressure: not a number: {v}"))?);
            }
            // wss:// with this PEM certificate chain and key.
            "--tls-cert" => args.tls_cert = Some(value("--tls-cert")?),
            "--tls-key" => args.tls_key = Some(value("--tls-key")?),
            "-h" | "--help" => {
                println!(
                    "usage: echo [--listen ADDR:PORT] [--shards N] [--recv-buffers COUNTxBYTES] [--handshake-timeout-ms MS] [--batch-wait-us US] [--deflate] [--max-backpressure BYTES] [--tls-cert PEM --tls-key PEM]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = ServerBuilder::new();
    if let Some(shards) = args.shards {
        builder = builder.shards(shards);
    }
    if let Some((count, size)) = args.recv_buffers {
        builder = builder.recv_buffers(count, size);
    }
    if let Some(timeout) = args.handshake_timeout {
        builder = builder.handshake_timeout(timeout);
    }
    if let Some(wait) = args.batch_wait {
        builder = builder.batch_wait(wait);
    }
    if args.deflate {
        builder = builder.deflate(ringcast::Deflate::default());
    }
    if let Some(bytes) = args.max_backpressure {
        builder = builder.max_backpressure(bytes);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match ringcast::tls::server_config_from_pem(cert.as_ref(), key.as_ref()) {
            Ok(config) => builder = builder.tls(config),
            Err(e) => {
                eprintln!("echo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let server = match builder.start(&args.listen, |_shard| Echo) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.shutdown_on_signals(Duration::from_secs(5)) {
        eprintln!("echo: cannot handle signals: {e}");
        server.shutdown(Duration::ZERO);
        return ExitCode::FAILURE;
    }
    let scheme = if server.tls_addr().is_some() { "wss" } else { "ws" };
    println!("echo: listening on {scheme}://{} with {} shard(s)", server.local_addr(), server.shards());
    let report = server.wait();
    let stats = server.stats();
    println!(
        "echo: stopped ({} connection(s) cut at the deadline); messages {} io_uring_enter {} turns {} reads {} batch waits {} misses {} \
         by reference {}",
        report.forced,
        stats.messages,
        stats.enters,
        stats.turns,
        stats.reads,
        stats.batch_waits,
        stats.batch_misses,
        stats.messages_by_reference
    );
    ExitCode::SUCCESS
}
