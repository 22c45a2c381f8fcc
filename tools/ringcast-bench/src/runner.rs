//! Running a scenario on several threads: each sets up its connections on
//! its own event loop, all start together, the main thread shows progress
//! and samples throughput, and the results are merged at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::check::Errors;
pub use crate::clock::Clock;
use crate::progress::Progress;

/// The error a worker returns when it stops because another thread failed
/// (the runner reports the other thread's error instead).
pub const ABORTED: &str = "";

/// How often a worker publishes its counters (and checks for an abort).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Counters the workers publish for the progress line.
#[derive(Debug, Default)]
pub struct Live {
    /// Messages received and checked so far (warm-up included).
    pub messages: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
    /// Worst p99 of the threads, in ns.
    pub p99_ns: AtomicU64,
    /// Set when a thread failed: the others stop.
    pub abort: AtomicBool,
}

/// What a worker hands the runner between setup and load.
pub struct Shared {
    /// Live counters.
    pub live: Live,
    barrier: Barrier,
    clock: OnceLock<Clock>,
    setup_failed: AtomicBool,
}

/// A worker's view of the run.
#[derive(Clone)]
pub struct Ctx {
    /// Thread number, from 0.
    pub thread: usize,
    /// Thread count.
    pub threads: usize,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Set once this thread reached [`Ctx::ready`].
    reached: Arc<AtomicBool>,
}

impl Ctx {
    /// Waits until every thread has set up, then returns the common clock
    /// (`None` if some thread failed its setup: stop).
    pub fn ready(&self, setup_ok: bool) -> Option<Clock> {
        self.reached.store(true, Ordering::Relaxed);
        if !setup_ok {
            self.shared.setup_failed.store(true, Ordering::Relaxed);
        }
        self.shared.barrier.wait();
        self.shared.barrier.wait();
        let clock = *self.shared.clock.get()?;
        (!self.shared.setup_failed.load(Ordering::Relaxed)).then_some(clock)
    }

    /// Whether another thread failed.
    pub fn aborted(&self) -> bool {
        self.shared.live.abort.load(Ordering::Relaxed)
    }
}

/// A worker's running counters, published every [`PUBLISH_EVERY`].
pub struct Tally {
    /// Latency (ns) of what was measured.
    pub latency: Histogram<u64>,
    /// Messages received and checked in the window.
    pub messages: u64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// Errors.
    pub errors: Errors,
    /// Messages received in total (for the progress line).
    pub seen: u64,
    published_seen: u64,
    published_errors: u64,
    next_publish: Instant,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally {
            latency: new_histogram(),
            messages: 0,
            bytes: 0,
            errors: Errors::default(),
            seen: 0,
            published_seen: 0,
            published_errors: 0,
            next_publish: Instant::now(),
        }
    }

    /// Publishes the counters to `live` if it is time; returns whether the
    /// run was aborted meanwhile.
    pub fn tick(&mut self, ctx: &Ctx) -> bool {
        let now = Instant::now();
        if now < self.next_publish {
            return false;
        }
        self.next_publish = now + PUBLISH_EVERY;
        let live = &ctx.shared.live;
        live.messages.fetch_add(self.seen - self.published_seen, Ordering::Relaxed);
        live.errors.fetch_add(self.errors.count - self.published_errors, Ordering::Relaxed);
        (self.published_seen, self.published_errors) = (self.seen, self.errors.count);
        if !self.latency.is_empty() {
            live.p99_ns.fetch_max(self.latency.value_at_quantile(0.99), Ordering::Relaxed);
        }
        ctx.aborted()
    }

    /// Adds another thread's tally.
    pub fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.seen += other.seen;
        self.errors.merge(other.errors);
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

/// A histogram of nanoseconds from 1 ns to an hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Throughput samples: (seconds since start, messages per second).
pub type Series = Vec<(f64, f64)>;

/// Runs `threads` workers. Each calls `worker(ctx)`, which sets up, calls
/// [`Ctx::ready`], runs and returns its result. `label` names the progress
/// line; `on_ready` runs once all threads are set up, before the load
/// starts (`warmup` and `duration` define the clock).
pub fn run<R: Send + 'static>(
    threads: usize,
    warmup: f64,
    duration: f64,
    label: &str,
    on_ready: impl FnOnce(),
    worker: impl Fn(Ctx) -> Result<R, String> + Send + Sync + 'static,
) -> Result<(Vec<R>, Series, Clock), String> {
    let shared = Arc::new(Shared {
        live: Live::default(),
        barrier: Barrier::new(threads + 1),
        clock: OnceLock::new(),
        setup_failed: AtomicBool::new(false),
    });
    let worker = Arc::new(worker);
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let ctx = Ctx { thread, threads, shared: shared.clone(), reached: Arc::new(AtomicBool::new(false)) };
            let worker = worker.clone();
            std::thread::Builder::new()
                .name(format!("bench-{thread}"))
                .spawn(move || {
                    let run = std::panic::AssertUnwindSafe(|| worker(ctx.clone()));
                    let result = std::panic::catch_unwind(run)
                        .unwrap_or_else(|_| Err(format!("worker thread {thread} panicked")));
                    if !ctx.reached.load(Ordering::Relaxed) {
                        // Failed before the start line: still meet the others
                        // there, or they would wait forever.
                        let _ = ctx.ready(false);
                    }
                    if result.is_err() {
                        ctx.shared.live.abort.store(true, Ordering::Relaxed);
                    }
                    result
                })
                .map_err(|e| format!("spawn: {e}"))
        })
        .collect::<Result<_, _>>()?;
    shared.barrier.wait();
    if !shared.setup_failed.load(Ordering::Relaxed) {
        on_ready();
    }
    let clock = Clock {
        start: Instant::now(),
        measure_from: (warmup.max(0.0) * 1e9) as u64,
        end: ((warmup.max(0.0) + duration.max(0.0)) * 1e9) as u64,
    };
    let _ = shared.clock.set(clock);
    shared.barrier.wait();
    let series = watch(&shared.live, &handles, clock, label);
    let mut results = Vec::with_capacity(threads);
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) if e == ABORTED => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some("a worker thread panicked".to_string())),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if results.len() < threads => Err("the run was aborted".into()),
        None => Ok((results, series, clock)),
    }
}

/// Updates the progress line until every worker is done; returns the
/// per-second throughput.
fn watch<T>(live: &Live, handles: &[std::thread::JoinHandle<T>], clock: Clock, label: &str) -> Series {
    let mut progress = Progress::new(label);
    let mut series = Series::new();
    let (mut last_second, mut last_count) = (0u64, 0u64);
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(PUBLISH_EVERY);
        let elapsed = clock.start.elapsed();
        let second = elapsed.as_secs();
        let messages = live.messages.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        if second > last_second {
            let rate = (messages - last_count) as f64 / (second - last_second) as f64;
            series.push((second as f64, rate));
            progress.second(elapsed, rate, live.p99_ns.load(Ordering::Relaxed), errors);
            (last_second, last_count) = (second, messages);
        }
        progress.tick(elapsed, messages, errors, clock);
    }
    progress.finish();
    series
}
