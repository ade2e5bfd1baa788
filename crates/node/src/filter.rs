//! Include/exclude regular expressions as node_exporter's `--collector.*.device-include`
//! and `-exclude` flags use them: at most one of the two, anchored by the user.

use regex::Regex;

use kiln_registry::config::ConfigError;

/// Decides which names (devices, mount points, chips) a collector reports.
#[derive(Debug, Clone, Default)]
pub(crate) enum NameFilter {
    /// Everything.
    #[default]
    All,
    /// Only names that match.
    Include(Regex),
    /// All names but those that match.
    Exclude(Regex),
}

impl NameFilter {
    /// Builds a filter from an include and an exclude flag; `names` are the flags' names,
    /// for the error messages. Giving both is an error, as upstream.
    pub(crate) fn new(
        include: Option<&str>,
        exclude: Option<&str>,
        names: (&str, &str),
    ) -> Result<Self, ConfigError> {
        match (include, exclude) {
            (Some(_), Some(_)) => Err(flag_error(
                names.0,
                format!("cannot be used together with --{}", names.1),
            )),
            (Some(pattern), None) => Ok(Self::Include(regex(names.0, pattern)?)),
            (None, Some(pattern)) => Ok(Self::Exclude(regex(names.1, pattern)?)),
            (None, None) => Ok(Self::All),
        }
    }

    /// As [`NameFilter::new`], with `default_exclude` standing in for an exclude flag that
    /// was not given, unless the include flag was (upstream's rule for flags with a default).
    pub(crate) fn with_default_exclude(
        include: Option<&str>,
        exclude: Option<&str>,
        default_exclude: &str,
        names: (&str, &str),
    ) -> Result<Self, ConfigError> {
        let exclude = match include {
            Some(_) => exclude,
            None => Some(exclude.unwrap_or(default_exclude)),
        };
        Self::new(include, exclude, names)
    }

    /// True if `name` should be reported.
    pub(crate) fn accepts(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Include(re) => re.is_match(name),
            Self::Exclude(re) => !re.is_match(name),
        }
    }
}

/// Compiles a flag's regular expression; the error names the flag.
pub(crate) fn regex(flag: &str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(pattern)
        .map_err(|error| flag_error(flag, format!("invalid regular expression: {error}")))
}

/// An error in a command-line flag, reported like a config file error.
pub(crate) fn flag_error(flag: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::file(std::path::Path::new(&format!("--{flag}")), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_exclude() {
        let all = NameFilter::new(None, None, ("a", "b")).unwrap_or_default();
        assert!(all.accepts("eth0"));
        let exclude = NameFilter::new(None, Some("^lo$"), ("i", "e")).unwrap_or_default();
        assert!(!exclude.accepts("lo") && exclude.accepts("lo0"));
        let include = NameFilter::new(Some("^eth"), None, ("i", "e")).unwrap_or_default();
        assert!(include.accepts("eth1") && !include.accepts("lo"));
        let both = NameFilter::new(Some("a"), Some("b"), ("x.include", "x.exclude"));
        assert!(both.is_err_and(|e| e.to_string().contains("--x.include")));
        let bad = NameFilter::new(Some("("), None, ("x.include", "x.exclude"));
        assert!(bad.is_err_and(|e| e.to_string().contains("invalid regular expression")));
    }
}
