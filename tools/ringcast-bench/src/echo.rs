//! `echo`: closed loop. Every connection keeps K messages in flight and
//! sends the next as soon as an echo is back; reports echoes per second and
//! round trips. The connection machinery here (an [`EchoConn`] and the
//! checks of what comes back) is shared with `rate`.
//!
//! Every message carries the connection id and its sequence number (a
//! [`Stamp`]) and a filler derived from them; each echo must be exactly
//! what was sent (length, opcode, bytes), in order.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::args::{check_fd_limit, share, Common};
use crate::check::Errors;
use crate::client::{self, Client, ConnectOptions, Phase};
use crate::frames::{describe_close, Frame, ReadEnd};
use crate::report::Report;
use crate::rng::Rng;
use crate::runner::{self, Ctx, Tally, ABORTED};
use crate::stamp::{Mode, Payload, Stamp};
use crate::tls::Io;
use crate::wire::{self, Target};

/// Most bytes queued on one connection before it counts as stuck.
pub const MAX_UNSENT: usize = 64 << 20;

/// What `echo` and `rate` connect to and send.
#[derive(clap::Args, Debug, Clone)]
pub struct EchoLoad {
    /// Options shared by all scenarios.
    #[command(flatten)]
    pub common: Common,
    /// Address of a plain TCP echo server, instead of --url (a floor to
    /// compare WebSocket servers with).
    #[arg(long, conflicts_with = "url")]
    pub tcp: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 20)]
    pub size: usize,
    /// Text messages (hex stamp, ASCII filler) instead of binary.
    #[arg(long)]
    pub text: bool,
}

/// Options of `ringcast-bench echo`.
#[derive(clap::Args, Debug, Clone)]
pub struct EchoArgs {
    /// Target, connections and messages.
    #[command(flatten)]
    pub load: EchoLoad,
    /// Messages in flight per connection.
    #[arg(long, short = 'k', default_value_t = 1)]
    pub in_flight: usize,
}

/// Where the echoes come from, resolved once.
#[derive(Debug, Clone)]
pub struct EchoSetup {
    /// WebSocket server, or `None` for plain TCP.
    pub target: Option<Target>,
    /// Plain TCP echo server.
    pub tcp: Option<SocketAddr>,
    /// The URL for the report.
    pub url: String,
    /// Message payloads.
    pub payload: Payload,
    /// The options.
    pub load: EchoLoad,
}

impl EchoSetup {
    /// Validates and resolves the options.
    pub fn new(load: &EchoLoad) -> Result<EchoSetup, String> {
        load.common.validate()?;
        if load.connections == 0 || load.connections > u32::MAX as usize {
            return Err("--connections must be positive".into());
        }
        check_fd_limit(load.connections + 100)?;
        let payload = Payload::new(load.size, Mode::from_text_flag(load.text));
        if let Some(addr) = &load.tcp {
            if load.size == 0 {
                return Err("--size must be at least 1 with --tcp".into());
            }
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("--tcp {addr}: expected host:port"))?;
            let port = port.parse().map_err(|_| format!("--tcp {addr}: bad port"))?;
            let tcp = wire::resolve(host.trim_matches(['[', ']']), port)?;
            return Ok(EchoSetup {
                target: None,
                tcp: Some(tcp),
                url: format!("tcp://{addr}"),
                payload,
                load: load.clone(),
            });
        }
        let target = load.common.target()?;
        Ok(EchoSetup { url: target.url.clone(), target: Some(target), tcp: None, payload, load: load.clone() })
    }

    /// Opens this thread's connections (ids `range`) on `poll`, token = index.
    pub fn open(&self, poll: &mut Poll, range: Range<usize>, rng: &mut Rng) -> Result<Vec<EchoConn>, String> {
        let clients = match (&self.target, self.tcp) {
            (Some(target), _) => client::establish(
                poll,
                target,
                &vec![ConnectOptions::default(); range.len()],
                0,
                self.load.common.concurrency_per_thread(),
                self.load.common.connect_timeout(),
                rng,
            )?,
            (None, Some(addr)) => {
                let mut clients = Vec::with_capacity(range.len());
                for i in 0..range.len() {
                    let socket = std::net::TcpStream::connect_timeout(&addr, self.load.common.connect_timeout())
                        .map_err(|e| format!("connect {addr}: {e}"))?;
                    socket.set_nodelay(true).map_err(|e| e.to_string())?;
                    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
                    let mut stream = TcpStream::from_std(socket);
                    poll.registry()
                        .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)
                        .map_err(|e| e.to_string())?;
                    clients.push(Client::from_open(stream));
                }
                clients
            }
            (None, None) => return Err("no target".into()),
        };
        Ok(clients
            .into_iter()
            .zip(range)
            .map(|(client, id)| EchoConn { client, id: id as u32, next_send: 0, next_recv: 0, partial: 0 })
            .collect())
    }
}

/// One echo connection.
#[derive(Debug)]
pub struct EchoConn {
    /// The connection.
    pub client: Client,
    /// Connection id (global over threads).
    pub id: u32,
    /// Sequence number of the next message sent.
    pub next_send: u32,
    /// Sequence number of the next echo expected.
    pub next_recv: u32,
    /// Plain TCP: bytes of the current echo already checked.
    partial: usize,
}

impl EchoConn {
    /// Whether the connection is still usable.
    pub fn alive(&self) -> bool {
        self.client.phase == Phase::Open
    }

    /// Echoes outstanding.
    pub fn outstanding(&self) -> u32 {
        self.next_send - self.next_recv
    }

    /// Queues the next message (framed and masked unless plain TCP).
    #[inline]
    pub fn queue(&mut self, payload: &Payload, tcp: bool, rng: &mut Rng) {
        let stamp = Stamp { sender: self.id, seq: self.next_send, time_ns: 0 };
        self.next_send += 1;
        let out = &mut self.client.out;
        if tcp {
            payload.write(out, &stamp);
        } else {
            let opcode = payload.mode().opcode();
            wire::push_frame(out, opcode, payload.size(), rng.mask_key(), |o| payload.write(o, &stamp));
        }
    }

    /// Writes what is queued; an error is fatal for the connection.
    #[inline]
    pub fn flush(&mut self) -> Result<usize, String> {
        if self.client.unsent() > MAX_UNSENT {
            return Err(format!("connection {}: {} bytes unsent (the server stopped reading)", self.id, MAX_UNSENT));
        }
        self.client.flush().map_err(|e| format!("connection {}: write: {e}", self.id))
    }

    /// Reads what arrived and checks every echo; returns the sequence
    /// numbers completed. Mismatches are counted in `errors`; an `Err` means
    /// the connection is dead (closed, reset or broken).
    pub fn read_echoes(
        &mut self,
        payload: &Payload,
        tcp: bool,
        scratch: &mut Vec<u8>,
        until_closed: bool,
        rng: &mut Rng,
        errors: &mut Errors,
    ) -> Result<Range<u32>, String> {
        let first = self.next_recv;
        let id = self.id;
        if tcp {
            return self.read_tcp(payload, scratch, until_closed, errors).map(|()| first..self.next_recv);
        }
        let (next_send, next_recv) = (self.next_send, &mut self.next_recv);
        let Client { stream, tls, reader, out, .. } = &mut self.client;
        let mut closed = None;
        let end = reader.read_from(&mut Io::new(stream, tls), scratch, until_closed, |frame| match frame {
            Frame::Data { text, payload: got } => {
                let seq = *next_recv;
                if seq == next_send {
                    errors.add(|| format!("connection {id}: a message nothing was sent for ({} bytes)", got.len()));
                    return;
                }
                if text != (payload.mode() == Mode::Text) {
                    errors.add(|| {
                        format!("connection {id}: echo {seq} came back as {}", if text { "text" } else { "binary" })
                    });
                } else if let Err(e) = payload.check(got, &Stamp { sender: id, seq, time_ns: 0 }) {
                    errors.add(|| format!("connection {id}: echo {seq}: {e}"));
                }
                *next_recv += 1;
            }
            Frame::Ping(data) => wire::push_bytes(out, wire::OP_PONG, data, rng.mask_key()),
            Frame::Pong(_) => {}
            Frame::Close(data) => closed = Some(describe_close(data)),
        });
        let end = end.map_err(|e| format!("connection {id}: {e}"))?;
        if let Some(close) = closed {
            return Err(format!("connection {id}: the server closed it ({close})"));
        }
        if end == ReadEnd::Eof {
            return Err(format!("connection {id}: the server closed it (end of stream, no close frame)"));
        }
        Ok(first..self.next_recv)
    }

    fn read_tcp(
        &mut self,
        payload: &Payload,
        scratch: &mut Vec<u8>,
        until_closed: bool,
        errors: &mut Errors,
    ) -> Result<(), String> {
        use std::io::{ErrorKind, Read};
        if scratch.len() < crate::frames::READ_CHUNK {
            scratch.resize(crate::frames::READ_CHUNK, 0);
        }
        loop {
            let n = match self.client.stream.read(scratch) {
                Ok(0) => return Err(format!("connection {}: the server closed it", self.id)),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("connection {}: read: {e}", self.id)),
            };
            let mut rest = &scratch[..n];
            while !rest.is_empty() {
                if self.next_recv == self.next_send {
                    errors.add(|| format!("connection {}: {} bytes nothing was sent for", self.id, rest.len()));
                    break;
                }
                let take = rest.len().min(payload.size() - self.partial);
                let stamp = Stamp { sender: self.id, seq: self.next_recv, time_ns: 0 };
                if let Err(e) = payload.check_part(&rest[..take], self.partial, &stamp) {
                    errors.add(|| format!("connection {}: echo {}: {e}", self.id, stamp.seq));
                }
                self.partial += take;
                rest = &rest[take..];
                if self.partial == payload.size() {
                    self.partial = 0;
                    self.next_recv += 1;
                }
            }
            if n < scratch.len() && !until_closed {
                return Ok(());
            }
        }
    }
}

/// What an echo worker returns.
pub struct EchoOut {
    /// Counters.
    pub tally: Tally,
    /// When the loop stopped (ns since start).
    pub stopped: u64,
}

/// Runs `echo`; returns whether it was clean.
pub fn run(args: &EchoArgs) -> Result<bool, String> {
    let setup = Arc::new(EchoSetup::new(&args.load)?);
    if args.in_flight == 0 {
        return Err("--in-flight must be at least 1".into());
    }
    let k = args.in_flight;
    let common = &args.load.common;
    let worker_setup = setup.clone();
    let (outs, series, clock) = runner::run(
        common.threads,
        common.warmup,
        common.duration,
        "echo",
        || {},
        move |ctx| closed_loop(&ctx, &worker_setup, k),
    )?;
    let mut tally = Tally::new();
    let stopped = outs.iter().map(|o| o.stopped).max().unwrap_or(0);
    for out in outs {
        tally.merge(out.tally);
    }
    let duration = (stopped.min(clock.end).saturating_sub(clock.measure_from)) as f64 / 1e9;
    let load = &args.load;
    let report = Report::new(
        "echo",
        &setup.url,
        load.connections,
        load.size,
        duration,
        tally.messages,
        tally.bytes,
        tally.errors.count,
        &tally.latency,
    )
    .with("in_flight", k)
    .with("mode", setup.payload.mode().name())
    .with("threads", common.threads);
    let notes =
        [format!("{k} in flight per connection, {} messages, {} threads", setup.payload.mode().name(), common.threads)];
    common.output().finish(&report, &notes, &tally.errors, &tally.latency, &series)
}

fn closed_loop(ctx: &Ctx, setup: &EchoSetup, k: usize) -> Result<EchoOut, String> {
    let mut rng = Rng::from_os();
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let range = share(setup.load.connections, ctx.thread, ctx.threads);
    let opened = setup.open(&mut poll, range, &mut rng);
    let Some(clock) = ctx.ready(opened.is_ok()) else { return Err(opened.err().unwrap_or_else(|| ABORTED.into())) };
    let mut conns = opened?;
    let (payload, tcp) = (&setup.payload, setup.tcp.is_some());
    let mut tally = Tally::new();
    // Send time of each message in flight, by sequence number modulo k.
    let mut sent_at = vec![0u64; conns.len() * k];
    let now = clock.now();
    let mut alive = conns.len();
    for (i, conn) in conns.iter_mut().enumerate() {
        for _ in 0..k {
            sent_at[i * k + conn.next_send as usize % k] = now;
            conn.queue(payload, tcp, &mut rng);
        }
        if let Err(e) = conn.flush() {
            tally.errors.add(|| e);
            conn.client.close(poll.registry());
            alive -= 1;
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut scratch = Vec::new();
    let size = payload.size() as u64;
    loop {
        let now = clock.now();
        if now >= clock.end || alive == 0 {
            return Ok(EchoOut { tally, stopped: now });
        }
        let wait = Duration::from_nanos((clock.end - now).min(100_000_000));
        poll.poll(&mut events, Some(wait)).map_err(|e| format!("poll: {e}"))?;
        for event in &events {
            let i = event.token().0;
            let Some(conn) = conns.get_mut(i).filter(|c| c.alive()) else { continue };
            let mut result = Ok(0);
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                match conn.read_echoes(payload, tcp, &mut scratch, event.is_read_closed(), &mut rng, &mut tally.errors)
                {
                    Ok(done) => {
                        let now = clock.now();
                        let measured = clock.measured(now);
                        tally.seen += u64::from(done.end - done.start);
                        for seq in done.clone() {
                            if measured {
                                let rtt = now.saturating_sub(sent_at[i * k + seq as usize % k]);
                                tally.latency.saturating_record(rtt.max(1));
                                tally.messages += 1;
                                tally.bytes += size;
                            }
                            if now < clock.end {
                                sent_at[i * k + conn.next_send as usize % k] = now;
                                conn.queue(payload, tcp, &mut rng);
                            }
                        }
                        result = conn.flush();
                    }
                    Err(e) => result = Err(e),
                }
            } else if event.is_writable() && conn.client.unsent() > 0 {
                result = conn.flush();
            }
            if let Err(e) = result {
                tally.errors.add(|| e);
                conn.client.close(poll.registry());
                alive -= 1;
            }
        }
        if tally.tick(ctx) {
            return Err(ABORTED.into());
        }
    }
}
