//! `fanout`: N clients on one topic URL, N-to-N. Each client publishes one
//! message and waits until it has received that round's message from all N
//! clients (itself included), then publishes the next; every message
//! reaches all N. Reports deliveries per second, delivery latency (from
//! the send time in the stamp), and per (receiver, sender) losses and
//! reorderings.
//!
//! The room must send each message back to its sender too (ringcast-hub:
//! `?echo=1`; other servers under comparison send to everyone).

use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll};

use crate::args::{check_fd_limit, non_negative, share, Common};
use crate::check::SeqTracker;
use crate::client::{self, ConnectOptions, Phase};
use crate::deliver::{self, bury};
use crate::report::{round2, Report};
use crate::rng::Rng;
use crate::runner::{self, Ctx, Tally, ABORTED};
use crate::stamp::{Mode, Payload, Stamp};
use crate::wire::{self, Target};

/// Largest room (the tracker keeps N × N sequence numbers).
const MAX_CLIENTS: usize = 8192;

/// Seconds to wait for any client's own message to come back.
const OWN_ECHO_WAIT_NS: u64 = 3_000_000_000;

/// Options of `ringcast-bench fanout`.
#[derive(clap::Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Options shared by all scenarios.
    #[command(flatten)]
    pub common: Common,
    /// Clients in the room (each publishes and receives).
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Payload bytes per message (at least the stamp: 16, text 32).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Text messages (hex stamp, ASCII filler) instead of binary.
    #[arg(long)]
    pub text: bool,
    /// Seconds to wait for the last deliveries after publishing stops.
    #[arg(long, default_value_t = 1.0)]
    pub grace: f64,
}

struct FanoutOut {
    tally: Tally,
    tracker: SeqTracker,
    /// Messages published by each local client (all of the run).
    published: Vec<u64>,
    /// Publishes in the window.
    publishes: u64,
    first_id: usize,
}

/// Runs `fanout`; returns whether it was clean.
pub fn run(args: &FanoutArgs) -> Result<bool, String> {
    let common = &args.common;
    common.validate()?;
    let mode = Mode::from_text_flag(args.text);
    if args.size < mode.stamp_len() {
        return Err(format!("--size must be at least {} for the stamp of a {} message", mode.stamp_len(), mode.name()));
    }
    if args.connections == 0 || args.connections > MAX_CLIENTS {
        return Err(format!("--connections must be between 1 and {MAX_CLIENTS}"));
    }
    if !non_negative(args.grace) {
        return Err("--grace must not be negative".into());
    }
    check_fd_limit(args.connections + 100)?;
    let target = Arc::new(common.target()?);
    let shared = (target.clone(), Payload::new(args.size, mode), args.clone());
    let (outs, series, clock) = runner::run(
        common.threads,
        common.warmup,
        common.duration,
        "fanout",
        || {},
        move |ctx| worker(&ctx, &shared.0, &shared.1, &shared.2),
    )?;
    let mut published = vec![0u64; args.connections];
    for out in &outs {
        published[out.first_id..out.first_id + out.published.len()].copy_from_slice(&out.published);
    }
    let (mut tally, mut missing, mut reordered, mut publishes) = (Tally::new(), 0, 0, 0);
    for out in outs {
        missing += out.tracker.missing + out.tracker.tail_missing(&published);
        reordered += out.tracker.reordered;
        publishes += out.publishes;
        tally.merge(out.tally);
    }
    let duration = clock.window_s();
    let report = Report::new(
        "fanout",
        &target.url,
        args.connections,
        args.size,
        duration,
        tally.messages,
        tally.bytes,
        tally.errors.count,
        &tally.latency,
    )
    .with("deliveries", tally.messages)
    .with("deliveries_per_sec", round2(tally.messages as f64 / duration))
    .with("publishes", publishes)
    .with("publishes_per_sec", round2(publishes as f64 / duration))
    .with("missing", missing)
    .with("reordered", reordered)
    .with("mode", mode.name())
    .with("threads", common.threads);
    let notes = [format!(
        "{} publishes ({}/s), each delivered to all {} clients; missing {missing}, reordered {reordered}",
        publishes,
        crate::progress::thousands(publishes as f64 / duration),
        args.connections
    )];
    let clean = common.output().finish(&report, &notes, &tally.errors, &tally.latency, &series)?;
    if missing + reordered > 0 {
        eprintln!("ringcast-bench: {missing} messages missing, {reordered} reordered");
    }
    Ok(clean && missing + reordered == 0)
}

fn worker(ctx: &Ctx, target: &Target, payload: &Payload, args: &FanoutArgs) -> Result<FanoutOut, String> {
    let mut rng = Rng::from_os();
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let n = args.connections;
    let range = share(n, ctx.thread, ctx.threads);
    let (concurrency, timeout) = (args.common.concurrency_per_thread(), args.common.connect_timeout());
    let options = vec![ConnectOptions::default(); range.len()];
    let opened = client::establish(&mut poll, target, &options, 0, concurrency, timeout, &mut rng);
    let Some(clock) = ctx.ready(opened.is_ok()) else { return Err(opened.err().unwrap_or_else(|| ABORTED.into())) };
    let mut clients = opened?;
    let local = clients.len();
    let grace = (args.grace * 1e9) as u64;
    let mut out = FanoutOut {
        tally: Tally::new(),
        tracker: SeqTracker::new(local, n),
        published: vec![0; local],
        publishes: 0,
        first_id: range.start,
    };
    // The round each client is in, and how many of the messages of that
    // round (and of the next: a faster peer may be one ahead) it has got.
    let mut round = vec![0u32; local];
    let mut counts = vec![[0usize; 2]; local];
    let mut own_seen = false;
    let mut alive = local;
    let mut stamps = Vec::with_capacity(1024);
    let publish = |client: &mut client::Client, id: usize, seq: u32, now: u64, rng: &mut Rng| {
        let stamp = Stamp { sender: id as u32, seq, time_ns: now };
        let opcode = payload.mode().opcode();
        wire::push_frame(&mut client.out, opcode, payload.size(), rng.mask_key(), |o| payload.write(o, &stamp));
    };
    let now = clock.now();
    for (i, client) in clients.iter_mut().enumerate() {
        publish(client, range.start + i, 0, now, &mut rng);
        out.published[i] = 1;
        if let Err(e) = client.flush() {
            bury(client, poll.registry(), &mut out.tally.errors, format!("client {}: write: {e}", range.start + i));
            alive -= 1;
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut scratch = Vec::new();
    loop {
        let now = clock.now();
        if alive == 0 {
            return Ok(out); // every client died: the errors say why
        }
        let done = now >= clock.end + grace;
        if !own_seen && (done || now > OWN_ECHO_WAIT_NS) {
            return Err(format!(
                "no message came back to its sender (within {:.1} s): the room must echo to the sender \
                 (ringcast-hub: ?echo=1)",
                now as f64 / 1e9
            ));
        }
        if done {
            return Ok(out);
        }
        poll.poll(&mut events, Some(Duration::from_millis(50))).map_err(|e| format!("poll: {e}"))?;
        for event in &events {
            let i = event.token().0;
            let Some(client) = clients.get_mut(i).filter(|c| c.phase == Phase::Open) else { continue };
            let id = range.start + i;
            let mut result = Ok(0);
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                stamps.clear();
                let name = || format!("client {id}");
                let read = deliver::read_stamps(
                    client,
                    &name,
                    payload,
                    &mut scratch,
                    event.is_read_closed(),
                    &mut rng,
                    &mut out.tally.errors,
                    &mut stamps,
                );
                let now = clock.now();
                for stamp in &stamps {
                    let recorded =
                        deliver::record(&mut out.tally, &mut out.tracker, &clock, now, i, stamp, payload.size(), false);
                    if recorded.is_none() {
                        continue;
                    }
                    own_seen |= stamp.sender as usize == id;
                    let r = round[i];
                    if stamp.seq == r || stamp.seq == r.wrapping_add(1) {
                        counts[i][stamp.seq as usize & 1] += 1;
                    }
                }
                while counts[i][round[i] as usize & 1] >= n {
                    counts[i][round[i] as usize & 1] = 0;
                    round[i] += 1;
                    if now < clock.end {
                        publish(client, id, round[i], now, &mut rng);
                        out.published[i] += 1;
                        if clock.measured(now) {
                            out.publishes += 1;
                        }
                    }
                }
                result = read.and_then(|()| client.flush().map_err(|e| format!("client {id}: write: {e}")));
            } else if event.is_writable() && client.unsent() > 0 {
                result = client.flush().map_err(|e| format!("client {id}: write: {e}"));
            }
            if let Err(e) = result {
                bury(client, poll.registry(), &mut out.tally.errors, e);
                alive -= 1;
            }
        }
        if out.tally.tick(ctx) {
            return Err(ABORTED.into());
        }
    }
}
