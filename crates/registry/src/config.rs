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
            message: format!("{}: {message}", key_path.join(".")),
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

/// Reads and parses a YAML file into `T`. Unknown keys are errors when `T` says
/// `#[serde(deny_unknown_fields)]`; an empty file is the same as `{}`.
pub fn load_yaml<T: DeserializeOwned>(file: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::file(file, format!("cannot read: {e}")))?;
    let value = parse_yaml(file, &text)?;
    Ok((value, text))
}

/// Parses YAML text that came from `file` (used only in messages).
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let source = if text.trim().is_empty() { "{}" } else { text };
    serde_yaml_ng::from_str(source).map_err(|e| ConfigError::from_yaml(file, &e))
}

/// Finds the 1-based line of a nested block-style key such as `["basic_auth_users", "alice"]`.
fn locate_key(text: &str, key_path: &[&str]) -> Option<usize> {
    let mut depth = 0;
    let mut min_indent = 0;
    let mut found = None;
    for (index, line) in text.lines().enumerate() {
        let Some(want) = key_path.get(depth) else {
            break;
        };
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || indent < min_indent {
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
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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
    fn nested_keys_are_found() {
        let text = "a:\n  b: 1\nusers:\n  # comment\n  bob: x\n  alice: y\n";
        assert_eq!(locate_key(text, &["users", "alice"]), Some(6));
        assert_eq!(locate_key(text, &["users"]), Some(3));
        assert_eq!(locate_key(text, &["nope"]), None);
    }
}
