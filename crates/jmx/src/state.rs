//! The live configuration: compiled modules with their HTTP clients and match caches,
//! swapped as a whole on reload so a probe in flight keeps the modules it started with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use kiln_registry::allow_list::AllowList;
use kiln_registry::config::ConfigError;
use kiln_scraper::{Auth, ScrapeClient};

use crate::bridge::MAX_BODY;
use crate::config::{ModuleSettings, Settings};
use crate::self_metrics::Counters;
use crate::shards::ShardedCache;
use crate::single_file::SingleFileFlags;

/// A module ready to probe with.
#[derive(Debug)]
pub struct Module {
    /// Its settings and rules.
    pub settings: ModuleSettings,
    /// HTTP client with the module's TLS and credentials.
    pub client: ScrapeClient,
    /// Rule results, shared by every target of the module.
    pub cache: ShardedCache,
}

impl Module {
    /// Builds the client (loading TLS files) and an empty cache.
    pub fn new(settings: ModuleSettings, config_file: &Path) -> Result<Self, ConfigError> {
        let mut client = ScrapeClient::with_tls(&settings.tls)
            .map_err(|e| {
                ConfigError::file(
                    config_file,
                    format!("modules.{}.tls_config: {e}", settings.name),
                )
            })?
            .timeout(settings.timeout)
            .max_body_bytes(MAX_BODY);
        if let Some((username, password)) = &settings.basic_auth {
            client = client.auth(Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            });
        }
        let cache = ShardedCache::for_this_host(&settings.rules);
        Ok(Self {
            settings,
            client,
            cache,
        })
    }
}

/// All modules of one configuration.
#[derive(Debug)]
pub struct Modules {
    /// By name.
    pub by_name: BTreeMap<String, Arc<Module>>,
    /// `allowed_targets`.
    pub allowed: Option<AllowList>,
    /// Files it was read from.
    pub sources: Vec<PathBuf>,
    /// The target of `/probe` requests that name none.
    pub default_target: Option<crate::target::Target>,
}

impl Modules {
    /// Compiles `settings`.
    pub fn new(settings: Settings, config_file: &Path) -> Result<Self, ConfigError> {
        let sources = settings.sources;
        let default_target = settings.default_target;
        let by_name = settings
            .modules
            .into_iter()
            .map(|(name, module)| Ok((name, Arc::new(Module::new(module, config_file)?))))
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self {
            by_name,
            allowed: settings.allowed,
            sources,
            default_target,
        })
    }

    /// The modification times of its files now.
    fn stamps(&self) -> Vec<Option<SystemTime>> {
        self.sources
            .iter()
            .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The exporter's state: the modules in force and the process-wide counters.
#[derive(Debug)]
pub struct Jmx {
    /// The modules in force.
    pub modules: ArcSwap<Modules>,
    /// Counters for `/metrics`.
    pub counters: Counters,
    config_file: Option<PathBuf>,
    single_file: SingleFileFlags,
    /// The modification times of the configuration's files when last looked at.
    seen: Mutex<Vec<Option<SystemTime>>>,
}

impl Jmx {
    /// Loads the configuration (or the built-in modules without one).
    /// `single_file` completes a plain jmx_exporter file, or stands for one with default
    /// rules when there is no file.
    pub fn load(
        config_file: Option<&Path>,
        single_file: &SingleFileFlags,
    ) -> Result<Self, ConfigError> {
        let modules = Self::read(config_file, single_file)?;
        Ok(Self {
            seen: Mutex::new(modules.stamps()),
            modules: ArcSwap::from_pointee(modules),
            counters: Counters::default(),
            config_file: config_file.map(Path::to_owned),
            single_file: single_file.clone(),
        })
    }

    fn read(
        config_file: Option<&Path>,
        single_file: &SingleFileFlags,
    ) -> Result<Modules, ConfigError> {
        match config_file {
            Some(file) => {
                let settings = Settings::load(file, single_file)?;
                for warning in &settings.warnings {
                    tracing::warn!("{warning}");
                }
                Modules::new(settings, file)
            }
            None if single_file.any() => Modules::new(
                crate::single_file::settings(None, single_file)?,
                Path::new("(--jmx.* flags)"),
            ),
            None => Modules::new(Settings::builtin(), Path::new("(built-in modules)")),
        }
    }

    /// Reads the configuration again; on error the modules in force stay.
    pub fn reload(&self) -> Result<(), String> {
        match Self::read(self.config_file.as_deref(), &self.single_file) {
            Ok(modules) => {
                *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = modules.stamps();
                self.modules.store(Arc::new(modules));
                self.counters.reloaded(true);
                tracing::info!("Configuration reloaded.");
                Ok(())
            }
            Err(error) => {
                self.counters.reloaded(false);
                tracing::error!(err = %error, "Configuration not reloaded; the previous one stays in force.");
                Err(error.to_string())
            }
        }
    }

    /// Reloads if a file of the configuration changed on disk, as jmx_exporter does. A file
    /// that fails to load is tried again only when it changes again.
    pub fn reload_if_changed(&self) {
        if self.config_file.is_none() {
            return;
        }
        let now = self.modules.load().stamps();
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == now {
                return;
            }
            *seen = now;
        }
        let _ = self.reload();
    }
}
