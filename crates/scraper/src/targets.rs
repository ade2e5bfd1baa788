//! Where to scrape: targets from the command line, a plain list file, or a Prometheus
//! `file_sd` file (JSON or YAML), with the labels each group carries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One place to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, or a full `http(s)://` URL.
    pub address: String,
    /// Labels from the `file_sd` group.
    pub labels: BTreeMap<String, String>,
}

impl Target {
    /// A target without labels.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            labels: BTreeMap::new(),
        }
    }

    /// The URL to scrape: the address as is when it is a URL, otherwise
    /// `scheme://address/path` (the `__scheme__` and `__metrics_path__` labels win).
    pub fn url(&self, scheme: &str, path: &str) -> String {
        if self.address.contains("://") {
            return self.address.clone();
        }
        let scheme = self.labels.get("__scheme__").map_or(scheme, String::as_str);
        let path = self
            .labels
            .get("__metrics_path__")
            .map_or(path, String::as_str);
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{}{slash}{path}", self.address)
    }
}

/// A target file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TargetsError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Largest target file read: a file of a million targets is well under it.
pub const TARGETS_FILE_LIMIT: u64 = 16 << 20;

/// Reads a target file as text, refusing one larger than [`TARGETS_FILE_LIMIT`] without
/// reading past it (a path such as `/dev/zero` never ends).
pub fn read_capped(file: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(file)?
        .take(TARGETS_FILE_LIMIT + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > TARGETS_FILE_LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the file is larger than the limit of {} MiB",
                TARGETS_FILE_LIMIT >> 20
            ),
        ));
    }
    Ok(text)
}

/// Reads a `file_sd` file; `.json` is JSON, anything else YAML.
pub fn load_file_sd(file: &Path) -> Result<Vec<Target>, TargetsError> {
    let text = read_capped(file).map_err(|e| TargetsError {
        file: file.to_owned(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    parse_file_sd(file, &text)
}

/// Parses `file_sd` text; `file`'s extension picks JSON or YAML.
pub fn parse_file_sd(file: &Path, text: &str) -> Result<Vec<Target>, TargetsError> {
    let fail = |line, message: String| TargetsError {
        file: file.to_owned(),
        line,
        message,
    };
    let groups: Vec<Group> = if file.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| fail(Some(e.line()), e.to_string()))?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_yaml_ng::from_str(text)
            .map_err(|e| fail(e.location().map(|l| l.line()), e.to_string()))?
    };
    let mut targets = Vec::new();
    for group in groups {
        for address in group.targets {
            if address.trim().is_empty() {
                return Err(fail(None, "empty target address".into()));
            }
            targets.push(Target {
                address,
                labels: group.labels.clone(),
            });
        }
    }
    Ok(targets)
}

/// Reads a plain list: one target per line; blank lines and `#` comments are skipped.
pub fn parse_list(text: &str) -> Vec<Target> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(Target::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_file_that_never_ends_is_refused_at_the_cap() {
        let err = load_file_sd(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.message,
            "cannot read: the file is larger than the limit of 16 MiB"
        );
    }

    #[test]
    fn file_sd_json_and_yaml_agree() {
        let json = r#"[{"targets": ["a:9100", "b:9100"], "labels": {"job": "node"}}, {"targets": ["c:9445"]}]"#;
        let yaml =
            "- targets: ['a:9100', 'b:9100']\n  labels: {job: node}\n- targets: ['c:9445']\n";
        let from_json = parse_file_sd(Path::new("t.json"), json).unwrap();
        let from_yaml = parse_file_sd(Path::new("t.yml"), yaml).unwrap();
        assert_eq!(from_json, from_yaml);
        assert_eq!(from_json.len(), 3);
        assert_eq!(from_json[0].labels["job"], "node");
        assert!(from_json[2].labels.is_empty());
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse_file_sd(Path::new("t.yml"), "- targets: [a]\n  lables: {}\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.to_string().starts_with("t.yml:2: "), "{err}");
        assert!(err.message.contains("lables"), "{err}");
        let err = parse_file_sd(Path::new("t.json"), "[{\"targets\": 5}]").unwrap_err();
        assert_eq!(err.line, Some(1));
    }

    #[test]
    fn urls_from_addresses_and_labels() {
        assert_eq!(
            Target::new("h:9100").url("http", "/metrics"),
            "http://h:9100/metrics"
        );
        assert_eq!(
            Target::new("https://h/x").url("http", "/metrics"),
            "https://h/x"
        );
        let mut t = Target::new("h:1");
        t.labels.insert("__scheme__".into(), "https".into());
        t.labels.insert("__metrics_path__".into(), "probe".into());
        assert_eq!(t.url("http", "/metrics"), "https://h:1/probe");
    }

    #[test]
    fn plain_lists_skip_comments() {
        let targets = parse_list("# fleet\na:9100\n\n  b:9100  # gpu box\n");
        assert_eq!(targets, [Target::new("a:9100"), Target::new("b:9100")]);
    }
}
