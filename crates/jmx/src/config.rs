//! The modules file: for each module, which bridge, where on the target, how to connect,
//! and which jmx_exporter rules; plus the targets `/probe` may reach.
//!
//! ```yaml
//! modules:
//!   hdfs:
//!     bridge: hadoop            # hadoop (Hadoop's /jmx servlet) | jolokia
//!     path: /jmx                # default /jmx for hadoop, /jolokia for jolokia
//!     scheme: http              # or https, with tls_config
//!     timeout: 10s
//!     basic_auth: {username: u, password_file: /etc/kiln/jmx.pass}
//!     naming: 1.x               # or 0.x: the metric names of jmx_exporter 1.x or 0.x
//!     on_target_error: fail_scrape   # or jmx_scrape_error: 200 with jmx_scrape_error 1
//!     jvm_metrics: false        # true: also the JVM's jvm_* and process_* families
//!     rules_file: hdfs.yml      # an unchanged jmx_exporter configuration file, or
//!     # rules: {lowercaseOutputName: true, rules: [...]}   # the same YAML inline
//! allowed_targets: ['nn1:9870', '10.0.0.0/8']
//! yarn: {resourcemanager_url: 'http://localhost:8088'}   # see crate::yarn::config
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_registry::allow_list::AllowList;
use kiln_registry::config::{ConfigError, parse_yaml, read_config_text};
use kiln_registry::duration::GoDuration;
use serde::Deserialize;

use crate::object_name::ObjectNamePattern;
use crate::rules::config::RawConfig;
use crate::rules::keys::{self, Finding};
use crate::rules::{Naming, RuleSet};
use crate::single_file::SingleFileFlags;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    modules: BTreeMap<String, ModuleFile>,
    #[serde(default)]
    allowed_targets: Option<Vec<String>>,
    /// Read by [`crate::yarn::config`]; here only so it is not an unknown key.
    #[serde(default)]
    yarn: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleFile {
    #[serde(default)]
    bridge: Option<BridgeKind>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    scheme: Option<Scheme>,
    #[serde(default)]
    timeout: Option<GoDuration>,
    #[serde(default)]
    tls_config: Option<TlsFile>,
    #[serde(default)]
    basic_auth: Option<BasicAuthFile>,
    #[serde(default)]
    rules_file: Option<PathBuf>,
    #[serde(default)]
    rules: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    naming: Option<Naming>,
    #[serde(default)]
    on_target_error: Option<OnTargetError>,
    #[serde(default)]
    jvm_metrics: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuthFile {
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
}

/// How MBeans are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BridgeKind {
    /// Hadoop's `JMXJsonServlet` (`/jmx`), in every Hadoop, YARN and HBase daemon.
    Hadoop,
    /// A Jolokia agent.
    Jolokia,
}

impl BridgeKind {
    /// The path the bridge is usually served at.
    pub fn default_path(self) -> &'static str {
        match self {
            BridgeKind::Hadoop => "/jmx",
            BridgeKind::Jolokia => "/jolokia",
        }
    }
}

/// What a probe answers when the JVM cannot be read (refused, timed out, an HTTP error, an
/// answer that is not JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum OnTargetError {
    /// HTTP 503, so Prometheus records the scrape as failed and `up` is 0, as when a
    /// jmx_exporter java agent dies with its JVM.
    #[default]
    #[value(name = "fail_scrape")]
    FailScrape,
    /// HTTP 200 with `jmx_scrape_error 1`, as jmx_exporter's standalone server answers.
    #[value(name = "jmx_scrape_error")]
    JmxScrapeError,
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTPS.
    Https,
}

/// A module, checked and compiled.
#[derive(Debug)]
pub struct ModuleSettings {
    /// The module's name.
    pub name: String,
    /// The bridge.
    pub bridge: BridgeKind,
    /// Path on the target, starting with `/`.
    pub path: String,
    /// Scheme.
    pub scheme: Scheme,
    /// Longest a probe may take (the scrape timeout may shorten it).
    pub timeout: Duration,
    /// TLS settings for `https`.
    pub tls: kiln_scraper::ClientTls,
    /// Basic-auth credentials.
    pub basic_auth: Option<(String, String)>,
    /// The compiled rules.
    pub rules: RuleSet,
    /// What a probe answers when the JVM cannot be read.
    pub on_target_error: OnTargetError,
    /// Whether the JVM's own families (`jvm_*`, `process_*`) are written too.
    pub jvm_metrics: bool,
    /// The object name patterns asked of the bridge; empty means every MBean.
    pub query: Vec<ObjectNamePattern>,
    /// Files this module was built from, for reloading on change.
    pub sources: Vec<PathBuf>,
}

/// The whole configuration.
#[derive(Debug)]
pub struct Settings {
    /// Modules by name.
    pub modules: BTreeMap<String, ModuleSettings>,
    /// Targets `/probe` may reach; `None` allows any.
    pub allowed: Option<AllowList>,
    /// Files read, for reloading on change.
    pub sources: Vec<PathBuf>,
    /// Problems that do not stop the exporter (keys jmx_exporter does not know), located.
    pub warnings: Vec<ConfigError>,
    /// The target of `/probe` requests that name none (`--jmx.target`).
    pub default_target: Option<crate::target::Target>,
}

impl Settings {
    /// The modules used without a configuration file.
    pub fn builtin() -> Self {
        let module = |name: &str, bridge: BridgeKind| ModuleSettings {
            name: name.to_owned(),
            bridge,
            path: bridge.default_path().to_owned(),
            scheme: Scheme::Http,
            timeout: Duration::from_secs(10),
            tls: kiln_scraper::ClientTls::default(),
            basic_auth: None,
            rules: RuleSet::default_rules(),
            on_target_error: OnTargetError::default(),
            jvm_metrics: false,
            query: Vec::new(),
            sources: Vec::new(),
        };
        Self {
            modules: [
                ("hadoop".to_owned(), module("hadoop", BridgeKind::Hadoop)),
                ("jolokia".to_owned(), module("jolokia", BridgeKind::Jolokia)),
            ]
            .into(),
            allowed: None,
            sources: Vec::new(),
            warnings: Vec::new(),
            default_target: None,
        }
    }

    /// Reads `file`: a modules file (it has `modules:`) and every rules file it names, or a
    /// plain jmx_exporter file, which `single` completes.
    pub fn load(file: &Path, single: &SingleFileFlags) -> Result<Self, ConfigError> {
        let text = read_config_text(file)?;
        let tree: serde_yaml_ng::Value = parse_yaml(file, &text)?;
        if tree.get("modules").is_none() && tree.get("yarn").is_none() {
            return crate::single_file::settings(Some((file, &text, &tree)), single);
        }
        if let Some(flag) = single.first_given() {
            return Err(ConfigError::file(
                file,
                format!(
                    "--{flag} completes a plain jmx_exporter file; this is a modules file, so \
                     set it in the module instead"
                ),
            ));
        }
        Self::parse(file, &text)
    }

    /// Parses the text of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: File = parse_yaml(file, text)?;
        let at = |path: &[&str], message: String| ConfigError::at_key(file, text, path, message);
        if raw.modules.is_empty() && raw.yarn.is_none() {
            return Err(ConfigError::file(
                file,
                "modules: at least one module is needed",
            ));
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let mut modules = BTreeMap::new();
        let mut sources = vec![file.to_owned()];
        let mut warnings = Vec::new();
        for (name, module) in raw.modules {
            let at_module = |path: &[&str], message| {
                let mut full = vec!["modules", name.as_str()];
                full.extend_from_slice(path);
                at(&full, message)
            };
            let settings = compile_module(&name, module, base, &at_module, &mut warnings)?;
            sources.extend(settings.sources.iter().cloned());
            modules.insert(name, settings);
        }
        let allowed = raw
            .allowed_targets
            .map(|entries| {
                AllowList::parse(&entries).map_err(|message| at(&["allowed_targets"], message))
            })
            .transpose()?;
        Ok(Self {
            modules,
            allowed,
            sources,
            warnings,
            default_target: None,
        })
    }
}

type At<'a> = &'a dyn Fn(&[&str], String) -> ConfigError;

fn compile_module(
    name: &str,
    module: ModuleFile,
    base: &Path,
    at: At<'_>,
    warnings: &mut Vec<ConfigError>,
) -> Result<ModuleSettings, ConfigError> {
    let bridge = module
        .bridge
        .ok_or_else(|| at(&["bridge"], "missing; use hadoop or jolokia".into()))?;
    let path = module
        .path
        .unwrap_or_else(|| bridge.default_path().to_owned());
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return Err(at(
            &["path"],
            format!("{path:?} must be a path starting with '/', without a query"),
        ));
    }
    let mut sources = Vec::new();
    let rules = match (module.rules_file, module.rules) {
        (Some(_), Some(_)) => {
            return Err(at(
                &["rules_file"],
                "give rules_file or rules, not both".into(),
            ));
        }
        (Some(rules_file), None) => {
            let rules_file = base.join(rules_file);
            let (rules, found) = read_rules_file(&rules_file)?;
            warnings.extend(found);
            sources.push(rules_file);
            rules
        }
        (None, Some(inline)) => {
            let (unknown, refusal) = keys::check(&inline);
            let at_rules = |(path, message): Finding| {
                let mut full = vec!["rules"];
                full.extend(path.iter().map(String::as_str));
                at(&full, message)
            };
            if let Some(refusal) = refusal {
                return Err(at_rules(refusal));
            }
            warnings.extend(unknown.into_iter().map(at_rules));
            let raw: RawConfig =
                serde_yaml_ng::from_value(inline).map_err(|e| at(&["rules"], e.to_string()))?;
            RuleSet::compile(raw, &|path, message| {
                let mut full = vec!["rules"];
                full.extend_from_slice(path);
                at(&full, message)
            })?
        }
        (None, None) => RuleSet::default_rules(),
    }
    .with_naming(module.naming.unwrap_or_default());
    let basic_auth = match module.basic_auth {
        None => rules.credentials.clone(),
        Some(auth) => {
            let password = match (auth.password, auth.password_file) {
                (Some(_), Some(_)) => {
                    return Err(at(
                        &["basic_auth", "password"],
                        "give password or password_file, not both".into(),
                    ));
                }
                (Some(password), None) => password,
                (None, Some(file)) => {
                    let file = base.join(file);
                    let text = read_config_text(&file)
                        .map_err(|e| at(&["basic_auth", "password_file"], e.to_string()))?;
                    sources.push(file);
                    text.trim_end_matches(['\n', '\r']).to_owned()
                }
                (None, None) => String::new(),
            };
            Some((auth.username, password))
        }
    };
    let tls = module
        .tls_config
        .map_or_else(kiln_scraper::ClientTls::default, |t| {
            kiln_scraper::ClientTls {
                ca_file: t.ca_file.map(|f| base.join(f)),
                cert_file: t.cert_file.map(|f| base.join(f)),
                key_file: t.key_file.map(|f| base.join(f)),
                insecure_skip_verify: t.insecure_skip_verify,
            }
        });
    let timeout = module.timeout.map_or(Duration::from_secs(10), |d| d.0);
    if timeout.is_zero() {
        return Err(at(&["timeout"], "must be more than 0".into()));
    }
    Ok(ModuleSettings {
        name: name.to_owned(),
        bridge,
        path,
        scheme: module.scheme.unwrap_or(Scheme::Http),
        timeout,
        tls,
        basic_auth,
        query: query(&rules, module.jvm_metrics),
        rules,
        jvm_metrics: module.jvm_metrics,
        on_target_error: module.on_target_error.unwrap_or_default(),
        sources,
    })
}

/// The patterns a module asks its bridge for: the rules' include patterns, and the JVM's
/// platform beans when the module writes JVM metrics and those patterns would leave them
/// out. (The rules still see only the beans their own filter admits.)
pub fn query(rules: &RuleSet, jvm_metrics: bool) -> Vec<ObjectNamePattern> {
    let mut patterns = rules.filter.query().to_vec();
    if jvm_metrics && !patterns.is_empty() {
        patterns.extend(ObjectNamePattern::parse(crate::jvm::QUERY).ok());
    }
    patterns
}

/// Reads an unchanged jmx_exporter configuration file.
pub fn load_rules_file(file: &Path) -> Result<RuleSet, ConfigError> {
    read_rules_file(file).map(|(rules, _)| rules)
}

/// Reads an unchanged jmx_exporter configuration file, with its unknown keys located.
pub fn read_rules_file(file: &Path) -> Result<(RuleSet, Vec<ConfigError>), ConfigError> {
    let text = read_config_text(file)?;
    read_rules_text(file, &text)
}

/// The same for the text of `file`.
pub fn read_rules_text(
    file: &Path,
    text: &str,
) -> Result<(RuleSet, Vec<ConfigError>), ConfigError> {
    let locate = |path: &[&str], message: String| ConfigError::at_key(file, text, path, message);
    let locate_finding = |(path, message): Finding| {
        locate(
            &path.iter().map(String::as_str).collect::<Vec<_>>(),
            message,
        )
    };
    let tree: serde_yaml_ng::Value = parse_yaml(file, text)?;
    let (unknown, refusal) = keys::check(&tree);
    if let Some(refusal) = refusal {
        return Err(locate_finding(refusal));
    }
    let raw: RawConfig = parse_yaml(file, text)?;
    let rules = RuleSet::compile(raw, &locate)?;
    Ok((rules, unknown.into_iter().map(locate_finding).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_rules_files_that_never_end_are_refused_at_the_cap() {
        let limit = "/dev/zero: cannot read: the file is larger than the limit of 16 MiB";
        assert_eq!(
            Settings::load(Path::new("/dev/zero"), &SingleFileFlags::default())
                .unwrap_err()
                .to_string(),
            limit
        );
        assert_eq!(
            load_rules_file(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string(),
            limit
        );
    }

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        Settings::parse(Path::new("jmx.yml"), text)
    }

    #[test]
    fn modules_with_inline_rules_and_defaults() {
        let settings = parse(
            "modules:\n  hdfs:\n    bridge: hadoop\n    rules:\n      lowercaseOutputName: true\n      rules:\n        - pattern: 'Hadoop<service=(\\w+)'\n          name: hadoop_$1\n  kafka:\n    bridge: jolokia\n    timeout: 3s\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let hdfs = &settings.modules["hdfs"];
        assert_eq!(hdfs.path, "/jmx");
        assert!(hdfs.rules.lowercase_output_name);
        assert_eq!(hdfs.rules.rules.len(), 1);
        let kafka = &settings.modules["kafka"];
        assert_eq!(kafka.path, "/jolokia");
        assert_eq!(kafka.timeout, Duration::from_secs(3));
        assert!(settings.allowed.is_none());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let error = parse("modules:\n  hdfs:\n    bridge: hadoop\n    rules:\n      rules:\n        - pattern: 'a(b'\n").unwrap_err();
        assert_eq!(error.line, Some(6), "{error}");
        assert!(
            error
                .message
                .contains("modules.hdfs.rules.rules[0].pattern"),
            "{error}"
        );

        let error = parse(
            "modules:\n  hdfs:\n    bridge: hadoop\n    rules:\n      rules:\n        - name: x\n",
        )
        .unwrap_err();
        assert_eq!(error.line, Some(6), "{error}");
        assert!(error.message.contains("needs a pattern"), "{error}");

        let error = parse("modules:\n  hdfs:\n    bridge: nope\n").unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");

        let error = parse("modules:\n  hdfs:\n    bridge: hadoop\n    colour: red\n").unwrap_err();
        assert!(error.message.contains("colour"), "{error}");

        let error = parse("modules: {}\n").unwrap_err();
        assert!(error.message.contains("at least one module"), "{error}");

        let error = parse("modules:\n  a:\n    bridge: hadoop\nallowed_targets: ['10.0.0.0/33']\n")
            .unwrap_err();
        assert_eq!(error.line, Some(4), "{error}");
    }

    #[test]
    fn unknown_rule_keys_inline_are_warned_and_a_misspelt_rules_refused() {
        let settings = parse(
            "modules:\n  hdfs:\n    bridge: hadoop\n    rules:\n      lowercaseOutputNme: true\n      rules:\n        - pattern: a\n          typ: GAUGE\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let warnings: Vec<String> = settings.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "jmx.yml:5: modules.hdfs.rules.lowercaseOutputNme: unknown key, ignored (did you mean `lowercaseOutputName`?)",
                "jmx.yml:8: modules.hdfs.rules.rules[0].typ: unknown key, ignored (did you mean `type`?)",
            ]
        );
        let error = parse(
            "modules:\n  hdfs:\n    bridge: hadoop\n    rules:\n      rulse:\n        - pattern: a\n",
        )
        .unwrap_err();
        assert_eq!(error.line, Some(5), "{error}");
    }

    #[test]
    fn jvm_metrics_add_the_platform_beans_to_an_include_list() {
        let settings = parse(
            "modules:\n  a:\n    bridge: hadoop\n    jvm_metrics: true\n    rules: {includeObjectNames: ['Hadoop:*']}\n  b:\n    bridge: hadoop\n    jvm_metrics: true\n  c:\n    bridge: hadoop\n    rules: {includeObjectNames: ['Hadoop:*']}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let query = |m: &str| -> Vec<String> {
            settings.modules[m]
                .query
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect()
        };
        assert_eq!(query("a"), ["Hadoop:*", "java.lang:*"]);
        assert!(query("b").is_empty(), "everything is read already");
        assert_eq!(query("c"), ["Hadoop:*"]);
    }

    #[test]
    fn naming_is_chosen_per_module() {
        let settings = parse(
            "modules:\n  old:\n    bridge: hadoop\n    naming: 0.x\n  new:\n    bridge: hadoop\n    naming: '1.x'\n  default:\n    bridge: jolokia\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.modules["old"].rules.naming, Naming::V0);
        assert_eq!(settings.modules["new"].rules.naming, Naming::V1);
        assert_eq!(settings.modules["default"].rules.naming, Naming::V1);
        let error = parse("modules:\n  a:\n    bridge: hadoop\n    naming: 0.13\n").unwrap_err();
        assert_eq!(error.line, Some(4), "{error}");
    }
}
