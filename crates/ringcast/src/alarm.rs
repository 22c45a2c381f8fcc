//! Alarms a handler sets on its connections ([`Ws::set_alarm`]): at most one
//! per connection, for deadlines of the application's own (a token that
//! expires, a client that must answer in time).
//!
//! They live in a wheel and a map of their own, beside the runtime's
//! deadlines, so a connection that never sets one pays nothing: its slot
//! keeps its size. A moved alarm does not touch the wheel unless it comes
//! sooner; when a later-filed entry comes up early, it is filed again.
//!
//! [`Ws::set_alarm`]: crate::Ws::set_alarm

use std::collections::HashMap;
use std::time::Duration;

use crate::timer::{millis, reached, Entry, Millis, Wheel};

/// One shard's alarms.
pub(crate) struct Alarms {
    wheel: Wheel,
    /// Table key → (generation, when).
    set: HashMap<u32, (u32, Millis)>,
    /// The shard clock, updated every loop turn.
    pub now: Millis,
    due: Vec<Entry>,
}

impl Alarms {
    pub fn new() -> Self {
        Alarms { wheel: Wheel::new(0), set: HashMap::new(), now: 0, due: Vec::new() }
    }

    /// Sets connection (`key`, `generation`)'s alarm `after` from now,
    /// replacing any it had.
    pub fn set(&mut self, key: u32, generation: u32, after: Duration) {
        let at = self.now.wrapping_add(millis(after));
        let sooner = match self.set.insert(key, (generation, at)) {
            Some((g, old)) if g == generation => !reached(old, at),
            _ => true,
        };
        if sooner {
            self.wheel.schedule(key, generation, at);
        }
    }

    /// Removes the connection's alarm; false if it had none.
    pub fn clear(&mut self, key: u32, generation: u32) -> bool {
        match self.set.get(&key) {
            Some(&(g, _)) if g == generation => self.set.remove(&key).is_some(),
            _ => false,
        }
    }

    /// The connection in slot `key` is gone.
    pub fn forget(&mut self, key: u32) {
        if !self.set.is_empty() {
            self.set.remove(&key);
        }
    }

    /// Milliseconds until the next wheel entry, if any alarm is set.
    pub fn next_in(&self) -> Option<u32> {
        if self.set.is_empty() {
            None
        } else {
            self.wheel.next_in(self.now)
        }
    }

    /// Moves the (key, generation) of every connection whose alarm has come
    /// into `out`; those alarms are then unset.
    pub fn expire(&mut self, out: &mut Vec<(u32, u32)>) {
        if self.wheel.is_empty() {
            // Nothing filed (the usual case): keep the wheel's clock current
            // without walking its slots.
            self.wheel.skip_to(self.now);
            return;
        }
        self.wheel.expire(self.now, &mut self.due);
        for entry in self.due.drain(..) {
            let Some(&(generation, at)) = self.set.get(&entry.key) else { continue };
            if generation != entry.generation {
                continue; // the slot holds another connection now
            }
            if reached(at, self.now) {
                self.set.remove(&entry.key);
                out.push((entry.key, generation));
            } else {
                // Filed for an earlier time that was moved later, or at the
                // wheel's horizon.
                self.wheel.schedule(entry.key, generation, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_fires_once_when_due_and_moves_both_ways() {
        let mut alarms = Alarms::new();
        let mut out = Vec::new();
        alarms.set(1, 7, Duration::from_millis(100));
        alarms.set(2, 3, Duration::from_millis(50));
        alarms.set(2, 3, Duration::from_millis(300)); // moved later: no new entry
        alarms.now = 99;
        alarms.expire(&mut out);
        assert!(out.is_empty());
        alarms.now = 130;
        alarms.expire(&mut out);
        assert_eq!(out, [(1, 7)], "connection 2's alarm was moved to 300 ms");
        out.clear();
        alarms.now = 310;
        alarms.expire(&mut out);
        assert_eq!(out, [(2, 3)]);
        out.clear();
        alarms.now = 1000;
        alarms.expire(&mut out);
        assert!(out.is_empty(), "each fires once");
        assert_eq!(alarms.next_in(), None);
    }

    #[test]
    fn cleared_forgotten_and_reused_slots_never_fire() {
        let mut alarms = Alarms::new();
        let mut out = Vec::new();
        alarms.set(1, 1, Duration::from_millis(20));
        assert!(alarms.clear(1, 1));
        assert!(!alarms.clear(1, 1));
        alarms.set(2, 1, Duration::from_millis(20));
        alarms.forget(2);
        alarms.set(3, 1, Duration::from_millis(20));
        alarms.set(3, 2, Duration::from_secs(60)); // the slot's next connection
        alarms.now = 100;
        alarms.expire(&mut out);
        assert!(out.is_empty(), "{out:?}");
        // Beyond the wheel's 16 s horizon: refiled until due.
        alarms.now = 59_000;
        alarms.expire(&mut out);
        assert!(out.is_empty());
        alarms.now = 60_100;
        alarms.expire(&mut out);
        assert_eq!(out, [(3, 2)]);
    }
}
