//! The fake driver's one global state: the fixture, when it was read, init reference
//! count and the event queue. Device handles are addresses inside a static block, so they
//! are stable for the life of the process and decode back to a GPU or MIG slot.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use nvml_wrapper_sys::bindings::{nvmlDevice_st, nvmlDevice_t};

use crate::codes::*;
use crate::fixture::{Fixture, Gpu, MigDevice};

/// Environment variable naming the fixture file.
pub(crate) const FIXTURE_VARIABLE: &str = "FAKE_NVML_FIXTURE";

const SLOTS_PER_GPU: usize = 64;
const MAX_GPUS: usize = 64;
static HANDLES: [u8; SLOTS_PER_GPU * MAX_GPUS] = [0; SLOTS_PER_GPU * MAX_GPUS];

/// What a device handle points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Gpu(usize),
    Mig(usize, usize),
}

impl Target {
    pub(crate) fn handle(self) -> nvmlDevice_t {
        let offset = match self {
            Self::Gpu(gpu) => gpu * SLOTS_PER_GPU,
            Self::Mig(gpu, slot) => gpu * SLOTS_PER_GPU + 1 + slot,
        };
        // The handle is never dereferenced, by NVML's callers or by us.
        HANDLES.as_ptr().wrapping_add(offset) as *mut nvmlDevice_st
    }

    pub(crate) fn of(handle: nvmlDevice_t) -> Option<Self> {
        let offset = (handle as usize).checked_sub(HANDLES.as_ptr() as usize)?;
        if offset >= HANDLES.len() {
            return None;
        }
        let (gpu, slot) = (offset / SLOTS_PER_GPU, offset % SLOTS_PER_GPU);
        Some(if slot == 0 {
            Self::Gpu(gpu)
        } else {
            Self::Mig(gpu, slot - 1)
        })
    }
}

/// A resolved handle.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Device<'a> {
    Gpu(&'a Gpu),
    Mig(&'a MigDevice),
}

impl<'a> Device<'a> {
    /// The physical GPU, for calls that MIG handles do not answer.
    pub(crate) fn gpu(self) -> Option<&'a Gpu> {
        match self {
            Self::Gpu(gpu) => Some(gpu),
            Self::Mig(..) => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) fixture: Fixture,
    path: PathBuf,
    modified: Stamp,
    started: Instant,
    pub(crate) init_count: u32,
    pub(crate) delivered_events: usize,
    /// Event types registered per GPU index.
    pub(crate) registered: Vec<u64>,
    /// GPM samples allocated and not yet freed.
    pub(crate) gpm_samples: usize,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<State>> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    fn load() -> Result<Self, String> {
        let path = std::env::var_os(FIXTURE_VARIABLE)
            .map(PathBuf::from)
            .ok_or_else(|| format!("{FIXTURE_VARIABLE} is not set"))?;
        let (fixture, modified) = read(&path)?;
        Ok(Self {
            fixture,
            path,
            modified,
            started: Instant::now(),
            init_count: 0,
            delivered_events: 0,
            registered: Vec::new(),
            gpm_samples: 0,
        })
    }

    /// Reads the fixture again if the file changed. A broken rewrite keeps the old one.
    pub(crate) fn refresh(&mut self) {
        let modified = stamp(&self.path);
        if modified == self.modified {
            return;
        }
        match read(&self.path) {
            Ok((fixture, modified)) => {
                self.fixture = fixture;
                self.modified = modified;
            }
            Err(message) => eprintln!("fake-nvml: {message}; keeping the previous fixture"),
        }
    }

    /// Seconds since the fixture was first read: the clock advancing counters follow.
    pub(crate) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub(crate) fn device(&self, handle: nvmlDevice_t) -> Result<(Target, Device<'_>), u32> {
        let target = Target::of(handle).ok_or(INVALID_ARGUMENT)?;
        let (Target::Gpu(index) | Target::Mig(index, _)) = target;
        let gpu = self.fixture.devices.get(index).ok_or(INVALID_ARGUMENT)?;
        if gpu.lost {
            return Err(GPU_IS_LOST);
        }
        let device = match target {
            Target::Gpu(_) => Device::Gpu(gpu),
            Target::Mig(_, slot) => {
                let mig = gpu.mig.as_ref().and_then(|m| m.devices.get(slot));
                Device::Mig(mig.ok_or(INVALID_ARGUMENT)?)
            }
        };
        Ok((target, device))
    }
}

/// What tells one version of the fixture file from the next: a rewrite by rename is a new
/// inode even within one tick of a coarse clock.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.ino(), metadata.len()))
}

fn read(path: &std::path::Path) -> Result<(Fixture, Stamp), String> {
    let modified = stamp(path);
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let fixture =
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    Ok((fixture, modified))
}

/// `nvmlInit`: reads the fixture on first use; counts references as NVML does.
pub(crate) fn init() -> u32 {
    let mut guard = lock();
    if guard.is_none() {
        match State::load() {
            Ok(state) => *guard = Some(state),
            Err(message) => {
                eprintln!("fake-nvml: {message}");
                return UNKNOWN;
            }
        }
    }
    let Some(state) = guard.as_mut() else {
        return UNKNOWN;
    };
    state.refresh();
    if let Some(code) = state.fixture.init_error {
        return code;
    }
    state.init_count += 1;
    SUCCESS
}

/// `nvmlShutdown`.
pub(crate) fn shutdown() -> u32 {
    match lock().as_mut() {
        Some(state) if state.init_count > 0 => {
            state.init_count -= 1;
            if state.init_count == 0 {
                state.registered.clear();
            }
            SUCCESS
        }
        _ => UNINITIALIZED,
    }
}

/// Runs `f` on the initialised state.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> Result<R, u32>) -> Result<R, u32> {
    match lock().as_mut() {
        Some(state) if state.init_count > 0 => f(state),
        _ => Err(UNINITIALIZED),
    }
}

/// Hangs while the fixture says `function` is slow (on the GPU of `handle`, when it names
/// one): a wedged driver call. Rewriting the fixture without `slow` releases it.
pub(crate) fn maybe_hang(function: &str, handle: Option<nvmlDevice_t>) {
    let gpu = handle.and_then(Target::of).map(|target| match target {
        Target::Gpu(gpu) | Target::Mig(gpu, _) => gpu,
    });
    let applies = |slow: &Option<crate::fixture::Slow>| match slow {
        Some(slow) if slow.function == function && (slow.gpu.is_none() || slow.gpu == gpu) => {
            Some(slow.seconds)
        }
        _ => None,
    };
    let start = Instant::now();
    loop {
        let seconds = {
            let mut guard = lock();
            let Some(state) = guard.as_mut() else { return };
            if applies(&state.fixture.slow).is_none() {
                return;
            }
            state.refresh();
            match applies(&state.fixture.slow) {
                Some(seconds) => seconds,
                None => return,
            }
        };
        if start.elapsed().as_secs_f64() >= seconds {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
