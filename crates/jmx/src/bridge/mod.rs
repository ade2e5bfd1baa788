//! Reading MBeans over HTTP: [`hadoop`] (Hadoop's `/jmx` servlet) and [`jolokia`].
//!
//! A fetch returns the raw bodies; [`beans`] then finds the beans in the parsed JSON without
//! copying them, so a 2 MB answer is walked where it lies.

pub mod hadoop;
pub mod jolokia;

use std::time::Duration;

use kiln_scraper::{ScrapeClient, ScrapeError};

use crate::config::{BridgeKind, ModuleSettings, Scheme};
use crate::json::Value;
use crate::target::Target;
use crate::walk::{Bean, RawBean};

/// Answers larger than this are refused (a large NameNode sends a few MB).
pub const MAX_BODY: usize = 256 << 20;

/// Why a probe got no beans.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed: connection, TLS, timeout, HTTP status.
    #[error("{0}")]
    Http(#[from] ScrapeError),
    /// The body is not JSON.
    #[error("{0}")]
    Json(#[from] crate::json::JsonError),
    /// JSON of an unexpected shape.
    #[error("unexpected answer: {0}")]
    Shape(String),
}

impl FetchError {
    /// A short reason for the error counter.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Http(ScrapeError::Timeout(_)) => "timeout",
            FetchError::Http(ScrapeError::Status { .. }) => "http_status",
            FetchError::Http(ScrapeError::Tls(_)) => "tls",
            FetchError::Http(ScrapeError::TooLarge(_)) => "too_large",
            FetchError::Http(ScrapeError::Refused) => "over_budget",
            FetchError::Http(_) => "connect",
            FetchError::Json(_) => "invalid_json",
            FetchError::Shape(_) => "unexpected_answer",
        }
    }
}

/// The base URL of a module on a target: `scheme://host:port/path`.
pub fn base_url(module: &ModuleSettings, target: &Target) -> String {
    let scheme = match module.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    format!("{scheme}://{target}{}", module.path)
}

/// Fetches the answer bodies of one probe.
pub async fn fetch(
    module: &ModuleSettings,
    client: &ScrapeClient,
    target: &Target,
    timeout: Duration,
    admit: &(dyn Fn(usize) -> bool + Send + Sync),
) -> Result<Vec<String>, FetchError> {
    let base = base_url(module, target);
    let patterns = &module.query;
    match module.bridge {
        BridgeKind::Hadoop => hadoop::fetch(client, &base, patterns, timeout, admit).await,
        BridgeKind::Jolokia => jolokia::fetch(client, &base, patterns, timeout, admit)
            .await
            .map(|body| vec![body]),
    }
}

/// The beans in parsed answers, each once, and how many answer items were errors.
pub fn beans<'a>(
    module: &'a ModuleSettings,
    documents: &'a [Value<'a>],
) -> Result<(Vec<Bean<'a>>, u64), FetchError> {
    let mut beans = Vec::new();
    let mut errors = 0;
    let requested = jolokia::requested(&module.query);
    for document in documents {
        match module.bridge {
            BridgeKind::Hadoop => hadoop::beans(document, &mut beans)?,
            BridgeKind::Jolokia => errors += jolokia::beans(document, &requested, &mut beans)?,
        }
    }
    if documents.len() > 1 {
        let mut seen = std::collections::HashSet::new();
        beans.retain(|bean| seen.insert(bean.name));
    }
    Ok((beans, errors))
}

/// The beans in the answer bodies, each once and still in text, and how many answer items
/// were errors. Every body is checked whole first, so bad JSON anywhere fails the probe.
pub fn raw_beans<'a>(
    module: &'a ModuleSettings,
    bodies: &'a [String],
) -> Result<(Vec<RawBean<'a>>, u64), FetchError> {
    let mut beans = Vec::new();
    let mut errors = 0;
    let requested = jolokia::requested(&module.query);
    for body in bodies {
        match module.bridge {
            BridgeKind::Hadoop => hadoop::raw_beans(body, &mut beans)?,
            BridgeKind::Jolokia => errors += jolokia::raw_beans(body, &requested, &mut beans)?,
        }
    }
    if bodies.len() > 1 {
        let mut seen = std::collections::HashSet::new();
        beans.retain(|bean| seen.insert(bean.name.clone()));
    }
    Ok((beans, errors))
}
