//! The collection: a thread that opens NVML (again, with backoff, when it breaks) and, on
//! an interval, has every GPU read by a thread of that GPU's own, then publishes one
//! [`Snapshot`]. Scrapes never call NVML, so a driver call that hangs holds up a collection
//! thread only; and since each GPU has its own, a call wedged on one GPU holds up that GPU
//! alone. The cycle waits for the GPUs' threads up to `--collect.timeout`; a GPU whose
//! thread is still inside a call then is published as stalled (`nvidia_gpu_up 0`, no
//! readings) and given no more work until the call returns, while the others are published
//! fresh.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use crate::calls::{Abort, Call, Errors, Meaning, Progress, Reader, Support, meaning};
use crate::collectors::identity::{self, Identity, System};
use crate::collectors::{self, Context, Learnt, Options};
use kiln_registry::{FamilyId, MetricSet, SharedSet};

use crate::families::{self, Families, GpuLabels};
use crate::family;
use crate::kmsg;
use crate::snapshot::{GpuState, Snapshot};
use crate::xid::{self, XidCounts};

family!(
    COLLECT_ERRORS,
    counter,
    "nvidia_gpu_collect_errors_total",
    "NVML calls that failed, by C function and error. A call a GPU does not support fails once and is not made again."
);

/// How the collector runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The NVML library to open; `None` for `libnvidia-ml.so.1` from the loader's path.
    pub library: Option<PathBuf>,
    pub interval: Duration,
    /// How long a cycle waits for a GPU's thread before publishing it as stalled.
    pub timeout: Duration,
    pub xid_events: bool,
    /// The kernel log to read XID 79 from; `None` not to.
    pub kmsg: Option<PathBuf>,
    pub options: Options,
}

/// What the collection threads share with scrapes.
#[derive(Debug, Default)]
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    /// The system-wide calls of the main collection thread (opening NVML, counting GPUs).
    pub progress: Progress,
    pub xids: Arc<XidCounts>,
    /// The GPUs' PCI addresses, for XIDs from the kernel log.
    pub kmsg: kmsg::State,
}

impl Shared {
    /// Waits until the first cycle is published, or `limit` has passed.
    pub fn wait_for_first(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.snapshot.load().cycles == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Starts the collection thread.
pub fn start(settings: Settings) -> std::io::Result<Arc<Shared>> {
    let shared = Arc::new(Shared::default());
    if let Some(path) = settings.kmsg.clone() {
        kmsg::watch(path, settings.options.procfs.clone(), Arc::clone(&shared))?;
    }
    let worker = Worker::new(settings, Arc::clone(&shared));
    std::thread::Builder::new()
        .name("nvml-collector".into())
        .spawn(move || worker.run())?;
    Ok(shared)
}

/// An open library, as the GPUs' threads get it with each job.
#[derive(Debug)]
struct Library {
    nvml: Arc<Nvml>,
    system: System,
    /// Counts the openings: a GPU's thread learns its device afresh from a new one.
    generation: u64,
}

/// An open library, and the XID watcher that uses it.
#[derive(Debug)]
struct Session {
    library: Arc<Library>,
    _xid: Option<xid::Watch>,
}

/// What a GPU's thread keeps about its device.
#[derive(Debug)]
struct Tracked {
    uuid: String,
    generation: u64,
    labels: GpuLabels,
    support: Support,
    learnt: Learnt,
}

impl Tracked {
    fn new(index: u32, uuid: String, generation: u64) -> Self {
        Self {
            labels: families::gpu_labels(index, &uuid),
            uuid,
            generation,
            support: Support::default(),
            learnt: Learnt::default(),
        }
    }
}

/// One cycle's work for a GPU's thread.
#[derive(Debug)]
struct Job {
    cycle: u64,
    library: Arc<Library>,
    options: Arc<Options>,
}

/// What a GPU's thread found in one cycle.
#[derive(Debug)]
enum Status {
    /// It answered; its families, sealed.
    Up(MetricSet),
    /// It is lost, needs a reset, or could not be found.
    Down,
    /// The driver is gone: the library must be opened again.
    DriverGone,
}

#[derive(Debug)]
struct Outcome {
    cycle: u64,
    labels: GpuLabels,
    status: Status,
}

/// What the main thread and a GPU's thread share.
#[derive(Debug, Default)]
struct SlotState {
    /// The GPU's call in flight.
    progress: Progress,
    /// Set when a job is sent, cleared when its outcome is stored.
    busy: AtomicBool,
    outcome: Mutex<Option<Outcome>>,
}

/// The GPU at one index, as the main thread sees it.
#[derive(Debug)]
struct Slot {
    state: Arc<SlotState>,
    jobs: mpsc::Sender<Job>,
    /// The labels the GPU last answered with, for its `up` and `stalled` series.
    labels: GpuLabels,
    /// Whether the current stall was logged.
    stall_logged: bool,
}

/// Backoff between attempts to open the library: 1 s doubling to a minute.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Worker {
    settings: Settings,
    options: Arc<Options>,
    shared: Arc<Shared>,
    session: Option<Session>,
    generation: u64,
    slots: Vec<Slot>,
    errors: Arc<Errors>,
    /// Which GPU's cycle each finished job belonged to, sent by the GPUs' threads.
    done: mpsc::Receiver<u64>,
    done_sender: mpsc::Sender<u64>,
    families: Families,
    names: Vec<(String, FamilyId)>,
    backoff: Duration,
    next_open: Instant,
    cycles: u64,
}

impl Worker {
    /// A worker that publishes into `shared`; [`Worker::cycle`] runs one collection.
    pub fn new(settings: Settings, shared: Arc<Shared>) -> Self {
        let (done_sender, done) = mpsc::channel();
        Self {
            options: Arc::new(settings.options.clone()),
            settings,
            shared,
            session: None,
            generation: 0,
            slots: Vec::new(),
            errors: Arc::default(),
            done,
            done_sender,
            families: Families::default(),
            names: Vec::new(),
            backoff: FIRST_BACKOFF,
            next_open: Instant::now(),
            cycles: 0,
        }
    }

    fn run(mut self) {
        let mut next = Instant::now();
        loop {
            self.cycle();
            // Keep to the interval's grid; after an overrun, start again from now.
            next += self.settings.interval;
            let now = Instant::now();
            if next <= now {
                next = now;
            } else {
                std::thread::sleep(next - now);
            }
        }
    }

    /// Runs one collection and publishes its snapshot.
    pub fn cycle(&mut self) {
        let started = Instant::now();
        let gpus = match self.collect() {
            Ok(gpus) => gpus,
            Err(()) => {
                self.families.clear();
                Vec::new()
            }
        };
        self.publish(started, gpus);
    }

    /// Has every GPU read into `self.families`; `Err` when NVML is unusable.
    fn collect(&mut self) -> Result<Vec<GpuState>, ()> {
        self.families.clear();
        self.names.clear();
        let library = self.open()?;
        let progress = &self.shared.progress;
        let count = match progress.around(None, Call::DeviceCount, || library.nvml.device_count()) {
            Ok(count) => count,
            Err(error) => {
                self.driver_failed(Call::DeviceCount, &error);
                return Err(());
            }
        };
        self.resize(count);
        let cycle = self.cycles + 1;
        let waiting = self.dispatch(cycle, &library);
        self.wait(cycle, waiting);
        let mut gpus = Vec::with_capacity(self.slots.len());
        let mut driver_gone = false;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let finished = if slot.state.busy.load(Ordering::Acquire) {
                None
            } else {
                let mut outcome = slot.state.outcome.lock().unwrap_or_else(|p| p.into_inner());
                // An outcome of an earlier cycle is of a call that returned late: stale.
                outcome.take().filter(|o| o.cycle == cycle)
            };
            let Some(outcome) = finished else {
                if !slot.stall_logged {
                    slot.stall_logged = true;
                    let call = slot.state.progress.current();
                    tracing::error!(
                        gpu = index,
                        function = call.map(|c| c.call.function()).unwrap_or_default(),
                        seconds = call
                            .map(|c| c.since.elapsed().as_secs())
                            .unwrap_or_default(),
                        "An NVML call on this GPU has not returned; its readings are withheld until it does, the other GPUs' are not."
                    );
                }
                gpus.push(GpuState {
                    labels: slot.labels.clone(),
                    up: false,
                    stalled: true,
                });
                continue;
            };
            if std::mem::take(&mut slot.stall_logged) {
                tracing::info!(gpu = index, "The stalled NVML call returned.");
            }
            slot.labels = outcome.labels;
            let up = match &outcome.status {
                Status::Up(set) => {
                    self.families.absorb(set, &mut self.names);
                    true
                }
                Status::Down => false,
                Status::DriverGone => {
                    driver_gone = true;
                    false
                }
            };
            gpus.push(GpuState {
                labels: slot.labels.clone(),
                up,
                stalled: false,
            });
        }
        if driver_gone {
            self.close();
            return Err(());
        }
        Ok(gpus)
    }

    /// One thread per GPU index: new ones started, those past the count told to end (they
    /// do when their channel closes, after any call in flight).
    fn resize(&mut self, count: u32) {
        self.slots.truncate(count as usize);
        while self.slots.len() < count as usize {
            let index = self.slots.len() as u32;
            let state = Arc::new(SlotState::default());
            let (jobs, receiver) = mpsc::channel();
            let thread_state = Arc::clone(&state);
            let done = self.done_sender.clone();
            let errors = Arc::clone(&self.errors);
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("nvml-gpu-{index}"))
                .spawn(move || {
                    run_gpu(index, &thread_state, &receiver, &done, &errors, &shared);
                });
            if let Err(error) = spawned {
                // Without its thread the GPU reads as stalled; the next cycle tries again.
                tracing::error!(gpu = index, %error, "Cannot start a GPU's collection thread.");
                state.busy.store(true, Ordering::Release);
            }
            self.slots.push(Slot {
                state,
                jobs,
                labels: families::gpu_labels(index, ""),
                stall_logged: false,
            });
        }
    }

    /// Sends this cycle's job to every GPU's thread that is not still in a call; returns
    /// how many were sent.
    fn dispatch(&mut self, cycle: u64, library: &Arc<Library>) -> usize {
        let mut sent = 0;
        for slot in &mut self.slots {
            if slot.state.busy.swap(true, Ordering::AcqRel) {
                continue;
            }
            let job = Job {
                cycle,
                library: Arc::clone(library),
                options: Arc::clone(&self.options),
            };
            if slot.jobs.send(job).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Waits until `waiting` jobs of `cycle` are done, or `--collect.timeout` has passed.
    fn wait(&self, cycle: u64, mut waiting: usize) {
        let deadline = Instant::now() + self.settings.timeout;
        while waiting > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(done) if done == cycle => waiting -= 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    /// The open library, opening it if it is time to try.
    fn open(&mut self) -> Result<Arc<Library>, ()> {
        if let Some(session) = &self.session {
            return Ok(Arc::clone(&session.library));
        }
        if Instant::now() < self.next_open {
            return Err(());
        }
        let library = self.settings.library.as_deref();
        let opened = self
            .shared
            .progress
            .around(None, Call::Init, || match library {
                Some(path) => Nvml::builder().lib_path(path.as_os_str()).init(),
                None => Nvml::init(),
            });
        let nvml = match opened {
            Ok(nvml) => Arc::new(nvml),
            Err(error) => {
                if self.cycles == 0 {
                    // Without the library there is nothing to serve: say where it was looked
                    // for, once, at the level an operator sees.
                    tracing::error!(
                        library = %library.map(|p| p.display().to_string()).unwrap_or_else(|| "libnvidia-ml.so.1".into()),
                        err = %error,
                        "Cannot open NVML; /-/ready answers 503 until it opens (tried again with backoff)."
                    );
                }
                self.errors.record(None, Call::Init, &error);
                self.next_open = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                return Err(());
            }
        };
        let system = System {
            driver_version: nvml.sys_driver_version().unwrap_or_default(),
            cuda_version: nvml
                .sys_cuda_driver_version()
                .map(identity::cuda_version)
                .unwrap_or_default(),
        };
        tracing::info!(
            driver = system.driver_version,
            cuda = system.cuda_version,
            "NVML opened."
        );
        let xid = self
            .settings
            .xid_events
            .then(|| xid::watch(Arc::clone(&nvml), Arc::clone(&self.shared.xids)));
        self.backoff = FIRST_BACKOFF;
        self.generation += 1;
        let library = Arc::new(Library {
            nvml,
            system,
            generation: self.generation,
        });
        self.session = Some(Session {
            library: Arc::clone(&library),
            _xid: xid,
        });
        Ok(library)
    }

    /// A system-level call failed: the library is closed, to be opened again.
    fn driver_failed(&mut self, call: Call, error: &NvmlError) {
        self.errors.record(None, call, error);
        self.close();
    }

    fn close(&mut self) {
        if self.session.take().is_some() {
            tracing::warn!("NVML stopped answering; opening it again.");
        }
        self.next_open = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn publish(&mut self, started: Instant, gpus: Vec<GpuState>) {
        self.cycles += 1;
        let readings = self.families.finish();
        let mut errors = MetricSet::default();
        let mut ids = Vec::new();
        for (call, error, count) in self.errors.counts() {
            families::write_sample(
                &mut errors,
                &mut ids,
                &COLLECT_ERRORS,
                None,
                &[("call", call.function()), ("error", error)],
                count as f64,
            );
        }
        self.shared.snapshot.store(Arc::new(Snapshot {
            taken: SystemTime::now(),
            duration: started.elapsed(),
            cycles: self.cycles,
            nvml_up: self.session.is_some(),
            gpus,
            readings: Arc::new(SharedSet::new(readings)),
            errors: Arc::new(SharedSet::new(errors)),
        }));
    }
}

/// A GPU's thread: reads its GPU for each job until its channel closes.
fn run_gpu(
    index: u32,
    state: &SlotState,
    jobs: &mpsc::Receiver<Job>,
    done: &mpsc::Sender<u64>,
    errors: &Errors,
    shared: &Shared,
) {
    let mut tracked = None;
    let mut families = Families::default();
    while let Ok(job) = jobs.recv() {
        // A panic in one GPU's reading must not leave that GPU "stalled" for ever: it reads
        // as down this cycle and is learnt afresh.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_gpu(index, &job, &mut tracked, &mut families, state, errors)
        }));
        let outcome = read.unwrap_or_else(|_| {
            tracing::error!(
                gpu = index,
                "Reading this GPU failed unexpectedly; it reads as down this cycle."
            );
            state.progress.leave();
            tracked = None;
            Outcome {
                cycle: job.cycle,
                labels: families::gpu_labels(index, ""),
                status: Status::Down,
            }
        });
        if let (Status::Up(_), Some(tracked)) = (&outcome.status, &tracked) {
            // Where the GPU is on the bus, for XIDs the kernel log names by address.
            let bus = tracked.learnt.identity.as_ref().and_then(|identity| {
                identity
                    .pairs
                    .iter()
                    .find(|(name, _)| *name == "pci_bus_id")
            });
            if let Some((_, bus)) = bus {
                shared.kmsg.learn(bus, index, &tracked.uuid);
            }
        }
        *state.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        state.busy.store(false, Ordering::Release);
        let _ = done.send(job.cycle);
    }
}

/// Finds the GPU at `index` (learning it afresh if it is new, re-enumerated or from a
/// newly opened library) and reads it.
fn read_gpu(
    index: u32,
    job: &Job,
    tracked: &mut Option<Tracked>,
    families: &mut Families,
    state: &SlotState,
    errors: &Errors,
) -> Outcome {
    families.clear();
    let library = &job.library;
    let progress = &state.progress;
    let unknown = |tracked: &Option<Tracked>| {
        tracked
            .as_ref()
            .map_or_else(|| families::gpu_labels(index, ""), |t| t.labels.clone())
    };
    let found = progress
        .around(Some(index), Call::HandleByIndex, || {
            library.nvml.device_by_index(index)
        })
        .map_err(|error| (Call::HandleByIndex, error))
        .and_then(|device| {
            let uuid = progress.around(Some(index), Call::Uuid, || device.uuid());
            uuid.map(|uuid| (device, uuid))
                .map_err(|error| (Call::Uuid, error))
        });
    let (device, uuid) = match found {
        Ok(found) => found,
        Err((call, error)) => {
            errors.record(Some(index), call, &error);
            let status = match meaning(&error) {
                Meaning::DriverGone => Status::DriverGone,
                _ => Status::Down,
            };
            return Outcome {
                cycle: job.cycle,
                labels: unknown(tracked),
                status,
            };
        }
    };
    if tracked
        .as_ref()
        .is_none_or(|t| t.uuid != uuid || t.generation != library.generation)
    {
        // A new GPU at this index, a reset one re-enumerated, or a new library: learn it
        // afresh.
        *tracked = Some(Tracked::new(index, uuid, library.generation));
    }
    let Some(tracked) = tracked.as_mut() else {
        return Outcome {
            cycle: job.cycle,
            labels: families::gpu_labels(index, ""),
            status: Status::Down,
        };
    };
    let reader = Reader {
        gpu: index,
        support: &mut tracked.support,
        errors,
        progress,
    };
    let outcome = read_device(
        library,
        &device,
        &tracked.labels,
        &mut tracked.learnt,
        reader,
        &job.options,
        families,
    );
    let status = match outcome {
        Ok(()) => Status::Up(families.finish()),
        // Half a GPU's families would mislead; they are dropped.
        Err(Abort::DeviceGone) => Status::Down,
        Err(Abort::DriverGone) => Status::DriverGone,
    };
    Outcome {
        cycle: job.cycle,
        labels: tracked.labels.clone(),
        status,
    }
}

/// Learns a GPU's identity the first time, then runs every collector on it.
fn read_device(
    library: &Library,
    device: &Device<'_>,
    labels: &GpuLabels,
    learnt: &mut Learnt,
    mut reader: Reader<'_>,
    options: &Options,
    out: &mut Families,
) -> Result<(), Abort> {
    if learnt.identity.is_none() {
        learnt.identity = Some(Identity::read(device, &mut reader, &library.system)?);
    }
    let mut cx = Context {
        device,
        nvml: &library.nvml,
        labels,
        reader,
        learnt,
        options,
    };
    collectors::collect(&mut cx, out)
}
