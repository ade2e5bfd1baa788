//! jmx_exporter's rule engine, compiled once per module.
//!
//! - [`config`]: the YAML as written; [`RuleSet::compile`] checks it and compiles patterns.
//! - [`pattern`], [`template`], [`names`]: Java regex, Java replacement syntax, naming.
//! - [`evaluate`]: one attribute through the rules, exactly as jmx_exporter 1.x does it.
//! - [`sequence`]: the groups of a match for the usual shape of pattern, found fast.
//! - [`automaton`]: all patterns in one automaton, to find the first matching rule in one
//!   pass and to prove a cached result still holds for a new value.
//! - [`cache`]: results remembered per attribute, shared by every target of a module, in
//!   an [`attribute_table`] per bean, their names and labels shared through an [`interner`].

pub mod attribute_table;
pub mod automaton;
pub mod cache;
pub mod config;
pub mod evaluate;
pub mod filter;
pub mod interner;
pub mod keys;
pub mod names;
pub mod pattern;
pub mod sequence;
pub mod template;

use std::path::Path;

use kiln_registry::config::ConfigError;

use config::{RawConfig, RawCustomizer, RawRule, Scalar};
use filter::BeanFilter;
use pattern::Pattern;
use template::Template;

/// The type a rule gives its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `type: GAUGE`.
    Gauge,
    /// `type: COUNTER` (written with `_total`).
    Counter,
    /// No type, `UNTYPED`, or anything else: written as `untyped`.
    Unknown,
}

impl Kind {
    /// The word in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Unknown => "untyped",
        }
    }
}

/// Whose output names a module follows. jmx_exporter changed its naming between 0.x and
/// 1.x (with the move to the 1.x Prometheus Java client), and dashboards and alerts built on
/// one do not find the other's series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, clap::ValueEnum)]
pub enum Naming {
    /// jmx_exporter 0.x: names exactly as the rules make them (`_total`, `_created`,
    /// `_bucket`, `_info` kept), a family's type and help from its first sample, counters
    /// written without an added `_total`, no `_objectname` label (a repeated series keeps
    /// its first sample).
    #[serde(rename = "0.x")]
    #[value(name = "0.x")]
    V0,
    /// jmx_exporter 1.x: reserved suffixes stripped, `_total` added to counters, families of
    /// mixed type untyped, colliding samples told apart by `_objectname`.
    #[default]
    #[serde(rename = "1.x")]
    #[value(name = "1.x")]
    V1,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// `pattern`; none matches everything.
    pub pattern: Option<Pattern>,
    /// `name`; none means the default name format.
    pub name: Option<Template>,
    /// `value`: a fixed or captured value instead of the attribute's.
    pub value: Option<Template>,
    /// `valueFactor`.
    pub value_factor: f64,
    /// `labels`, name and value templates, sorted by name as written.
    pub labels: Vec<(Template, Template)>,
    /// `help`.
    pub help: Option<Template>,
    /// `type`.
    pub kind: Kind,
    /// `attrNameSnakeCase`.
    pub snake_case: bool,
    /// `cache`: the rule is matched against `<cache>` instead of the value.
    pub cache: bool,
    /// Whether any template uses a capture group (worked out once, asked per attribute).
    groups_used: bool,
}

impl Rule {
    /// The rule jmx_exporter uses when a configuration has no `rules:` at all.
    fn default_rule() -> Self {
        Self {
            pattern: None,
            name: None,
            value: None,
            value_factor: 1.0,
            labels: Vec::new(),
            help: None,
            kind: Kind::Unknown,
            snake_case: false,
            cache: false,
            groups_used: false,
        }
    }

    /// Whether the rule's output depends on the capture groups of its match.
    pub fn uses_groups(&self) -> bool {
        self.groups_used
    }

    fn any_template_uses_groups(&self) -> bool {
        self.name.as_ref().is_some_and(Template::uses_groups)
            || self.value.as_ref().is_some_and(Template::uses_groups)
            || self.help.as_ref().is_some_and(Template::uses_groups)
            || self
                .labels
                .iter()
                .any(|(k, v)| k.uses_groups() || v.uses_groups())
    }
}

/// `metricCustomizers`: extra labels from other attributes, or synthetic attributes.
#[derive(Debug)]
pub struct Customizer {
    /// `mbeanFilter.domain`.
    pub domain: String,
    /// `mbeanFilter.properties`: all must be present with these values.
    pub properties: Vec<(String, String)>,
    /// `attributesAsLabels`.
    pub attributes_as_labels: Vec<String>,
    /// `extraMetrics`: name, value, description.
    pub extra_metrics: Vec<(String, f64, Option<String>)>,
}

/// A module's whole rule configuration, compiled.
#[derive(Debug)]
pub struct RuleSet {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// `lowercaseOutputName`.
    pub lowercase_output_name: bool,
    /// `lowercaseOutputLabelNames`.
    pub lowercase_output_label_names: bool,
    /// `inferCounterTypeFromName`.
    pub infer_counter_type_from_name: bool,
    /// Which MBeans and attributes are read.
    pub filter: BeanFilter,
    /// `metricCustomizers`.
    pub customizers: Vec<Customizer>,
    /// `username`/`password`: the bridge's basic-auth credentials when the module sets none.
    pub credentials: Option<(String, String)>,
    /// All patterns in one automaton per pattern input.
    pub automaton: automaton::Automaton,
    /// Whether any rule matches snake-cased attribute names.
    pub any_snake_case: bool,
    /// Which jmx_exporter's names the rules' output follows; a module setting, so it is
    /// not read from the rules file itself.
    pub naming: Naming,
}

/// Turns a problem at a key path (relative to the rules configuration) into a located error.
pub type Locate<'a> = &'a dyn Fn(&[&str], String) -> ConfigError;

impl RuleSet {
    /// The configuration jmx_exporter uses for an empty file: every attribute, default names.
    pub fn default_rules() -> Self {
        Self::compile(RawConfig::default(), &|_, message| {
            ConfigError::file(Path::new("(default rules)"), message)
        })
        .unwrap_or_else(|_| unreachable!("the default configuration compiles"))
    }

    /// The same rules with the names of `naming`.
    pub fn with_naming(mut self, naming: Naming) -> Self {
        self.naming = naming;
        self
    }

    /// Checks and compiles a configuration. `locate` places errors in the file.
    pub fn compile(raw: RawConfig, locate: Locate<'_>) -> Result<Self, ConfigError> {
        if let Some(delay) = &raw.start_delay_seconds {
            match delay.as_i64() {
                Some(d) if d >= 0 => {}
                _ => {
                    return Err(locate(
                        &["startDelaySeconds"],
                        "must be a whole number of seconds, 0 or more".into(),
                    ));
                }
            }
        }
        if raw.host_port.is_some() && raw.jmx_url.is_some() {
            return Err(locate(
                &["hostPort"],
                "give hostPort or jmxUrl, not both".into(),
            ));
        }
        let rules = match raw.rules {
            None => vec![Rule::default_rule()],
            Some(raw_rules) => raw_rules
                .into_iter()
                .enumerate()
                .map(|(i, rule)| compile_rule(rule, &format!("[{i}]"), locate))
                .collect::<Result<_, _>>()?,
        };
        let customizers = raw
            .metric_customizers
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| compile_customizer(c, &format!("[{i}]"), locate))
            .collect::<Result<_, _>>()?;
        let filter = BeanFilter::compile(
            raw.include_object_names.or(raw.whitelist_object_names),
            raw.exclude_object_names.or(raw.blacklist_object_names),
            raw.exclude_jvm_metrics.is_some_and(|b| b.0),
            raw.include_object_name_attributes.unwrap_or_default(),
            raw.exclude_object_name_attributes.unwrap_or_default(),
            locate,
        )?;
        let credentials = match (raw.username, raw.password) {
            (Some(Scalar(user)), Some(Scalar(password)))
                if !user.is_empty() && !password.is_empty() =>
            {
                Some((
                    resolve_env(&user).map_err(|m| locate(&["username"], m))?,
                    resolve_env(&password).map_err(|m| locate(&["password"], m))?,
                ))
            }
            _ => None,
        };
        let automaton = automaton::Automaton::build(&rules);
        let any_snake_case = rules.iter().any(|r| r.snake_case);
        Ok(Self {
            any_snake_case,
            rules,
            lowercase_output_name: raw.lowercase_output_name.is_some_and(|b| b.0),
            lowercase_output_label_names: raw.lowercase_output_label_names.is_some_and(|b| b.0),
            infer_counter_type_from_name: raw.infer_counter_type_from_name.is_some_and(|b| b.0),
            filter,
            customizers,
            credentials,
            automaton,
            naming: Naming::default(),
        })
    }
}

/// A whole value `${NAME}` is replaced by that environment variable, as jmx_exporter does.
fn resolve_env(value: &str) -> Result<String, String> {
    let Some(name) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) else {
        return Ok(value.to_owned());
    };
    match std::env::var(name) {
        Ok(resolved) if !resolved.is_empty() => Ok(resolved),
        _ => Err(format!("environment variable {name} is not set")),
    }
}

fn compile_rule(raw: RawRule, index: &str, locate: Locate<'_>) -> Result<Rule, ConfigError> {
    let at = |key: &str, message: String| locate(&["rules", index, key], message);
    if raw.name.is_none() {
        if raw.labels.is_some() {
            return Err(at("labels", "labels need a name in the same rule".into()));
        }
        if raw.help.is_some() {
            return Err(at("help", "help needs a name in the same rule".into()));
        }
    }
    let pattern = match &raw.pattern {
        Some(Scalar(source)) => Some(
            Pattern::compile(source).map_err(|e| at("pattern", format!("invalid regex: {e}")))?,
        ),
        None if raw.name.is_some() => {
            return Err(at("name", "a rule with a name needs a pattern".into()));
        }
        None => None,
    };
    let (groups, names) = pattern
        .as_ref()
        .map_or((0, &[][..]), |p| (p.groups(), p.names()));
    let template = |key: &str, text: &str| {
        Template::parse(text, groups, names).map_err(|e| at(key, format!("{text:?}: {e}")))
    };
    let value_factor = match &raw.value_factor {
        None => 1.0,
        Some(Scalar(text)) => java_double(text)
            .ok_or_else(|| at("valueFactor", format!("{text:?} is not a number")))?,
    };
    let mut labels = Vec::new();
    for (key, Scalar(value)) in raw.labels.iter().flatten() {
        labels.push((template("labels", key)?, template("labels", value)?));
    }
    let kind = match raw.kind.as_ref().map(|s| s.0.as_str()) {
        Some("GAUGE") => Kind::Gauge,
        Some("COUNTER") => Kind::Counter,
        _ => Kind::Unknown,
    };
    let mut rule = Rule {
        name: raw.name.map(|s| template("name", &s.0)).transpose()?,
        value: raw.value.map(|s| template("value", &s.0)).transpose()?,
        help: raw.help.map(|s| template("help", &s.0)).transpose()?,
        pattern,
        value_factor,
        labels,
        kind,
        snake_case: raw.attr_name_snake_case.is_some_and(|b| b.0),
        cache: raw.cache.is_some_and(|b| b.0),
        groups_used: false,
    };
    rule.groups_used = rule.any_template_uses_groups();
    Ok(rule)
}

fn compile_customizer(
    raw: RawCustomizer,
    index: &str,
    locate: Locate<'_>,
) -> Result<Customizer, ConfigError> {
    let at = |key: &str, message: &str| locate(&["metricCustomizers", index, key], message.into());
    let filter = raw
        .mbean_filter
        .ok_or_else(|| at("mbeanFilter", "a customizer needs an mbeanFilter"))?;
    let domain = filter
        .domain
        .ok_or_else(|| at("mbeanFilter", "mbeanFilter needs a domain"))?;
    if raw.attributes_as_labels.is_none() && raw.extra_metrics.is_none() {
        return Err(at(
            "mbeanFilter",
            "a customizer needs attributesAsLabels or extraMetrics",
        ));
    }
    let mut extra_metrics = Vec::new();
    for extra in raw.extra_metrics.unwrap_or_default() {
        let name = extra
            .name
            .ok_or_else(|| at("extraMetrics", "an extra metric needs a name"))?;
        let value = match extra.value.as_ref().map(|s| s.0.as_str()) {
            Some("true") => 1.0,
            Some("false") => 0.0,
            Some(text) => java_double(text).ok_or_else(|| {
                at(
                    "extraMetrics",
                    "an extra metric's value must be a number or boolean",
                )
            })?,
            None => return Err(at("extraMetrics", "an extra metric needs a value")),
        };
        extra_metrics.push((name, value, extra.description));
    }
    Ok(Customizer {
        domain,
        properties: filter
            .properties
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
        attributes_as_labels: raw.attributes_as_labels.unwrap_or_default(),
        extra_metrics,
    })
}

/// Java's `Double.valueOf`: surrounding blanks ignored, `NaN` and `Infinity` (signed), an
/// optional `d`/`f` suffix, hexadecimal floats (`0x1.8p1`).
pub fn java_double(text: &str) -> Option<f64> {
    let text = text.trim_matches(|c: char| c <= ' ');
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    match unsigned {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    let body = unsigned
        .strip_suffix(['d', 'D', 'f', 'F'])
        .unwrap_or(unsigned);
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return hex_float(hex).map(|v| sign * v);
    }
    // Rust also reads "inf" and "nan", which Java does not.
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

/// `1.8p1` (after `0x`): hex mantissa, binary exponent (required by Java).
fn hex_float(text: &str) -> Option<f64> {
    let (mantissa, exponent) = text.split_once(['p', 'P'])?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for digit in whole.chars() {
        value = value * 16.0 + f64::from(digit.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for digit in fraction.chars() {
        value += f64::from(digit.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(value * 2f64.powi(exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_double_parsing() {
        let cases = [
            ("1", Some(1.0)),
            (" 2.5 ", Some(2.5)),
            ("1.5d", Some(1.5)),
            ("2f", Some(2.0)),
            ("-3e2", Some(-300.0)),
            ("1.07351072768E11", Some(107_351_072_768.0)),
            ("Infinity", Some(f64::INFINITY)),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            ("0x1.8p1", Some(3.0)),
            ("inf", None),
            ("nan", None),
            ("", None),
            ("abc", None),
            ("1,5", None),
        ];
        for (text, expected) in cases {
            assert_eq!(java_double(text), expected, "{text:?}");
        }
        assert!(java_double("NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn env_references_are_resolved() {
        assert_eq!(resolve_env("plain").as_deref(), Ok("plain"));
        assert!(resolve_env("${KILN_SURELY_UNSET_VARIABLE}").is_err());
    }
}
