//! Limits a public hub needs: connections per client address, publishes
//! per second per connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// WebSocket connections open per client address, shared by the shards.
#[derive(Debug, Default)]
pub struct PerAddress {
    /// At most this many per address; 0: no limit.
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl PerAddress {
    /// A counter admitting `max` connections per address (0: any number).
    pub fn new(max: u32) -> PerAddress {
        PerAddress { max, open: Mutex::default() }
    }

    /// Counts one more connection from `ip`, unless it already has `max`.
    pub fn admit(&self, ip: IpAddr) -> bool {
        if self.max == 0 {
            return true;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= self.max {
            return false;
        }
        *count += 1;
        true
    }

    /// A connection from `ip` that [`admit`](Self::admit) counted is over.
    pub fn release(&self, ip: IpAddr) {
        if self.max == 0 {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }

    /// The limit (0: none).
    pub fn max(&self) -> u32 {
        self.max
    }
}

/// A token bucket of publishes: `rate` per second, bursts of up to `rate`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f32,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(rate: u32) -> Bucket {
        Bucket { tokens: rate as f32, last: Instant::now() }
    }

    /// Takes one publish from the bucket at time `now`; false when empty.
    /// A rate of 0 means no limit.
    pub fn take(&mut self, rate: u32, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate as f32).min(rate as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn addresses_are_limited_one_by_one() {
        let limit = PerAddress::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(limit.admit(a) && limit.admit(a));
        assert!(!limit.admit(a), "a third from the same address");
        assert!(limit.admit(b), "another address is not affected");
        limit.release(a);
        assert!(limit.admit(a));
        limit.release(b);
        assert!(limit.open.lock().unwrap().get(&b).is_none(), "no entry kept for gone addresses");
        let unlimited = PerAddress::new(0);
        assert!((0..10_000).all(|_| unlimited.admit(a)));
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(10);
        assert!((0..10).all(|_| bucket.take(10, start)), "a burst of 10");
        assert!(!bucket.take(10, start), "the 11th in the same instant");
        assert!(bucket.take(10, start + Duration::from_millis(100)), "one more 100 ms later");
        assert!(!bucket.take(10, start + Duration::from_millis(110)));
        assert!((0..10).all(|_| bucket.take(10, start + Duration::from_secs(60))), "refilled, to the burst only");
        assert!(!bucket.take(10, start + Duration::from_secs(60)));
        assert!(Bucket::full(0).take(0, start), "0 means no limit");
    }
}
