//! The exporter-toolkit web configuration file (`--web.config.file`): TLS, basic auth,
//! security headers and a request rate limit, parsed strictly and applied per connection
//! so that certificate rotation and password changes need no restart.

mod auth;
mod rate_limit;
mod tls;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

pub use auth::{AuthOutcome, BasicAuth};
pub use rate_limit::RateLimiter;
pub use watch::WebConfigWatcher;

use crate::config::{ConfigError, load_yaml};

/// The file as written, field for field as in exporter-toolkit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    /// TLS settings; TLS is off when absent.
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    /// HTTP settings.
    #[serde(default)]
    pub http_server_config: HttpServerConfig,
    /// `username: bcrypt hash`; basic auth is off when empty.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    /// Request rate limit; off when absent.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

/// `tls_server_config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// Server certificate chain as inline PEM.
    #[serde(default)]
    pub cert: Option<String>,
    /// Server private key as inline PEM.
    #[serde(default)]
    pub key: Option<String>,
    /// Server certificate chain file (PEM).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Server private key file (PEM).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Whether and how client certificates are asked for and checked.
    #[serde(default)]
    pub client_auth_type: ClientAuthType,
    /// CA bundle that client certificates must chain to.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Client CA bundle as inline PEM.
    #[serde(default)]
    pub client_ca: Option<String>,
    /// When set, a verified client certificate must carry one of these DNS or IP SANs.
    #[serde(default)]
    pub client_allowed_sans: Vec<String>,
    /// Lowest TLS version offered.
    #[serde(default = "TlsVersion::min_default")]
    pub min_version: TlsVersion,
    /// Highest TLS version offered.
    #[serde(default = "TlsVersion::max_default")]
    pub max_version: TlsVersion,
    /// TLS 1.2 cipher suites to allow, by their Go names; all supported when empty.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// Accepted for compatibility; the server's order is always preferred.
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
    /// Key exchange groups by their Go names (`X25519`, `CurveP256`, `CurveP384`).
    #[serde(default)]
    pub curve_preferences: Vec<String>,
}

/// `client_auth_type`, with Go's `tls.ClientAuthType` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ClientAuthType {
    /// No client certificate is asked for.
    #[default]
    NoClientCert,
    /// A certificate is asked for but not required or verified.
    RequestClientCert,
    /// A certificate is required but not verified.
    RequireAnyClientCert,
    /// A certificate is verified if the client sends one.
    VerifyClientCertIfGiven,
    /// A verified certificate is required.
    RequireAndVerifyClientCert,
}

/// TLS protocol versions, with the toolkit's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.0 (not offered; see the docs).
    TLS10,
    /// TLS 1.1 (not offered; see the docs).
    TLS11,
    /// TLS 1.2.
    TLS12,
    /// TLS 1.3.
    TLS13,
}

impl TlsVersion {
    fn min_default() -> Self {
        Self::TLS12
    }
    fn max_default() -> Self {
        Self::TLS13
    }
}

/// `http_server_config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Offer HTTP/2 (over TLS through ALPN).
    #[serde(default = "default_true")]
    pub http2: bool,
    /// Security headers added to every response.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            http2: true,
            headers: BTreeMap::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// `rate_limit`: at most `burst` requests at once, refilled one per `interval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Time for one token to come back, as a Prometheus duration (`1s`, `100ms`).
    pub interval: String,
    /// Bucket size.
    pub burst: u32,
}

/// The headers the toolkit allows, with the values it allows (`None`: any value).
const ALLOWED_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// A checked, ready-to-serve web configuration.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// TLS server settings; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic auth; `None` lets every request through.
    pub auth: Option<Arc<BasicAuth>>,
    /// Extra response headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request rate limit.
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// Files whose change should trigger a reload (the config and what it names).
    pub(crate) watched: Vec<PathBuf>,
}

impl WebConfig {
    /// No TLS, no auth, no extra headers: what serving without `--web.config.file` means.
    pub fn plain() -> Self {
        Self {
            tls: None,
            auth: None,
            headers: Vec::new(),
            rate_limit: None,
            watched: Vec::new(),
        }
    }

    /// Reads and checks a web config file. Relative paths in it are relative to its folder.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let (raw, text): (WebConfigFile, String) = load_yaml(file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        let at = |path: &[&str], msg: &dyn std::fmt::Display| {
            ConfigError::at_key(file, &text, path, msg)
        };

        let mut watched = vec![file.to_owned()];
        let tls = match &raw.tls_server_config {
            Some(settings) => {
                let built = tls::build(settings, base, raw.http_server_config.http2)
                    .map_err(|e| at(&["tls_server_config", e.key], &e.message))?;
                watched.extend(built.files);
                Some(Arc::new(built.config))
            }
            None => None,
        };

        let auth = if raw.basic_auth_users.is_empty() {
            None
        } else {
            Some(Arc::new(
                BasicAuth::new(&raw.basic_auth_users)
                    .map_err(|(user, e)| at(&["basic_auth_users", &user], &e))?,
            ))
        };

        let mut headers = Vec::new();
        for (name, value) in &raw.http_server_config.headers {
            let key = ["http_server_config", "headers", name.as_str()];
            let Some((canonical, allowed)) = ALLOWED_HEADERS
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(name))
            else {
                let names: Vec<_> = ALLOWED_HEADERS.iter().map(|(h, _)| *h).collect();
                return Err(at(
                    &key,
                    &format!("header is not allowed; allowed are {}", names.join(", ")),
                ));
            };
            if let Some(values) = allowed
                && !values.iter().any(|v| v.eq_ignore_ascii_case(value))
            {
                return Err(at(
                    &key,
                    &format!("invalid value {value:?}; allowed are {}", values.join(", ")),
                ));
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| at(&key, &"value is not a valid header value"))?;
            // The table's names are valid header names; `HeaderName` stores them lowercased.
            let name = HeaderName::from_bytes(canonical.as_bytes())
                .map_err(|_| at(&key, &"invalid header name"))?;
            headers.push((name, value));
        }

        let rate_limit = match &raw.rate_limit {
            Some(limit) => {
                let interval = crate::duration::parse_prometheus_duration(&limit.interval)
                    .ok_or_else(|| {
                        at(
                            &["rate_limit", "interval"],
                            &"not a duration like 1s or 500ms",
                        )
                    })?;
                Some(Arc::new(RateLimiter::new(interval, limit.burst)))
            }
            None => None,
        };

        Ok(Self {
            tls,
            auth,
            headers,
            rate_limit,
            watched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a web config whose certificate and key files hold `cert` and `key`.
    fn load_with_pem(cert: &str, key: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.pem"), cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        let file = dir.path().join("web.yml");
        std::fs::write(
            &file,
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
        )
        .unwrap();
        WebConfig::load(&file).unwrap_err().to_string()
    }

    #[test]
    fn garbage_pem_is_described_in_words() {
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n";
        let error = load_with_pem(truncated, "");
        assert!(
            error
                .ends_with("c.pem: invalid PEM: the \"-----END CERTIFICATE-----\" line is missing"),
            "{error}"
        );
        assert!(!error.contains("45, 45"), "{error}");

        let error = load_with_pem("-----BEGIN \u{1b}[2J garbage\n", "");
        assert!(
            error.contains("malformed BEGIN line \"-----BEGIN \\u{1b}[2J garbage\""),
            "{error}"
        );

        // A file of random bytes has no PEM section at all.
        let error = load_with_pem(&"\u{7f}garbage".repeat(100), "");
        assert!(
            error.contains("no certificate found in the PEM data"),
            "{error}"
        );
    }
}
