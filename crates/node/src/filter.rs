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

/// A regular expression's answers for the names of the last scrape, by position: files
/// such as `/proc/net/netstat` and `/proc/vmstat` list the same few hundred names in the
/// same order every time, and comparing a name with last scrape's is cheaper than
/// matching it again (the matching was a few percent of a scrape's CPU time).
#[derive(Debug, Default)]
pub(crate) struct Remembered {
    answers: Vec<(String, bool)>,
    /// Where the next name of this scrape goes.
    next: usize,
}

impl Remembered {
    /// Starts a scrape: names are asked about in order from here.
    pub(crate) fn restart(&mut self) {
        self.next = 0;
    }

    /// Whether `name`, the next name of this scrape, matches: last scrape's answer if it
    /// had the same name in this place, else `regex`'s, remembered for the next scrape.
    pub(crate) fn is_match(&mut self, name: &str, regex: &Regex) -> bool {
        let index = self.next;
        self.next += 1;
        if let Some((last, answer)) = self.answers.get(index)
            && last == name
        {
            return *answer;
        }
        let answer = regex.is_match(name);
        match self.answers.get_mut(index) {
            Some(slot) => {
                slot.0.clear();
                slot.0.push_str(name);
                slot.1 = answer;
            }
            None => self.answers.push((name.to_owned(), answer)),
        }
        answer
    }
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
///
/// Without the lazy DFA: its caches, grown per expression and per collector thread in the
/// first scrape and kept for good, were a quarter of the exporter's heap (about 230 KiB).
/// The names matched are short and few (and where a file lists hundreds, remembered from
/// scrape to scrape: [`Remembered`]), so the other engines match them as fast: a whole
/// scrape measured the same.
pub(crate) fn regex(flag: &str, pattern: &str) -> Result<Regex, ConfigError> {
    regex::RegexBuilder::new(pattern)
        .dfa_size_limit(0)
        .build()
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
    fn remembered_answers_follow_the_names() {
        let regex = Regex::new("^a").unwrap_or_else(|e| panic!("{e}"));
        let mut remembered = Remembered::default();
        assert!(remembered.is_match("ab", &regex));
        assert!(!remembered.is_match("ba", &regex));
        // Same names in the same places: the same answers.
        remembered.restart();
        assert!(remembered.is_match("ab", &regex));
        assert!(!remembered.is_match("ba", &regex));
        // Names that moved are matched again.
        remembered.restart();
        assert!(!remembered.is_match("ba", &regex));
        assert!(remembered.is_match("ab", &regex));
        assert!(remembered.is_match("ac", &regex));
    }

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
