//! The progress shown while a run goes: one live line (indicatif) when
//! stderr is a terminal, otherwise one plain line per second on stderr.
//! Updated from the main thread ten times a second, never per message.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::clock::Clock;

/// The progress display.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    rate: f64,
    p99_ns: u64,
}

impl Progress {
    /// A live line if stderr is a terminal, plain lines otherwise.
    pub fn new(label: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, label: label.to_string(), rate: 0.0, p99_ns: 0 }
    }

    /// Called once per second with the last second's rate.
    pub fn second(&mut self, elapsed: Duration, rate: f64, p99_ns: u64, errors: u64) {
        (self.rate, self.p99_ns) = (rate, p99_ns);
        if self.bar.is_none() {
            eprintln!(
                "{} t={}s msgs/s={:.0} p99_us={:.1} errors={errors}",
                self.label,
                elapsed.as_secs(),
                rate,
                p99_ns as f64 / 1e3
            );
        }
    }

    /// Called ten times a second.
    pub fn tick(&mut self, elapsed: Duration, messages: u64, errors: u64, clock: Clock) {
        let Some(bar) = &self.bar else { return };
        let t = elapsed.as_nanos() as u64;
        let phase = if t < clock.measure_from {
            "warm-up"
        } else if t < clock.end {
            "measuring"
        } else {
            "draining"
        };
        bar.set_message(format!(
            "{} {:.1}s {phase}: {} msgs/s, {messages} msgs, p99 {:.1} us, {errors} errors",
            self.label,
            elapsed.as_secs_f64(),
            thousands(self.rate),
            self.p99_ns as f64 / 1e3
        ));
        bar.tick();
    }

    /// Removes the live line.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
