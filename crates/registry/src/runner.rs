//! Runs every collector of a scrape concurrently under the scrape's deadline and adds the
//! per-collector meta metrics.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::collector::{CollectError, Collector, ScrapeContext};
use crate::log_limiter::LogLimiter;
use crate::metrics::{Format, LeftOut, MetricSet, encode};

/// Collectors that run at once unless `Runner::set_parallelism` says otherwise.
const DEFAULT_PARALLELISM: usize = 4;

/// How long a scrape's collectors run one after another on a single thread before more
/// threads join in. A healthy scrape is done well within it, without the cost of waking
/// and switching threads; a slow collector delays the others by this much at most.
const DEFAULT_SPREAD_AFTER: Duration = Duration::from_millis(20);

/// A collector that took at least this long at its last run starts at once on a thread of
/// its own, beside the one that works through the rest, rather than holding them up: a
/// second thread costs some tens of microseconds to wake, far less than it saves here.
const LONG_RUN: Duration = Duration::from_micros(500);

/// Failures of one collector are logged at most this often.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The set of collectors of one exporter.
#[derive(Debug)]
pub struct Runner {
    namespace: String,
    entries: Vec<Arc<Entry>>,
    /// The longest one collector may take, however long the scrape may last.
    budget: Option<Duration>,
    /// How many collectors run at once.
    parallelism: usize,
    /// When further threads join the first one.
    spread_after: Duration,
    /// Names selectable besides the collectors'.
    reserved: Vec<String>,
    /// Sets left by earlier scrapes, so a scrape reuses their buffers.
    pool: Arc<SetPool>,
}

struct Entry {
    collector: Box<dyn Collector>,
    /// Runs of this collector that a scrape gave up on (it answered without them) and that
    /// have not finished yet. While there is one, the collector is not started again, so a
    /// hung source costs one thread, not one per scrape. A run that a scrape still waits for
    /// does not count: two Prometheus servers scraping at the same moment both get every
    /// collector.
    overrunning: AtomicUsize,
    /// How long its last finished run took, in microseconds: [`LONG_RUN`] or more makes
    /// the next scrape start it on a thread of its own.
    last_run_micros: AtomicU64,
    errors: LogLimiter,
    /// Named in [`PANIC_COLLECTORS_ENV`]: the collector panics instead of collecting.
    made_to_panic: bool,
}

/// Names collectors (comma-separated) that panic on every collection instead of collecting,
/// so a test can show on a real binary that a panicking collector is reported as failed
/// while the others are served. Read once, when a collector is registered.
pub const PANIC_COLLECTORS_ENV: &str = "KILN_PANIC_COLLECTORS";

fn made_to_panic(name: &str) -> bool {
    std::env::var(PANIC_COLLECTORS_ENV)
        .is_ok_and(|names| names.split(',').any(|n| n.trim() == name))
}

impl Entry {
    fn last_run(&self) -> Duration {
        Duration::from_micros(self.last_run_micros.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("collector", &self.collector.name())
            .field("overrunning", &self.overrunning)
            .finish()
    }
}

/// Which collectors a scrape asks for, from the `collect[]` and `exclude[]` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every registered collector.
    #[default]
    All,
    /// Only these.
    Only(BTreeSet<String>),
    /// All but these.
    Except(BTreeSet<String>),
}

/// A `collect[]` / `exclude[]` request the runner cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// Both parameters were given.
    #[error("collect[] and exclude[] cannot be used together")]
    Both,
    /// A name that is not a registered collector.
    #[error("unknown collector: {0}")]
    Unknown(String),
}

impl Selection {
    /// Builds a selection from a URL query string, as node_exporter reads it.
    pub fn from_query(query: &str) -> Result<Self, SelectionError> {
        let mut collect = BTreeSet::new();
        let mut exclude = BTreeSet::new();
        for (key, value) in crate::server::query_pairs(query) {
            match key.as_ref() {
                "collect[]" => collect.insert(value.into_owned()),
                "exclude[]" => exclude.insert(value.into_owned()),
                _ => continue,
            };
        }
        match (collect.is_empty(), exclude.is_empty()) {
            (true, true) => Ok(Self::All),
            (false, true) => Ok(Self::Only(collect)),
            (true, false) => Ok(Self::Except(exclude)),
            (false, false) => Err(SelectionError::Both),
        }
    }

    /// True when the selection takes the collector (or text source) `name`.
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(name),
            Self::Except(names) => !names.contains(name),
        }
    }

    fn names(&self) -> Option<&BTreeSet<String>> {
        match self {
            Self::All => None,
            Self::Only(names) | Self::Except(names) => Some(names),
        }
    }
}

struct Outcome {
    /// The collector's entry (shared, so naming it costs no allocation).
    entry: Arc<Entry>,
    duration: Duration,
    result: Result<(), CollectError>,
    /// What the collector wrote; emptied when it failed.
    set: MetricSet,
}

/// A set larger than this is not kept for the next scrape, so one huge scrape does not pin
/// its memory for ever.
const POOL_SET_MAX_BYTES: usize = 4 << 20;

/// Sets kept between scrapes: one per collector is enough for a scrape at a time.
#[derive(Debug, Default)]
struct SetPool {
    sets: Mutex<Vec<MetricSet>>,
    /// How many sets are worth keeping.
    limit: std::sync::atomic::AtomicUsize,
}

impl SetPool {
    fn take(&self) -> MetricSet {
        lock(&self.sets).pop().unwrap_or_default()
    }

    fn give_back(&self, sets: impl IntoIterator<Item = MetricSet>) {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut kept = lock(&self.sets);
        for mut set in sets {
            if kept.len() < limit && set.capacity_bytes() <= POOL_SET_MAX_BYTES {
                set.clear();
                kept.push(set);
            }
        }
    }
}

/// What one scrape's collectors wrote: a set per collector, then the meta metrics. Encode
/// it with [`Collected::encode`]; dropping it returns the sets' buffers to the runner.
#[derive(Debug)]
pub struct Collected {
    sets: Vec<MetricSet>,
    pool: Arc<SetPool>,
}

impl Collected {
    /// The sets, each sealed, in collector-name order with the meta metrics last.
    pub fn sets(&self) -> impl Iterator<Item = &MetricSet> {
        self.sets.iter()
    }

    /// Adds families written by `write` after the collectors' (the server's own metrics).
    pub fn append(&mut self, write: impl FnOnce(&mut MetricSet)) {
        let mut set = self.pool.take();
        write(&mut set);
        set.seal();
        self.sets.push(set);
    }

    /// Writes these families, merged by name, in `format`.
    pub fn encode(&self, format: Format, out: &mut String) -> Vec<LeftOut> {
        let sets: Vec<&MetricSet> = self.sets.iter().collect();
        encode(&sets, format, out)
    }
}

impl Drop for Collected {
    fn drop(&mut self) {
        self.pool.give_back(self.sets.drain(..));
    }
}

/// Where the collecting threads leave their outcomes. The scrape is woken once, when the
/// last expected outcome is in, not once per collector: each wake-up of the runtime from a
/// blocking thread costs system calls (an eventfd write, an epoll return, a futex), which
/// for forty small collectors were a tenth of a scrape's CPU time.
#[derive(Default)]
struct Finished {
    outcomes: Mutex<Vec<Outcome>>,
    all: tokio::sync::Notify,
}

impl Finished {
    fn push(&self, outcome: Outcome, expected: usize) {
        let mut outcomes = lock(&self.outcomes);
        outcomes.push(outcome);
        if outcomes.len() == expected {
            // Stores a permit if the scrape is not waiting yet.
            self.all.notify_one();
        }
    }
}

impl Runner {
    /// An empty runner whose meta metrics are `<namespace>_scrape_collector_*`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            entries: Vec::new(),
            budget: None,
            parallelism: DEFAULT_PARALLELISM,
            spread_after: DEFAULT_SPREAD_AFTER,
            reserved: Vec::new(),
            pool: Arc::default(),
        }
    }

    /// Sets how many collectors run at once (at least one).
    pub fn set_parallelism(&mut self, parallelism: usize) {
        self.parallelism = parallelism.max(1);
    }

    /// Sets how long collectors run on one thread before the others join in (see
    /// [`Runner::collect`]); zero starts them all at once.
    pub fn set_spread_after(&mut self, spread_after: Duration) {
        self.spread_after = spread_after;
    }

    /// Bounds every collector to `budget`: its context's deadline is the sooner of the
    /// scrape's and `budget` after the scrape starts, and a collector still running then is
    /// reported as failed while the others' results are served.
    pub fn set_collector_budget(&mut self, budget: Duration) {
        self.budget = Some(budget);
    }

    /// Adds a collector. Names must be unique.
    pub fn register(&mut self, collector: impl Collector) {
        self.register_boxed(Box::new(collector));
    }

    /// Adds an already boxed collector.
    pub fn register_boxed(&mut self, collector: Box<dyn Collector>) {
        debug_assert!(
            self.entries
                .iter()
                .all(|e| e.collector.name() != collector.name()),
            "duplicate collector name {}",
            collector.name()
        );
        self.entries.push(Arc::new(Entry {
            made_to_panic: made_to_panic(collector.name()),
            overrunning: AtomicUsize::new(0),
            last_run_micros: AtomicU64::new(0),
            errors: LogLimiter::new(ERROR_LOG_INTERVAL),
            collector,
        }));
        // One set per collector and one for the meta metrics.
        self.pool
            .limit
            .store(self.entries.len() + 1, Ordering::Relaxed);
    }

    /// Makes `name` valid in `collect[]` / `exclude[]` without a collector behind it (for
    /// a [`crate::TextSource`]).
    pub fn reserve_name(&mut self, name: &str) {
        self.reserved.push(name.to_owned());
    }

    /// The metric namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Names of the registered collectors, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.collector.name())
    }

    /// Checks that a selection names only registered collectors.
    pub fn validate(&self, selection: &Selection) -> Result<(), SelectionError> {
        if let Some(unknown) =
            selection.names().into_iter().flatten().find(|name| {
                !self.names().any(|n| n == name.as_str()) && !self.reserved.contains(name)
            })
        {
            return Err(SelectionError::Unknown(unknown.clone()));
        }
        Ok(())
    }

    /// Runs the selected collectors concurrently and returns what they wrote, followed by the
    /// scrape meta metrics. Never fails: a collector that errors, panics or misses the
    /// deadline is reported with `success 0`, and whatever it wrote is left out.
    ///
    /// Collectors are taken from one queue by blocking threads, each taking the next when
    /// it is done. One thread starts; if the queue is not done after
    /// [`Runner::set_spread_after`], more join it, up to [`Runner::set_parallelism`]. Most
    /// scrapes of small collectors finish on the first thread, since waking a second and
    /// reading procfs from both at once costs more CPU than it saves time (a fifth of a
    /// node scrape on two cores); a slow collector still never holds up the others for
    /// longer than that delay. A collector whose last run took 0.5 ms or more is
    /// known to be slow: it goes first, on a thread of its own, while the first thread
    /// works through the rest, so its time overlaps theirs instead of adding to it.
    pub async fn collect(&self, ctx: ScrapeContext, selection: &Selection) -> Collected {
        let started = Instant::now();
        let ctx = match self.budget {
            Some(budget) => ScrapeContext::new(ctx.deadline().min(started + budget)),
            None => ctx,
        };
        let mut outcomes = Vec::new();
        let mut jobs = VecDeque::new();
        for entry in self
            .entries
            .iter()
            .filter(|e| selection.includes(e.collector.name()))
        {
            if entry.overrunning.load(Ordering::Acquire) > 0 {
                outcomes.push(Outcome {
                    entry: Arc::clone(entry),
                    duration: Duration::ZERO,
                    result: Err(CollectError::failed(
                        "skipped",
                        "the previous collection has not finished yet",
                    )),
                    set: MetricSet::default(),
                });
                continue;
            }
            jobs.push_back(Job {
                entry: Arc::clone(entry),
                set: self.pool.take(),
                run: 0,
            });
        }

        // Known slow collectors to the front, the slowest first; the rest keep their order.
        // Each key is read once: a run of another scrape may finish meanwhile.
        let long = jobs
            .iter()
            .filter(|job| job.entry.last_run() >= LONG_RUN)
            .count();
        if long > 0 {
            jobs.make_contiguous().sort_by_cached_key(|job| {
                std::cmp::Reverse(Some(job.entry.last_run()).filter(|run| *run >= LONG_RUN))
            });
        }
        // Runs are numbered in queue order, as `started_entries` below lists them.
        for (run, job) in jobs.iter_mut().enumerate() {
            job.run = run;
        }
        let expected = jobs.len();
        let started_entries: Vec<Arc<Entry>> =
            jobs.iter().map(|job| Arc::clone(&job.entry)).collect();
        // One allocation for the scrape's runs, not one per collector.
        let runs: Arc<[Run]> = (0..expected).map(|_| Run::default()).collect();
        let queue = Arc::new(Mutex::new(jobs));
        let finished = Arc::new(Finished::default());
        let workers = self.parallelism.min(expected);
        let worker = || {
            let queue = Arc::clone(&queue);
            let finished = Arc::clone(&finished);
            let runs = Arc::clone(&runs);
            move || work_through(&queue, &runs, &finished, &ctx, expected)
        };
        let deadline = tokio::time::Instant::from_std(ctx.deadline());
        if expected > 0 {
            let first = if self.spread_after.is_zero() {
                workers
            } else {
                // A thread for each slow collector, and one for the rest.
                (long + 1).min(workers)
            };
            for _ in 0..first {
                tokio::task::spawn_blocking(worker());
            }
            let mut all = std::pin::pin!(finished.all.notified());
            // Whatever the outcome of the waits, what has finished by now is served.
            let mut all_in = false;
            if first < workers {
                let spread_at = deadline.min(tokio::time::Instant::now() + self.spread_after);
                all_in = tokio::time::timeout_at(spread_at, all.as_mut())
                    .await
                    .is_ok();
                if !all_in {
                    for _ in first..workers {
                        tokio::task::spawn_blocking(worker());
                    }
                }
            }
            if !all_in {
                let _ = tokio::time::timeout_at(deadline, all).await;
            }
        }
        let arrived = std::mem::take(&mut *lock(&finished.outcomes));
        let done = |entry: &Arc<Entry>| arrived.iter().any(|o| Arc::ptr_eq(&o.entry, entry));
        let missing: Vec<(Arc<Entry>, &Run)> = started_entries
            .into_iter()
            .zip(runs.iter())
            .filter(|(entry, _)| !done(entry))
            .collect();
        outcomes.extend(arrived);
        // Collectors not yet started are taken off the queue, so they do not run after
        // the scrape has been answered; those still running finish in the background.
        let mut unused = Vec::new();
        let not_started: Vec<Arc<Entry>> = lock(&queue)
            .drain(..)
            .map(|job| {
                unused.push(job.set);
                job.entry
            })
            .collect();
        self.pool.give_back(unused);
        for (entry, run) in missing {
            let context = if not_started.iter().any(|e| Arc::ptr_eq(e, &entry)) {
                "not started"
            } else {
                run.abandon(&entry);
                "deadline exceeded"
            };
            outcomes.push(Outcome {
                entry,
                duration: started.elapsed(),
                result: Err(CollectError::failed(
                    context,
                    format!(
                        "no result within {:.3}s; a collection in progress goes on in the background",
                        started.elapsed().as_secs_f64()
                    ),
                )),
                set: MetricSet::default(),
            });
        }
        self.assemble(outcomes)
    }

    fn assemble(&self, mut outcomes: Vec<Outcome>) -> Collected {
        outcomes.sort_by(|a, b| a.entry.collector.name().cmp(b.entry.collector.name()));
        let ns = &self.namespace;
        let mut meta = self.pool.take();
        let durations = meta.gauge(
            &format!("{ns}_scrape_collector_duration_seconds"),
            &format!("{ns}_exporter: Duration of a collector scrape."),
        );
        let successes = meta.gauge(
            &format!("{ns}_scrape_collector_success"),
            &format!("{ns}_exporter: Whether a collector succeeded."),
        );
        let mut sets = Vec::with_capacity(outcomes.len() + 1);
        for outcome in outcomes {
            let name = outcome.entry.collector.name();
            let labels = [("collector", name)];
            meta.sample(durations, &labels, outcome.duration.as_secs_f64());
            let success = match &outcome.result {
                Ok(()) => 1.0,
                Err(error) => {
                    log_failure(&outcome.entry, error, outcome.duration);
                    0.0
                }
            };
            meta.sample(successes, &labels, success);
            sets.push(outcome.set);
        }
        meta.seal();
        sets.push(meta);
        Collected {
            sets,
            pool: Arc::clone(&self.pool),
        }
    }
}

fn log_failure(entry: &Entry, error: &CollectError, duration: Duration) {
    let name = entry.collector.name();
    if matches!(error, CollectError::NoData) {
        tracing::debug!(collector = name, "Collector returned no data.");
        return;
    }
    if let Some(suppressed) = entry.errors.check() {
        tracing::error!(
            collector = name,
            duration_seconds = duration.as_secs_f64(),
            suppressed,
            err = %error,
            "Collector failed."
        );
    }
}

/// A collector to run for one scrape.
struct Job {
    entry: Arc<Entry>,
    set: MetricSet,
    /// Its [`Run`] among the scrape's.
    run: usize,
}

/// One run of a collector: still running, finished, or given up on by its scrape. The
/// scrape and the run each move it from running, so exactly one of them settles
/// [`Entry::overrunning`].
#[derive(Debug, Default)]
struct Run(AtomicU8);

impl Run {
    const RUNNING: u8 = 0;
    const FINISHED: u8 = 1;
    const ABANDONED: u8 = 2;

    /// The scrape answers without this run: it counts as overrunning until it finishes.
    fn abandon(&self, entry: &Entry) {
        // Counted first, so the run's own decrement can never come before it.
        entry.overrunning.fetch_add(1, Ordering::AcqRel);
        if self
            .0
            .compare_exchange(
                Self::RUNNING,
                Self::ABANDONED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // It finished in the meantime.
            entry.overrunning.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The run is over; if its scrape gave up on it, it no longer holds the collector back.
    fn finish(&self, entry: &Entry) {
        if self
            .0
            .compare_exchange(
                Self::RUNNING,
                Self::FINISHED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            entry.overrunning.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Runs collectors from the queue until it is empty, leaving each outcome in `finished`.
fn work_through(
    queue: &Mutex<VecDeque<Job>>,
    runs: &[Run],
    finished: &Finished,
    ctx: &ScrapeContext,
    expected: usize,
) {
    loop {
        // A statement of its own, so the lock is released before collecting.
        let next = lock(queue).pop_front();
        let Some(Job {
            entry,
            mut set,
            run,
        }) = next
        else {
            break;
        };
        let begin = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if entry.made_to_panic {
                panic!("made to panic by {PANIC_COLLECTORS_ENV}");
            }
            entry.collector.collect(ctx, &mut set)
        }))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(CollectError::failed("collector panicked", message))
        });
        if result.is_err() {
            // Half of a collector's families would look like data that vanished.
            set.clear();
        }
        set.seal();
        if let Some(run) = runs.get(run) {
            run.finish(&entry);
        }
        let duration = begin.elapsed();
        entry.last_run_micros.store(
            u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        finished.push(
            Outcome {
                entry: Arc::clone(&entry),
                duration,
                result,
                set,
            },
            expected,
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, f64);
    impl Collector for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
            let value = out.gauge("t_value", "A value.");
            out.sample(value, &[("from", self.0)], self.1);
            Ok(())
        }
    }

    struct Broken;
    impl Collector for Broken {
        fn name(&self) -> &str {
            "broken"
        }
        fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
            out.gauge_value("t_half_written", "Written before the failure.", 1.0);
            Err(CollectError::failed("reading /nonexistent", "no such file"))
        }
    }

    struct Panics;
    impl Collector for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
            out.gauge_value("t_half_written", "Written before the panic.", 1.0);
            panic!("a bug in a collector")
        }
    }

    struct Sleeps(Duration);
    impl Collector for Sleeps {
        fn name(&self) -> &str {
            "sleeps"
        }
        fn collect(&self, _: &ScrapeContext, _: &mut MetricSet) -> Result<(), CollectError> {
            std::thread::sleep(self.0);
            Ok(())
        }
    }

    /// Notes which thread ran it.
    struct Records(&'static str, Arc<Mutex<Vec<std::thread::ThreadId>>>);
    impl Collector for Records {
        fn name(&self) -> &str {
            self.0
        }
        fn collect(&self, _: &ScrapeContext, _: &mut MetricSet) -> Result<(), CollectError> {
            lock(&self.1).push(std::thread::current().id());
            Ok(())
        }
    }

    /// Counts its runs, and wakes [`WaitsForScrape`].
    struct Counts(Arc<(Mutex<u32>, std::sync::Condvar)>);
    impl Collector for Counts {
        fn name(&self) -> &str {
            "counts"
        }
        fn collect(&self, _: &ScrapeContext, _: &mut MetricSet) -> Result<(), CollectError> {
            *lock(&self.0.0) += 1;
            self.0.1.notify_all();
            Ok(())
        }
    }

    /// In its n-th run, waits up to a while for [`Counts`]' n-th run, and records whether
    /// it came: it can only while both run at once.
    struct WaitsForScrape {
        counts: Arc<(Mutex<u32>, std::sync::Condvar)>,
        runs: AtomicUsize,
        met: Mutex<Vec<bool>>,
    }
    impl Collector for WaitsForScrape {
        fn name(&self) -> &str {
            "waits"
        }
        fn collect(&self, _: &ScrapeContext, _: &mut MetricSet) -> Result<(), CollectError> {
            let run = u32::try_from(self.runs.fetch_add(1, Ordering::Relaxed) + 1).unwrap();
            let (count, woken) = &*self.counts;
            let (count, _) = woken
                .wait_timeout_while(lock(count), Duration::from_millis(300), |n| *n < run)
                .unwrap();
            lock(&self.met).push(*count >= run);
            Ok(())
        }
    }

    /// Every collector, within 5 s.
    async fn collect_all(runner: &Runner) -> Collected {
        runner
            .collect(
                ScrapeContext::with_budget(Duration::from_secs(5)),
                &Selection::All,
            )
            .await
    }

    fn value(collected: &Collected, name: &str, label: &str) -> Option<f64> {
        collected
            .sets()
            .flat_map(|set| set.families())
            .filter(|f| f.name() == name)
            .flat_map(|f| f.samples())
            .find(|s| s.labels().any(|(_, v)| v == label))
            .map(|s| s.value())
    }

    fn text(collected: &Collected) -> String {
        let mut out = String::new();
        collected.encode(Format::Text, &mut out);
        out
    }

    fn runner() -> Runner {
        let mut runner = Runner::new("t");
        runner.register(Fixed("a", 1.0));
        runner.register(Broken);
        runner.register(Panics);
        runner.register(Fixed("b", 2.0));
        runner
    }

    #[tokio::test]
    async fn failures_are_reported_and_the_rest_still_served() {
        let families = runner()
            .collect(
                ScrapeContext::with_budget(Duration::from_secs(5)),
                &Selection::All,
            )
            .await;
        let text = text(&families);
        assert!(
            text.contains("# TYPE t_value gauge\nt_value{from=\"a\"} 1\nt_value{from=\"b\"} 2\n"),
            "same-named families are merged: {text}"
        );
        assert!(
            !text.contains("t_half_written"),
            "a failed collector's families are left out: {text}"
        );
        for (collector, ok) in [("a", 1.0), ("b", 1.0), ("broken", 0.0), ("panics", 0.0)] {
            assert_eq!(
                value(&families, "t_scrape_collector_success", collector),
                Some(ok),
                "{collector}"
            );
        }
    }

    #[tokio::test]
    async fn selection_limits_what_runs() {
        let runner = runner();
        let only = Selection::from_query("collect[]=a&collect%5B%5D=broken").unwrap();
        runner.validate(&only).unwrap();
        let families = runner
            .collect(ScrapeContext::with_budget(Duration::from_secs(5)), &only)
            .await;
        assert_eq!(
            value(&families, "t_scrape_collector_success", "a"),
            Some(1.0)
        );
        assert_eq!(value(&families, "t_scrape_collector_success", "b"), None);
        assert_eq!(
            runner.validate(&Selection::from_query("exclude[]=nope").unwrap()),
            Err(SelectionError::Unknown("nope".into()))
        );
        assert_eq!(
            Selection::from_query("collect[]=a&exclude[]=b"),
            Err(SelectionError::Both)
        );
    }

    #[tokio::test]
    async fn a_slow_collector_misses_the_deadline_and_is_not_started_twice() {
        let mut runner = Runner::new("t");
        runner.register(Sleeps(Duration::from_millis(600)));
        let ctx = ScrapeContext::with_budget(Duration::from_millis(50));
        let first = runner.collect(ctx, &Selection::All).await;
        assert_eq!(
            value(&first, "t_scrape_collector_success", "sleeps"),
            Some(0.0)
        );
        // Still running from the first scrape: reported as failed without a second thread.
        let second = runner.collect(ctx, &Selection::All).await;
        assert_eq!(
            value(&second, "t_scrape_collector_success", "sleeps"),
            Some(0.0)
        );
        assert_eq!(runner.entries[0].overrunning.load(Ordering::Acquire), 1);
    }

    #[tokio::test]
    async fn a_collector_known_to_be_slow_that_misses_the_deadline_is_not_started_twice() {
        let mut runner = Runner::new("t");
        runner.register(Fixed("a", 1.0));
        runner.register(Sleeps(Duration::from_millis(600)));
        // Finished in time: known to be slow from now on, so it goes first in the queue.
        collect_all(&runner).await;
        let ctx = ScrapeContext::with_budget(Duration::from_millis(50));
        let late = runner.collect(ctx, &Selection::All).await;
        assert_eq!(value(&late, "t_scrape_collector_success", "a"), Some(1.0));
        assert_eq!(
            value(&late, "t_scrape_collector_success", "sleeps"),
            Some(0.0)
        );
        // The run given up on is the slow collector's, not the first registered one's.
        assert_eq!(runner.entries[0].overrunning.load(Ordering::Acquire), 0);
        assert_eq!(runner.entries[1].overrunning.load(Ordering::Acquire), 1);
    }

    #[tokio::test]
    async fn two_scrapes_at_once_both_get_a_collector_that_is_still_running() {
        // As when two Prometheus servers (an HA pair, or one per cluster and an agent)
        // scrape the same exporter at the same moment.
        let mut runner = Runner::new("t");
        runner.register(Sleeps(Duration::from_millis(200)));
        let runner = Arc::new(runner);
        let ctx = ScrapeContext::with_budget(Duration::from_secs(10));
        let (first, second) = tokio::join!(
            runner.collect(ctx, &Selection::All),
            runner.collect(ctx, &Selection::All)
        );
        for scrape in [&first, &second] {
            assert_eq!(
                value(scrape, "t_scrape_collector_success", "sleeps"),
                Some(1.0)
            );
        }
        assert_eq!(runner.entries[0].overrunning.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn an_overrunning_collector_is_started_again_once_it_finishes() {
        let mut runner = Runner::new("t");
        runner.register(Sleeps(Duration::from_millis(150)));
        let short = ScrapeContext::with_budget(Duration::from_millis(20));
        let first = runner.collect(short, &Selection::All).await;
        assert_eq!(
            value(&first, "t_scrape_collector_success", "sleeps"),
            Some(0.0)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(runner.entries[0].overrunning.load(Ordering::Acquire), 0);
        let later = collect_all(&runner).await;
        assert_eq!(
            value(&later, "t_scrape_collector_success", "sleeps"),
            Some(1.0)
        );
    }

    #[tokio::test]
    async fn quick_collectors_share_one_thread() {
        let threads = Arc::new(Mutex::new(Vec::new()));
        let mut runner = Runner::new("t");
        runner.set_parallelism(4);
        runner.set_spread_after(Duration::from_secs(5));
        for name in ["a", "b", "c", "d", "e"] {
            runner.register(Records(name, Arc::clone(&threads)));
        }
        let families = runner
            .collect(
                ScrapeContext::with_budget(Duration::from_secs(10)),
                &Selection::All,
            )
            .await;
        assert_eq!(
            value(&families, "t_scrape_collector_success", "e"),
            Some(1.0)
        );
        let threads = lock(&threads);
        assert_eq!(threads.len(), 5);
        assert!(threads.iter().all(|id| *id == threads[0]), "{threads:?}");
    }

    #[tokio::test]
    async fn a_slow_collector_lets_more_threads_join() {
        let mut runner = Runner::new("t");
        runner.set_parallelism(2);
        runner.set_spread_after(Duration::from_millis(20));
        // First in the queue, so the first thread is stuck in it.
        runner.register(Sleeps(Duration::from_millis(1500)));
        runner.register(Fixed("a", 1.0));
        runner.register(Fixed("b", 2.0));
        let ctx = ScrapeContext::with_budget(Duration::from_millis(700));
        let families = runner.collect(ctx, &Selection::All).await;
        for (collector, ok) in [("a", 1.0), ("b", 1.0), ("sleeps", 0.0)] {
            assert_eq!(
                value(&families, "t_scrape_collector_success", collector),
                Some(ok),
                "{collector}"
            );
        }
    }

    #[tokio::test]
    async fn a_collector_known_to_be_slow_runs_beside_the_others() {
        let counts = Arc::new((Mutex::new(0), std::sync::Condvar::new()));
        let waits = Arc::new(WaitsForScrape {
            counts: Arc::clone(&counts),
            runs: AtomicUsize::new(0),
            met: Mutex::new(Vec::new()),
        });
        struct Shared(Arc<WaitsForScrape>);
        impl Collector for Shared {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn collect(
                &self,
                ctx: &ScrapeContext,
                out: &mut MetricSet,
            ) -> Result<(), CollectError> {
                self.0.collect(ctx, out)
            }
        }
        let mut runner = Runner::new("t");
        runner.set_parallelism(2);
        runner.set_spread_after(Duration::from_secs(10));
        // First in the queue: the first scrape runs it, then the other, on one thread.
        runner.register(Shared(Arc::clone(&waits)));
        runner.register(Counts(counts));
        for _ in 0..2 {
            let families = collect_all(&runner).await;
            assert_eq!(
                value(&families, "t_scrape_collector_success", "counts"),
                Some(1.0)
            );
        }
        // The first run took 300 ms, so the second scrape knew it for a slow one.
        assert_eq!(*lock(&waits.met), [false, true]);
    }
}
