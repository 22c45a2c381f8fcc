//! Bookkeeping of what was received: per (receiver, sender) sequence
//! tracking for the pub/sub scenarios, and the error tally every scenario
//! keeps.

/// Error messages kept per thread (the rest are only counted).
const KEPT: usize = 5;

/// Errors seen: how many, and the first few messages.
#[derive(Debug, Default, Clone)]
pub struct Errors {
    /// Errors counted.
    pub count: u64,
    /// The first messages, in order.
    pub first: Vec<String>,
}

impl Errors {
    /// Counts an error, keeping its message if it is among the first.
    pub fn add(&mut self, message: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < KEPT {
            self.first.push(message());
        }
    }

    /// Counts `n` errors of one kind under one message.
    pub fn add_many(&mut self, n: u64, message: impl FnOnce() -> String) {
        if n > 0 {
            self.count += n;
            if self.first.len() < KEPT {
                self.first.push(message());
            }
        }
    }

    /// Adds another thread's errors.
    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        let room = KEPT.saturating_sub(self.first.len());
        self.first.extend(other.first.into_iter().take(room));
    }
}

/// What one received sequence number says about the stream it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next number: in order.
    InOrder,
    /// Ahead of the next one: this many numbers were skipped.
    Gap(u32),
    /// At or behind a number already seen: a duplicate or reordered message.
    Behind,
}

/// The next expected sequence number for every (receiver, sender) pair,
/// with the counts of skipped and out-of-order numbers.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    senders: usize,
    /// `next[receiver * senders + sender]`.
    next: Vec<u32>,
    /// Numbers skipped (gaps), over all pairs.
    pub missing: u64,
    /// Messages at or behind one already seen, over all pairs.
    pub reordered: u64,
}

impl SeqTracker {
    /// A tracker for `receivers` × `senders` streams, all expecting 0.
    pub fn new(receivers: usize, senders: usize) -> SeqTracker {
        SeqTracker { senders, next: vec![0; receivers * senders], missing: 0, reordered: 0 }
    }

    /// Records that `receiver` got number `seq` from `sender` (which must be
    /// below the sender count).
    #[inline]
    pub fn observe(&mut self, receiver: usize, sender: usize, seq: u32) -> Seen {
        let next = &mut self.next[receiver * self.senders + sender];
        if seq == *next {
            *next += 1;
            Seen::InOrder
        } else if seq > *next {
            let skipped = seq - *next;
            self.missing += u64::from(skipped);
            *next = seq + 1;
            Seen::Gap(skipped)
        } else {
            self.reordered += 1;
            Seen::Behind
        }
    }

    /// Senders tracked per receiver.
    pub fn senders(&self) -> usize {
        self.senders
    }

    /// Messages never received at the end, given how many each sender
    /// published: for every pair, the numbers past the last one seen.
    pub fn tail_missing(&self, published: &[u64]) -> u64 {
        self.next
            .chunks(self.senders.max(1))
            .map(|row| row.iter().zip(published).map(|(next, sent)| sent.saturating_sub(u64::from(*next))).sum::<u64>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_duplicates_are_counted() {
        let mut t = SeqTracker::new(2, 3);
        assert_eq!(t.observe(0, 1, 0), Seen::InOrder);
        assert_eq!(t.observe(0, 1, 1), Seen::InOrder);
        assert_eq!(t.observe(0, 1, 4), Seen::Gap(2));
        assert_eq!(t.observe(0, 1, 4), Seen::Behind);
        assert_eq!(t.observe(0, 1, 2), Seen::Behind);
        assert_eq!(t.observe(0, 1, 5), Seen::InOrder);
        assert_eq!(t.observe(1, 1, 0), Seen::InOrder, "receivers are independent");
        assert_eq!(t.observe(0, 2, 3), Seen::Gap(3), "so are senders");
        assert_eq!((t.missing, t.reordered), (5, 2));
    }

    #[test]
    fn the_tail_counts_what_never_came() {
        let mut t = SeqTracker::new(2, 2);
        for seq in 0..10 {
            t.observe(0, 0, seq);
            t.observe(1, 0, seq);
        }
        for seq in 0..4 {
            t.observe(0, 1, seq);
        }
        // Sender 0 published 12 (2 missing at each receiver), sender 1
        // published 5 (1 missing at receiver 0, all 5 at receiver 1).
        assert_eq!(t.tail_missing(&[12, 5]), 2 + 2 + 1 + 5);
    }

    #[test]
    fn errors_keep_the_first_messages() {
        let mut e = Errors::default();
        for i in 0..10 {
            e.add(|| format!("e{i}"));
        }
        e.add_many(0, || unreachable!());
        let mut other = Errors::default();
        other.add_many(3, || "x".into());
        let mut total = Errors::default();
        total.merge(other);
        total.merge(e);
        assert_eq!(total.count, 13);
        assert_eq!(total.first, ["x", "e0", "e1", "e2", "e3"]);
    }
}
