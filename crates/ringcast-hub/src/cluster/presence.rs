//! Presence across hubs: how many subscribe to a topic on the other hubs.
//!
//! Each hub publishes, once a second on `{prefix}_presence` (outside the
//! topics' subjects and the history stream), the topics whose local
//! subscriber count changed since it last said (a zero removes the topic),
//! every 30 seconds all of them, and nothing else: an empty message is its
//! heartbeat. Each hub keeps the others' counts and their sum per topic;
//! a hub not heard from for 3 seconds is forgotten. So a count is about a
//! second stale, a hub that died stops counting within 3 seconds, and a
//! change lost on the way (NATS delivers at most once) is repaired by the
//! next full round.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::topic::{json_topic, raw_topic};

/// How often a hub says what changed.
pub(super) const TICK: Duration = Duration::from_secs(1);
/// How often it says everything.
const FULL_EVERY: u32 = 30;
/// When a silent hub is forgotten.
const SILENCE: Duration = Duration::from_secs(3);
/// Bytes of counts per message (a full round of many topics is split).
const CHUNK: usize = 256 << 10;

/// One hub's message.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Counts {
    hub: String,
    /// Replace what was known of this hub (the first part of a full round).
    full: bool,
    counts: HashMap<String, u64>,
}

/// The other hubs' counts summed per topic: what shards read.
#[derive(Debug, Default)]
pub struct Elsewhere {
    totals: Mutex<HashMap<Box<str>, u64>>,
}

impl Elsewhere {
    /// Subscribers of `name` on the other hubs, as last heard.
    pub fn count(&self, name: &str) -> u64 {
        self.totals.lock().unwrap_or_else(|e| e.into_inner()).get(name).copied().unwrap_or(0)
    }

    fn add(&self, name: &str, before: u64, after: u64) {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let total = totals.entry(name.into()).or_insert(0);
        *total = (*total + after).saturating_sub(before);
        if *total == 0 {
            totals.remove(name);
        }
    }
}

struct Peer {
    seen: Instant,
    counts: HashMap<String, u64>,
}

/// The link thread's side: what this hub said, what the others said.
#[derive(Default)]
pub(super) struct Gossip {
    said: HashMap<Box<str>, u64>,
    peers: HashMap<String, Peer>,
    ticks: u32,
}

impl Gossip {
    /// This hub's messages for this tick: the counts of `watched` topics
    /// (interest changed) and of those it said before that changed, or all
    /// of them every [`FULL_EVERY`] ticks. Never empty (the heartbeat).
    pub fn tick(&mut self, hub: &str, watched: HashSet<Box<str>>, local: impl Fn(&str) -> u64) -> Vec<Vec<u8>> {
        let full = self.ticks.is_multiple_of(FULL_EVERY);
        self.ticks = self.ticks.wrapping_add(1);
        let mut names: HashSet<Box<str>> = watched;
        names.extend(self.said.keys().cloned());
        let mut changed: Vec<(Box<str>, u64)> = Vec::new();
        for name in names {
            let now = local(&name);
            let before = self.said.get(&name).copied();
            if full && now > 0 || before.unwrap_or(0) != now {
                changed.push((name.clone(), now));
            }
            match now {
                0 => self.said.remove(&name),
                n => self.said.insert(name, n),
            };
        }
        let mut messages = Vec::new();
        let mut part = Counts { hub: hub.to_owned(), full, counts: HashMap::new() };
        let mut size = 0;
        for (name, count) in changed {
            size += name.len() + 24;
            part.counts.insert(name.into(), count);
            if size > CHUNK {
                messages.push(serde_json::to_vec(&part).unwrap_or_default());
                part = Counts { hub: hub.to_owned(), full: false, counts: HashMap::new() };
                size = 0;
            }
        }
        if messages.is_empty() || !part.counts.is_empty() {
            messages.push(serde_json::to_vec(&part).unwrap_or_default());
        }
        messages
    }

    /// Takes another hub's message (this hub's own are skipped).
    pub fn heard(&mut self, me: &str, payload: &[u8], elsewhere: &Elsewhere) {
        let Ok(message) = serde_json::from_slice::<Counts>(payload) else { return };
        if message.hub == me {
            return;
        }
        let peer =
            self.peers.entry(message.hub).or_insert_with(|| Peer { seen: Instant::now(), counts: HashMap::new() });
        peer.seen = Instant::now();
        if message.full {
            for (name, before) in peer.counts.drain() {
                if !message.counts.contains_key(&name) {
                    elsewhere.add(&name, before, 0);
                }
            }
        }
        for (name, count) in message.counts {
            let before = peer.counts.get(&name).copied().unwrap_or(0);
            elsewhere.add(&name, before, count);
            match count {
                0 => peer.counts.remove(&name),
                n => peer.counts.insert(name, n),
            };
        }
    }

    /// Forgets hubs silent for too long.
    pub fn expire(&mut self, elsewhere: &Elsewhere) {
        self.peers.retain(|_, peer| {
            if peer.seen.elapsed() < SILENCE {
                return true;
            }
            for (name, count) in peer.counts.drain() {
                elsewhere.add(&name, count, 0);
            }
            false
        });
    }
}

/// This hub's subscribers of `name`, both forms.
pub(super) fn local(handle: &ringcast::ServerHandle, name: &str) -> u64 {
    handle.subscribers(&raw_topic(name)) + handle.subscribers(&json_topic(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> HashSet<Box<str>> {
        list.iter().map(|n| Box::from(*n)).collect()
    }

    #[test]
    fn changes_travel_and_sum_up_and_a_silent_hub_is_forgotten() {
        let elsewhere = Elsewhere::default();
        let (mut a, mut b, mut me) = (Gossip::default(), Gossip::default(), Gossip::default());
        let counts_a: HashMap<&str, u64> = [("x", 3), ("y", 1)].into();
        for message in a.tick("a", names(&["x", "y"]), |n| counts_a.get(n).copied().unwrap_or(0)) {
            me.heard("me", &message, &elsewhere);
        }
        for message in b.tick("b", names(&["x"]), |_| 2) {
            me.heard("me", &message, &elsewhere);
        }
        assert_eq!((elsewhere.count("x"), elsewhere.count("y"), elsewhere.count("z")), (5, 1, 0));
        // a's y goes to zero: a delta with a zero.
        let counts_a: HashMap<&str, u64> = [("x", 3)].into();
        let messages = a.tick("a", names(&[]), |n| counts_a.get(n).copied().unwrap_or(0));
        assert_eq!(messages.len(), 1);
        for message in messages {
            me.heard("me", &message, &elsewhere);
        }
        assert_eq!((elsewhere.count("x"), elsewhere.count("y")), (5, 0));
        // Nothing changed: a heartbeat with no counts.
        let heartbeat = a.tick("a", names(&[]), |n| counts_a.get(n).copied().unwrap_or(0));
        let parsed: Counts = serde_json::from_slice(&heartbeat[0]).unwrap();
        assert!(parsed.counts.is_empty() && !parsed.full);
        // A hub's own messages are not counted.
        for message in me.tick("me", names(&["x"]), |_| 7) {
            me.heard("me", &message, &elsewhere);
        }
        assert_eq!(elsewhere.count("x"), 5);
        // b falls silent.
        me.peers.get_mut("b").unwrap().seen -= SILENCE;
        me.expire(&elsewhere);
        assert_eq!(elsewhere.count("x"), 3);
    }

    #[test]
    fn a_full_round_replaces_what_was_known_and_large_rounds_are_split() {
        let elsewhere = Elsewhere::default();
        let mut me = Gossip::default();
        let stale = Counts { hub: "a".into(), full: false, counts: [("old".to_string(), 4)].into() };
        me.heard("me", &serde_json::to_vec(&stale).unwrap(), &elsewhere);
        assert_eq!(elsewhere.count("old"), 4);
        let mut a = Gossip::default();
        let many: HashSet<Box<str>> = (0..20_000).map(|i| format!("topic-{i}").into()).collect();
        let messages = a.tick("a", many, |_| 1);
        assert!(messages.len() > 1, "{} parts", messages.len());
        assert!(messages.iter().all(|m| m.len() < 2 * CHUNK));
        for message in messages {
            me.heard("me", &message, &elsewhere);
        }
        assert_eq!(elsewhere.count("old"), 0, "the full round did not name it");
        assert_eq!(elsewhere.count("topic-19999"), 1);
    }
}
