//! Options every scenario shares, and small helpers for them.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use crate::report::Output;

/// Options common to all scenarios.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// WebSocket URL: ws://host:port/path?query, or wss:// with --tls-ca.
    #[arg(long)]
    pub url: Option<String>,
    /// For wss:// URLs: the PEM certificate (or CA) the server's
    /// certificate must verify against.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Seconds measured (after the warm-up).
    #[arg(long, alias = "seconds", default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Threads, each with its own event loop; connections (and rate) are
    /// split between them.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Write the result as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the latency distribution and the throughput to FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Connection attempts in progress at once while connecting.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seconds a connection may take to connect and upgrade.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
}

impl Common {
    /// The URL, required by this scenario.
    pub fn url(&self) -> Result<&str, String> {
        self.url.as_deref().ok_or_else(|| "--url is required".to_string())
    }

    /// The URL, parsed and resolved (with TLS for wss://).
    pub fn target(&self) -> Result<crate::wire::Target, String> {
        crate::wire::Target::with_ca(self.url()?, self.tls_ca.as_deref())
    }

    /// Checks the numbers that every scenario uses.
    pub fn validate(&self) -> Result<(), String> {
        if !positive(self.duration) || !non_negative(self.warmup) {
            return Err("--duration must be positive and --warmup not negative".into());
        }
        if self.threads == 0 || self.threads > 256 {
            return Err("--threads must be between 1 and 256".into());
        }
        if !positive(self.connect_timeout) {
            return Err("--connect-timeout must be positive".into());
        }
        Ok(())
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout)
    }

    /// Concurrent connection attempts per thread.
    pub fn concurrency_per_thread(&self) -> usize {
        self.concurrency.div_ceil(self.threads).max(1)
    }

    /// Where the results go.
    pub fn output(&self) -> Output<'_> {
        Output { json: self.json.as_deref(), plot: self.plot.as_deref() }
    }
}

/// A finite number above 0.
pub fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// A finite number, 0 or more.
pub fn non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

/// The share of `n` items thread `thread` of `threads` takes: contiguous
/// ranges whose sizes differ by at most one.
pub fn share(n: usize, thread: usize, threads: usize) -> Range<usize> {
    let (base, extra) = (n / threads, n % threads);
    let start = thread * base + thread.min(extra);
    start..start + base + usize::from(thread < extra)
}

/// Fails with a clear message if the open-file limit is below `needed`
/// (this tool does not raise it: that would need `unsafe` setrlimit).
pub fn check_fd_limit(needed: usize) -> Result<(), String> {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else { return Ok(()) };
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else { return Ok(()) };
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next().and_then(|v| v.parse::<usize>().ok());
    let hard = fields.next().unwrap_or("?");
    match soft {
        Some(soft) if soft < needed => Err(format!(
            "this run needs about {needed} open files but the limit is {soft} (hard limit {hard}): \
             run `ulimit -n {needed}` (or higher) in this shell first"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everything_once() {
        for n in [0, 1, 7, 100, 101] {
            for threads in 1..5 {
                let ranges: Vec<_> = (0..threads).map(|t| share(n, t, threads)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[threads - 1].end, n);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].len().abs_diff(w[1].len()) <= 1);
                }
            }
        }
    }

    #[test]
    fn the_fd_limit_check_passes_small_needs() {
        assert_eq!(check_fd_limit(10), Ok(()));
        assert!(check_fd_limit(usize::MAX).is_err() || !std::path::Path::new("/proc/self/limits").exists());
    }
}
