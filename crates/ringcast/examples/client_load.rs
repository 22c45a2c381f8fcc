//! Closed-loop echo load on the ringcast client: N connections, one message
//! in flight each, every echo checked. Prints how long opening the
//! connections took (with or without the CONNECTING rule) and the echo
//! rate, with this process's CPU time, so the cost of a generator on the
//! shard runtime can be compared with the server's.
//!
//! ```text
//! cargo run --release --example client_load -- ws://127.0.0.1:9001/ --connections 100 --size 20 --seconds 5
//! cargo run --release --example client_load -- ws://127.0.0.1:9001/ --connections 10000 --parallel-connect --seconds 1
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use ringcast::{ClientBuilder, ClientHandler, CloseInfo, Connect, ConnectError, Handler, Message, Ws};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Counters shared by the shards and the main thread.
#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    failed: AtomicU64,
    echoes: AtomicU64,
    errors: AtomicU64,
    latency_ns: AtomicU64,
    /// When the first messages were published.
    start: std::sync::Mutex<Option<Instant>>,
}

struct Load {
    payload: Vec<u8>,
    counters: Arc<Counters>,
}

impl ClientHandler for Load {
    fn connected(&mut self, ws: &mut Ws<'_, Instant>, _protocol: Option<&str>) {
        // Idle until every connection is open: the main thread then
        // publishes the first message to all of them at once.
        ws.subscribe("go").expect("a short topic");
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
    }

    fn connect_failed(&mut self, _sent: Instant, error: &ConnectError) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        eprintln!("connect failed: {error}");
    }
}

impl Handler for Load {
    /// When the message in flight was sent.
    type Data = Instant;

    fn message(&mut self, ws: &mut Ws<'_, Instant>, message: Message<'_>) {
        let now = Instant::now();
        if ws.is_subscribed("go") {
            // The first echo: its round trip started with the publish.
            ws.unsubscribe("go");
            *ws.data_mut() = self.counters.start.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(now);
        }
        if message.as_bytes() != self.payload.as_slice() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.echoes.fetch_add(1, Ordering::Relaxed);
        self.counters.latency_ns.fetch_add((now - *ws.data()).as_nanos() as u64, Ordering::Relaxed);
        *ws.data_mut() = now;
        let _ = ws.send_binary(&self.payload);
    }

    fn close(&mut self, _sent: Instant, info: CloseInfo<'_>) {
        if info.code.0 != 1001 || info.by_peer {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// CPU seconds (user + system) this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn run() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: client_load URL [--connections N] [--size B] [--seconds S] [--shards N] [--parallel-connect]")?;
    let (mut connections, mut size, mut seconds, mut shards, mut parallel) = (100u64, 20usize, 5.0f64, 1usize, false);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--connections" => connections = value()?.parse().map_err(|e| format!("--connections: {e}"))?,
            "--size" => size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--seconds" => seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--shards" => shards = value()?.parse().map_err(|e| format!("--shards: {e}"))?,
            "--parallel-connect" => parallel = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let counters = Arc::new(Counters::default());
    let shared = counters.clone();
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let first = payload.clone();
    let client = ClientBuilder::new()
        .shards(shards)
        .one_connecting_per_host(!parallel)
        .start(move |_| Load { payload: payload.clone(), counters: shared.clone() })
        .map_err(|e| e.to_string())?;
    let target = Connect::new(&url).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for _ in 0..connections {
        client.connect(&target, Instant::now()).map_err(|e| e.to_string())?;
    }
    while counters.opened.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed) < connections {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("connections did not open within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let ramp = started.elapsed().as_secs_f64();
    println!(
        "opened={} failed={} ramp_s={ramp:.3} connects_per_sec={:.0} rule={}",
        counters.opened.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        connections as f64 / ramp,
        if parallel { "off" } else { "on" }
    );
    *counters.start.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    client.publish("go", Message::Binary(&first));
    std::thread::sleep(Duration::from_millis(500));
    let (echoes0, latency0, cpu0, t0) = (
        counters.echoes.load(Ordering::Relaxed),
        counters.latency_ns.load(Ordering::Relaxed),
        cpu_seconds(),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (echoes, latency, cpu, elapsed) = (
        counters.echoes.load(Ordering::Relaxed) - echoes0,
        counters.latency_ns.load(Ordering::Relaxed) - latency0,
        cpu_seconds() - cpu0,
        t0.elapsed().as_secs_f64(),
    );
    client.shutdown(Duration::from_secs(2));
    let errors = counters.errors.load(Ordering::Relaxed);
    println!(
        "echoes_per_sec={:.0} mean_rtt_us={:.1} cpu_us_per_echo={:.2} errors={errors}",
        echoes as f64 / elapsed,
        latency as f64 / echoes.max(1) as f64 / 1000.0,
        cpu * 1e6 / echoes.max(1) as f64
    );
    Ok(errors == 0 && counters.failed.load(Ordering::Relaxed) == 0)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("client_load: {e}");
            ExitCode::FAILURE
        }
    }
}
