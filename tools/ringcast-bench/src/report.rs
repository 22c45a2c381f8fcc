//! The end of a run: percentiles, the JSON object (`--json`), the human
//! summary on stdout, the first error messages on stderr, the plot.

use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::check::Errors;
use crate::progress::thousands;
use crate::runner::Series;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LatencyUs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Largest value.
    pub max: f64,
}

impl LatencyUs {
    /// Percentiles of a histogram of nanoseconds (all 0 when empty).
    pub fn of(h: &Histogram<u64>) -> LatencyUs {
        if h.is_empty() {
            return LatencyUs::default();
        }
        let us = |ns: u64| (ns as f64 / 1e3 * 1000.0).round() / 1000.0;
        LatencyUs {
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            p9999: us(h.value_at_quantile(0.9999)),
            max: us(h.max()),
        }
    }
}

/// The result of a run, as written with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `echo`, `rate`, `fanout`, `broadcast` or `connections`.
    pub scenario: &'static str,
    /// The URL (or `tcp://addr` for a plain TCP echo).
    pub url: String,
    /// Connections (subscribers for `broadcast`).
    pub connections: u64,
    /// Payload bytes per message.
    pub size: u64,
    /// Seconds measured.
    pub duration_s: f64,
    /// Messages received and checked in the measured window.
    pub messages: u64,
    /// `messages / duration_s`.
    pub msgs_per_sec: f64,
    /// Payload bytes received per second.
    pub bytes_per_sec: f64,
    /// Errors (any makes the exit status 1).
    pub errors: u64,
    /// Latency percentiles.
    pub latency_us: LatencyUs,
    /// Scenario fields (`deliveries_per_sec`, `missing`, `reordered`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Report {
    /// A report from the merged counters.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: &'static str,
        url: &str,
        connections: usize,
        size: usize,
        duration_s: f64,
        messages: u64,
        bytes: u64,
        errors: u64,
        latency: &Histogram<u64>,
    ) -> Report {
        let per_sec = |n: u64| if duration_s > 0.0 { round2(n as f64 / duration_s) } else { 0.0 };
        Report {
            scenario,
            url: url.to_string(),
            connections: connections as u64,
            size: size as u64,
            duration_s: (duration_s * 1000.0).round() / 1000.0,
            messages,
            msgs_per_sec: per_sec(messages),
            bytes_per_sec: per_sec(bytes),
            errors,
            latency_us: LatencyUs::of(latency),
            extra: Map::new(),
        }
    }

    /// Adds a scenario field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Report {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// The JSON object, one line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human summary.
    pub fn summary(&self, notes: &[String]) -> String {
        let l = &self.latency_us;
        let mut out = format!(
            "{} {}: {} connections, {} B messages, {:.2} s measured\n  messages {} ({}/s, {:.1} MB/s of payload)\n  \
             latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}\n  errors {}\n",
            self.scenario,
            self.url,
            self.connections,
            self.size,
            self.duration_s,
            thousands(self.messages as f64),
            thousands(self.msgs_per_sec),
            self.bytes_per_sec / 1e6,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.p9999,
            l.max,
            self.errors
        );
        for note in notes {
            out.push_str("  ");
            out.push_str(note);
            out.push('\n');
        }
        out
    }
}

/// Rounds to two decimals (JSON readability).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What the end of every scenario does with its report.
pub struct Output<'a> {
    /// `--json FILE`.
    pub json: Option<&'a Path>,
    /// `--plot FILE.svg`.
    pub plot: Option<&'a Path>,
}

impl Output<'_> {
    /// Prints the summary and the first errors, writes the JSON and the
    /// plot. Returns whether the run was clean (no errors).
    pub fn finish(
        &self,
        report: &Report,
        notes: &[String],
        errors: &Errors,
        latency: &Histogram<u64>,
        series: &Series,
    ) -> Result<bool, String> {
        print!("{}", report.summary(notes));
        if errors.count > 0 {
            eprintln!("ringcast-bench: {} errors; the first:", errors.count);
            for e in &errors.first {
                eprintln!("  {e}");
            }
        }
        if let Some(path) = self.json {
            create_parent(path)?;
            std::fs::write(path, report.to_json() + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(path) = self.plot {
            create_parent(path)?;
            let title =
                format!("{} {} ({} connections, {} B)", report.scenario, report.url, report.connections, report.size);
            crate::plot::draw(path, &title, latency, series)?;
        }
        Ok(errors.count == 0)
    }
}

/// Creates the directory a result file goes into.
fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_the_promised_shape() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for ns in [10_000u64, 20_000, 30_000, 1_000_000] {
            h.record(ns).unwrap();
        }
        let report = Report::new("echo", "ws://127.0.0.1:1/", 10, 20, 2.0, 400, 8000, 0, &h)
            .with("in_flight", 1)
            .with("missing", 0);
        let value: Value = serde_json::from_str(&report.to_json()).unwrap();
        let object = value.as_object().unwrap();
        for key in [
            "scenario",
            "url",
            "connections",
            "size",
            "duration_s",
            "messages",
            "msgs_per_sec",
            "bytes_per_sec",
            "errors",
            "latency_us",
            "in_flight",
            "missing",
        ] {
            assert!(object.contains_key(key), "{key}");
        }
        assert_eq!(object["msgs_per_sec"], 200.0);
        assert_eq!(object["bytes_per_sec"], 4000.0);
        assert_eq!(object["messages"], 400);
        let latency = object["latency_us"].as_object().unwrap();
        let keys: Vec<&str> = latency.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6);
        for key in ["p50", "p90", "p99", "p999", "p9999", "max"] {
            assert!(latency[key].is_number(), "{key}");
        }
        assert!((latency["p50"].as_f64().unwrap() - 20.0).abs() < 0.1);
        assert!((latency["max"].as_f64().unwrap() - 1000.0).abs() < 1.0);
        assert!(report.summary(&[]).contains("p99.99"));
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        let h = Histogram::<u64>::new(3).unwrap();
        assert_eq!(LatencyUs::of(&h), LatencyUs::default());
    }
}
