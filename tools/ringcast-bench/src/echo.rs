//! Closed-loop echo load: every connection has one message in flight.

use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::wire::{self, Target};

/// Options of `ringcast-bench echo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// WebSocket URL of an echo server (ws://host:port/path).
    #[arg(long, required_unless_present = "tcp")]
    url: Option<String>,
    /// Address of a plain TCP echo server, instead of --url.
    #[arg(long, conflicts_with = "url")]
    tcp: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 20)]
    size: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

struct Conn {
    stream: TcpStream,
    /// Bytes of the current request written so far.
    written: usize,
    /// Bytes of the echo still expected.
    pending: usize,
    sent_at: Instant,
}

/// Runs the load and prints one line of results.
pub fn run(args: &Args) -> Result<(), String> {
    let payload: Vec<u8> = (0..args.size).map(|i| b'a' + (i % 26) as u8).collect();
    let (request, reply_len, mut sockets) = if let Some(addr) = &args.tcp {
        let sockets = (0..args.connections)
            .map(|_| {
                let s = std::net::TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                Ok(s)
            })
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| format!("connect {addr}: {e}"))?;
        (payload.clone(), args.size, sockets)
    } else {
        let target = Target::parse(args.url.as_deref().unwrap_or_default())?;
        let sockets = (0..args.connections)
            .map(|_| wire::open(&target))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| format!("connect {}: {e}", target.addr))?;
        (wire::client_frame(&payload), wire::server_frame_len(args.size), sockets)
    };
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut conns = Vec::with_capacity(sockets.len());
    for (i, s) in sockets.drain(..).enumerate() {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut stream = TcpStream::from_std(s);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        conns.push(Conn { stream, written: 0, pending: reply_len, sent_at: Instant::now() });
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut scratch = vec![0u8; (reply_len + 14).max(64 << 10)];
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let mut measuring = false;
    let mut echoes = 0u64;
    for conn in &mut conns {
        conn.sent_at = Instant::now();
        write_more(conn, &request)?;
    }
    let mut events = Events::with_capacity(1024);
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
        let now = Instant::now();
        if !measuring && now >= measure_from {
            measuring = true;
            echoes = 0;
            histogram.reset();
        }
        if now >= end {
            break;
        }
        for event in &events {
            let conn = &mut conns[event.token().0];
            if event.is_writable() && conn.written < request.len() {
                write_more(conn, &request)?;
            }
            if !event.is_readable() {
                continue;
            }
            loop {
                match conn.stream.read(&mut scratch) {
                    Ok(0) => return Err("the server closed a connection".into()),
                    Ok(n) if n > conn.pending => {
                        return Err(format!("{} unexpected bytes from the server (not an echo?)", n - conn.pending))
                    }
                    Ok(n) => {
                        conn.pending -= n;
                        if conn.pending == 0 {
                            let done = Instant::now();
                            if measuring {
                                echoes += 1;
                                let _ = histogram.record((done - conn.sent_at).as_nanos() as u64);
                            }
                            conn.pending = reply_len;
                            conn.written = 0;
                            conn.sent_at = done;
                            write_more(conn, &request)?;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        }
    }
    let elapsed = args.seconds;
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "echoes_per_sec={:.0} echoes={} connections={} size={} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
        echoes as f64 / elapsed,
        echoes,
        args.connections,
        args.size,
        us(0.5),
        us(0.99),
        us(0.999)
    );
    Ok(())
}

fn write_more(conn: &mut Conn, request: &[u8]) -> Result<(), String> {
    while conn.written < request.len() {
        match conn.stream.write(&request[conn.written..]) {
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(())
}
