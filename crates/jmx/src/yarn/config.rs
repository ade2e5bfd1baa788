//! Where the ResourceManager is and how it is read: the `yarn:` section of a modules file,
//! or the `--yarn.*` flags.
//!
//! ```yaml
//! yarn:
//!   resourcemanager_url: http://localhost:8088   # the active RM's web address
//!   timeout: 5s                # longest one read of the RM may take
//!   max_applications: 1000     # running applications served; more are counted
//!   max_response_bytes: 16777216   # larger answers are refused and counted
//!   keep_last: 5m              # serve the last good read this long while the RM fails
//! ```

use std::path::Path;
use std::time::Duration;

use clap::Args;
use kiln_registry::config::{ConfigError, parse_yaml, read_config_text};
use kiln_registry::duration::{GoDuration, parse_go_duration};
use serde::Deserialize;

/// Defaults, and the bounds a setting must stay within.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_APPLICATIONS: usize = 1000;
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;
const DEFAULT_KEEP_LAST: Duration = Duration::from_secs(300);
/// An application's entry is about 1.5 KB; a million of them would be a runaway setting.
const MAX_APPLICATIONS_LIMIT: usize = 100_000;
const MAX_RESPONSE_BYTES_LIMIT: usize = 1 << 30;

/// Flags that turn the YARN collector on without a modules file.
#[derive(Debug, Clone, Default, Args)]
pub struct YarnFlags {
    /// Read running applications and cluster totals from this ResourceManager
    /// (its web address, such as http://localhost:8088) and serve them on /metrics.
    #[arg(long = "yarn.resourcemanager-url", value_name = "URL")]
    pub resourcemanager_url: Option<String>,

    /// Longest one read of the ResourceManager may take [default: 5s].
    #[arg(long = "yarn.timeout", value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Most running applications served; the rest are counted in
    /// yarn_applications_left_out [default: 1000].
    #[arg(long = "yarn.max-applications", value_name = "N")]
    pub max_applications: Option<usize>,
}

impl YarnFlags {
    /// The first flag given, for the message that refuses flags beside a `yarn:` section.
    fn first_given(&self) -> Option<&'static str> {
        [
            (
                "yarn.resourcemanager-url",
                self.resourcemanager_url.is_some(),
            ),
            ("yarn.timeout", self.timeout.is_some()),
            ("yarn.max-applications", self.max_applications.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// The `yarn:` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    resourcemanager_url: Option<String>,
    #[serde(default)]
    timeout: Option<GoDuration>,
    #[serde(default)]
    max_applications: Option<usize>,
    #[serde(default)]
    max_response_bytes: Option<usize>,
    #[serde(default)]
    keep_last: Option<GoDuration>,
}

#[derive(Debug, Deserialize)]
struct WithSection {
    #[serde(default)]
    yarn: Option<Section>,
}

/// The collector's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YarnSettings {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    /// Longest one read (both requests) may take.
    pub timeout: Duration,
    /// Most applications served.
    pub max_applications: usize,
    /// Largest answer read.
    pub max_response_bytes: usize,
    /// How long the last good read is served while the RM cannot be read.
    pub keep_last: Duration,
}

impl YarnSettings {
    /// The URL of the running applications, asking the RM for no more than we keep.
    pub fn applications_url(&self) -> String {
        format!(
            "{}/ws/v1/cluster/apps?states=RUNNING&limit={}",
            self.base_url, self.max_applications
        )
    }

    /// The URL of the cluster totals.
    pub fn metrics_url(&self) -> String {
        format!("{}/ws/v1/cluster/metrics", self.base_url)
    }
}

/// The settings from the command line: the `yarn:` section of `--config.file` when it is a
/// modules file, else the `--yarn.*` flags.
pub fn load_for(cli: &crate::Cli) -> Result<Option<YarnSettings>, ConfigError> {
    let Some(path) = &cli.modules_file else {
        return load(None, &cli.yarn);
    };
    let text = read_config_text(path)?;
    let tree: serde_yaml_ng::Value = parse_yaml(path, &text)?;
    if tree.get("yarn").is_none() {
        return load(None, &cli.yarn);
    }
    load(Some((path, &text)), &cli.yarn)
}

/// Reads the `yarn:` section of `file` (a modules file whose text is `text`) or, without
/// one, the flags. `None`: the collector is off.
pub fn load(
    file: Option<(&Path, &str)>,
    flags: &YarnFlags,
) -> Result<Option<YarnSettings>, ConfigError> {
    if let Some((path, text)) = file {
        let parsed: WithSection = parse_yaml(path, text)?;
        if let Some(section) = parsed.yarn {
            if let Some(flag) = flags.first_given() {
                return Err(ConfigError::at_key(
                    path,
                    text,
                    &["yarn"],
                    format!("--{flag} is given too; set it here instead"),
                ));
            }
            let at = |key: &str, message: String| {
                ConfigError::at_key(path, text, &["yarn", key], message)
            };
            return from_section(section, &at).map(Some);
        }
    }
    let Some(url) = &flags.resourcemanager_url else {
        if let Some(flag) = flags.first_given() {
            return Err(ConfigError::file(
                Path::new(&format!("--{flag}")),
                "needs --yarn.resourcemanager-url",
            ));
        }
        return Ok(None);
    };
    let flag = |name: &str, message: String| ConfigError::file(Path::new(name), message);
    let timeout = flags
        .timeout
        .as_deref()
        .map(parse_go_duration)
        .transpose()
        .map_err(|m| flag("--yarn.timeout", m))?;
    let section = Section {
        resourcemanager_url: Some(url.clone()),
        timeout: timeout.map(GoDuration),
        max_applications: flags.max_applications,
        max_response_bytes: None,
        keep_last: None,
    };
    from_section(section, &|key: &str, message: String| {
        flag(&format!("--yarn.{}", key.replace('_', "-")), message)
    })
    .map(Some)
}

fn from_section(
    section: Section,
    at: &dyn Fn(&str, String) -> ConfigError,
) -> Result<YarnSettings, ConfigError> {
    let url = section.resourcemanager_url.ok_or_else(|| {
        at(
            "resourcemanager_url",
            "missing; give the ResourceManager's web address, such as http://localhost:8088".into(),
        )
    })?;
    let base_url = check_url(&url).map_err(|m| at("resourcemanager_url", m))?;
    let timeout = section.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
    if timeout.is_zero() {
        return Err(at("timeout", "must be more than 0".into()));
    }
    let max_applications = section.max_applications.unwrap_or(DEFAULT_MAX_APPLICATIONS);
    if !(1..=MAX_APPLICATIONS_LIMIT).contains(&max_applications) {
        return Err(at(
            "max_applications",
            format!("must be 1 to {MAX_APPLICATIONS_LIMIT}"),
        ));
    }
    let max_response_bytes = section
        .max_response_bytes
        .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    if !(1024..=MAX_RESPONSE_BYTES_LIMIT).contains(&max_response_bytes) {
        return Err(at(
            "max_response_bytes",
            format!("must be 1024 to {MAX_RESPONSE_BYTES_LIMIT}"),
        ));
    }
    Ok(YarnSettings {
        base_url,
        timeout,
        max_applications,
        max_response_bytes,
        keep_last: section.keep_last.map_or(DEFAULT_KEEP_LAST, |d| d.0),
    })
}

/// `http(s)://host:port` with an optional trailing slash, and nothing else: the collector
/// adds the REST paths itself.
fn check_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("{url:?} must be an http:// or https:// URL, such as http://localhost:8088")
        })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "{url:?}: give the ResourceManager's address only (http://host:port), without a path"
        ));
    }
    crate::target::Target::parse(authority).map_err(|e| format!("{url:?}: {e}"))?;
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_file(text: &str) -> Result<Option<YarnSettings>, ConfigError> {
        load(Some((Path::new("jmx.yml"), text)), &YarnFlags::default())
    }

    #[test]
    fn a_section_with_defaults() {
        let settings = from_file("yarn:\n  resourcemanager_url: http://rm1:8088/\n")
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the section is read"));
        assert_eq!(settings.base_url, "http://rm1:8088");
        assert_eq!(settings.timeout, DEFAULT_TIMEOUT);
        assert_eq!(settings.max_applications, 1000);
        assert_eq!(
            settings.applications_url(),
            "http://rm1:8088/ws/v1/cluster/apps?states=RUNNING&limit=1000"
        );
        assert_eq!(
            settings.metrics_url(),
            "http://rm1:8088/ws/v1/cluster/metrics"
        );
        assert_eq!(from_file("modules: {}\n").ok(), Some(None));
    }

    #[test]
    fn bad_sections_name_file_line_and_key() {
        let cases = [
            (
                "yarn:\n  resourcemanager_url: rm1:8088\n",
                2,
                "yarn.resourcemanager_url",
            ),
            (
                "yarn:\n  resourcemanager_url: http://rm1:8088/ws/v1\n",
                2,
                "yarn.resourcemanager_url",
            ),
            (
                "yarn:\n  resourcemanager_url: http://rm1:8088\n  timeout: 0s\n",
                3,
                "yarn.timeout",
            ),
            (
                "yarn:\n  resourcemanager_url: http://rm1:8088\n  max_applications: 0\n",
                3,
                "yarn.max_applications",
            ),
            (
                "yarn:\n  resourcemanager_url: http://rm1:8088\n  max_response_bytes: 10\n",
                3,
                "yarn.max_response_bytes",
            ),
            ("yarn:\n  timeout: 1s\n", 1, "yarn.resourcemanager_url"),
        ];
        for (text, line, key) in cases {
            let error = from_file(text).unwrap_err();
            assert_eq!(error.line, Some(line), "{text}: {error}");
            assert!(error.message.starts_with(key), "{text}: {error}");
            assert_eq!(error.file, Path::new("jmx.yml"));
        }
        let error = from_file("yarn:\n  resourcemanager_url: http://rm1:8088\n  timeuot: 1s\n")
            .unwrap_err();
        assert!(error.message.contains("timeuot"), "{error}");
        assert_eq!(error.line, Some(3), "{error}");
    }

    #[test]
    fn flags_alone_or_refused_beside_a_section() {
        let flags = YarnFlags {
            resourcemanager_url: Some("http://127.0.0.1:8088".into()),
            timeout: Some("2s".into()),
            max_applications: Some(5),
        };
        let settings = load(None, &flags)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("on"));
        assert_eq!(settings.timeout, Duration::from_secs(2));
        assert_eq!(settings.max_applications, 5);

        let error = load(
            Some((
                Path::new("jmx.yml"),
                "modules: {}\nyarn:\n  resourcemanager_url: http://a:1\n",
            )),
            &flags,
        )
        .unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");

        let error = load(
            None,
            &YarnFlags {
                timeout: Some("2s".into()),
                ..YarnFlags::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "--yarn.timeout: needs --yarn.resourcemanager-url"
        );

        let error = load(
            None,
            &YarnFlags {
                resourcemanager_url: Some("http://a:1".into()),
                timeout: Some("soon".into()),
                ..YarnFlags::default()
            },
        )
        .unwrap_err();
        assert!(error.to_string().starts_with("--yarn.timeout: "), "{error}");
        assert_eq!(load(None, &YarnFlags::default()).ok(), Some(None));
    }
}
