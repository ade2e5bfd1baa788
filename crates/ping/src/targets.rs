//! Keeps the engine's probes in line with the configuration and with DNS: resolves names
//! on the refresh interval (a failure keeps the last good address and is counted), watches
//! the configuration file and applies target changes live, and answers reload requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use crate::cli::Cli;
use crate::config::{Settings, TargetSpec};
use crate::dns::{Addresses, Resolver};
use crate::engine::{DesiredProbe, Engine, Target};
use crate::icmp::Family;

/// How often the configuration file is checked for changes.
const FILE_POLL: Duration = Duration::from_secs(2);

/// Resolution state of one host name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsStatus {
    /// Whether the latest lookup succeeded.
    pub resolved: bool,
    /// Failed lookups so far.
    pub failures: u64,
}

/// Resolution state of every configured name (addresses are not listed).
pub type DnsTable = Arc<Mutex<HashMap<String, DnsStatus>>>;

/// A request to re-read the configuration; the answer says whether it worked.
pub type ReloadRequest = mpsc::Sender<Result<(), String>>;

/// How configuration reloads went: the last one's outcome and when one last succeeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReloadStatus {
    /// Whether the latest reload succeeded (true before any).
    pub ok: bool,
    /// When the configuration in force was loaded, in seconds since the epoch.
    pub loaded_at: f64,
    /// Reloads refused since start.
    pub failures: u64,
}

/// The running target manager.
#[derive(Debug, Clone)]
pub struct TargetManager {
    requests: mpsc::Sender<ReloadRequest>,
    dns: DnsTable,
    reloads: Arc<Mutex<ReloadStatus>>,
    settings: Arc<Mutex<Arc<Settings>>>,
    resolver: Arc<Resolver>,
}

impl TargetManager {
    /// Resolves the targets once (so the first scrape has them), then keeps them up to
    /// date on a thread of its own.
    pub fn start(
        cli: Cli,
        settings: Settings,
        resolver: Resolver,
        engine: Arc<Engine>,
    ) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<ReloadRequest>();
        let dns: DnsTable = Arc::default();
        let reloads = Arc::new(Mutex::new(ReloadStatus {
            ok: true,
            loaded_at: unix_now(),
            failures: 0,
        }));
        let shared_settings = Arc::new(Mutex::new(Arc::new(settings.clone())));
        let resolver = Arc::new(resolver);
        let manager = Self {
            requests,
            dns: Arc::clone(&dns),
            reloads: Arc::clone(&reloads),
            settings: Arc::clone(&shared_settings),
            resolver: Arc::clone(&resolver),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut state = State {
            resolver,
            file: cli.config_path.clone(),
            fingerprint: fingerprint(cli.config_path.as_ref()),
            cli,
            settings,
            addresses: HashMap::new(),
            targets: HashMap::new(),
            dns,
            reloads,
            shared_settings,
            engine,
        };
        runtime.block_on(state.refresh());
        std::thread::Builder::new()
            .name("ping-targets".into())
            .spawn(move || state.run(&runtime, &incoming))?;
        Ok(manager)
    }

    /// Re-reads the configuration now (SIGHUP, `/-/reload`).
    pub fn reload(&self) -> Result<(), String> {
        let (answer, answered) = mpsc::channel();
        self.requests
            .send(answer)
            .map_err(|_| "the target manager has stopped".to_owned())?;
        answered
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "no answer from the target manager".to_owned())?
    }

    /// Resolution state per host name.
    pub fn dns(&self) -> &DnsTable {
        &self.dns
    }

    /// How configuration reloads went.
    pub fn reload_status(&self) -> ReloadStatus {
        *self.reloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The resolver targets are looked up with (for `/probe` too).
    pub fn resolver(&self) -> Arc<Resolver> {
        Arc::clone(&self.resolver)
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct State {
    cli: Cli,
    settings: Settings,
    resolver: Arc<Resolver>,
    file: Option<PathBuf>,
    fingerprint: Option<(SystemTime, u64)>,
    /// Last good addresses of each host name.
    addresses: HashMap<String, Addresses>,
    /// The targets handed to the engine, reused while unchanged.
    targets: HashMap<(String, Family), Arc<Target>>,
    dns: DnsTable,
    reloads: Arc<Mutex<ReloadStatus>>,
    shared_settings: Arc<Mutex<Arc<Settings>>>,
    engine: Arc<Engine>,
}

impl State {
    fn run(mut self, runtime: &tokio::runtime::Runtime, incoming: &mpsc::Receiver<ReloadRequest>) {
        let mut next_refresh = self.next_refresh();
        loop {
            let wait = next_refresh
                .map_or(FILE_POLL, |at| at.saturating_duration_since(Instant::now()))
                .min(FILE_POLL);
            match incoming.recv_timeout(wait) {
                Ok(answer) => {
                    let result = self.reload(runtime);
                    let _ = answer.send(result);
                    next_refresh = self.next_refresh();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.file_changed() {
                        // Errors are logged by reload; the old targets stay.
                        let _ = self.reload(runtime);
                        next_refresh = self.next_refresh();
                    } else if next_refresh.is_some_and(|at| at <= Instant::now()) {
                        runtime.block_on(self.refresh());
                        next_refresh = self.next_refresh();
                    }
                }
            }
        }
    }

    fn next_refresh(&self) -> Option<Instant> {
        let refresh = self.settings.dns.refresh;
        (!refresh.is_zero()).then(|| Instant::now() + refresh)
    }

    fn file_changed(&mut self) -> bool {
        let now = fingerprint(self.file.as_ref());
        if now == self.fingerprint {
            return false;
        }
        self.fingerprint = now;
        true
    }

    /// Re-reads the configuration and records the outcome for the exporter's metrics.
    fn reload(&mut self, runtime: &tokio::runtime::Runtime) -> Result<(), String> {
        let result = self.try_reload(runtime);
        let mut status = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        status.ok = result.is_ok();
        if result.is_ok() {
            status.loaded_at = unix_now();
        } else {
            status.failures += 1;
        }
        result
    }

    fn try_reload(&mut self, runtime: &tokio::runtime::Runtime) -> Result<(), String> {
        self.fingerprint = fingerprint(self.file.as_ref());
        let settings = match Settings::load(&self.cli) {
            Ok(settings) => settings,
            Err(error) => {
                tracing::error!(err = %error, "Configuration not reloaded; the previous one stays in force.");
                return Err(error.to_string());
            }
        };
        if settings.targets.is_empty() {
            // An empty or half-written file would stop all pinging without a word; it is
            // refused like any broken file, and the targets in force stay.
            let error = "the configuration lists no targets; the previous targets stay in force";
            tracing::error!(err = error, "Configuration not reloaded.");
            return Err(error.to_owned());
        }
        if settings.restart_needed(&self.settings) {
            tracing::warn!(
                "Changes to DNS, buckets, fw-mark or address families apply at the next restart; target changes apply now."
            );
        }
        if settings.history != self.settings.history {
            self.engine.set_history(settings.history);
        }
        let kept = Settings {
            targets: settings.targets,
            history: settings.history,
            allowed: settings.allowed,
            ..self.settings.clone()
        };
        self.settings = kept;
        runtime.block_on(self.refresh());
        tracing::info!(
            targets = self.settings.targets.len(),
            "Configuration reloaded."
        );
        Ok(())
    }

    /// Resolves every name (in parallel) and hands the engine the resulting probes.
    async fn refresh(&mut self) {
        let wanted = self.settings.families;
        let names: Vec<String> = self
            .settings
            .targets
            .iter()
            .filter(|t| t.host.parse::<IpAddr>().is_err())
            .map(|t| t.host.clone())
            .collect();
        let results = resolve_all(&self.resolver, &names, wanted).await;
        {
            let mut dns = self.dns.lock().unwrap_or_else(|p| p.into_inner());
            dns.retain(|name, _| names.contains(name));
            for (name, result) in names.iter().zip(results) {
                let status = dns.entry(name.clone()).or_default();
                match result {
                    Ok(found) => {
                        status.resolved = true;
                        if self.addresses.insert(name.clone(), found) != Some(found) {
                            tracing::info!(host = %name, ipv4 = ?found[0], ipv6 = ?found[1], "Resolved.");
                        }
                    }
                    Err(error) => {
                        status.resolved = false;
                        status.failures += 1;
                        let kept = self.addresses.get(name);
                        tracing::warn!(host = %name, err = %error, kept = ?kept, "Cannot resolve; the last known address stays in use.");
                    }
                }
            }
        }
        self.addresses.retain(|name, _| names.contains(name));
        let desired = self.desired();
        self.engine.apply(desired);
        *self
            .shared_settings
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(self.settings.clone());
    }

    fn desired(&mut self) -> Vec<DesiredProbe> {
        let mut desired = Vec::new();
        let mut used = HashMap::new();
        for spec in &self.settings.targets {
            let addresses = match spec.host.parse::<IpAddr>() {
                Ok(ip) => {
                    let mut found: Addresses = [None, None];
                    found[Family::of(ip).index()] = Some(ip);
                    found
                }
                Err(_) => self.addresses.get(&spec.host).copied().unwrap_or_default(),
            };
            for family in [Family::V4, Family::V6] {
                let Some(ip) = addresses[family.index()] else {
                    continue;
                };
                if !self.settings.families[family.index()] {
                    continue;
                }
                let target = target_for(&mut self.targets, spec, family);
                used.insert((spec.host.clone(), family), Arc::clone(&target));
                desired.push(DesiredProbe {
                    target,
                    ip,
                    settings: spec.settings,
                });
            }
        }
        self.targets = used;
        desired
    }
}

/// The target of `spec` in `family`, the same `Arc` as before when nothing changed.
fn target_for(
    known: &mut HashMap<(String, Family), Arc<Target>>,
    spec: &TargetSpec,
    family: Family,
) -> Arc<Target> {
    let wanted = Target {
        name: spec.host.clone(),
        family,
        labels: spec.labels.clone(),
    };
    match known.get(&(spec.host.clone(), family)) {
        Some(existing) if **existing == wanted => Arc::clone(existing),
        _ => Arc::new(wanted),
    }
}

/// Lookups at once: a resolver is a shared service, and getaddrinfo takes a thread each.
const PARALLEL_LOOKUPS: usize = 16;

/// Resolves `names` concurrently, at most [`PARALLEL_LOOKUPS`] at a time; results in order.
async fn resolve_all(
    resolver: &Arc<Resolver>,
    names: &[String],
    wanted: [bool; 2],
) -> Vec<Result<Addresses, String>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_LOOKUPS));
    let mut lookups = tokio::task::JoinSet::new();
    for (index, name) in names.iter().enumerate() {
        let (resolver, permits, name) = (Arc::clone(resolver), Arc::clone(&permits), name.clone());
        lookups.spawn(async move {
            let _permit = permits.acquire().await;
            (index, resolver.resolve(&name, wanted).await)
        });
    }
    let mut results: Vec<Result<Addresses, String>> = names
        .iter()
        .map(|_| Err("lookup did not finish".to_owned()))
        .collect();
    while let Some(joined) = lookups.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = result;
        }
    }
    results
}

fn fingerprint(path: Option<&PathBuf>) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path?).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
