//! Keeps the live web configuration and swaps in a new one when its files change or on
//! request (SIGHUP, `/-/reload`). A broken new version is logged and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::WebConfig;
use crate::config::ConfigError;

/// Modification time and size of every watched file; any difference means "reload".
type Fingerprint = Vec<(Option<SystemTime>, Option<u64>)>;

/// The current web configuration, cheap to read on every connection.
#[derive(Debug)]
pub struct WebConfigWatcher {
    path: Option<PathBuf>,
    current: ArcSwap<WebConfig>,
    fingerprint: Mutex<Fingerprint>,
}

impl WebConfigWatcher {
    /// Loads `path` (or the plain configuration when there is none).
    pub fn new(path: Option<&Path>) -> Result<Self, ConfigError> {
        let config = match path {
            Some(path) => WebConfig::load(path)?,
            None => WebConfig::plain(),
        };
        let fingerprint = fingerprint(&config.watched);
        Ok(Self {
            path: path.map(Path::to_owned),
            current: ArcSwap::from_pointee(config),
            fingerprint: Mutex::new(fingerprint),
        })
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<WebConfig> {
        self.current.load_full()
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the file now. On error the configuration in force stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let result = WebConfig::load(path);
        // Remember what was seen even on failure, so a broken file is reported once per
        // change rather than on every poll.
        let watched = match &result {
            Ok(config) => config.watched.clone(),
            Err(_) => self.current().watched.clone(),
        };
        *self.lock_fingerprint() = fingerprint(&watched);
        let config = result?;
        self.current.store(Arc::new(config));
        tracing::info!(file = %path.display(), "Web configuration reloaded.");
        Ok(())
    }

    /// Reloads when the file or a certificate it names has changed since the last load.
    pub fn reload_if_changed(&self) -> Result<bool, ConfigError> {
        if self.path.is_none() {
            return Ok(false);
        }
        let watched = self.current().watched.clone();
        if fingerprint(&watched) == *self.lock_fingerprint() {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    fn lock_fingerprint(&self) -> std::sync::MutexGuard<'_, Fingerprint> {
        self.fingerprint.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|f| match std::fs::metadata(f) {
            Ok(meta) => (meta.modified().ok(), Some(meta.len())),
            Err(_) => (None, None),
        })
        .collect()
}
