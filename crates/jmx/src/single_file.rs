//! A plain jmx_exporter configuration file as `--config.file`: the file is the one module
//! (named `default`), and what jmx_exporter would take from `hostPort` or from the agent's
//! JVM comes from flags: `--jmx.target` (the JVM's `/jmx` or Jolokia URL), `--jmx.bridge`,
//! `--jmx.naming`, `--jmx.on-target-error`.
//!
//! Keys that only configure jmx_exporter's RMI connection (`hostPort`, `jmxUrl`, `ssl`) are
//! refused with what to write instead: silently ignoring them would leave the user believing
//! the exporter reads that port.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use kiln_registry::allow_list::AllowList;
use kiln_registry::config::ConfigError;

use crate::config::{BridgeKind, ModuleSettings, OnTargetError, Scheme, Settings};
use crate::rules::{Naming, RuleSet};
use crate::target::Target;

/// The module name of a plain jmx_exporter file.
pub const MODULE: &str = "default";

/// Flags that stand in for a modules file's module settings when `--config.file` is a plain
/// jmx_exporter file (or absent).
#[derive(Debug, Clone, Default, Args)]
pub struct SingleFileFlags {
    /// With a plain jmx_exporter file: the JVM's /jmx or Jolokia URL, such as
    /// http://nn1:9870/jmx. /probe without a target reads it, and no other target.
    #[arg(long = "jmx.target", value_name = "URL")]
    pub target: Option<String>,

    /// With a plain jmx_exporter file: how the JVM is read [default: jolokia when the
    /// --jmx.target path mentions jolokia, else hadoop].
    #[arg(long = "jmx.bridge", value_enum, value_name = "BRIDGE")]
    pub bridge: Option<BridgeKind>,

    /// With a plain jmx_exporter file: the metric names of jmx_exporter 0.x or 1.x
    /// [default: 1.x].
    #[arg(long = "jmx.naming", value_enum, value_name = "VERSION")]
    pub naming: Option<Naming>,

    /// With a plain jmx_exporter file: what a probe of an unreadable JVM answers: 503
    /// (fail_scrape, so up is 0) or 200 with jmx_scrape_error 1 [default: fail_scrape].
    #[arg(long = "jmx.on-target-error", value_enum, value_name = "CHOICE")]
    pub on_target_error: Option<OnTargetError>,

    /// With a plain jmx_exporter file: also write the JVM's own jvm_* and process_*
    /// families, as jmx_exporter's java agent does.
    #[arg(long = "jmx.jvm-metrics")]
    pub jvm_metrics: bool,
}

impl SingleFileFlags {
    /// The first of these flags given, for the message that refuses it with a modules file.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("jmx.target", self.target.is_some()),
            ("jmx.bridge", self.bridge.is_some()),
            ("jmx.naming", self.naming.is_some()),
            ("jmx.on-target-error", self.on_target_error.is_some()),
            ("jmx.jvm-metrics", self.jvm_metrics),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }

    /// Whether any of them is given.
    pub fn any(&self) -> bool {
        self.first_given().is_some()
    }
}

/// Keys of jmx_exporter's RMI connection, and what to use instead.
const RMI_KEYS: [(&str, &str); 3] = [
    (
        "hostPort",
        "names a JMX (RMI) port; kiln-jmx-exporter reads the JVM over HTTP instead. Remove it and \
         give the JVM's /jmx or Jolokia URL with --jmx.target=http://HOST:PORT/jmx, or probe \
         /probe?target=HOST:PORT",
    ),
    (
        "jmxUrl",
        "names a JMX (RMI) service URL; kiln-jmx-exporter reads the JVM over HTTP instead. Remove \
         it and give the JVM's /jmx or Jolokia URL with --jmx.target=http://HOST:PORT/jmx, or \
         probe /probe?target=HOST:PORT",
    ),
    (
        "ssl",
        "configures SSL for JMX over RMI, which kiln-jmx-exporter does not use. Remove it; for \
         HTTPS give --jmx.target=https://HOST:PORT/jmx, or use a modules file with tls_config",
    ),
];

/// The settings of a plain jmx_exporter file (`None`: jmx_exporter's default rules).
pub fn settings(
    file: Option<(&Path, &str, &serde_yaml_ng::Value)>,
    flags: &SingleFileFlags,
) -> Result<Settings, ConfigError> {
    let mut warnings = Vec::new();
    let mut sources = Vec::new();
    let rules = match file {
        None => RuleSet::default_rules(),
        Some((path, text, tree)) => {
            if let Some(key) = modules_file_key(tree) {
                return Err(ConfigError::at_key(
                    path,
                    text,
                    &[key],
                    "this looks like a modules file, which needs a `modules:` key; without one \
                     the file is read as a plain jmx_exporter file",
                ));
            }
            for (key, instead) in RMI_KEYS {
                if tree.get(key).is_some() {
                    return Err(ConfigError::at_key(path, text, &[key], instead));
                }
            }
            let (rules, found) = crate::config::read_rules_text(path, text)?;
            warnings = found;
            sources.push(path.to_owned());
            rules
        }
    };
    let flag_error = |flag: &str, message: String| ConfigError::file(Path::new(flag), message);
    let (target, scheme, path) = match &flags.target {
        None => (None, Scheme::Http, None),
        Some(url) => {
            let (target, scheme, path) =
                parse_url(url).map_err(|m| flag_error("--jmx.target", m))?;
            (Some(target), scheme, Some(path))
        }
    };
    let bridge = flags.bridge.unwrap_or(match &path {
        Some(path) if path.contains("jolokia") => BridgeKind::Jolokia,
        _ => BridgeKind::Hadoop,
    });
    let module = ModuleSettings {
        name: MODULE.to_owned(),
        bridge,
        path: path.unwrap_or_else(|| bridge.default_path().to_owned()),
        scheme,
        timeout: Duration::from_secs(10),
        tls: kiln_scraper::ClientTls::default(),
        basic_auth: rules.credentials.clone(),
        query: crate::config::query(&rules, flags.jvm_metrics),
        rules: rules.with_naming(flags.naming.unwrap_or_default()),
        on_target_error: flags.on_target_error.unwrap_or_default(),
        jvm_metrics: flags.jvm_metrics,
        sources: Vec::new(),
    };
    // A target named by flag is the only one the exporter reaches.
    let allowed = target
        .as_ref()
        .map(|t: &Target| AllowList::only(&t.host, Some(t.port)));
    Ok(Settings {
        modules: BTreeMap::from([(MODULE.to_owned(), module)]),
        allowed,
        sources,
        warnings,
        default_target: target,
    })
}

/// A top-level key that only a modules file has (`allowed_targets`) or a misspelt `modules`:
/// such a file read as a plain jmx_exporter file would silently use the default rules.
fn modules_file_key(tree: &serde_yaml_ng::Value) -> Option<&str> {
    let serde_yaml_ng::Value::Mapping(top) = tree else {
        return None;
    };
    top.keys()
        .filter_map(serde_yaml_ng::Value::as_str)
        .find(|key| {
            *key == "allowed_targets"
                || kiln_registry::config::edit_distance(&key.to_ascii_lowercase(), "modules") <= 2
        })
}

/// `http://host:port/path` → target, scheme, path (`/jmx` when none is given).
fn parse_url(url: &str) -> Result<(Target, Scheme, String), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!(
            "{url:?} must be an http:// or https:// URL, such as http://nn1:9870/jmx"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/jmx"),
    };
    if path.contains(['?', '#']) {
        return Err(format!("{url:?}: give the path without a query"));
    }
    let target = Target::parse(authority).map_err(|e| format!("{url:?}: {e}"))?;
    Ok((target, scheme, path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (target, scheme, path) =
            parse_url("http://nn1:9870/jmx").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((target.host.as_str(), target.port), ("nn1", 9870));
        assert_eq!((scheme, path.as_str()), (Scheme::Http, "/jmx"));
        let (_, scheme, path) =
            parse_url("https://[::1]:8778/jolokia/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((scheme, path.as_str()), (Scheme::Https, "/jolokia/"));
        assert!(parse_url("nn1:9870").is_err());
        assert!(parse_url("http://nn1/jmx").is_err());
        assert!(parse_url("http://nn1:9870/jmx?qry=x").is_err());
    }

    fn load(text: &str, flags: &SingleFileFlags) -> Result<Settings, ConfigError> {
        let tree: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).unwrap_or(serde_yaml_ng::Value::Null);
        settings(Some((Path::new("nn.yml"), text, &tree)), flags)
    }

    #[test]
    fn rmi_keys_are_refused_with_what_to_use() {
        for (text, line) in [
            ("lowercaseOutputName: true\nhostPort: nn1:8004\n", 2),
            ("jmxUrl: service:jmx:rmi:///jndi/rmi://nn1:8004/jmxrmi\n", 1),
            ("rules: []\nssl: true\n", 2),
        ] {
            let error = load(text, &SingleFileFlags::default()).unwrap_err();
            assert_eq!(error.line, Some(line), "{error}");
            assert!(error.message.contains("--jmx.target="), "{error}");
        }
    }

    #[test]
    fn a_modules_file_with_a_misspelt_modules_is_refused() {
        for (text, line) in [
            ("module:\n  hdfs:\n    bridge: hadoop\n", 1),
            ("lowercaseOutputName: true\nallowed_targets: ['nn1']\n", 2),
        ] {
            let error = load(text, &SingleFileFlags::default()).unwrap_err();
            assert_eq!(error.line, Some(line), "{error}");
            assert!(error.message.contains("needs a `modules:` key"), "{error}");
        }
    }

    #[test]
    fn the_file_is_one_module_with_the_flags_settings() {
        let flags = SingleFileFlags {
            target: Some("http://127.0.0.1:8778/jolokia".into()),
            naming: Some(Naming::V0),
            ..SingleFileFlags::default()
        };
        let settings = load(
            "username: monitor\npassword: s3cret\nlowercaseOutputName: true\nrules:\n  - pattern: x\n",
            &flags,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let module = &settings.modules[MODULE];
        assert_eq!(module.bridge, BridgeKind::Jolokia);
        assert_eq!(module.path, "/jolokia");
        assert_eq!(module.rules.naming, Naming::V0);
        assert_eq!(module.on_target_error, OnTargetError::FailScrape);
        assert_eq!(
            module.basic_auth,
            Some(("monitor".to_owned(), "s3cret".to_owned()))
        );
        assert_eq!(
            settings.default_target.map(|t| t.port),
            Some(8778),
            "the flag's target is the default"
        );
        assert!(settings.allowed.is_some_and(
            |a| a.allows_name("127.0.0.1", Some(8778)) && !a.allows_name("nn2", Some(8778))
        ));
    }
}
