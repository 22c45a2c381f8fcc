//! `rate`: open loop. Messages go out at a fixed total rate, spread evenly
//! over the connections and scheduled by time, whatever the echoes do. If
//! the loop is late it sends every overdue message at once, and latency is
//! measured from each message's intended send time, not from when it
//! actually left (the coordinated-omission correction wrk2 made known): a
//! stalled server then shows up as latency instead of as fewer samples.
//!
//! For accurate send times the loop spins (polls without sleeping) when the
//! next send is less than a millisecond away, as epoll only sleeps in whole
//! milliseconds; at more than ~1000 messages per second per thread the
//! thread is therefore always busy.

use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll};

use crate::args::{non_negative, positive, share};
use crate::echo::{EchoConn, EchoLoad, EchoSetup};
use crate::report::{round2, Report};
use crate::rng::Rng;
use crate::runner::{self, Clock, Ctx, Tally, ABORTED};
use crate::wire;

/// Options of `ringcast-bench rate`.
#[derive(clap::Args, Debug, Clone)]
pub struct RateArgs {
    /// Target, connections and messages.
    #[command(flatten)]
    pub load: EchoLoad,
    /// Messages per second, in total over all connections.
    #[arg(long)]
    pub rate: f64,
    /// Seconds to wait for the last echoes after sending stops.
    #[arg(long, default_value_t = 1.0)]
    pub grace: f64,
}

/// The send schedule of one thread: slot `g` goes to connection `g % n` as
/// its message number `g / n`, at `offset + g * interval` ns.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Connections of the thread.
    pub n: u64,
    /// Nanoseconds between two sends of the thread.
    pub interval: f64,
    /// Time of slot 0.
    pub offset: f64,
}

impl Schedule {
    /// When slot `g` is due.
    #[inline]
    pub fn at(&self, g: u64) -> u64 {
        (self.offset + g as f64 * self.interval) as u64
    }

    /// When message `seq` of connection `i` is due.
    #[inline]
    pub fn intended(&self, i: usize, seq: u32) -> u64 {
        self.at(u64::from(seq) * self.n + i as u64)
    }
}

struct RateOut {
    tally: Tally,
    /// Messages due in the window.
    asked: u64,
    /// Messages fully written in the window.
    sent: u64,
}

/// Runs `rate`; returns whether it was clean.
pub fn run(args: &RateArgs) -> Result<bool, String> {
    let setup = Arc::new(EchoSetup::new(&args.load)?);
    if !positive(args.rate) || !non_negative(args.grace) {
        return Err("--rate must be positive and --grace not negative".into());
    }
    let common = &args.load.common;
    let (rate, grace) = (args.rate, (args.grace * 1e9) as u64);
    let worker_setup = setup.clone();
    let (outs, series, clock) = runner::run(
        common.threads,
        common.warmup,
        common.duration,
        "rate",
        || {},
        move |ctx| open_loop(&ctx, &worker_setup, rate, grace),
    )?;
    let (mut tally, mut asked, mut sent) = (Tally::new(), 0, 0);
    for out in outs {
        tally.merge(out.tally);
        asked += out.asked;
        sent += out.sent;
    }
    let duration = clock.window_s();
    let achieved = sent as f64 / duration;
    let load = &args.load;
    let report = Report::new(
        "rate",
        &setup.url,
        load.connections,
        load.size,
        duration,
        tally.messages,
        tally.bytes,
        tally.errors.count,
        &tally.latency,
    )
    .with("rate", rate)
    .with("rate_achieved", round2(achieved))
    .with("messages_due", asked)
    .with("mode", setup.payload.mode().name())
    .with("threads", common.threads);
    let mut notes = vec![format!(
        "asked {rate:.0} msgs/s, sent {achieved:.0} msgs/s; latency from the intended send times ({} messages)",
        setup.payload.mode().name()
    )];
    if achieved < 0.95 * rate {
        let warning = format!("warning: sent only {:.1}% of the asked rate", 100.0 * achieved / rate);
        eprintln!("ringcast-bench: {warning}");
        notes.push(warning);
    }
    common.output().finish(&report, &notes, &tally.errors, &tally.latency, &series)
}

fn open_loop(ctx: &Ctx, setup: &EchoSetup, rate: f64, grace: u64) -> Result<RateOut, String> {
    let mut rng = Rng::from_os();
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let total = setup.load.connections;
    let range = share(total, ctx.thread, ctx.threads);
    let opened = setup.open(&mut poll, range.clone(), &mut rng);
    let Some(clock) = ctx.ready(opened.is_ok()) else { return Err(opened.err().unwrap_or_else(|| ABORTED.into())) };
    let mut conns = opened?;
    if conns.is_empty() {
        return Ok(RateOut { tally: Tally::new(), asked: 0, sent: 0 }); // more threads than connections
    }
    let thread_rate = rate * range.len() as f64 / total as f64;
    let interval = 1e9 / thread_rate;
    let schedule =
        Schedule { n: conns.len() as u64, interval, offset: interval * ctx.thread as f64 / ctx.threads as f64 };
    let (payload, tcp) = (&setup.payload, setup.tcp.is_some());
    let frame_len = if tcp { payload.size() } else { wire::client_frame_len(payload.size()) } as u64;
    let mut out = RateOut { tally: Tally::new(), asked: 0, sent: 0 };
    let mut written_in_window = 0u64;
    let (mut next_slot, mut dirty, mut is_dirty) = (0u64, Vec::new(), vec![false; conns.len()]);
    let mut events = Events::with_capacity(1024);
    let mut scratch = Vec::new();
    let mut alive = conns.len();
    loop {
        let now = clock.now();
        while schedule.at(next_slot) <= now && schedule.at(next_slot) < clock.end {
            let i = (next_slot % schedule.n) as usize;
            if clock.measured(schedule.at(next_slot)) {
                out.asked += 1;
            }
            next_slot += 1;
            if conns[i].alive() {
                conns[i].queue(payload, tcp, &mut rng);
                if !is_dirty[i] {
                    is_dirty[i] = true;
                    dirty.push(i);
                }
            }
        }
        for i in dirty.drain(..) {
            is_dirty[i] = false;
            let result = conns[i].flush();
            settle(&mut conns[i], result, &clock, now, &mut written_in_window, &mut out.tally, &poll, &mut alive);
        }
        let sending = schedule.at(next_slot) < clock.end;
        let outstanding: u64 =
            if sending { 1 } else { conns.iter().filter(|c| c.alive()).map(|c| u64::from(c.outstanding())).sum() };
        if alive == 0 || (!sending && (outstanding == 0 || now >= clock.end + grace)) {
            if outstanding > 0 && alive > 0 {
                out.tally.errors.add_many(outstanding, || {
                    format!("{outstanding} echoes had not come back {:.1} s after the last send", grace as f64 / 1e9)
                });
            }
            out.sent = written_in_window / frame_len;
            return Ok(out);
        }
        let due = if sending { schedule.at(next_slot) } else { clock.end + grace };
        let wait = match due.saturating_sub(now) {
            ns if ns < 1_000_000 => Duration::ZERO,
            ns => Duration::from_millis((ns / 1_000_000).min(100)),
        };
        poll.poll(&mut events, Some(wait)).map_err(|e| format!("poll: {e}"))?;
        for event in &events {
            let i = event.token().0;
            let Some(conn) = conns.get_mut(i).filter(|c| c.alive()) else { continue };
            let result = if event.is_readable() || event.is_read_closed() || event.is_error() {
                let read = conn.read_echoes(
                    payload,
                    tcp,
                    &mut scratch,
                    event.is_read_closed(),
                    &mut rng,
                    &mut out.tally.errors,
                );
                match read {
                    Ok(done) => {
                        let now = clock.now();
                        out.tally.seen += u64::from(done.end - done.start);
                        for seq in done {
                            let intended = schedule.intended(i, seq);
                            if clock.measured(intended) {
                                out.tally.latency.saturating_record(now.saturating_sub(intended).max(1));
                                out.tally.messages += 1;
                                out.tally.bytes += payload.size() as u64;
                            }
                        }
                        conn.flush()
                    }
                    Err(e) => Err(e),
                }
            } else if event.is_writable() && conn.client.unsent() > 0 {
                conn.flush()
            } else {
                Ok(0)
            };
            let now = clock.now();
            settle(conn, result, &clock, now, &mut written_in_window, &mut out.tally, &poll, &mut alive);
        }
        if out.tally.tick(ctx) {
            return Err(ABORTED.into());
        }
    }
}

/// Counts bytes written in the window, or the error that killed `conn`.
#[allow(clippy::too_many_arguments)]
fn settle(
    conn: &mut EchoConn,
    result: Result<usize, String>,
    clock: &Clock,
    now: u64,
    written: &mut u64,
    tally: &mut Tally,
    poll: &Poll,
    alive: &mut usize,
) {
    match result {
        Ok(n) if clock.measured(now) => *written += n as u64,
        Ok(_) => {}
        Err(e) => {
            tally.errors.add(|| e);
            conn.client.close(poll.registry());
            *alive -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn the_schedule_spreads_connections_evenly() {
        let s = Schedule { n: 4, interval: 250.0, offset: 10.0 };
        assert_eq!(s.at(0), 10);
        assert_eq!(s.intended(1, 0), 260);
        assert_eq!(s.intended(0, 1), 1010, "each connection sends every n intervals");
        assert_eq!(s.intended(3, 2), 10 + 11 * 250);
    }
}
