//! The HTTP side of an exporter: the [`Exporter`] builder, listeners, TLS, per-connection
//! limits and graceful shutdown.

mod connections;
mod landing;
mod listen;
#[cfg(target_os = "linux")]
mod process_metrics;
mod query;
mod routes;
mod self_metrics;
mod write_deadline;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use landing::Link;
pub use listen::listen_candidates;
pub use query::query_pairs;
pub use routes::{Body, Exposition, Response, exposition_response, text};

use crate::collector::{Collector, ScrapeContext};
use crate::config::ConfigError;
use crate::flags::WebFlags;
use crate::runner::Runner;
use crate::version::BuildInfo;
use crate::webconfig::WebConfigWatcher;
use self_metrics::SelfMetrics;

/// A future answering an exporter-specific route.
pub type RouteFuture = Pin<Box<dyn Future<Output = Response> + Send>>;
/// Answers an exporter-specific route such as `/probe`. It gets the request head and the
/// scrape budget (from `X-Prometheus-Scrape-Timeout-Seconds`, less a margin).
pub type RouteHandler =
    Arc<dyn Fn(http::request::Parts, ScrapeContext) -> RouteFuture + Send + Sync>;
/// Re-reads an exporter's own configuration on SIGHUP or `/-/reload`.
pub type ReloadHook = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Writes exposition text straight into a scrape's body, after the collectors' families.
///
/// For exporters whose series are too many for the metric model to be cheap (the Graphite
/// bridge serves 100 000 and more): they keep samples in their own store and render them
/// directly. The text must be valid 0.0.4 exposition with each family written once.
pub trait TextSource: Send + Sync + 'static {
    /// The name `collect[]` and `exclude[]` select this source by, as a collector's.
    fn name(&self) -> &str;

    /// Appends this scrape's families to `out`. `taken` lists, sorted, the names of the
    /// families already written; a source must not write a family of the same name again.
    fn write_text(&self, taken: &[&str], out: &mut String);
}

/// Time limits that keep slow or silent clients from holding the server.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From connection (or the end of the previous response) to the end of the request head.
    pub header_read: Duration,
    /// For the TLS handshake.
    pub tls_handshake: Duration,
    /// For producing one response (scrapes are bounded by their own deadline first).
    pub request: Duration,
    /// For a write to the client to make progress: a client that stops reading its
    /// responses is disconnected after this long.
    pub write: Duration,
    /// For connections to finish after a shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            tls_handshake: Duration::from_secs(10),
            request: Duration::from_secs(120),
            write: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Most connections open at once. When all are open, a new one takes the place of the one
/// that has gone longest without a request in progress (see `connections.rs`).
const MAX_CONNECTIONS: usize = 1024;

/// Says whether the exporter has what it needs to answer scrapes with data (NVML
/// initialised, say); `/-/ready` answers 503 while it says no.
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Binding or serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The web config file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listen address is malformed.
    #[error("invalid listen address {address:?}: {reason}")]
    Address {
        /// As given.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// As given.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// An exporter: its identity, collectors, routes and web flags. Build it, then
/// [`Exporter::bind`] it (or hand it to [`crate::bootstrap::main`]).
pub struct Exporter {
    info: BuildInfo,
    description: String,
    flags: WebFlags,
    default_listen: String,
    runner: Runner,
    routes: Vec<(String, RouteHandler)>,
    links: Vec<Link>,
    reload: Option<ReloadHook>,
    lifecycle: bool,
    ready: Option<ReadyCheck>,
    timeouts: Timeouts,
    max_connections: usize,
    text_source: Option<Arc<dyn TextSource>>,
    handler_errors: bool,
    /// Sockets handed over already listening (systemd socket activation), served instead
    /// of binding the listen addresses.
    inherited: Vec<std::net::TcpListener>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("program", &self.info.program)
            .field("runner", &self.runner)
            .field(
                "routes",
                &self.routes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// An exporter named by `info` whose meta metrics use `namespace`.
    pub fn new(info: BuildInfo, namespace: &str, flags: WebFlags) -> Self {
        Self {
            info,
            description: String::new(),
            flags,
            default_listen: ":8080".to_owned(),
            runner: Runner::new(namespace),
            routes: Vec::new(),
            links: Vec::new(),
            reload: None,
            lifecycle: false,
            ready: None,
            timeouts: Timeouts::default(),
            max_connections: MAX_CONNECTIONS,
            text_source: None,
            handler_errors: false,
            inherited: Vec::new(),
        }
    }

    /// Serves these listening sockets (from systemd socket activation, say) instead of
    /// binding `--web.listen-address`.
    pub fn inherited_listeners(mut self, listeners: Vec<std::net::TcpListener>) -> Self {
        self.inherited = listeners;
        self
    }

    /// One line for the landing page.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Where to listen when `--web.listen-address` is not given, e.g. `:9100`.
    pub fn default_listen_address(mut self, address: impl Into<String>) -> Self {
        self.default_listen = address.into();
        self
    }

    /// Adds a collector to every scrape of the telemetry path.
    pub fn collector(mut self, collector: impl Collector) -> Self {
        self.runner.register(collector);
        self
    }

    /// Adds an already boxed collector, for exporters that choose collectors at run time.
    pub fn boxed_collector(mut self, collector: Box<dyn Collector>) -> Self {
        self.runner.register_boxed(collector);
        self
    }

    /// Bounds the time each collector may take in a scrape; see
    /// [`Runner::set_collector_budget`].
    pub fn collector_budget(mut self, budget: std::time::Duration) -> Self {
        self.runner.set_collector_budget(budget);
        self
    }

    /// How many collectors run at once; see [`Runner::set_parallelism`].
    pub fn collector_parallelism(mut self, parallelism: usize) -> Self {
        self.runner.set_parallelism(parallelism);
        self
    }

    /// Adds a route such as `/probe`, listed on the landing page.
    pub fn route(mut self, path: &str, text: &str, handler: RouteHandler) -> Self {
        self.routes.push((path.to_owned(), handler));
        self.links.push(Link {
            href: path.trim_start_matches('/').to_owned(),
            text: text.to_owned(),
        });
        self
    }

    /// Called on SIGHUP and `/-/reload`, after the web config is re-read.
    pub fn on_reload(mut self, hook: ReloadHook) -> Self {
        self.reload = Some(hook);
        self
    }

    /// Serves `POST /-/reload` even without `--web.enable-lifecycle`, for exporters whose
    /// upstream documents reloading over HTTP.
    pub fn always_enable_reload(mut self) -> Self {
        self.lifecycle = true;
        self
    }

    /// Adds exposition text written directly by the exporter; see [`TextSource`].
    pub fn text_source(mut self, source: Arc<dyn TextSource>) -> Self {
        self.runner.reserve_name(source.name());
        self.text_source = Some(source);
        self
    }

    /// Overrides the connection time limits.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Makes `/-/ready` answer 503 while `check` returns false. Without a check, an exporter
    /// is ready once it listens: its configuration has been loaded by then.
    pub fn ready_when(mut self, check: ReadyCheck) -> Self {
        self.ready = Some(check);
        self
    }

    /// Adds promhttp_metric_handler_errors_total (by `cause`: `encoding`, `gathering`) to
    /// the exporter's own metrics, for exporters whose upstream serves it (node_exporter
    /// does; exporters on promhttp's default handler do not).
    pub fn handler_error_metrics(mut self) -> Self {
        self.handler_errors = true;
        self
    }

    /// Overrides how many connections are held open at once (1 024 by default).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The flags this exporter was built with.
    pub fn flags(&self) -> &WebFlags {
        &self.flags
    }

    /// Checks the form of every listen address without binding or resolving it, so that
    /// `--check-config` and start-up refuse a malformed one as a configuration error.
    pub fn check_listen_addresses(&self) -> Result<(), ServeError> {
        for address in self.flags.listen_or(&self.default_listen) {
            listen::split_address(&address)?;
        }
        Ok(())
    }

    /// Loads the web config and binds every listen address; serving starts at once.
    pub async fn bind(self) -> Result<RunningExporter, ServeError> {
        let watcher = WebConfigWatcher::new(self.flags.config_file.as_deref())?;
        self.bind_with(Arc::new(watcher)).await
    }

    /// As [`Exporter::bind`], with an already loaded web config.
    pub async fn bind_with(
        self,
        web: Arc<WebConfigWatcher>,
    ) -> Result<RunningExporter, ServeError> {
        let mut listeners = Vec::new();
        if self.inherited.is_empty() {
            for address in &self.flags.listen_or(&self.default_listen) {
                listeners.push(listen::bind(address).await?);
            }
        }
        for listener in self.inherited {
            let inherited = |source| ServeError::Bind {
                address: "an inherited socket".to_owned(),
                source,
            };
            listener.set_nonblocking(true).map_err(inherited)?;
            listeners.push(tokio::net::TcpListener::from_std(listener).map_err(inherited)?);
        }
        let local_addrs: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();

        let telemetry_path = self.flags.telemetry_path.clone();
        let mut links = vec![Link {
            href: telemetry_path.trim_start_matches('/').to_owned(),
            text: "Metrics".to_owned(),
        }];
        links.extend(self.links);
        let landing = (telemetry_path != "/")
            .then(|| Bytes::from(landing::render(&self.info, &self.description, &links)));
        let max_requests = self.flags.max_requests;
        let shared = Arc::new(Shared {
            telemetry_path,
            runner: self.runner,
            web,
            landing,
            routes: self.routes,
            scrape_slots: (max_requests > 0).then(|| Semaphore::new(max_requests)),
            max_requests,
            self_metrics: (!self.flags.disable_exporter_metrics)
                .then(|| SelfMetrics::new(&self.info, self.handler_errors)),
            ready: self.ready,
            reload: self.reload,
            lifecycle: self.flags.enable_lifecycle || self.lifecycle,
            text_source: self.text_source,
            timeouts: self.timeouts,
            size_hint: AtomicUsize::new(16 * 1024),
        });

        let (stop, stopped) = watch::channel(false);
        let connections = connections::Connections::new(self.max_connections);
        let mut tasks = Vec::new();
        for listener in listeners {
            let tls = shared.web.current().tls.is_some();
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(address = %addr, "Listening on");
                tracing::info!(address = %addr, "TLS is {}.", if tls { "enabled" } else { "disabled" });
            }
            tasks.push(tokio::spawn(listen::accept_loop(
                listener,
                Arc::clone(&shared),
                Arc::clone(&connections),
                stopped.clone(),
            )));
        }
        tasks.push(tokio::spawn(watch_web_config(Arc::clone(&shared), stopped)));
        Ok(RunningExporter {
            local_addrs,
            shared,
            stop,
            tasks,
        })
    }
}

/// How often the web config and its certificate files are checked for changes.
const WEB_CONFIG_POLL: Duration = Duration::from_secs(3);

async fn watch_web_config(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    if shared.web.path().is_none() {
        return;
    }
    let mut ticks = tokio::time::interval(WEB_CONFIG_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        let web = Arc::clone(&shared.web);
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || web.reload_if_changed()).await {
            tracing::error!(err = %error, "Web configuration changed but is invalid; the previous one stays in force.");
        }
    }
}

/// State shared by every connection of one exporter.
pub(crate) struct Shared {
    telemetry_path: String,
    runner: Runner,
    web: Arc<WebConfigWatcher>,
    landing: Option<Bytes>,
    routes: Vec<(String, RouteHandler)>,
    scrape_slots: Option<Semaphore>,
    max_requests: usize,
    self_metrics: Option<SelfMetrics>,
    ready: Option<ReadyCheck>,
    reload: Option<ReloadHook>,
    lifecycle: bool,
    text_source: Option<Arc<dyn TextSource>>,
    timeouts: Timeouts,
    /// Size of the last exposition, so the next buffer is allocated once.
    size_hint: AtomicUsize,
}

impl Shared {
    fn observe(&self, status: u16) {
        if let Some(own) = &self.self_metrics {
            own.observe(status);
        }
    }

    fn handler_error(&self, cause: self_metrics::HandlerError) {
        if let Some(own) = &self.self_metrics {
            own.handler_error(cause);
        }
    }

    fn last_size_hint(&self) -> usize {
        self.size_hint.load(Ordering::Relaxed) + 1024
    }

    fn remember_size(&self, size: usize) {
        self.size_hint.store(size, Ordering::Relaxed);
    }

    /// Re-reads the web config and the exporter's own configuration.
    pub(crate) async fn reload_all(&self) -> Result<(), String> {
        let web = Arc::clone(&self.web);
        tokio::task::spawn_blocking(move || web.reload())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        match &self.reload {
            Some(hook) => {
                let hook = Arc::clone(hook);
                tokio::task::spawn_blocking(move || hook())
                    .await
                    .map_err(|e| e.to_string())?
            }
            None => Ok(()),
        }
    }
}

/// A bound, serving exporter.
#[derive(Debug)]
pub struct RunningExporter {
    local_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("telemetry_path", &self.telemetry_path)
            .finish_non_exhaustive()
    }
}

impl RunningExporter {
    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The web configuration in force (it changes on reload).
    pub fn web_config(&self) -> Arc<crate::webconfig::WebConfig> {
        self.shared.web.current()
    }

    /// Serves until SIGINT or SIGTERM, reloading on SIGHUP, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        let shared = Arc::clone(&self.shared);
        let reloads = tokio::spawn(async move {
            let mut hangups = crate::signals::hangups();
            while hangups.recv().await.is_some() {
                tracing::info!("Received SIGHUP; reloading configuration.");
                if let Err(error) = shared.reload_all().await {
                    tracing::error!(err = %error, "Reload failed; the previous configuration stays in force.");
                }
            }
        });
        crate::signals::shutdown().await;
        reloads.abort();
        self.shutdown().await;
    }

    /// Stops accepting, lets open requests finish (up to the grace period), then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let grace = self.shared.timeouts.shutdown_grace;
        for task in self.tasks {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("Connections did not close within the grace period.");
            }
        }
        tracing::info!("Stopped.");
    }
}
