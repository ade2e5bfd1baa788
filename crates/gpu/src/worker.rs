//! The collection thread: opens NVML (again, with backoff, when it breaks), reads every
//! GPU on an interval and publishes a [`Snapshot`]. Scrapes never call NVML, so a driver
//! call that hangs holds up this thread only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use crate::calls::{Abort, Call, Errors, Meaning, Progress, Reader, Support, meaning};
use crate::collectors::identity::{self, Identity, System};
use crate::collectors::{self, Context, Learnt, Options};
use kiln_registry::MetricSet;

use crate::families::{self, Families, GpuLabels};
use crate::family;
use crate::snapshot::Snapshot;
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
    pub xid_events: bool,
    pub options: Options,
}

/// What the collection thread shares with scrapes.
#[derive(Debug, Default)]
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub progress: Progress,
    pub xids: Arc<XidCounts>,
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
    let worker = Worker::new(settings, Arc::clone(&shared));
    std::thread::Builder::new()
        .name("nvml-collector".into())
        .spawn(move || worker.run())?;
    Ok(shared)
}

/// An open library, and the XID watcher that uses it.
#[derive(Debug)]
struct Session {
    nvml: Arc<Nvml>,
    system: System,
    _xid: Option<xid::Watch>,
}

/// What is kept about the GPU at one index.
#[derive(Debug)]
struct Tracked {
    uuid: String,
    labels: GpuLabels,
    support: Support,
    learnt: Learnt,
}

impl Tracked {
    fn new(index: u32, uuid: String) -> Self {
        Self {
            labels: families::gpu_labels(index, &uuid),
            uuid,
            support: Support::default(),
            learnt: Learnt::default(),
        }
    }
}

/// Backoff between attempts to open the library: 1 s doubling to a minute.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Worker {
    settings: Settings,
    shared: Arc<Shared>,
    session: Option<Session>,
    devices: Vec<Option<Tracked>>,
    errors: Errors,
    families: Families,
    backoff: Duration,
    next_open: Instant,
    cycles: u64,
}

impl Worker {
    /// A worker that publishes into `shared`; [`Worker::cycle`] runs one collection.
    pub fn new(settings: Settings, shared: Arc<Shared>) -> Self {
        Self {
            settings,
            shared,
            session: None,
            devices: Vec::new(),
            errors: Errors::default(),
            families: Families::default(),
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

    /// Reads every GPU into `self.families`; `Err` when NVML is unusable.
    fn collect(&mut self) -> Result<Vec<(GpuLabels, bool)>, ()> {
        self.families.clear();
        let nvml = self.open()?;
        let progress = &self.shared.progress;
        let count = match progress.around(None, Call::DeviceCount, || nvml.device_count()) {
            Ok(count) => count,
            Err(error) => {
                self.driver_failed(Call::DeviceCount, &error);
                return Err(());
            }
        };
        self.devices.resize_with(count as usize, || None);
        let mut gpus = Vec::with_capacity(count as usize);
        for index in 0..count {
            let Ok(up) = self.collect_device(&nvml, index) else {
                self.close();
                return Err(());
            };
            let labels = match &self.devices[index as usize] {
                Some(tracked) => tracked.labels.clone(),
                None => families::gpu_labels(index, ""),
            };
            gpus.push((labels, up));
        }
        Ok(gpus)
    }

    /// Reads one GPU. `Ok(false)`: the GPU is gone; `Err`: the driver is.
    fn collect_device(&mut self, nvml: &Nvml, index: u32) -> Result<bool, ()> {
        let progress = &self.shared.progress;
        let found = progress
            .around(Some(index), Call::HandleByIndex, || {
                nvml.device_by_index(index)
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
                self.errors.record(Some(index), call, &error);
                return match meaning(&error) {
                    Meaning::DriverGone => Err(()),
                    _ => Ok(false),
                };
            }
        };
        let slot = &mut self.devices[index as usize];
        if slot.as_ref().is_none_or(|t| t.uuid != uuid) {
            // A new GPU at this index (or a reset one re-enumerated): learn it afresh.
            *slot = Some(Tracked::new(index, uuid));
        }
        let Some(tracked) = slot.as_mut() else {
            return Ok(false);
        };
        let Some(session) = &self.session else {
            return Err(());
        };
        let reader = Reader {
            gpu: index,
            support: &mut tracked.support,
            errors: &mut self.errors,
            progress,
        };
        let checkpoint = self.families.checkpoint();
        let outcome = read_device(
            &device,
            &tracked.labels,
            &mut tracked.learnt,
            reader,
            &session.system,
            &self.settings.options,
            &mut self.families,
        );
        match outcome {
            Ok(()) => Ok(true),
            Err(abort) => {
                // Half a GPU's families would mislead; drop them.
                self.families.rollback(&checkpoint);
                match abort {
                    Abort::DeviceGone => Ok(false),
                    Abort::DriverGone => Err(()),
                }
            }
        }
    }

    /// The open library, opening it if it is time to try.
    fn open(&mut self) -> Result<Arc<Nvml>, ()> {
        if let Some(session) = &self.session {
            return Ok(Arc::clone(&session.nvml));
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
        self.session = Some(Session {
            nvml: Arc::clone(&nvml),
            system,
            _xid: xid,
        });
        Ok(nvml)
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
        // Devices are learnt afresh from a new session.
        self.devices.clear();
        self.next_open = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn publish(&mut self, started: Instant, gpus: Vec<(GpuLabels, bool)>) {
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
        errors.seal();
        self.shared.snapshot.store(Arc::new(Snapshot {
            taken: SystemTime::now(),
            duration: started.elapsed(),
            cycles: self.cycles,
            nvml_up: self.session.is_some(),
            gpus,
            readings,
            errors,
        }));
    }
}

/// Learns a GPU's identity the first time, then runs every collector on it.
fn read_device(
    device: &Device<'_>,
    labels: &GpuLabels,
    learnt: &mut Learnt,
    mut reader: Reader<'_>,
    system: &System,
    options: &Options,
    out: &mut Families,
) -> Result<(), Abort> {
    if learnt.identity.is_none() {
        learnt.identity = Some(Identity::read(device, &mut reader, system)?);
    }
    let mut cx = Context {
        device,
        labels,
        reader,
        learnt,
        options,
    };
    collectors::collect(&mut cx, out)
}
