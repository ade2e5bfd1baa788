//! The whole life of an exporter process, so each `main.rs` is a few lines: version,
//! logging, configuration checks before any port is bound, serving, and exit codes.

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::flags::WebFlags;
use crate::logging;
use crate::server::Exporter;
use crate::version::BuildInfo;
use crate::webconfig::WebConfigWatcher;

/// Exit code for bad configuration (`EX_USAGE`), before any port is bound.
pub const EXIT_CONFIG: u8 = 64;
/// How long an idle collector thread waits for the next scrape before it exits.
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(120);

/// Exit code when serving could not start (a port in use, say).
pub const EXIT_RUNTIME: u8 = 1;

/// Why an exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A configuration file is wrong: exit 64.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something the exporter needs is not available (a socket it may not open, say):
    /// exit 1, with the message.
    #[error("{0}")]
    Start(String),
}

/// Runs an exporter to completion.
///
/// `build` reads the exporter's own configuration and returns the configured exporter; it
/// runs inside the runtime, so it may spawn background tasks. A [`ConfigError`] from it, or
/// from the web config file, exits with 64 before anything listens; a
/// [`BuildError::Start`] exits with 1.
pub fn main(
    info: BuildInfo,
    flags: &WebFlags,
    build: impl FnOnce() -> Result<Exporter, BuildError>,
) -> ExitCode {
    crate::process_policy::apply();
    if flags.version {
        print!("{}", info.version_text());
        return ExitCode::SUCCESS;
    }
    logging::init(flags.log_level, flags.log_format);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Collectors run on blocking threads; keeping them between scrapes (Prometheus'
        // default interval is longer than tokio's 10 s) saves creating them every time.
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .thread_name(info.program)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(err = %error, "Cannot start the async runtime.");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let _guard = runtime.enter();

    let exporter = match build() {
        Ok(exporter) => exporter,
        Err(BuildError::Config(error)) => return config_failure(&error),
        Err(BuildError::Start(message)) => {
            tracing::error!(err = %message, "Cannot start.");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let web = match WebConfigWatcher::new(flags.config_file.as_deref()) {
        Ok(web) => std::sync::Arc::new(web),
        Err(error) => return config_failure(&error),
    };
    if let Err(error) = exporter.check_listen_addresses() {
        tracing::error!(err = %error, "Invalid configuration.");
        return ExitCode::from(EXIT_CONFIG);
    }
    if flags.check_config {
        tracing::info!("Configuration is valid.");
        return ExitCode::SUCCESS;
    }

    tracing::info!(
        version = info.version,
        revision = info.revision,
        rust_version = info.rust_version,
        "Starting {}",
        info.program
    );
    runtime.block_on(async move {
        match exporter.bind_with(web).await {
            Ok(running) => {
                // Nothing else runs yet: this thread did all of start-up, and the server's
                // tasks wait for it to yield.
                #[cfg(target_os = "linux")]
                {
                    let released = crate::startup_pages::release();
                    tracing::debug!(kib = released, "Released start-up code pages.");
                }
                running.run_until_signal().await;
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(err = %error, "Cannot start serving.");
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    })
}

fn config_failure(error: &ConfigError) -> ExitCode {
    tracing::error!(err = %error, "Invalid configuration.");
    ExitCode::from(EXIT_CONFIG)
}
