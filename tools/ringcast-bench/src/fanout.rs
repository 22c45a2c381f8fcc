//! Pub/sub load against a hub room (`ringcast-hub`'s `/topics/{name}`):
//!
//! - `fanout`: N clients in one room, each with one message in flight; a
//!   client sends its next message when its own comes back (the room URL
//!   needs `?echo=1`), so every message reaches all N clients. Reports
//!   deliveries per second and delivery latency.
//! - `broadcast`: one publisher at a fixed rate, N subscribers; reports
//!   delivery latency percentiles from the scheduled send time (no
//!   coordinated omission) and what was lost. `--stalled` makes a fraction
//!   of the subscribers never read (for the slow-consumer memory bound).

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::frames::{since, Fill, FrameReader, Stamp, STAMP_LEN};
use crate::wire::{self, Target};

/// Options of `ringcast-bench fanout`.
#[derive(clap::Args, Debug)]
pub struct FanoutArgs {
    /// Room URL with echo, e.g. ws://127.0.0.1:9001/topics/bench?echo=1
    #[arg(long)]
    url: String,
    /// Clients in the room (each publishes and receives).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Payload bytes per message (at least 16).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

/// Options of `ringcast-bench broadcast`.
#[derive(clap::Args, Debug)]
pub struct BroadcastArgs {
    /// Room URL, e.g. ws://127.0.0.1:9001/topics/bench
    #[arg(long)]
    url: String,
    /// Subscribers.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Messages per second from the one publisher.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Payload bytes per message (at least 16).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Fraction of subscribers that never read (with a 4 KiB receive
    /// buffer, so the server's queue fills soon).
    #[arg(long, default_value_t = 0.0)]
    stalled: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

struct Client {
    stream: TcpStream,
    reader: FrameReader,
    /// Bytes to write and how many are written.
    out: Vec<u8>,
    written: usize,
    seq: u32,
}

impl Client {
    fn queue(&mut self, frame: &[u8]) -> Result<(), String> {
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        self.out.extend_from_slice(frame);
        self.flush()
    }

    fn flush(&mut self) -> Result<(), String> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }
}

fn connect_all(url: &str, n: usize, poll: &Poll, interest: Interest) -> Result<Vec<Client>, String> {
    let target = Target::parse(url)?;
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let socket = wire::open(&target).map_err(|e| format!("connection {i} to {url}: {e}"))?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut stream = TcpStream::from_std(socket);
        poll.registry().register(&mut stream, Token(i), interest).map_err(|e| e.to_string())?;
        clients.push(Client { stream, reader: FrameReader::default(), out: Vec::new(), written: 0, seq: 0 });
    }
    Ok(clients)
}

fn histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Reads every readable client, calling `on_message(client index, stamp)`
/// for each delivered message.
fn drain(
    clients: &mut [Client],
    events: &Events,
    scratch: &mut [u8],
    mut on_message: impl FnMut(usize, Stamp, &mut Client) -> Result<(), String>,
) -> Result<(), String> {
    for event in events {
        let index = event.token().0;
        let Some(client) = clients.get_mut(index) else { continue };
        if event.is_writable() {
            client.flush()?;
        }
        if !event.is_readable() {
            continue;
        }
        loop {
            let fill = client.reader.fill(&mut client.stream, scratch)?;
            let mut stamps = Vec::new();
            while let Some(frame) = client.reader.next_frame() {
                match frame.opcode {
                    0x1 | 0x2 => stamps.push(Stamp::read(frame.payload).ok_or("a message without a stamp")?),
                    0x8 => {
                        let code = frame.payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                        return Err(format!("the server closed client {index} (code {code:?})"));
                    }
                    _ => {} // pings: the idle check; not answered in a short run
                }
            }
            for stamp in stamps {
                on_message(index, stamp, client)?;
            }
            match fill {
                Fill::Data => {}
                Fill::WouldBlock => break,
                Fill::Eof => return Err(format!("the server closed client {index}")),
            }
        }
    }
    Ok(())
}

/// Runs `fanout` and prints one line.
pub fn run_fanout(args: &FanoutArgs) -> Result<(), String> {
    if !args.url.contains("echo") {
        return Err("fanout needs a room URL with ?echo=1 (each client waits for its own message)".into());
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut clients = connect_all(&args.url, args.connections, &poll, Interest::READABLE | Interest::WRITABLE)?;
    let start = Instant::now();
    let size = args.size.max(STAMP_LEN);
    for (i, client) in clients.iter_mut().enumerate() {
        let stamp = Stamp { sender: i as u32, seq: 0, sent_ns: since(start) };
        client.queue(&wire::client_frame(&stamp.payload(size)))?;
    }
    let measure_from = Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let (mut latency, mut deliveries, mut publishes, mut measuring) = (histogram()?, 0u64, 0u64, false);
    let mut scratch = vec![0u8; 256 << 10];
    let mut events = Events::with_capacity(1024);
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
        let elapsed = start.elapsed();
        if elapsed >= end {
            break;
        }
        if !measuring && elapsed >= measure_from {
            (measuring, deliveries, publishes) = (true, 0, 0);
            latency.reset();
        }
        drain(&mut clients, &events, &mut scratch, |index, stamp, client| {
            let now = since(start);
            if measuring {
                deliveries += 1;
                let _ = latency.record(now.saturating_sub(stamp.sent_ns).max(1));
            }
            if stamp.sender as usize == index && stamp.seq == client.seq {
                if measuring {
                    publishes += 1;
                }
                client.seq += 1;
                let next = Stamp { sender: index as u32, seq: client.seq, sent_ns: now };
                client.queue(&wire::client_frame(&next.payload(size)))?;
            }
            Ok(())
        })?;
    }
    println!(
        "deliveries_per_sec={:.0} publishes_per_sec={:.0} connections={} size={} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
        deliveries as f64 / args.seconds,
        publishes as f64 / args.seconds,
        args.connections,
        size,
        us(&latency, 0.5),
        us(&latency, 0.99),
        us(&latency, 0.999)
    );
    Ok(())
}

/// Runs `broadcast` and prints one line.
pub fn run_broadcast(args: &BroadcastArgs) -> Result<(), String> {
    if !args.rate.is_finite() || args.rate <= 0.0 || !(0.0..1.0).contains(&args.stalled) {
        return Err("--rate must be positive and --stalled in [0, 1)".into());
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let stalled = (args.subscribers as f64 * args.stalled).round() as usize;
    let readers = args.subscribers - stalled;
    let mut clients = connect_all(&args.url, readers, &poll, Interest::READABLE)?;
    // Stalled subscribers are connected and never read; kept open to the end.
    let target = Target::parse(&args.url)?;
    let idle: Vec<_> = (0..stalled)
        .map(|i| wire::open_with(&target, Some(4096)).map_err(|e| format!("stalled subscriber {i}: {e}")))
        .collect::<Result<_, _>>()?;
    let publisher_socket = wire::open(&target).map_err(|e| format!("publisher: {e}"))?;
    publisher_socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut publisher = Client {
        stream: TcpStream::from_std(publisher_socket),
        reader: FrameReader::default(),
        out: Vec::new(),
        written: 0,
        seq: 0,
    };
    poll.registry()
        .register(&mut publisher.stream, Token(usize::MAX - 1), Interest::WRITABLE)
        .map_err(|e| e.to_string())?;
    println!("ready subscribers={readers} stalled={stalled}");
    let _ = std::io::stdout().flush();

    let size = args.size.max(STAMP_LEN);
    let interval_ns = 1e9 / args.rate;
    let start = Instant::now();
    let measure_from = (args.warmup * 1e9) as u64;
    let end = measure_from + (args.seconds * 1e9) as u64;
    let (mut latency, mut deliveries, mut sent_measured) = (histogram()?, 0u64, 0u64);
    let mut scratch = vec![0u8; 256 << 10];
    let mut events = Events::with_capacity(4096);
    loop {
        // Send what is due by now, stamped with its scheduled time.
        let now = since(start);
        loop {
            let scheduled = (f64::from(publisher.seq) * interval_ns) as u64;
            if scheduled > now || scheduled >= end {
                break;
            }
            if scheduled >= measure_from {
                sent_measured += 1;
            }
            let stamp = Stamp { sender: u32::MAX, seq: publisher.seq, sent_ns: scheduled };
            publisher.queue(&wire::client_frame(&stamp.payload(size)))?;
            publisher.seq += 1;
        }
        // Deliveries of the last message may still be on their way.
        if now >= end + 1_000_000_000 {
            break;
        }
        let next_due = (f64::from(publisher.seq) * interval_ns) as u64;
        let wait = Duration::from_nanos(next_due.saturating_sub(now).min(10_000_000));
        poll.poll(&mut events, Some(wait)).map_err(|e| e.to_string())?;
        publisher.flush()?;
        drain(&mut clients, &events, &mut scratch, |_, stamp, _| {
            if stamp.sent_ns >= measure_from && stamp.sent_ns < end {
                deliveries += 1;
                let _ = latency.record(since(start).saturating_sub(stamp.sent_ns).max(1));
            }
            Ok(())
        })?;
    }
    drop(idle);
    let expected = sent_measured * readers as u64;
    println!(
        "deliveries_per_sec={:.0} deliveries={} expected={} subscribers={} stalled={} rate={} size={} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1}",
        deliveries as f64 / args.seconds,
        deliveries,
        expected,
        readers,
        stalled,
        args.rate,
        size,
        us(&latency, 0.5),
        us(&latency, 0.99),
        us(&latency, 0.999),
        latency.max() as f64 / 1000.0
    );
    if deliveries < expected {
        return Err(format!("{} deliveries missing", expected - deliveries));
    }
    Ok(())
}
