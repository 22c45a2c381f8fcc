//! `connections`: ramps up to C connections (at a rate, or as fast as a
//! bounded number of attempts in progress allows), from several 127.0.0.x
//! source addresses past one address's ~28 000 ephemeral ports, then holds
//! them, pinging each every `--ping-interval` and checking the pongs.
//! Reports the connect rate, the handshake latency (connect to 101) and the
//! errors by kind (refused, timeout, non-101 status, ...).
//!
//! `idle` is an alias: with `--ping-interval 0` it holds idle connections
//! (tools/bench/idle_rss.py), printing `ready connections=N` once all are up
//! (with `deflate=M`, the connections that negotiated it, under
//! `--offer-deflate`).

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll, Token};

use crate::args::{check_fd_limit, non_negative, share, Common};
use crate::client::{Client, ConnectError, ConnectOptions, Phase};
use crate::frames::{describe_close, Frame, ReadEnd};
use crate::report::{round2, Report};
use crate::rng::Rng;
use crate::runner::{self, Ctx, Tally, ABORTED};
use crate::tls::Io;
use crate::wire::{self, Target};

/// Connections per source address when `--sources` is automatic.
const PER_SOURCE: usize = 25_000;

/// Options of `ringcast-bench connections`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionsArgs {
    /// Options shared by all scenarios.
    #[command(flatten)]
    pub common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Source addresses 127.0.0.1, .2, ... (0: one per 25 000 connections).
    #[arg(long, default_value_t = 0)]
    pub sources: usize,
    /// Connection attempts per second (0: as fast as --concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Seconds to hold the connections once all are up (default: --duration).
    #[arg(long)]
    pub hold: Option<f64>,
    /// Seconds between two pings on each held connection (0: none).
    #[arg(long, default_value_t = 1.0)]
    pub ping_interval: f64,
    /// Offer permessage-deflate (the report counts the connections that
    /// negotiated it): the memory of idle connections with deflate.
    #[arg(long)]
    pub offer_deflate: bool,
}

/// Ramp progress shared by the threads.
#[derive(Default)]
struct Ramp {
    /// Threads done with their ramp.
    done: AtomicUsize,
    /// Connections up over all threads.
    connected: AtomicU64,
    /// Of those, the ones that negotiated permessage-deflate.
    deflated: AtomicU64,
    /// When the last thread finished its ramp (ns since start), plus one.
    hold_start: AtomicU64,
}

struct ConnectionsOut {
    tally: Tally,
    connected: u64,
    kinds: BTreeMap<&'static str, u64>,
    pings: u64,
    deflated: u64,
}

/// Runs `connections`; returns whether it was clean.
pub fn run(args: &ConnectionsArgs) -> Result<bool, String> {
    let common = &args.common;
    common.validate()?;
    let hold = args.hold.unwrap_or(common.duration);
    if args.connections == 0 || ![hold, args.rate, args.ping_interval].into_iter().all(non_negative) {
        return Err("--connections must be positive; --hold, --rate and --ping-interval not negative".into());
    }
    check_fd_limit(args.connections + 100)?;
    let target = Arc::new(common.target()?);
    let sources = match args.sources {
        0 => args.connections.div_ceil(PER_SOURCE),
        n => n,
    };
    let sources: Vec<IpAddr> = if sources <= 1 {
        Vec::new()
    } else if target.addr.ip().is_loopback() && target.addr.is_ipv4() && sources < 250 {
        (0..sources).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8))).collect()
    } else {
        return Err("several --sources need an IPv4 loopback target (127.0.0.x) and fewer than 250".into());
    };
    let ramp = Arc::new(Ramp::default());
    let shared = (target.clone(), Arc::new(sources.clone()), ramp.clone(), args.clone(), hold);
    let (outs, series, _clock) = runner::run(
        common.threads,
        0.0,
        hold,
        "connections",
        || {},
        move |ctx| worker(&ctx, &shared.0, &shared.1, &shared.2, &shared.3, shared.4),
    )?;
    let (mut tally, mut connected, mut kinds, mut pings, mut deflated) = (Tally::new(), 0, BTreeMap::new(), 0, 0);
    for out in outs {
        tally.merge(out.tally);
        connected += out.connected;
        pings += out.pings;
        deflated += out.deflated;
        for (k, v) in out.kinds {
            *kinds.entry(k).or_insert(0) += v;
        }
    }
    let ramp_s = ramp.hold_start.load(Ordering::Relaxed).saturating_sub(1) as f64 / 1e9;
    let duration = ramp_s + hold;
    let connects_per_sec = if ramp_s > 0.0 { connected as f64 / ramp_s } else { 0.0 };
    let report = Report::new(
        "connections",
        &target.url,
        args.connections,
        0,
        duration,
        tally.messages,
        tally.bytes,
        tally.errors.count,
        &tally.latency,
    )
    .with("connected", connected)
    .with("connects_per_sec", round2(connects_per_sec))
    .with("ramp_s", round2(ramp_s))
    .with("hold_s", hold)
    .with("pings", pings)
    .with("deflate_negotiated", deflated)
    .with("sources", sources.len().max(1))
    .with("error_kinds", serde_json::to_value(&kinds).unwrap_or_default())
    .with("threads", common.threads);
    let notes = [format!(
        "{connected} of {} connected in {ramp_s:.2} s ({connects_per_sec:.0}/s) from {} source address(es), \
         held {hold} s with {pings} pings; latency = handshake (connect to 101); errors by kind {kinds:?}",
        args.connections,
        sources.len().max(1)
    )];
    common.output().finish(&report, &notes, &tally.errors, &tally.latency, &series)
}

/// A held connection's ping state: the number of the ping awaiting its pong.
const NO_PING: u64 = u64::MAX;

fn worker(
    ctx: &Ctx,
    target: &Target,
    sources: &[IpAddr],
    ramp: &Ramp,
    args: &ConnectionsArgs,
    hold: f64,
) -> Result<ConnectionsOut, String> {
    let mut rng = Rng::from_os();
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let range = share(args.connections, ctx.thread, ctx.threads);
    let Some(clock) = ctx.ready(true) else { return Err(ABORTED.into()) };
    let n = range.len();
    let concurrency = args.common.concurrency_per_thread();
    let timeout = args.common.connect_timeout();
    let interval = if args.rate > 0.0 { 1e9 * ctx.threads as f64 / args.rate } else { 0.0 };
    let mut out = ConnectionsOut { tally: Tally::new(), connected: 0, kinds: BTreeMap::new(), pings: 0, deflated: 0 };
    let mut clients: Vec<Option<Client>> = Vec::with_capacity(n);
    let mut awaiting: Vec<u64> = Vec::new();
    let mut in_progress: VecDeque<usize> = VecDeque::new();
    let (mut ramped, mut hold_start, mut hold_end) = (false, 0u64, u64::MAX);
    let (mut ping_cursor, mut ping_number) = (0u64, 0u64);
    let ping_ns = (args.ping_interval * 1e9) as u64;
    let mut events = Events::with_capacity(1024);
    let mut scratch = Vec::new();
    let fail = |out: &mut ConnectionsOut, e: ConnectError, i: usize| {
        *out.kinds.entry(e.kind).or_insert(0) += 1;
        out.tally.errors.add(|| format!("connection {}: {} ({})", range.start + i, e.message, e.kind));
    };
    loop {
        let now = clock.now();
        // Start the attempts that are due and fit.
        while clients.len() < n && in_progress.len() < concurrency && (clients.len() as f64 * interval) as u64 <= now {
            let i = clients.len();
            let options = ConnectOptions {
                source: sources.get((range.start + i) % sources.len().max(1)).copied(),
                offer_deflate: args.offer_deflate,
                ..ConnectOptions::default()
            };
            match Client::connect(target, options, &mut rng, poll.registry(), Token(i)) {
                Ok(client) => {
                    clients.push(Some(client));
                    in_progress.push_back(i);
                }
                Err(e) => {
                    clients.push(None);
                    fail(&mut out, e, i);
                }
            }
        }
        // Time out the attempts that take too long (oldest first).
        while let Some(&i) = in_progress.front() {
            match clients[i].as_mut() {
                Some(c) if c.phase == Phase::Connecting || c.phase == Phase::Upgrading => {
                    if c.started.elapsed() < timeout {
                        break;
                    }
                    c.close(poll.registry());
                    fail(&mut out, ConnectError { kind: "timeout", message: format!("no 101 within {timeout:?}") }, i);
                }
                _ => {}
            }
            in_progress.pop_front();
        }
        if !ramped && clients.len() == n && in_progress.is_empty() {
            ramped = true;
            awaiting = vec![NO_PING; n];
            ramp.connected.fetch_add(out.connected, Ordering::Relaxed);
            ramp.deflated.fetch_add(out.deflated, Ordering::Relaxed);
            if ramp.done.fetch_add(1, Ordering::AcqRel) + 1 == ctx.threads {
                ramp.hold_start.store(clock.now() + 1, Ordering::Release);
                let connected = ramp.connected.load(Ordering::Relaxed);
                if args.offer_deflate {
                    println!("ready connections={connected} deflate={}", ramp.deflated.load(Ordering::Relaxed));
                } else {
                    println!("ready connections={connected}");
                }
                let _ = std::io::stdout().flush();
            }
        }
        if ramped && hold_start == 0 {
            hold_start = ramp.hold_start.load(Ordering::Acquire);
            if hold_start > 0 {
                hold_end = hold_start + (hold * 1e9) as u64;
            }
        }
        if hold_start > 0 && ping_ns > 0 && n > 0 && now < hold_end {
            // Pings spread evenly: by now, (now - start) / interval rounds
            // over all n connections are due.
            let due = (u128::from(now.saturating_sub(hold_start)) * n as u128 / u128::from(ping_ns)) as u64 + 1;
            while ping_cursor < due {
                let i = (ping_cursor % n as u64) as usize;
                ping_cursor += 1;
                let Some(client) = clients[i].as_mut().filter(|c| c.phase == Phase::Open) else { continue };
                if awaiting[i] != NO_PING {
                    out.tally.errors.add(|| {
                        format!("connection {}: no pong within {:?}", range.start + i, Duration::from_nanos(ping_ns))
                    });
                }
                ping_number += 1;
                awaiting[i] = ping_number;
                out.pings += 1;
                wire::push_bytes(&mut client.out, wire::OP_PING, &ping_number.to_be_bytes(), rng.mask_key());
                if let Err(e) = client.flush() {
                    out.tally.errors.add(|| format!("connection {}: ping: {e}", range.start + i));
                    client.close(poll.registry());
                }
            }
        }
        let grace = ping_ns.min(1_000_000_000);
        let pending_pongs = now >= hold_end && awaiting.iter().any(|a| *a != NO_PING);
        if now >= hold_end && (!pending_pongs || now >= hold_end + grace) {
            let missing = awaiting.iter().filter(|a| **a != NO_PING).count() as u64;
            out.tally.errors.add_many(missing, || format!("{missing} pongs missing at the end"));
            return Ok(out);
        }
        poll.poll(&mut events, Some(Duration::from_millis(10))).map_err(|e| format!("poll: {e}"))?;
        for event in &events {
            let i = event.token().0;
            let Some(client) = clients.get_mut(i).and_then(|c| c.as_mut()) else { continue };
            match client.phase {
                Phase::Closed => continue,
                Phase::Connecting | Phase::Upgrading => match client.advance(&mut scratch, |_| {}) {
                    Ok(true) => {
                        let took = client.started.elapsed().as_nanos() as u64;
                        out.tally.latency.saturating_record(took.max(1));
                        out.connected += 1;
                        out.deflated += u64::from(client.reader.deflates());
                        out.tally.seen += 1;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        client.close(poll.registry());
                        fail(&mut out, e, i);
                    }
                },
                Phase::Open => {
                    let result =
                        held_event(client, &mut scratch, event.is_read_closed(), &mut rng, awaiting.get_mut(i));
                    match result {
                        Ok(pongs) => {
                            out.tally.messages += pongs;
                            out.tally.seen += pongs;
                        }
                        Err(e) => {
                            out.tally.errors.add(|| format!("connection {}: {e}", range.start + i));
                            client.close(poll.registry());
                            if let Some(a) = awaiting.get_mut(i) {
                                *a = NO_PING;
                            }
                        }
                    }
                }
            }
        }
        if out.tally.tick(ctx) {
            return Err(ABORTED.into());
        }
    }
}

/// Reads a held connection: checks pongs against the ping awaiting one,
/// answers server pings. Returns the pongs that matched.
fn held_event(
    client: &mut Client,
    scratch: &mut Vec<u8>,
    until_closed: bool,
    rng: &mut Rng,
    awaiting: Option<&mut u64>,
) -> Result<u64, String> {
    let mut pending = awaiting.as_deref().copied().unwrap_or(NO_PING);
    let (mut pongs, mut problem) = (0u64, None);
    let Client { stream, tls, reader, out, .. } = client;
    let end = reader.read_from(&mut Io::new(stream, tls), scratch, until_closed, |frame| match frame {
        Frame::Pong(data) => {
            if pending != NO_PING && data == pending.to_be_bytes() {
                pending = NO_PING;
                pongs += 1;
            } else {
                problem = Some(format!("an unexpected pong ({} bytes)", data.len()));
            }
        }
        Frame::Ping(data) => wire::push_bytes(out, wire::OP_PONG, data, rng.mask_key()),
        Frame::Data { payload, .. } => problem = Some(format!("an unexpected message ({} bytes)", payload.len())),
        Frame::Close(data) => problem = Some(format!("the server closed it ({})", describe_close(data))),
    })?;
    if let Some(a) = awaiting {
        *a = pending;
    }
    if let Some(p) = problem {
        return Err(p);
    }
    if end == ReadEnd::Eof {
        return Err("the server closed it (end of stream)".into());
    }
    client.flush().map_err(|e| format!("write: {e}"))?;
    Ok(pongs)
}
