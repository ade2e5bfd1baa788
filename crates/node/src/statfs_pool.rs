//! `statvfs(2)` off the scrape path, so a hung NFS, CIFS or FUSE mount never blocks a
//! scrape and never costs more than one thread.
//!
//! A small pool of long-lived threads runs the calls. Each mount has at most one call in
//! flight: a mount whose previous call has not returned is reported as stuck without
//! asking the kernel again, so Prometheus retrying every 15 s does not pile up threads or
//! file descriptors (node_exporter issues #244, #578, #3058). When calls hang, the pool
//! starts replacements so healthy mounts keep being measured; surplus threads retire once
//! idle.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A worker with nothing to do for this long exits if the pool has more than it needs.
const IDLE_RETIREMENT: Duration = Duration::from_secs(120);
/// Never more threads than this, however many mounts hang.
const MAX_THREADS: usize = 64;

/// The answer for one mount: the figures, or the error's text.
pub(crate) type StatResult = Result<Usage, String>;

/// What `statvfs(2)` says about a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Fragment size: the unit of the block counts.
    pub(crate) block_size: u64,
    pub(crate) blocks: u64,
    pub(crate) blocks_free: u64,
    /// Free blocks available to unprivileged users.
    pub(crate) blocks_available: u64,
    pub(crate) files: u64,
    pub(crate) files_free: u64,
}

/// The pool; cheap to share.
#[derive(Debug)]
pub(crate) struct StatfsPool {
    shared: Arc<Shared>,
    workers: usize,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    live: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Job>,
    /// Paths whose call has been handed out and not returned, with when it was asked.
    in_flight: HashMap<PathBuf, Instant>,
}

#[derive(Debug)]
struct Job {
    path: PathBuf,
    reply: mpsc::Sender<(PathBuf, StatResult)>,
}

/// What became of one request.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The call returned in time.
    Done(StatResult),
    /// A call for this path is still running from an earlier scrape, or this one did not
    /// return in time.
    Stuck,
}

impl StatfsPool {
    /// A pool that aims to keep `workers` threads free for calls.
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            shared: Arc::default(),
            workers: workers.max(1),
        }
    }

    /// Stats every path, waiting until `until` at most. Returns one outcome per path, in
    /// order; a path given twice (bind mounts) is asked once.
    pub(crate) fn stat_all(&self, paths: &[PathBuf], until: Instant) -> Vec<Outcome> {
        let (reply, answers) = mpsc::channel();
        let mut outcomes: HashMap<&PathBuf, Option<Outcome>> = HashMap::with_capacity(paths.len());
        let mut waiting = 0;
        {
            let mut state = self.shared.lock();
            let now = Instant::now();
            for path in paths {
                if outcomes.contains_key(path) {
                    continue;
                }
                if state.in_flight.contains_key(path) {
                    outcomes.insert(path, Some(Outcome::Stuck));
                    continue;
                }
                state.in_flight.insert(path.clone(), now);
                state.queue.push_back(Job {
                    path: path.clone(),
                    reply: reply.clone(),
                });
                outcomes.insert(path, None);
                waiting += 1;
            }
            self.ensure_workers(&state);
        }
        drop(reply);
        self.shared.wake.notify_all();

        while waiting > 0 {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            let Ok((path, result)) = answers.recv_timeout(left) else {
                break;
            };
            if let Some(slot @ None) = outcomes.get_mut(&path) {
                *slot = Some(Outcome::Done(result));
                waiting -= 1;
            }
        }
        paths
            .iter()
            .map(|path| {
                outcomes
                    .get(path)
                    .cloned()
                    .flatten()
                    .unwrap_or(Outcome::Stuck)
            })
            .collect()
    }

    /// Number of calls handed out that have not returned.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.shared.lock().in_flight.len()
    }

    /// Starts threads so that `workers` are available besides those stuck in calls.
    fn ensure_workers(&self, state: &State) {
        let wanted = (self.workers + state.in_flight.len().saturating_sub(state.queue.len()))
            .min(MAX_THREADS);
        while self.shared.live.load(Ordering::Acquire) < wanted {
            self.shared.live.fetch_add(1, Ordering::AcqRel);
            let shared = Arc::clone(&self.shared);
            let workers = self.workers;
            let spawned = std::thread::Builder::new()
                .name("statfs".into())
                .stack_size(64 * 1024)
                .spawn(move || shared.work(workers));
            if spawned.is_err() {
                self.shared.live.fetch_sub(1, Ordering::AcqRel);
                break;
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn work(&self, workers: usize) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                let result = rustix::fs::statvfs(&job.path)
                    .map(|s| Usage {
                        block_size: s.f_frsize,
                        blocks: s.f_blocks,
                        blocks_free: s.f_bfree,
                        blocks_available: s.f_bavail,
                        files: s.f_files,
                        files_free: s.f_ffree,
                    })
                    .map_err(|e| io::Error::from(e).to_string());
                state = self.lock();
                state.in_flight.remove(&job.path);
                // The scrape may have stopped waiting; then nobody listens.
                let _ = job.reply.send((job.path, result));
                continue;
            }
            let (next, timeout) = self
                .wake
                .wait_timeout(state, IDLE_RETIREMENT)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state = next;
            if timeout.timed_out() && state.queue.is_empty() {
                let busy = state.in_flight.len();
                if self.live.load(Ordering::Acquire) > workers + busy {
                    self.live.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_real_paths_and_reports_errors() {
        let pool = StatfsPool::new(2);
        let dir = std::env::temp_dir();
        let paths = [dir.clone(), PathBuf::from("/nonexistent/kiln"), dir];
        let outcomes = pool.stat_all(&paths, Instant::now() + Duration::from_secs(10));
        assert!(matches!(&outcomes[0], Outcome::Done(Ok(s)) if s.blocks > 0));
        assert!(matches!(&outcomes[1], Outcome::Done(Err(e)) if e.contains("No such file")));
        assert!(matches!(&outcomes[2], Outcome::Done(Ok(_))));
        assert_eq!(pool.in_flight(), 0);
    }
}
