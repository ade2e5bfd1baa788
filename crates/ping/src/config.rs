//! The configuration file: czerwonk/ping_exporter's YAML, read unchanged, with our
//! extensions as new keys. Flags give the defaults of what the file leaves out, as upstream.
//!
//! ```yaml
//! targets:                       # hosts, or maps of host and extra labels
//!   - 10.0.0.1
//!   - {host: db1.example.com, role: db}
//! dns: {refresh: 1m, nameserver: 10.0.0.2, timeout: 5s}
//! ping: {interval: 5s, timeout: 4s, history-size: 10, payload-size: 56, fw-mark: 0}
//! options: {disableIPv4: false, disableIPv6: false}
//! # Extensions:
//! ping: {buckets: [0.0005, 0.001, 0.005]}   # RTT histogram bounds (smokeping's by default)
//! groups:                        # targets with their own interval, timeout, size, labels
//!   - {interval: 200ms, timeout: 1s, payload-size: 16, labels: {tier: voip}, targets: [10.0.0.9]}
//! probe:
//!   allowed_targets: [10.0.0.0/8, gw.example.com]   # what /probe?target= may name
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kiln_registry::allow_list::AllowList;
use kiln_registry::config::{ConfigError, load_yaml};
use kiln_registry::duration::GoDuration;
use serde::Deserialize;

use crate::cli::Cli;
use crate::engine::ProbeSettings;
use crate::stats::default_buckets;

/// The largest payload upstream accepts.
const MAX_PAYLOAD: usize = 65_500;
/// Label names the exporter sets itself.
const RESERVED_LABELS: [&str; 4] = ["target", "ip", "ip_version", "host"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    targets: Vec<TargetEntry>,
    dns: DnsSection,
    ping: PingSection,
    options: OptionsSection,
    groups: Vec<GroupSection>,
    probe: ProbeSection,
}

/// A host, or a map of `host` and labels (every other key).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TargetEntry {
    Host(String),
    WithLabels(BTreeMap<String, String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DnsSection {
    refresh: Option<GoDuration>,
    nameserver: Option<String>,
    timeout: Option<GoDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
struct PingSection {
    interval: Option<GoDuration>,
    timeout: Option<GoDuration>,
    history_size: Option<usize>,
    payload_size: Option<usize>,
    fw_mark: Option<u32>,
    buckets: Option<Vec<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OptionsSection {
    #[serde(rename = "disableIPv4")]
    disable_ipv4: bool,
    #[serde(rename = "disableIPv6")]
    disable_ipv6: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
struct GroupSection {
    interval: Option<GoDuration>,
    timeout: Option<GoDuration>,
    payload_size: Option<usize>,
    labels: BTreeMap<String, String>,
    targets: Vec<TargetEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProbeSection {
    allowed_targets: Vec<String>,
}

/// One configured host with its labels and how it is pinged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// A host name or an address.
    pub host: String,
    /// Extra labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Interval, timeout, payload size.
    pub settings: ProbeSettings,
}

/// How names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Re-resolution interval; zero resolves once.
    pub refresh: Duration,
    /// A DNS server instead of the system resolver.
    pub nameserver: Option<String>,
    /// Limit of one resolution.
    pub timeout: Duration,
}

/// The whole configuration, file and flags merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Every target, in file order, each host once.
    pub targets: Vec<TargetSpec>,
    /// Name resolution.
    pub dns: DnsSettings,
    /// Window size of the gauges.
    pub history: usize,
    /// RTT histogram bounds in seconds.
    pub buckets: Vec<f64>,
    /// SO_MARK.
    pub mark: u32,
    /// Which families are pinged, by [`crate::icmp::Family::index`].
    pub families: [bool; 2],
    /// `/probe`'s allow-list; `None` lets it reach any target.
    pub allowed: Option<AllowList>,
}

/// Default limit of one resolution where none is set.
const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(10);

impl Settings {
    /// The settings of `cli`, reading its configuration file if it names one.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        match &cli.config_path {
            Some(path) => {
                let (file, text) = load_yaml::<File>(path)?;
                Self::merge(cli, file, Some((path, &text)))
            }
            None => Self::merge(cli, File::default(), None),
        }
    }

    fn merge(cli: &Cli, file: File, source: Option<(&Path, &str)>) -> Result<Self, ConfigError> {
        let error = |keys: &[&str], message: String| match source {
            Some((path, text)) => ConfigError::at_key(path, text, keys, message),
            None => ConfigError::file(
                Path::new("command line"),
                format!("--{}: {message}", keys.join(".")),
            ),
        };
        let pick = |value: Option<GoDuration>, flag: Duration| {
            value.map(|v| v.0).filter(|v| !v.is_zero()).unwrap_or(flag)
        };
        let defaults = ProbeSettings {
            interval: pick(file.ping.interval, cli.interval),
            timeout: pick(file.ping.timeout, cli.timeout),
            size: file
                .ping
                .payload_size
                .filter(|&s| s != 0)
                .unwrap_or(cli.size),
        };
        check_probe_settings(&defaults, &["ping"], &error)?;
        let history = file
            .ping
            .history_size
            .filter(|&h| h != 0)
            .unwrap_or(cli.history_size);
        if history < 1 {
            return Err(error(
                &["ping", "history-size"],
                "must be greater than 0".into(),
            ));
        }
        let buckets = file.ping.buckets.clone().unwrap_or_else(default_buckets);
        if buckets.is_empty()
            || buckets.iter().any(|b| !b.is_finite() || *b <= 0.0)
            || buckets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(error(
                &["ping", "buckets"],
                "must be positive numbers of seconds in increasing order".into(),
            ));
        }

        let mut targets = Targets::default();
        let top_level = if file.targets.is_empty() && file.groups.is_empty() {
            cli.targets.iter().cloned().map(TargetEntry::Host).collect()
        } else {
            file.targets
        };
        let no_labels = BTreeMap::new();
        collect(
            &mut targets,
            top_level,
            &no_labels,
            defaults,
            source,
            &["targets"],
        )?;
        for (index, group) in file.groups.into_iter().enumerate() {
            let settings = ProbeSettings {
                interval: pick(group.interval, defaults.interval),
                timeout: pick(group.timeout, defaults.timeout),
                size: group.payload_size.unwrap_or(defaults.size),
            };
            let position = format!("groups[{index}]");
            check_probe_settings(&settings, &["groups"], &|keys: &[&str], message| {
                error(
                    &keys[..1],
                    format!("{position}.{}: {message}", keys[1..].join(".")),
                )
            })?;
            for name in group.labels.keys() {
                check_label_name(name)
                    .map_err(|m| error(&["groups"], format!("{position}.labels: {m}")))?;
            }
            collect(
                &mut targets,
                group.targets,
                &group.labels,
                settings,
                source,
                &["groups"],
            )?;
        }
        targets.report_duplicates();
        let targets = targets.list;

        let allowed = AllowList::parse(&file.probe.allowed_targets)
            .map_err(|message| error(&["probe", "allowed_targets"], message))?;
        let allowed = (!allowed.is_empty()).then_some(allowed);

        Ok(Self {
            targets,
            dns: DnsSettings {
                refresh: file.dns.refresh.map_or(cli.dns_refresh, |r| r.0),
                nameserver: file
                    .dns
                    .nameserver
                    .filter(|n| !n.is_empty())
                    .or_else(|| cli.dns_nameserver.clone()),
                timeout: [file.dns.timeout.map(|t| t.0), Some(cli.dns_timeout)]
                    .into_iter()
                    .flatten()
                    .find(|t| !t.is_zero())
                    .unwrap_or(DEFAULT_DNS_TIMEOUT),
            },
            history,
            buckets,
            mark: file.ping.fw_mark.filter(|&m| m != 0).unwrap_or(cli.fw_mark),
            families: [
                !(file.options.disable_ipv4 || cli.disable_ipv4),
                !(file.options.disable_ipv6 || cli.disable_ipv6),
            ],
            allowed,
        })
    }

    /// Whether `other` differs from this in what only a restart applies (everything but
    /// the targets and their interval, timeout, size and labels).
    pub fn restart_needed(&self, other: &Self) -> bool {
        self.buckets != other.buckets
            || self.mark != other.mark
            || self.families != other.families
            || self.dns != other.dns
    }
}

fn check_probe_settings(
    settings: &ProbeSettings,
    section: &[&str],
    error: &dyn Fn(&[&str], String) -> ConfigError,
) -> Result<(), ConfigError> {
    let key = |name: &'static str| [section, &[name]].concat();
    if settings.interval < Duration::from_millis(1) {
        return Err(error(&key("interval"), "must be at least 1ms".into()));
    }
    if settings.timeout.is_zero() {
        return Err(error(&key("timeout"), "must be greater than 0".into()));
    }
    if settings.size > MAX_PAYLOAD {
        return Err(error(
            &key("payload-size"),
            format!("must be between 0 and {MAX_PAYLOAD}"),
        ));
    }
    Ok(())
}

/// Adds `entries` to `targets`; a host listed before keeps its first entry.
/// The targets read so far, each host once.
#[derive(Default)]
struct Targets {
    list: Vec<TargetSpec>,
    hosts: std::collections::HashSet<String>,
    /// Hosts listed again after their first entry, and how often.
    duplicates: usize,
    first_duplicates: Vec<String>,
}

impl Targets {
    /// One warning for all the repeats: a file of a million duplicates must not write a
    /// million log lines (or take quadratic time to find them).
    fn report_duplicates(&self) {
        if self.duplicates > 0 {
            tracing::warn!(
                repeats = self.duplicates,
                first = ?self.first_duplicates,
                "Targets listed more than once; the first entry of each is used."
            );
        }
    }
}

fn collect(
    targets: &mut Targets,
    entries: Vec<TargetEntry>,
    group_labels: &BTreeMap<String, String>,
    settings: ProbeSettings,
    source: Option<(&Path, &str)>,
    section: &[&str],
) -> Result<(), ConfigError> {
    for entry in entries {
        let (host, mut labels) = match entry {
            TargetEntry::Host(host) => (host, BTreeMap::new()),
            TargetEntry::WithLabels(mut map) => {
                let Some(host) = map.remove("host") else {
                    return Err(entry_error(
                        source,
                        section,
                        &map,
                        "a target map needs a `host` key".into(),
                    ));
                };
                (host, map)
            }
        };
        let host = host.trim().to_owned();
        if host.is_empty() {
            return Err(entry_error(source, section, &labels, "empty host".into()));
        }
        for name in labels.keys() {
            check_label_name(name)
                .map_err(|m| entry_error(source, section, &labels, format!("{host}: {m}")))?;
        }
        for (name, value) in group_labels {
            labels.entry(name.clone()).or_insert_with(|| value.clone());
        }
        if !targets.hosts.insert(host.clone()) {
            targets.duplicates += 1;
            if targets.first_duplicates.len() < 5 {
                targets.first_duplicates.push(host);
            }
            continue;
        }
        targets.list.push(TargetSpec {
            host,
            labels: labels.into_iter().collect(),
            settings,
        });
    }
    Ok(())
}

/// An error about one entry of a target list, at the line of its first label or host.
fn entry_error(
    source: Option<(&Path, &str)>,
    section: &[&str],
    labels: &BTreeMap<String, String>,
    message: String,
) -> ConfigError {
    let Some((path, text)) = source else {
        return ConfigError::file(Path::new("command line"), message);
    };
    let mut error = ConfigError::at_key(path, text, section, message);
    let needle = labels.keys().next();
    if let Some(line) = needle.and_then(|n| text.lines().position(|l| l.contains(n.as_str()))) {
        error.line = Some(line + 1);
    }
    error
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || name.starts_with("__") {
        return Err(format!("{name:?} is not a valid label name"));
    }
    if RESERVED_LABELS.contains(&name) {
        return Err(format!("label {name:?} is set by the exporter itself"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_args(std::iter::once("kiln-ping-exporter").chain(args.iter().copied()))
            .unwrap()
    }

    fn load(yaml: &str, args: &[&str]) -> Result<Settings, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(yaml.as_bytes()).unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let mut all = vec!["--config.path", path.as_str()];
        all.extend_from_slice(args);
        Settings::load(&cli(&all))
    }

    #[test]
    fn upstream_example_reads_unchanged() {
        let settings = load(
            "targets:\n  - 8.8.8.8\n  - host: \"2001:4860:4860::8844\"\n    foo: bar\n\
             dns:\n  refresh: 2m15s\n  nameserver: 1.1.1.1\n  timeout: 5s\n\
             ping:\n  interval: 2s\n  timeout: 3s\n  history-size: 42\n  payload-size: 120\n  fw-mark: 222\n\
             options:\n  disableIPv6: false\n  disableIPv4: false\n",
            &[],
        )
        .unwrap();
        assert_eq!(settings.targets.len(), 2);
        assert_eq!(settings.targets[1].host, "2001:4860:4860::8844");
        assert_eq!(
            settings.targets[1].labels,
            [("foo".to_owned(), "bar".to_owned())]
        );
        let expected = ProbeSettings {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(3),
            size: 120,
        };
        assert_eq!(settings.targets[0].settings, expected);
        assert_eq!(settings.history, 42);
        assert_eq!(settings.mark, 222);
        assert_eq!(settings.dns.refresh, Duration::from_secs(135));
        assert_eq!(settings.dns.nameserver.as_deref(), Some("1.1.1.1"));
        assert_eq!(settings.dns.timeout, Duration::from_secs(5));
        assert_eq!(settings.families, [true, true]);
    }

    #[test]
    fn flags_fill_what_the_file_leaves_out() {
        let settings = load(
            "targets: [a]\noptions: {disableIPv6: true}\n",
            &["--ping.interval=1s", "--ping.size=16"],
        )
        .unwrap();
        assert_eq!(
            settings.targets[0].settings.interval,
            Duration::from_secs(1)
        );
        assert_eq!(settings.targets[0].settings.timeout, Duration::from_secs(4));
        assert_eq!(settings.targets[0].settings.size, 16);
        assert_eq!(settings.families, [true, false]);
        assert_eq!(settings.buckets, default_buckets());
        // Positional targets are used only when the file has none.
        let settings = Settings::load(&cli(&["x", "y"])).unwrap();
        assert_eq!(
            settings
                .targets
                .iter()
                .map(|t| t.host.as_str())
                .collect::<Vec<_>>(),
            ["x", "y"]
        );
    }

    #[test]
    fn groups_carry_their_own_settings_and_labels() {
        let settings = load(
            "targets: [a]\ngroups:\n  - interval: 200ms\n    timeout: 1s\n    labels: {tier: voip}\n    targets:\n      - b\n      - {host: c, tier: core}\n",
            &[],
        )
        .unwrap();
        let b = &settings.targets[1];
        assert_eq!(b.settings.interval, Duration::from_millis(200));
        assert_eq!(b.settings.size, 56);
        assert_eq!(b.labels, [("tier".to_owned(), "voip".to_owned())]);
        assert_eq!(
            settings.targets[2].labels,
            [("tier".to_owned(), "core".to_owned())]
        );
    }

    #[test]
    fn allow_list_takes_networks_and_names() {
        let settings = load(
            "targets: [a]\nprobe:\n  allowed_targets: [10.0.0.0/8, '::1', gw.example]\n",
            &[],
        )
        .unwrap();
        let allowed = settings.allowed.expect("a list");
        assert!(allowed.allows_address("10.1.2.3".parse().unwrap()));
        assert!(allowed.allows_address("::1".parse().unwrap()));
        assert!(!allowed.allows_address("192.168.0.1".parse().unwrap()));
        assert!(allowed.allows_name("GW.example", None));
        assert!(!allowed.allows_name("other", None));
        let open = load("targets: [a]\n", &[]).unwrap();
        assert!(open.allowed.is_none(), "no list: any target");
    }

    #[test]
    fn a_malformed_allow_list_entry_is_refused_where_it_is() {
        let error = load(
            "targets: [a]\nprobe:\n  allowed_targets: [10.0.0.0/40]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(":3") && error.contains("prefix length"),
            "{error}"
        );
    }

    #[test]
    fn bad_files_name_line_and_key() {
        let error = load("targets: [a]\nping:\n  interval: 5\n", &[]).unwrap_err();
        assert_eq!(error.line, Some(3));
        assert!(error.message.contains("no unit"), "{error}");

        let error = load("targets: [a]\nping:\n  payload-size: 70000\n", &[]).unwrap_err();
        assert_eq!(error.line, Some(3));
        assert!(error.message.starts_with("ping.payload-size"), "{error}");

        let error = load("targets:\n  - a\n  - {host: b, ip: x}\n", &[]).unwrap_err();
        assert_eq!(error.line, Some(3));
        assert!(error.message.contains("set by the exporter"), "{error}");

        let error = load("targets: [a]\npign: {}\n", &[]).unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.message.contains("unknown field `pign`"), "{error}");

        let error = load("targets: [a]\nping:\n  buckets: [0.1, 0.01]\n", &[]).unwrap_err();
        assert!(error.message.starts_with("ping.buckets"), "{error}");
    }
}
