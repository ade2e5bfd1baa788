//! From the beans a bridge returned to samples: jmx_exporter's `processBeanValue` over JSON.
//!
//! - numbers, booleans and strings are leaves;
//! - an object is CompositeData: each item, in sorted order, one level down;
//! - an array of `{"key": …, "value": …}` rows is an MXBean map (TabularData indexed by
//!   `key`): each row adds `key=<k>` to the bean's properties, and its value keeps the
//!   attribute's name;
//! - other arrays, `null`, and Jolokia error objects are skipped, as jmx_exporter skips
//!   arrays and nulls.

use smallvec::SmallVec;

use crate::json::Value;
use crate::object_name::ObjectName;
use crate::rules::RuleSet;
use crate::rules::cache::{MatchCache, Source};
use crate::rules::evaluate::{Attribute, Leaf, Outcome};
use crate::samples::Samples;

/// Attributes jmx_exporter never reads, per bean: huge strings with no numbers in them.
const SKIPPED: &[(&str, &[&str])] = &[(
    "java.lang:type=Runtime",
    &[
        "SystemProperties",
        "ClassPath",
        "BootClassPath",
        "LibraryPath",
    ],
)];
/// Beans jmx_exporter never reads.
const SKIPPED_BEANS: &[&str] = &["jdk.management.jfr:type=FlightRecorder"];

/// One MBean as a bridge returned it: its name and its attributes.
#[derive(Debug, Clone, Copy)]
pub struct Bean<'a> {
    /// The object name as sent.
    pub name: &'a str,
    /// Attribute name and value pairs.
    pub attributes: &'a [(std::borrow::Cow<'a, str>, Value<'a>)],
}

/// One MBean whose attributes are still JSON text (checked by [`crate::json::parse_shallow`]),
/// parsed only while it is walked.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBean<'a> {
    /// The object name as sent.
    pub name: std::borrow::Cow<'a, str>,
    /// The object of its attributes.
    pub text: &'a str,
}

/// Something the walk gets a [`Bean`] from: a bean already parsed, or one still in text.
pub trait BeanSource: Sync {
    /// Calls `f` with the bean; `None` if there is none (text that is not an object).
    fn with_bean<R>(&self, f: impl FnOnce(Bean<'_>) -> R) -> Option<R>;
}

impl BeanSource for Bean<'_> {
    fn with_bean<R>(&self, f: impl FnOnce(Bean<'_>) -> R) -> Option<R> {
        Some(f(*self))
    }
}

impl BeanSource for RawBean<'_> {
    fn with_bean<R>(&self, f: impl FnOnce(Bean<'_>) -> R) -> Option<R> {
        // Checked when the answer was read, so it parses; the tree lives for this bean only.
        let Ok(Value::Object(attributes)) = crate::json::parse(self.text) else {
            return None;
        };
        Some(f(Bean {
            name: &self.name,
            attributes: &attributes,
        }))
    }
}

/// What a walk counted, for the exporter's own metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    /// Beans read.
    pub beans: u64,
    /// Beans skipped because their name did not parse.
    pub bad_names: u64,
    /// Leaf values offered to the rules.
    pub attributes: u64,
    /// Of those, answered from the match cache.
    pub cache_hits: u64,
    /// Of those, matched by a `cache: true` rule.
    pub cached_rule_matches: u64,
    /// Labels dropped for repeating a name within one sample.
    pub duplicate_labels: u64,
}

impl std::ops::AddAssign for WalkStats {
    fn add_assign(&mut self, other: Self) {
        self.beans += other.beans;
        self.bad_names += other.bad_names;
        self.attributes += other.attributes;
        self.cache_hits += other.cache_hits;
        self.cached_rule_matches += other.cached_rule_matches;
        self.duplicate_labels += other.duplicate_labels;
    }
}

/// Walks beans through a module's rules.
#[derive(Debug)]
pub struct Walker<'r> {
    rules: &'r RuleSet,
    cache: &'r mut MatchCache,
    /// The samples so far.
    pub samples: Samples,
    /// The counts so far.
    pub stats: WalkStats,
}

impl<'r> Walker<'r> {
    /// A walker over `rules`, remembering results in `cache`.
    pub fn new(rules: &'r RuleSet, cache: &'r mut MatchCache) -> Self {
        cache.start_pass();
        Self {
            rules,
            cache,
            samples: Samples::default(),
            stats: WalkStats::default(),
        }
    }

    /// Walks one bean through the rules.
    pub fn bean(&mut self, bean: Bean<'_>) {
        let Self {
            rules,
            cache,
            samples,
            stats,
        } = self;
        let Some((name, mut attributes)) = cache.open_bean(rules, bean.name, stats) else {
            return;
        };
        let mut evaluated = |attribute: &Attribute<'_>, stats: &mut WalkStats| {
            let cacheable = attribute.extra_labels.is_empty();
            let (outcome, source) = cache.evaluate(rules, &mut attributes, attribute, cacheable);
            if source == Source::Cached {
                stats.cache_hits += 1;
            }
            let Outcome::Matched(prepared) = outcome else {
                return;
            };
            if prepared.cached_rule {
                stats.cached_rule_matches += 1;
            }
            stats.duplicate_labels += u64::from(prepared.duplicate_labels);
            if let Some(value) = prepared.sample_value(attribute.value) {
                samples.push(&prepared, value);
            }
        };
        visit(rules, &name, bean, stats, &mut evaluated);
        cache.close_bean(bean.name, attributes);
    }

    /// Offers every attribute of `beans` to `f` instead of the rules (for comparisons).
    pub fn for_each_attribute(&mut self, beans: &[Bean<'_>], mut f: impl FnMut(&Attribute<'_>)) {
        for bean in beans {
            let Some(name) = read_bean(self.rules, bean.name, &mut self.stats) else {
                continue;
            };
            visit(
                self.rules,
                &name,
                *bean,
                &mut self.stats,
                &mut |attribute, _| f(attribute),
            );
        }
    }
}

/// What a bean's attributes are offered to.
type Visitor<'f> = dyn FnMut(&Attribute<'_>, &mut WalkStats) + 'f;

/// The parsed name of a bean the module reads; `None` for a bean it leaves out or whose name
/// does not parse (counted).
pub fn read_bean(rules: &RuleSet, name: &str, stats: &mut WalkStats) -> Option<ObjectName> {
    let parsed = match ObjectName::parse(name) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::debug!(bean = name, err = %error, "Bean name does not parse; skipped.");
            stats.bad_names += 1;
            return None;
        }
    };
    (rules.filter.admits(&parsed) && !SKIPPED_BEANS.contains(&name)).then_some(parsed)
}

/// Offers every leaf value of `bean` (whose parsed name is `name`) that the module reads to
/// `f`.
fn visit(
    rules: &RuleSet,
    name: &ObjectName,
    bean: Bean<'_>,
    stats: &mut WalkStats,
    f: &mut Visitor<'_>,
) {
    stats.beans += 1;
    let attribute_filter = rules.filter.attributes(name);
    let skipped: &[&str] = SKIPPED
        .iter()
        .find(|(bean_name, _)| *bean_name == bean.name)
        .map_or(&[], |(_, attributes)| attributes);

    let customizer = rules.customizers.iter().find(|c| {
        c.domain == name.domain()
            && c.properties
                .iter()
                .all(|(k, v)| name.property(k) == Some(v.as_str()))
    });
    let extra_labels: Vec<(String, String)> = customizer
        .map(|c| {
            c.attributes_as_labels
                .iter()
                .filter_map(|wanted| {
                    let (_, value) = bean.attributes.iter().find(|(n, _)| n == wanted)?;
                    let text = match value {
                        Value::Number(t) => (*t).to_owned(),
                        Value::String(t) => t.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((wanted.clone(), text))
                })
                .collect()
        })
        .unwrap_or_default();

    let mut visitor = Visiting {
        domain: name.domain(),
        bean_properties: name.properties().len(),
        extra_labels: &extra_labels,
        stats,
        f,
    };
    let mut properties: Properties<'_> = name.properties().collect();
    let mut keys: Vec<&str> = Vec::new();
    for (attribute, value) in bean.attributes {
        if matches!(&**attribute, "name" | "modelerType")
            || skipped.contains(&&**attribute)
            || !attribute_filter.admits(attribute)
        {
            continue;
        }
        visitor.value(&mut properties, &mut keys, attribute, value);
    }
    for (metric, value, _) in customizer.map_or(&[][..], |c| &c.extra_metrics) {
        let text = value.to_string();
        visitor.leaf(&properties, &keys, metric, Leaf::Number(&text));
    }
}

/// A bean's key properties and the table row keys above the current value; inline, as
/// a first scrape of a big broker walks tens of thousands of beans.
type Properties<'v> = SmallVec<[(&'v str, &'v str); 8]>;

/// One bean's walk in progress.
struct Visiting<'a, 'f> {
    domain: &'a str,
    bean_properties: usize,
    extra_labels: &'a [(String, String)],
    stats: &'a mut WalkStats,
    f: &'a mut Visitor<'f>,
}

impl Visiting<'_, '_> {
    fn value<'v>(
        &mut self,
        properties: &mut Properties<'v>,
        keys: &mut Vec<&'v str>,
        name: &'v str,
        value: &'v Value<'v>,
    ) {
        match value {
            Value::Null | Value::Raw(_) => {}
            Value::Bool(b) => self.leaf(properties, keys, name, Leaf::Bool(*b)),
            Value::Number(text) => self.leaf(properties, keys, name, Leaf::Number(text)),
            Value::String(text) => self.leaf(properties, keys, name, Leaf::Text(text)),
            Value::Object(items) => {
                // Jolokia 2 marks a failed attribute read with `.error`.
                if items.iter().any(|(k, _)| k == ".error") {
                    return;
                }
                let mut sorted: Vec<&(std::borrow::Cow<'v, str>, Value<'v>)> =
                    items.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                keys.push(name);
                for (item, item_value) in sorted {
                    self.value(properties, keys, item, item_value);
                }
                keys.pop();
            }
            Value::Array(rows) => {
                if rows.is_empty() || !rows.iter().all(is_map_row) {
                    return;
                }
                let index_name = unique_key(properties);
                for row in rows {
                    let (Some(key), Some(row_value)) = (row.get("key"), row.get("value")) else {
                        continue;
                    };
                    let key = match key {
                        Value::String(text) => &**text,
                        Value::Number(text) => text,
                        Value::Bool(true) => "true",
                        Value::Bool(false) => "false",
                        _ => continue,
                    };
                    properties.push((index_name, key));
                    self.value(properties, keys, name, row_value);
                    properties.pop();
                }
            }
        }
    }

    fn leaf(&mut self, properties: &[(&str, &str)], keys: &[&str], name: &str, value: Leaf<'_>) {
        self.stats.attributes += 1;
        let attribute = Attribute {
            domain: self.domain,
            properties,
            attr_keys: keys,
            name,
            value,
            extra_labels: self.extra_labels,
            bean_properties: self.bean_properties,
        };
        (self.f)(&attribute, self.stats);
    }
}

/// A row of an MXBean map as both bridges write it: exactly `key` and `value`.
fn is_map_row(row: &Value<'_>) -> bool {
    match row {
        Value::Object(members) => {
            members.len() == 2
                && members.iter().any(|(k, _)| k == "key")
                && members.iter().any(|(k, _)| k == "value")
        }
        _ => false,
    }
}

/// `key`, or `key_`, `key__`, … if the bean already has such a property (jmx_exporter's rule).
fn unique_key(properties: &[(&str, &str)]) -> &'static str {
    const NAMES: [&str; 4] = ["key", "key_", "key__", "key___"];
    NAMES
        .iter()
        .find(|n| !properties.iter().any(|(k, _)| k == *n))
        .copied()
        .unwrap_or("key____")
}
