//! Mapping Graphite paths to Prometheus names and labels with graphite_exporter's mapping
//! files, evaluated as upstream evaluates them: glob rules first (a state machine, `fsm.rs`), then
//! regex rules in file order, then nothing.

mod config;
mod fsm;
mod template;

use std::path::Path;
use std::sync::LazyLock;

use kiln_registry::config::ConfigError;
use regex::Regex;

use config::{MappingFile, RuleConfig, scalar_text};
use fsm::Fsm;
use template::{GlobTemplate, expand_regex};

/// What a matching rule does with the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Store the sample under the mapped name and labels.
    Map,
    /// Drop the line (counted in `graphite_dropped_samples_total`).
    Drop,
}

/// One rule of the file, ready to apply.
#[derive(Debug)]
pub struct Rule {
    /// The `match:` text as written.
    pub pattern: String,
    /// `name:` as written.
    pub name: String,
    /// Whether the rule is a regex rule (otherwise glob).
    pub is_regex: bool,
    /// `action:`.
    pub action: Action,
    /// `scale:`, multiplied into every value.
    pub scale: Option<f64>,
    /// `honor_labels:`: tags sent with the line win over the rule's labels.
    pub honor_labels: bool,
    glob_name: Option<GlobTemplate>,
    glob_labels: Vec<(String, GlobTemplate)>,
    regex: Option<Regex>,
    labels: Vec<(String, String)>,
}

/// What a path mapped to.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// Index of the rule in the file.
    pub rule: usize,
    /// The expanded name (not yet sanitised).
    pub name: String,
    /// The expanded labels, sorted by name.
    pub labels: Vec<(String, String)>,
}

/// A loaded mapping file.
#[derive(Debug)]
pub struct Mapper {
    rules: Vec<Rule>,
    fsm: Option<Fsm>,
    regex_rules: Vec<usize>,
}

static NAME_PATTERN: &str = r"^([a-zA-Z_]|\$\{?\d+\}?)([a-zA-Z0-9_]|\$\{?\d+\}?)*$";
static GLOB_PATTERN: &str = r"^(\*|[a-zA-Z_][a-zA-Z0-9_-]*)(\.\*|\.[a-zA-Z0-9_][a-zA-Z0-9_-]*)*$";
static LABEL_PATTERN: &str = r"^[a-zA-Z_][a-zA-Z0-9_]+$";

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| compile(NAME_PATTERN));
static GLOB_RE: LazyLock<Regex> = LazyLock::new(|| compile(GLOB_PATTERN));
static LABEL_RE: LazyLock<Regex> = LazyLock::new(|| compile(LABEL_PATTERN));

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("constant pattern {pattern}: {e}"))
}

impl Mapper {
    /// An empty mapper: nothing matches, every line keeps its own name.
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            fsm: None,
            regex_rules: Vec::new(),
        }
    }

    /// Reads and checks a mapping file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = kiln_registry::config::read_config_text(file)?;
        Self::parse(file, &text)
    }

    /// Checks and prepares the mapping file `text` (read from `file`, named in errors).
    /// Messages carry upstream's wording after Kiln's `file:line: mappings[i].key:` prefix.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let parsed = MappingFile::parse(file, text)?;
        let default_regex = match parsed.defaults.match_type.as_deref() {
            None | Some("" | "glob") => false,
            Some("regex") => true,
            Some(other) => {
                return Err(ConfigError::at_key(
                    file,
                    text,
                    &["defaults", "match_type"],
                    format!("invalid match type {other:?}"),
                ));
            }
        };
        let mut fsm = Fsm::new(parsed.defaults.glob_disable_ordering);
        let mut rules = Vec::with_capacity(parsed.mappings.len());
        let mut regex_rules = Vec::new();
        let mut glob_patterns = Vec::new();
        for (index, config) in parsed.mappings.iter().enumerate() {
            let fail = |key: &str, message: String| {
                let mut error =
                    ConfigError::file(file, format!("mappings[{index}].{key}: {message}"));
                error.line = kiln_registry::config::locate_key(
                    text,
                    &["mappings", &format!("[{index}]"), key],
                );
                error
            };
            let rule = Rule::build(index, config, default_regex, &fail)?;
            if rule.regex.is_some() {
                regex_rules.push(index);
            } else if !rule.is_regex {
                glob_patterns.push(config.pattern.as_str());
            }
            rules.push(rule);
        }
        let mut has_glob = false;
        for (index, (config, rule)) in parsed.mappings.iter().zip(&mut rules).enumerate() {
            if rule.is_regex {
                continue;
            }
            has_glob = true;
            // Rules for counters or observers never match Graphite lines (always gauges),
            // yet they take a place in the order, as upstream.
            let captures = if glob_applies(config.match_metric_type.as_deref()) {
                fsm.add(&config.pattern, index)
            } else {
                config.pattern.matches('*').count()
            };
            rule.glob_name = Some(GlobTemplate::new(&config.name, captures));
            rule.glob_labels = rule
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), GlobTemplate::new(v, captures)))
                .collect();
        }
        fsm.finish(&glob_patterns);
        Ok(Self {
            rules,
            fsm: has_glob.then_some(fsm),
            regex_rules,
        })
    }

    /// The glob rules' state machine as a Graphviz graph; `None` without glob rules.
    pub fn dump_fsm(&self) -> Option<String> {
        self.fsm
            .as_ref()
            .map(|fsm| fsm.dot(|rule| self.rules[rule].name.clone()))
    }

    /// The rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Maps a path (without tags); `None` when no rule matches.
    pub fn map(&self, path: &str) -> Option<Mapped> {
        if let Some(fsm) = &self.fsm {
            let mut captures = Vec::new();
            if let Some(index) = fsm.lookup(path, &mut captures) {
                let rule = &self.rules[index];
                let name = rule
                    .glob_name
                    .as_ref()
                    .map(|t| t.expand(&captures))
                    .unwrap_or_default();
                let mut labels: Vec<(String, String)> = rule
                    .glob_labels
                    .iter()
                    .map(|(k, t)| (k.clone(), t.expand(&captures)))
                    .collect();
                labels.sort_unstable();
                return Some(Mapped {
                    rule: index,
                    name,
                    labels,
                });
            }
        }
        for &index in &self.regex_rules {
            let rule = &self.rules[index];
            let Some(regex) = &rule.regex else { continue };
            let Some(captures) = regex.captures(path) else {
                continue;
            };
            let mut labels: Vec<(String, String)> = rule
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), expand_regex(v, regex, &captures)))
                .collect();
            labels.sort_unstable();
            return Some(Mapped {
                rule: index,
                name: expand_regex(&rule.name, regex, &captures),
                labels,
            });
        }
        None
    }
}

/// Graphite lines are looked up as gauges: rules for other metric types never match them.
fn glob_applies(match_metric_type: Option<&str>) -> bool {
    matches!(match_metric_type, None | Some("" | "gauge"))
}

impl Rule {
    fn build(
        index: usize,
        config: &RuleConfig,
        default_regex: bool,
        fail: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<Self, ConfigError> {
        let mut labels = Vec::with_capacity(config.labels.len());
        for (key, value) in &config.labels {
            if !LABEL_RE.is_match(key) {
                return Err(fail("labels", format!("invalid label key: {key}")));
            }
            let Some(value) = scalar_text(value) else {
                return Err(fail("labels", format!("label {key:?} must be a string")));
            };
            labels.push((key.clone(), value));
        }
        if config.name.is_empty() {
            return Err(fail(
                "name",
                format!("line {index}: metric mapping didn't set a metric name"),
            ));
        }
        if !NAME_RE.is_match(&config.name) {
            return Err(fail(
                "name",
                format!(
                    "metric name '{}' doesn't match regex '{NAME_PATTERN}'",
                    config.name
                ),
            ));
        }
        let is_regex = match config.match_type.as_deref() {
            None | Some("") => default_regex,
            Some("glob") => false,
            Some("regex") => true,
            Some(other) => {
                return Err(fail("match_type", format!("invalid match type {other:?}")));
            }
        };
        let action = match config.action.as_deref() {
            None | Some("" | "map") => Action::Map,
            Some("drop") => Action::Drop,
            Some(other) => {
                return Err(fail("action", format!("invalid action type {other:?}")));
            }
        };
        match config.match_metric_type.as_deref() {
            None | Some("" | "gauge" | "counter" | "observer" | "timer") => {}
            Some(other) => {
                return Err(fail(
                    "match_metric_type",
                    format!("invalid metric type '{other}'"),
                ));
            }
        }
        let regex = if is_regex {
            let compiled = Regex::new(&config.pattern).map_err(|e| {
                fail(
                    "match",
                    format!("invalid regex {} in mapping: {e}", config.pattern),
                )
            })?;
            Some(compiled)
        } else {
            if !GLOB_RE.is_match(&config.pattern) {
                return Err(fail("match", format!("invalid match: {}", config.pattern)));
            }
            None
        };
        let regex = regex.filter(|_| glob_applies(config.match_metric_type.as_deref()));
        Ok(Self {
            pattern: config.pattern.clone(),
            name: config.name.clone(),
            is_regex,
            action,
            scale: config.scale,
            honor_labels: config.honor_labels,
            glob_name: None,
            glob_labels: Vec::new(),
            regex,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_file_that_never_ends_is_refused_at_the_cap() {
        let err = Mapper::load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: cannot read: the file is larger than the limit of 16 MiB"
        );
    }

    fn mapper(text: &str) -> Mapper {
        Mapper::parse(Path::new("m.yml"), text).unwrap()
    }

    fn error(text: &str) -> String {
        Mapper::parse(Path::new("m.yml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_misspelt_mappings_key_that_leaves_no_rules_is_refused() {
        assert_eq!(
            error("# rules\nmapings:\n- match: a.*\n  name: x\n"),
            "m.yml:2: mapings: unknown key, and the file has no mapping rules (did you mean \
             `mappings`?); the known keys are `mappings` and `defaults`"
        );
        assert_eq!(
            error("rules:\n- pattern: a\n"),
            "m.yml:1: rules: unknown key, and the file has no mapping rules; the known keys \
             are `mappings` and `defaults`"
        );
        // With rules, an unknown key only warns, as upstream ignores it; an empty file is
        // still an empty mapping.
        let with_rules = mapper("mappings:\n- match: a.*\n  name: x\nextra: 1\n");
        assert_eq!(with_rules.rules.len(), 1);
        assert!(Mapper::parse(Path::new("m.yml"), "").is_ok());
        assert!(Mapper::parse(Path::new("m.yml"), "defaults:\n  match_type: glob\n").is_ok());
    }

    const SPARK: &str = "\
mappings:
- match: '*.*.executor.filesystem.*.*'
  name: filesystem_usage
  labels: {application: $1, executor_id: $2, fs_type: $3, qty: $4}
- match: '*.*.jvm.*.*'
  name: jvm_memory_usage
  labels: {application: $1, executor_id: $2, mem_type: $3, qty: $4}
- match: '*.*.executor.jvmGCTime.count'
  name: jvm_gcTime_count
  labels: {application: $1, executor_id: $2}
- match: '*.*.jvm.pools.*.*'
  name: jvm_memory_pools
  labels: {application: $1, executor_id: $2, mem_type: $3, qty: $4}
- match: '*.*.executor.threadpool.*'
  name: executor_tasks
  labels: {application: $1, executor_id: $2, qty: $3}
- match: '*.*.BlockManager.*.*'
  name: block_manager
  labels: {application: $1, executor_id: $2, type: $3, qty: $4}
- match: DAGScheduler.*.*
  name: DAG_scheduler
  labels: {type: $1, qty: $2}
";

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn spark_mapping() {
        let m = mapper(SPARK);
        let mapped = m.map("local-1.driver.jvm.heap.used").unwrap();
        assert_eq!(mapped.rule, 1);
        assert_eq!(mapped.name, "jvm_memory_usage");
        assert_eq!(
            mapped.labels,
            labels(&[
                ("application", "local-1"),
                ("executor_id", "driver"),
                ("mem_type", "heap"),
                ("qty", "used")
            ])
        );
        assert_eq!(
            m.map("a.1.executor.threadpool.activeTasks").unwrap().rule,
            4
        );
        assert!(m.map("a.driver.DAGScheduler.job.activeJobs").is_none());
        assert_eq!(m.map("DAGScheduler.job.activeJobs").unwrap().rule, 6);
    }

    #[test]
    fn glob_beats_regex_whatever_the_order() {
        let m = mapper(
            "mappings:\n- match: 'a\\.(.*)'\n  match_type: regex\n  name: by_regex\n- match: a.*\n  name: by_glob\n",
        );
        assert_eq!(m.map("a.b").unwrap().name, "by_glob");
        assert_eq!(m.map("a.b.c").unwrap().name, "by_regex");
        assert_eq!(
            m.map("xa.b.c").unwrap().name,
            "by_regex",
            "regexes are unanchored"
        );
    }

    #[test]
    fn regex_rules_expand_names_and_labels() {
        let m = mapper(
            "defaults:\n  match_type: regex\nmappings:\n- match: '^(\\w+)\\.(\\w+)$'\n  name: x_${2}\n  labels: {first: $1, both: '$1-$2'}\n",
        );
        let mapped = m.map("abc.def").unwrap();
        assert_eq!(mapped.name, "x_def");
        assert_eq!(
            mapped.labels,
            labels(&[("both", "abc-def"), ("first", "abc")])
        );
    }

    #[test]
    fn counter_rules_never_match() {
        let m = mapper("mappings:\n- match: a.*\n  match_metric_type: counter\n  name: c\n");
        assert!(m.map("a.b").is_none());
    }

    #[test]
    fn errors_carry_upstream_messages_and_lines() {
        assert_eq!(
            error("mappings:\n- match: a.b\n  name: x\n- match: a.c\n  labels: {aa: b}\n"),
            "m.yml:4: mappings[1].name: line 1: metric mapping didn't set a metric name"
        );
        assert_eq!(
            error("mappings:\n- match: a.b\n  name: x\n  labels: {a: b}\n"),
            "m.yml:4: mappings[0].labels: invalid label key: a"
        );
        assert_eq!(
            error("mappings:\n- match: a.foo-*\n  name: x\n"),
            "m.yml:2: mappings[0].match: invalid match: a.foo-*"
        );
        assert!(
            error("mappings:\n- match: a.b\n  name: 'x:y'\n")
                .contains("metric name 'x:y' doesn't match regex")
        );
        assert_eq!(
            error("mappings:\n- match: a.b\n  name: x\n  action: keep\n"),
            "m.yml:4: mappings[0].action: invalid action type \"keep\""
        );
        assert!(
            error("mappings:\n- match: '('\n  match_type: regex\n  name: x\n")
                .starts_with("m.yml:2: mappings[0].match: invalid regex ( in mapping:")
        );
        assert!(error("mappings:\n- match: .a\n  name: x\n").contains("invalid match: .a"));
        assert!(error("mappings:\n- match: 1a.b\n  name: x\n").contains("invalid match: 1a.b"));
        assert!(error("mappings: [\n").starts_with("m.yml:"));
    }

    #[test]
    fn globs_allow_digits_after_the_first_component() {
        let m = mapper("mappings:\n- match: test.99.myapp.*\n  name: ${1}_x\n");
        assert_eq!(m.map("test.99.myapp.foo").unwrap().name, "foo_x");
    }
}
