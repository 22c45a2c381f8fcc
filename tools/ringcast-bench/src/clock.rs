//! The run's clock: one start instant shared by every thread, the warm-up
//! and the end as offsets from it. Below the runner and the progress line,
//! which both read it.

use std::time::Instant;

/// The run's clock, shared by all threads: stamps and schedules are in
/// nanoseconds since `start`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// When the load began (after every connection was set up).
    pub start: Instant,
    /// Measuring begins at this offset (the warm-up ends).
    pub measure_from: u64,
    /// Sending stops at this offset.
    pub end: u64,
}

impl Clock {
    /// Nanoseconds since the start.
    #[inline]
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Whether `t` falls in the measured window.
    #[inline]
    pub fn measured(&self, t: u64) -> bool {
        t >= self.measure_from && t < self.end
    }

    /// Seconds measured.
    pub fn window_s(&self) -> f64 {
        (self.end - self.measure_from) as f64 / 1e9
    }
}
