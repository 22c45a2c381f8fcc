//! A shard's timers: a hashed wheel of connection deadlines.
//!
//! Deadlines are kept by the connections themselves; the wheel only says
//! when to look at a connection again. Activity never touches the wheel:
//! a receive just stamps the connection, and when its entry comes up the
//! real deadline is recomputed and the entry moved if it lies later. So
//! the hot path pays one store per read and the wheel holds about one
//! entry per connection.
//!
//! Times are milliseconds since the shard started, in a wrapping `u32`
//! (compared by difference, so the wrap after 49 days is harmless as long
//! as no timeout exceeds 24 days).

use std::time::Duration;

/// Milliseconds since the shard started, wrapping.
pub type Millis = u32;

/// A duration on the shard clock, capped where the wrapping clock still
/// compares correctly.
pub fn millis(d: Duration) -> Millis {
    d.as_millis().min(u128::from(u32::MAX / 2)) as Millis
}

/// `a` is at or before `b`.
pub fn reached(deadline: Millis, now: Millis) -> bool {
    (now.wrapping_sub(deadline) as i32) >= 0
}

const SLOT_BITS: u32 = 10;
const SLOTS: usize = 1 << SLOT_BITS;
/// One slot spans 2^4 = 16 ms.
const TICK_SHIFT: u32 = 4;
/// Ticks are milliseconds shifted right, so they wrap at 2^28.
const TICK_MASK: u32 = u32::MAX >> TICK_SHIFT;

/// Signed distance in ticks from `from` to `to`, on the 28-bit tick circle.
fn ticks_between(from: u32, to: u32) -> i32 {
    ((to.wrapping_sub(from) << TICK_SHIFT) as i32) >> TICK_SHIFT
}

/// The first millisecond of `tick`.
pub fn tick_start(tick: u32) -> Millis {
    tick << TICK_SHIFT
}

/// A connection to look at: its table key, the generation that must still
/// be there, and the tick it was filed under (to tell stale entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: u32,
    pub generation: u32,
    pub tick: u32,
}

/// The wheel: 1024 slots of 16 ms (a 16 s horizon; later deadlines are
/// filed at the horizon and refiled when they come up).
pub struct Wheel {
    slots: Vec<Vec<Entry>>,
    /// One bit per non-empty slot, to find the next deadline quickly.
    occupied: [u64; SLOTS / 64],
    /// The next tick to expire.
    cursor: u32,
    len: usize,
}

impl Wheel {
    /// An empty wheel starting at time `now`.
    pub fn new(now: Millis) -> Self {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; SLOTS / 64],
            cursor: now >> TICK_SHIFT,
            len: 0,
        }
    }

    /// Files connection `key` to be looked at no earlier than `deadline`.
    /// Returns the tick it was filed under, which the connection keeps so
    /// that older entries for it are recognised as stale.
    pub fn schedule(&mut self, key: u32, generation: u32, deadline: Millis) -> u32 {
        // Round up: an entry never fires before its deadline's tick, and
        // never in a tick already expired.
        let wanted = deadline.wrapping_add((1 << TICK_SHIFT) - 1) >> TICK_SHIFT;
        let ahead = ticks_between(self.cursor, wanted & TICK_MASK).clamp(0, SLOTS as i32 - 1) as u32;
        let tick = self.cursor.wrapping_add(ahead) & TICK_MASK;
        let slot = (tick as usize) & (SLOTS - 1);
        self.slots[slot].push(Entry { key, generation, tick });
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.len += 1;
        tick
    }

    /// Moves every entry whose tick has come by `now` into `due`.
    pub fn expire(&mut self, now: Millis, due: &mut Vec<Entry>) {
        let now_tick = now >> TICK_SHIFT;
        let mut budget = SLOTS;
        while ticks_between(self.cursor, now_tick) >= 0 && budget > 0 {
            let slot = (self.cursor as usize) & (SLOTS - 1);
            if self.occupied[slot / 64] & (1 << (slot % 64)) != 0 {
                let entries = &mut self.slots[slot];
                self.len -= entries.len();
                due.append(entries);
                if entries.capacity() > 64 {
                    // Connections opened together come up together and are
                    // refiled together into another slot: without this, every
                    // slot would keep room for all of them.
                    *entries = Vec::new();
                }
                self.occupied[slot / 64] &= !(1 << (slot % 64));
            }
            self.cursor = self.cursor.wrapping_add(1) & TICK_MASK;
            budget -= 1;
        }
        if budget == 0 {
            // A stall longer than the wheel: everything has been collected.
            self.cursor = now_tick.wrapping_add(1) & TICK_MASK;
        }
    }

    /// Milliseconds from `now` until the next occupied tick, or `None` when
    /// the wheel is empty.
    pub fn next_in(&self, now: Millis) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let start = (self.cursor as usize) & (SLOTS - 1);
        let mut step = 0;
        while step < SLOTS {
            let slot = (start + step) & (SLOTS - 1);
            let word = self.occupied[slot / 64] >> (slot % 64);
            if word != 0 {
                let distance = step + word.trailing_zeros() as usize;
                let at = tick_start(self.cursor.wrapping_add(distance as u32) & TICK_MASK);
                return Some((at.wrapping_sub(now) as i32).max(0) as u32);
            }
            // Nothing left in this word: go to the start of the next one.
            step += 64 - slot % 64;
        }
        Some(0)
    }

    /// Entries filed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is filed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Moves an empty wheel's cursor to `now` at once (what `expire`
    /// would do slot by slot).
    pub fn skip_to(&mut self, now: Millis) {
        debug_assert!(self.is_empty());
        self.cursor = (now >> TICK_SHIFT).wrapping_add(1) & TICK_MASK;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_fire_at_or_after_their_deadline_never_before() {
        let mut wheel = Wheel::new(1000);
        let tick = wheel.schedule(7, 1, 1100);
        let mut due = Vec::new();
        wheel.expire(1099, &mut due);
        assert!(due.is_empty());
        assert!(wheel.next_in(1000).unwrap() >= 100);
        wheel.expire(1112, &mut due);
        assert_eq!(due, vec![Entry { key: 7, generation: 1, tick }]);
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_in(1200), None);
    }

    #[test]
    fn far_deadlines_are_filed_at_the_horizon() {
        let mut wheel = Wheel::new(0);
        wheel.schedule(1, 0, 60_000);
        let next = wheel.next_in(0).unwrap();
        assert!((16_000..=16_400).contains(&next), "{next}");
        let mut due = Vec::new();
        wheel.expire(16_400, &mut due);
        assert_eq!(due.len(), 1, "comes up at the horizon to be refiled");
    }

    #[test]
    fn survives_the_clock_wrapping_and_long_stalls() {
        let start = u32::MAX - 50;
        let mut wheel = Wheel::new(start);
        wheel.schedule(1, 0, start.wrapping_add(100));
        let mut due = Vec::new();
        wheel.expire(start.wrapping_add(40), &mut due);
        assert!(due.is_empty());
        wheel.expire(start.wrapping_add(130), &mut due);
        assert_eq!(due.len(), 1);
        // A stall of a minute: everything due comes out, the wheel stays usable.
        wheel.schedule(2, 0, start.wrapping_add(5_000));
        wheel.expire(start.wrapping_add(60_000), &mut due);
        assert_eq!(due.len(), 2);
        wheel.schedule(3, 0, start.wrapping_add(60_100));
        assert!(wheel.next_in(start.wrapping_add(60_000)).unwrap() <= 120);
        assert!(reached(start.wrapping_add(10), start.wrapping_add(20)));
        assert!(!reached(start.wrapping_add(30), start.wrapping_add(20)));
    }
}
