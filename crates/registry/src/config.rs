//! Loading YAML configuration files with errors that name the file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration file that cannot be used. Exporters refuse to start on one (exit code 64).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// 1-based column of the problem, when known.
    pub column: Option<usize>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    /// A problem with the file as a whole (unreadable, say).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A problem with the value under `key_path` (outermost key first), located in `text`.
    /// The message is prefixed with the dotted key path.
    pub fn at_key(file: &Path, text: &str, key_path: &[&str], message: impl fmt::Display) -> Self {
        Self {
            file: file.to_owned(),
            line: locate_key(text, key_path),
            column: None,
            message: format!("{}: {message}", display_path(key_path)),
        }
    }

    fn from_yaml(file: &Path, error: &serde_yaml_ng::Error) -> Self {
        let mut message = error.to_string();
        // The location is reported in our own `file:line:column` prefix instead.
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        let location = error.location();
        Self {
            file: file.to_owned(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    }
}

/// Largest configuration file any exporter reads (YAML configs, mapping and rule files,
/// target lists). The largest real ones are a few hundred kilobytes.
pub const CONFIG_FILE_LIMIT: u64 = 16 << 20;

/// Reads at most `max_bytes` of `path`, failing (without reading further) when it holds
/// more. The size is found by reading, not from metadata, so a device such as `/dev/zero`
/// or a pipe that never ends cannot make the process allocate without bound.
pub fn read_capped(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the file is larger than the limit of {}",
                human_bytes(max_bytes)
            ),
        ));
    }
    Ok(bytes)
}

/// Reads a configuration file as UTF-8 text, at most [`CONFIG_FILE_LIMIT`] bytes.
pub fn read_config_text(file: &Path) -> Result<String, ConfigError> {
    let bytes = read_capped(file, CONFIG_FILE_LIMIT)
        .map_err(|e| ConfigError::file(file, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        ConfigError::file(
            file,
            format!(
                "cannot read: not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// `16 MiB`, `512 KiB`, `100 bytes`.
fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Reads and parses a YAML file into `T`. Unknown keys are errors when `T` says
/// `#[serde(deny_unknown_fields)]`; an empty file is the same as `{}`.
pub fn load_yaml<T: DeserializeOwned>(file: &Path) -> Result<(T, String), ConfigError> {
    let text = read_config_text(file)?;
    let value = parse_yaml(file, &text)?;
    Ok((value, text))
}

/// Parses YAML text that came from `file` (used only in messages).
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let source = if text.trim().is_empty() { "{}" } else { text };
    serde_yaml_ng::from_str(source).map_err(|e| ConfigError::from_yaml(file, &e))
}

/// Finds the 1-based line of a nested block-style key such as `["basic_auth_users", "alice"]`.
/// A segment `[n]` is the n-th (from 0) item of a block list, so `["rules", "[2]", "name"]`
/// finds the `name` of the third rule, whether or not it shares the item's `- ` line. When
/// the whole path is not written, the line of the deepest part that is.
pub fn locate_key(text: &str, key_path: &[&str]) -> Option<usize> {
    let mut depth = 0;
    let mut min_indent = 0;
    let mut found = None;
    // Items seen at the current list's indent, and that indent.
    let mut items: Option<(usize, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let mut trimmed = line.trim_start();
        let mut indent = line.len() - trimmed.len();
        // YAML lets a list sit at its key's own indent (`mappings:` then `- match:`).
        let list_at_key_indent = indent + 1 == min_indent
            && trimmed.starts_with('-')
            && key_path
                .get(depth)
                .is_some_and(|want| list_index(want).is_some());
        if trimmed.is_empty()
            || trimmed.starts_with('#')
            || (indent < min_indent && !list_at_key_indent)
        {
            continue;
        }
        loop {
            let Some(want) = key_path.get(depth) else {
                return found;
            };
            if let Some(wanted) = list_index(want) {
                let Some(rest) = trimmed.strip_prefix('-') else {
                    break;
                };
                let (seen, list_indent) = items.get_or_insert((0, indent));
                if indent != *list_indent {
                    break;
                }
                *seen += 1;
                if *seen - 1 != wanted {
                    break;
                }
                found = Some(index + 1);
                depth += 1;
                items = None;
                min_indent = indent + 1;
                // The item's first key may follow on the same line.
                let after = rest.trim_start();
                indent += trimmed.len() - after.len();
                trimmed = after;
                if trimmed.is_empty() {
                    break;
                }
                continue;
            }
            let key = trimmed
                .split_once(':')
                .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''));
            if key == Some(want) {
                found = Some(index + 1);
                depth += 1;
                min_indent = indent + 1;
            }
            break;
        }
    }
    found
}

/// Levenshtein distance between two keys, to suggest the key a typo meant.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `[n]` → `n`.
fn list_index(segment: &str) -> Option<usize> {
    segment.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// `rules`, `[2]`, `name` → `rules[2].name`.
fn display_path(key_path: &[&str]) -> String {
    let mut out = String::new();
    for segment in key_path {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("rules", "rules"), 0);
        assert_eq!(edit_distance("rule", "rules"), 1);
        assert_eq!(edit_distance("mapings", "mappings"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse_yaml::<Outer>(Path::new("x.yml"), "inner:\n  port: 1\n  colour: red\n")
            .unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("unknown field `colour`"), "{err}");
        assert!(err.to_string().starts_with("x.yml:3:"), "{err}");
    }

    #[test]
    fn wrong_type_is_located() {
        let err = parse_yaml::<Outer>(Path::new("x.yml"), "inner:\n  port: many\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("inner.port"), "{err}");
    }

    #[test]
    fn empty_file_is_an_empty_mapping() {
        assert!(
            parse_yaml::<Outer>(Path::new("x.yml"), "\n")
                .unwrap()
                .inner
                .is_none()
        );
    }

    #[test]
    fn an_endless_file_is_refused_at_the_limit() {
        let started = std::time::Instant::now();
        let err = read_capped(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the file is larger than the limit of 1 MiB"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let err = load_yaml::<Outer>(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: cannot read: the file is larger than the limit of 16 MiB"
        );
    }

    #[test]
    fn a_file_at_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yml");
        std::fs::write(&file, vec![b'#'; 1000]).unwrap();
        assert_eq!(read_capped(&file, 1000).unwrap().len(), 1000);
        assert!(read_capped(&file, 999).is_err());
        std::fs::write(&file, b"a: \xff\n").unwrap();
        let err = read_config_text(&file).unwrap_err();
        assert!(err.message.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn nested_keys_are_found() {
        let text = "a:\n  b: 1\nusers:\n  # comment\n  bob: x\n  alice: y\n";
        assert_eq!(locate_key(text, &["users", "alice"]), Some(6));
        assert_eq!(locate_key(text, &["users"]), Some(3));
        assert_eq!(locate_key(text, &["nope"]), None);
    }

    #[test]
    fn list_items_are_found() {
        let text = "rules:\n  - pattern: a\n    name: x\n  -\n    pattern: b\n    name: y\n  - name: z\nafter: 1\n";
        assert_eq!(locate_key(text, &["rules", "[0]", "pattern"]), Some(2));
        assert_eq!(locate_key(text, &["rules", "[0]", "name"]), Some(3));
        assert_eq!(locate_key(text, &["rules", "[1]", "name"]), Some(6));
        assert_eq!(locate_key(text, &["rules", "[2]", "name"]), Some(7));
        assert_eq!(locate_key(text, &["rules", "[1]"]), Some(4));
        let err = ConfigError::at_key(Path::new("x.yml"), text, &["rules", "[1]", "name"], "bad");
        assert_eq!(err.to_string(), "x.yml:6: rules[1].name: bad");
    }
}
