//! When to ask the kernel to wait for a batch of completions.
//!
//! Waiting for more completions before handling the first ones saves system
//! calls only when those completions arrive on their own: hundreds of
//! independent peers, publishers feeding a fan-out. In a closed loop with a
//! handful of connections, the next completions are the peers' answers to
//! the replies this very wait is submitting, so they cannot come before the
//! wait times out: every turn then pays the whole `batch_wait` in latency
//! and throughput (measured: 4 busy echo connections ran at a quarter of
//! the rate with a 20 µs wait).
//!
//! Two rules tell them apart. A wait is asked for only after a turn that was
//! busy (≥ 4 completions) *and* whose output was wide (written to ≥ 48
//! connections): with a narrow flush, the few peers are most likely waiting
//! on exactly that output. It then asks for about as many completions as
//! the last turn had. A wait that still ends short (the kernel gave up at
//! the deadline) switches batching off for a number of turns that doubles
//! with each further miss, up to [`MAX_SKIP`], so a loop the first rule
//! misjudges pays one wasted wait per ~1 000 turns, and a busy fan-out
//! keeps its batches.

use std::time::Duration;

/// Turns with fewer completions than this never wait: the load is light.
const BUSY: usize = 4;
/// Flushes that wrote to fewer connections never wait: their few peers are
/// most likely waiting on exactly that output. Measured on the hub's N-to-N
/// fan-out (every connection publishes and receives): waiting cost 13 % of
/// the deliveries at 30 connections and 10 % at 40, and gained 25–100 % from
/// 50 connections up (the peers read fewer, larger segments).
const WIDE: usize = 48;
/// The most completions one wait asks for.
const MAX_WANT: usize = 64;
/// The longest pause after repeated misses, in turns.
const MAX_SKIP: u32 = 1024;

/// The batching state of one shard.
#[derive(Debug)]
pub(super) struct Batcher {
    /// The longest wait for a batch, in µs (0: never wait).
    wait_us: u32,
    /// What the last enter asked for, if it waited for a batch.
    asked: Option<u32>,
    /// Turns left before batching may be tried again.
    skip: u32,
    /// How long the next pause is, after a miss.
    penalty: u32,
}

impl Batcher {
    /// A batcher that waits at most `wait` for a batch (zero: never; pass
    /// zero too when the kernel cannot wait with a deadline).
    pub fn new(wait: Duration) -> Batcher {
        let wait_us = wait.as_micros().min(u128::from(u32::MAX)) as u32;
        Batcher { wait_us, asked: None, skip: 0, penalty: 0 }
    }

    /// What to wait for in the next enter, given the last turn's completion
    /// count and how many connections the flush before this enter wrote to:
    /// `(count, µs)`, or `None` to return at the first completion.
    pub fn next(&mut self, last_turn: usize, sends: usize) -> Option<(u32, u32)> {
        self.asked = None;
        if self.wait_us == 0 || last_turn < BUSY || sends < WIDE {
            return None;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        let want = last_turn.min(MAX_WANT) as u32;
        self.asked = Some(want);
        Some((want, self.wait_us))
    }

    /// Records how many completions the enter brought. Returns whether a
    /// batch was asked for and did not fill (a miss).
    pub fn observe(&mut self, got: usize) -> bool {
        let Some(asked) = self.asked.take() else { return false };
        if got >= asked as usize {
            self.penalty = 0;
            return false;
        }
        self.penalty = (self.penalty * 2).clamp(1, MAX_SKIP);
        self.skip = self.penalty;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twenty() -> Batcher {
        Batcher::new(Duration::from_micros(20))
    }

    #[test]
    fn light_turns_narrow_flushes_and_zero_wait_never_batch() {
        let mut b = twenty();
        assert_eq!(b.next(3, 100), None);
        assert_eq!(b.next(100, WIDE - 1), None);
        assert_eq!(Batcher::new(Duration::ZERO).next(100, 100), None);
        assert!(!b.observe(0));
    }

    #[test]
    fn busy_wide_turn_asks_for_as_many_capped() {
        let mut b = twenty();
        assert_eq!(b.next(10, WIDE), Some((10, 20)));
        assert!(!b.observe(12));
        assert_eq!(b.next(500, WIDE), Some((MAX_WANT as u32, 20)));
    }

    #[test]
    fn misses_pause_batching_for_doubling_turns() {
        let mut b = twenty();
        let mut pauses = Vec::new();
        for _ in 0..5 {
            let mut skipped = 0;
            while b.next(10, WIDE).is_none() {
                skipped += 1;
            }
            pauses.push(skipped);
            assert!(b.observe(3));
        }
        assert_eq!(pauses, [0, 1, 2, 4, 8]);
    }

    #[test]
    fn pause_is_bounded_and_a_filled_wait_resets_it() {
        let mut b = twenty();
        for _ in 0..20 {
            while b.next(10, WIDE).is_none() {}
            b.observe(0);
        }
        assert_eq!(b.skip, MAX_SKIP);
        while b.next(10, WIDE).is_none() {}
        assert!(!b.observe(10));
        assert_eq!(b.next(10, WIDE), Some((10, 20)));
    }
}
