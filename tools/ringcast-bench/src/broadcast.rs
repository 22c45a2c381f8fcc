//! `broadcast`: S subscribers on a topic URL, P publishers (WebSocket, or
//! HTTP `POST /publish/{topic}`) at a fixed total rate. Each message is
//! stamped with its publisher, its number and its intended send time;
//! delivery latency is measured from that time (no coordinated omission).
//! Reports deliveries per second and what was missing or reordered per
//! (subscriber, publisher). `--stalled` makes a fraction of the subscribers
//! never read (4 KiB receive buffers, so the server's queue fills soon);
//! they are not checked.

use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll, Token};

use crate::args::{check_fd_limit, non_negative, positive, share, Common};
use crate::check::SeqTracker;
use crate::client::{self, Client, ConnectOptions, Phase};
use crate::deliver::{self, bury};
use crate::http::{self, HttpPublisher};
use crate::progress::thousands;
use crate::report::{round2, Report};
use crate::rng::Rng;
use crate::runner::{self, Clock, Ctx, Tally, ABORTED};
use crate::stamp::{Mode, Payload, Stamp};
use crate::wire::{self, Target};

const STALLED_BASE: usize = 1 << 40;
const PUBLISHER_BASE: usize = 1 << 41;

/// How publishers publish.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// WebSocket messages in the room.
    Ws,
    /// HTTP POST /publish/{topic}.
    Http,
}

/// Options of `ringcast-bench broadcast`.
#[derive(clap::Args, Debug, Clone)]
pub struct BroadcastArgs {
    /// Options shared by all scenarios.
    #[command(flatten)]
    pub common: Common,
    /// Subscribers (the stalled ones included).
    #[arg(long, visible_alias = "connections", default_value_t = 10_000)]
    pub subscribers: usize,
    /// Publishers.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// How the publishers publish.
    #[arg(long, value_enum, default_value_t = Via::Ws)]
    pub via: Via,
    /// Messages per second, in total over the publishers.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Payload bytes per message (at least the stamp: 16, text 32).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Fraction of the subscribers that never read.
    #[arg(long, default_value_t = 0.0)]
    pub stalled: f64,
    /// Text messages (hex stamp, ASCII filler) instead of binary.
    #[arg(long)]
    pub text: bool,
    /// With --via http: close each connection as soon as its `Connection:
    /// close` answer is complete, instead of waiting for the server to
    /// close it.
    #[arg(long)]
    pub http_early_close: bool,
    /// Seconds to wait for the last deliveries after publishing stops.
    #[arg(long, default_value_t = 1.0)]
    pub grace: f64,
    /// Where the publishers connect, when not to --url: another hub of the
    /// same cluster, to measure delivery across hubs.
    #[arg(long)]
    pub publish_url: Option<String>,
    /// Subscribers offer permessage-deflate and inflate what comes
    /// compressed; the report counts the bytes that crossed the wire per
    /// delivery and the subscribers that negotiated it.
    #[arg(long)]
    pub deflate: bool,
    /// The filler after the stamp: `letters` (compresses to almost
    /// nothing) or `json` (reads like a JSON feed: for compression figures).
    #[arg(long, value_enum, default_value_t = Filler::Letters)]
    pub filler: Filler,
}

/// What fills a message after its stamp.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filler {
    /// The alphabet, shifted per message.
    Letters,
    /// Records of a made-up price feed.
    Json,
}

struct Plan {
    target: Target,
    /// Where the publishers connect.
    publish_target: Target,
    payload: Payload,
    readers: usize,
    stalled: usize,
    post_path: Option<String>,
    args: BroadcastArgs,
}

impl Plan {
    /// When message `seq` of publisher `p` is due: slot `seq * P + p`.
    fn due(&self, p: usize, seq: u32) -> u64 {
        let slot = u64::from(seq) * self.args.publishers as u64 + p as u64;
        (slot as f64 * 1e9 / self.args.rate) as u64
    }

    /// When message `seq` of publisher `p` is due, or never if that is past
    /// the end of sending.
    fn next_due(&self, p: usize, seq: u32, clock: &Clock) -> u64 {
        Some(self.due(p, seq)).filter(|&t| t < clock.end).unwrap_or(u64::MAX)
    }
}

struct BroadcastOut {
    tally: Tally,
    tracker: SeqTracker,
    /// (publisher, messages it published).
    published: Vec<(usize, u64)>,
    /// Publishes in the window.
    publishes: u64,
    /// Bytes the subscribers read from their sockets (the whole run).
    wire_bytes: u64,
    /// Subscribers that negotiated permessage-deflate.
    deflated: u64,
}

/// Runs `broadcast`; returns whether it was clean.
pub fn run(args: &BroadcastArgs) -> Result<bool, String> {
    let common = &args.common;
    common.validate()?;
    let mode = Mode::from_text_flag(args.text);
    if args.size < mode.stamp_len() {
        return Err(format!("--size must be at least {} for the stamp of a {} message", mode.stamp_len(), mode.name()));
    }
    if !positive(args.rate) || !(0.0..1.0).contains(&args.stalled) || !non_negative(args.grace) {
        return Err("--rate must be positive, --stalled in [0, 1) and --grace not negative".into());
    }
    if args.publishers == 0 || args.subscribers == 0 {
        return Err("--publishers and --subscribers must be positive".into());
    }
    check_fd_limit(args.subscribers + args.publishers + 100)?;
    let target = common.target()?;
    let publish_target =
        Target::with_ca(args.publish_url.as_deref().unwrap_or(common.url()?), common.tls_ca.as_deref())?;
    let post_path = match args.via {
        Via::Http => Some(http::publish_path(&publish_target)?),
        Via::Ws => None,
    };
    let stalled = (args.subscribers as f64 * args.stalled).round() as usize;
    let readers = args.subscribers - stalled;
    let plan = Arc::new(Plan {
        target,
        publish_target,
        payload: match args.filler {
            Filler::Letters => Payload::new(args.size, mode),
            Filler::Json => Payload::json_like(args.size, mode),
        },
        readers,
        stalled,
        post_path,
        args: args.clone(),
    });
    let worker_plan = plan.clone();
    let ready = move || {
        println!("ready subscribers={readers} stalled={stalled}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    };
    let (outs, series, clock) =
        runner::run(common.threads, common.warmup, common.duration, "broadcast", ready, move |ctx| {
            worker(&ctx, &worker_plan)
        })?;
    let mut published = vec![0u64; args.publishers];
    for out in &outs {
        for &(p, n) in &out.published {
            published[p] = n;
        }
    }
    let (mut tally, mut missing, mut reordered, mut publishes) = (Tally::new(), 0, 0, 0);
    let (mut wire_bytes, mut deflated) = (0, 0);
    for out in outs {
        missing += out.tracker.missing + out.tracker.tail_missing(&published);
        reordered += out.tracker.reordered;
        publishes += out.publishes;
        wire_bytes += out.wire_bytes;
        deflated += out.deflated;
        tally.merge(out.tally);
    }
    let duration = clock.window_s();
    let achieved = publishes as f64 / duration;
    let via = match args.via {
        Via::Ws => "ws",
        Via::Http => "http",
    };
    let report = Report::new(
        "broadcast",
        &plan.target.url,
        args.subscribers,
        args.size,
        duration,
        tally.messages,
        tally.bytes,
        tally.errors.count,
        &tally.latency,
    )
    .with("deliveries", tally.messages)
    .with("deliveries_per_sec", round2(tally.messages as f64 / duration))
    .with("expected", publishes * readers as u64)
    .with("publishes", publishes)
    .with("missing", missing)
    .with("reordered", reordered)
    .with("subscribers", readers)
    .with("stalled", stalled)
    .with("publishers", args.publishers)
    .with("via", via)
    .with("publish_url", plan.publish_target.url.as_str())
    .with("rate", args.rate)
    .with("rate_achieved", round2(achieved))
    .with("mode", mode.name())
    .with("wire_bytes", wire_bytes)
    .with("wire_bytes_per_delivery", round2(wire_bytes as f64 / tally.seen.max(1) as f64))
    .with("deflate_negotiated", deflated)
    .with("threads", common.threads);
    let mut notes = vec![format!(
        "{} publishers via {via} at {} msgs/s (sent {achieved:.1}/s) to {readers} subscribers (+{stalled} stalled): \
         {} deliveries of {} expected; missing {missing}, reordered {reordered}",
        args.publishers,
        args.rate,
        thousands(tally.messages as f64),
        thousands((publishes * readers as u64) as f64)
    )];
    if achieved < 0.95 * args.rate {
        let warning = format!("warning: published only {:.1}% of the asked rate", 100.0 * achieved / args.rate);
        eprintln!("ringcast-bench: {warning}");
        notes.push(warning);
    }
    let clean = common.output().finish(&report, &notes, &tally.errors, &tally.latency, &series)?;
    if missing + reordered > 0 {
        eprintln!("ringcast-bench: {missing} messages missing, {reordered} reordered");
    }
    Ok(clean && missing + reordered == 0)
}

enum Publisher {
    Ws { id: usize, client: Client, next: u32 },
    Http(HttpPublisher),
}

fn worker(ctx: &Ctx, plan: &Plan) -> Result<BroadcastOut, String> {
    let mut rng = Rng::from_os();
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let setup = setup(ctx, plan, &mut poll, &mut rng);
    let Some(clock) = ctx.ready(setup.is_ok()) else { return Err(setup.err().unwrap_or_else(|| ABORTED.into())) };
    let (mut readers, _stalled, mut publishers) = setup?;
    let grace = (plan.args.grace * 1e9) as u64;
    let mut out = BroadcastOut {
        tally: Tally::new(),
        tracker: SeqTracker::new(readers.len(), plan.args.publishers),
        published: Vec::new(),
        publishes: 0,
        wire_bytes: 0,
        deflated: 0,
    };
    let payload = &plan.payload;
    let mut events = Events::with_capacity(4096);
    let (mut scratch, mut stamps) = (Vec::new(), Vec::with_capacity(1024));
    let mut alive = readers.len();
    loop {
        let now = clock.now();
        if now >= clock.end + grace || (alive == 0 && !readers.is_empty()) {
            out.published = publishers
                .iter()
                .map(|p| match p {
                    Publisher::Ws { id, next, .. } => (*id, u64::from(*next)),
                    Publisher::Http(h) => (h.id as usize, h.published),
                })
                .collect();
            out.wire_bytes = readers.iter().map(|c| c.reader.wire_bytes).sum();
            out.deflated = readers.iter().filter(|c| c.reader.deflates()).count() as u64;
            return Ok(out);
        }
        let mut next_due = clock.end + grace;
        for publisher in &mut publishers {
            next_due = next_due.min(publish_due(publisher, plan, &clock, now, &mut rng, &mut poll, &mut out));
        }
        let wait = match next_due.saturating_sub(clock.now()) {
            ns if ns < 1_000_000 => Duration::ZERO,
            ns => Duration::from_millis((ns / 1_000_000).min(100)),
        };
        poll.poll(&mut events, Some(wait)).map_err(|e| format!("poll: {e}"))?;
        for event in &events {
            let token = event.token().0;
            if token >= PUBLISHER_BASE {
                let Some(publisher) = publishers.get_mut(token - PUBLISHER_BASE) else { continue };
                stamps.clear();
                on_publisher_event(publisher, plan, &clock, &mut poll, &mut scratch, &mut rng, &mut out, &mut stamps);
                continue;
            }
            let Some(client) = readers.get_mut(token).filter(|c| c.phase == Phase::Open) else { continue };
            stamps.clear();
            let name = || format!("subscriber {token} of thread {}", ctx.thread);
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
                deliver::record(&mut out.tally, &mut out.tracker, &clock, now, token, stamp, payload.size(), true);
            }
            let result = read.and_then(|()| client.flush().map(|_| ()).map_err(|e| format!("{}: write: {e}", name())));
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

type Setup = (Vec<Client>, Vec<Client>, Vec<Publisher>);

fn setup(ctx: &Ctx, plan: &Plan, poll: &mut Poll, rng: &mut Rng) -> Result<Setup, String> {
    let common = &plan.args.common;
    let (concurrency, timeout) = (common.concurrency_per_thread(), common.connect_timeout());
    let readers = share(plan.readers, ctx.thread, ctx.threads).len();
    let stalled = share(plan.stalled, ctx.thread, ctx.threads).len();
    let plain = vec![ConnectOptions { offer_deflate: plan.args.deflate, ..ConnectOptions::default() }; readers];
    let readers = client::establish(poll, &plan.target, &plain, 0, concurrency, timeout, rng)?;
    let small = vec![ConnectOptions { recv_buffer: Some(4096), ..ConnectOptions::default() }; stalled];
    let mut stalled = client::establish(poll, &plan.target, &small, STALLED_BASE, concurrency, timeout, rng)?;
    for client in &mut stalled {
        client.deregister(poll.registry());
    }
    let ids: Vec<usize> = (0..plan.args.publishers).filter(|p| p % ctx.threads == ctx.thread).collect();
    let publishers = match &plan.post_path {
        Some(path) => ids
            .iter()
            .enumerate()
            .map(|(j, &id)| {
                let token = Token(PUBLISHER_BASE + j);
                let early = plan.args.http_early_close;
                Publisher::Http(HttpPublisher::new(id as u32, &plan.publish_target, path, &plan.payload, token, early))
            })
            .collect(),
        None => {
            let options = vec![ConnectOptions::default(); ids.len()];
            let target = &plan.publish_target;
            let clients = client::establish(poll, target, &options, PUBLISHER_BASE, concurrency, timeout, rng)
                .map_err(|e| format!("publisher: {e}"))?;
            clients.into_iter().zip(ids).map(|(client, id)| Publisher::Ws { id, client, next: 0 }).collect()
        }
    };
    Ok((readers, stalled, publishers))
}

/// Publishes (or queues, for HTTP) what is due by `now`; returns when the
/// next message is due.
fn publish_due(
    publisher: &mut Publisher,
    plan: &Plan,
    clock: &Clock,
    now: u64,
    rng: &mut Rng,
    poll: &mut Poll,
    out: &mut BroadcastOut,
) -> u64 {
    let payload = &plan.payload;
    match publisher {
        Publisher::Ws { id, client, next } => {
            let mut queued = false;
            while plan.due(*id, *next) <= now && plan.due(*id, *next) < clock.end && client.phase == Phase::Open {
                let stamp = Stamp { sender: *id as u32, seq: *next, time_ns: plan.due(*id, *next) };
                let opcode = payload.mode().opcode();
                wire::push_frame(&mut client.out, opcode, payload.size(), rng.mask_key(), |o| payload.write(o, &stamp));
                if clock.measured(stamp.time_ns) {
                    out.publishes += 1;
                }
                *next += 1;
                queued = true;
            }
            if queued {
                if let Err(e) = client.flush() {
                    bury(client, poll.registry(), &mut out.tally.errors, format!("publisher {id}: write: {e}"));
                }
            }
            plan.next_due(*id, *next, clock)
        }
        Publisher::Http(h) => {
            let id = h.id as usize;
            while plan.due(id, h.due) <= now && plan.due(id, h.due) < clock.end {
                h.due += 1;
            }
            if let Err(e) = h.pump(poll.registry(), payload, |seq| plan.due(id, seq)) {
                out.tally.errors.add(|| e);
            }
            plan.next_due(id, h.due, clock)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn on_publisher_event(
    publisher: &mut Publisher,
    plan: &Plan,
    clock: &Clock,
    poll: &mut Poll,
    scratch: &mut Vec<u8>,
    rng: &mut Rng,
    out: &mut BroadcastOut,
    ignored: &mut Vec<Stamp>,
) {
    match publisher {
        Publisher::Ws { id, client, .. } => {
            if client.phase != Phase::Open {
                return;
            }
            // The room may send a publisher the other publishers' messages
            // (or its own): checked, then ignored.
            let name = || format!("publisher {id}");
            let result =
                deliver::read_stamps(client, &name, &plan.payload, scratch, false, rng, &mut out.tally.errors, ignored)
                    .and_then(|()| client.flush().map(|_| ()).map_err(|e| format!("publisher {id}: write: {e}")));
            if let Err(e) = result {
                bury(client, poll.registry(), &mut out.tally.errors, e);
            }
        }
        Publisher::Http(h) => {
            if scratch.len() < 4096 {
                scratch.resize(4096, 0);
            }
            let seq = h.next;
            match h.on_event(poll.registry(), scratch) {
                Ok(Some(200)) => {
                    if clock.measured(plan.due(h.id as usize, seq)) {
                        out.publishes += 1;
                    }
                }
                Ok(Some(status)) => {
                    out.tally.errors.add(|| format!("publisher {}: POST of message {seq} answered {status}", h.id))
                }
                Ok(None) => {}
                Err(e) => out.tally.errors.add(|| e),
            }
            let id = h.id as usize;
            if let Err(e) = h.pump(poll.registry(), &plan.payload, |seq| plan.due(id, seq)) {
                out.tally.errors.add(|| e);
            }
        }
    }
}
