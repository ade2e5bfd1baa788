//! One attribute through the rules, as jmx_exporter 1.x's `recordBean` does it.
//!
//! The pattern input is `domain<k1=v1, k2=v2><key1, key2>attrName: value`: bean properties
//! in registration order, the path into composite and tabular values, the leaf name
//! (snake-cased for rules that ask), and the value as Java prints it (`<cache>` for rules
//! with `cache: true`). The first rule whose pattern matches decides; a rule whose `name`
//! comes out empty or whose `value` is not a number drops the attribute.

use std::sync::Arc;

use super::interner::Interner;
use super::names::{strip_reserved_suffixes, to_safe_name_into};
use super::pattern::Scratch;
use super::template::{Spans, Template};
use super::{Kind, Naming, Rule, RuleSet, java_double};

/// A leaf value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Leaf<'a> {
    /// A number as printed by Java (also `NaN`, `Infinity`).
    Number(&'a str),
    /// A boolean: 1 or 0.
    Bool(bool),
    /// A string: only a rule's `value` can turn it into a sample.
    Text(&'a str),
}

impl<'a> Leaf<'a> {
    /// The value as it appears in the pattern input.
    pub fn text(&self) -> &'a str {
        match self {
            Leaf::Number(text) | Leaf::Text(text) => text,
            Leaf::Bool(true) => "true",
            Leaf::Bool(false) => "false",
        }
    }
}

/// One attribute (or composite item, or table cell) of one bean.
#[derive(Debug, Clone, Copy)]
pub struct Attribute<'a> {
    /// The bean's domain.
    pub domain: &'a str,
    /// Key properties in order, plus table index columns.
    pub properties: &'a [(&'a str, &'a str)],
    /// Names of the composite/tabular levels above the leaf.
    pub attr_keys: &'a [&'a str],
    /// The leaf name.
    pub name: &'a str,
    /// The value.
    pub value: Leaf<'a>,
    /// Labels from `metricCustomizers.attributesAsLabels`.
    pub extra_labels: &'a [(String, String)],
    /// How many of `properties` are the bean's own (the rest come from table rows).
    pub bean_properties: usize,
}

impl Attribute<'_> {
    /// Writes the pattern input up to the attribute name (`domain<props><keys>`) into `out`.
    ///
    /// Returns where in `out` the `<keys>` part starts.
    pub fn write_bean_key(&self, out: &mut String) -> usize {
        out.push_str(self.domain);
        out.push('<');
        for (i, (key, value)) in self.properties.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out.push('>');
        let keys = out.len();
        out.push('<');
        for (i, key) in self.attr_keys.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(key);
        }
        out.push('>');
        keys
    }

    /// Writes what tells this attribute apart within its bean: table row properties, the
    /// path into composites, and the leaf name.
    pub fn write_path(&self, out: &mut String) {
        out.clear();
        for (key, value) in &self.properties[self.bean_properties.min(self.properties.len())..] {
            out.push_str(key);
            out.push('=');
            out.push_str(value);
            out.push('\u{1}');
        }
        for key in self.attr_keys {
            out.push_str(key);
            out.push('\u{2}');
        }
        out.push_str(self.name);
    }

    fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

/// What a matching rule makes of an attribute, independent of its current value.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The family name: with 1.x naming reserved suffixes stripped (counters get `_total`
    /// when written), with 0.x naming as the rule made it.
    pub name: Arc<str>,
    /// The sample's type.
    pub kind: Kind,
    /// HELP text, see [`Prepared::help`].
    pub help: Help,
    /// Labels, sorted by name, names unique; shared with the results before it that have the
    /// same labels (a bean's attributes mostly do).
    pub labels: Labels,
    /// The value from the rule's `value`, if it has one.
    pub fixed_value: Option<f64>,
    /// `valueFactor`.
    pub factor: f64,
    /// The pattern input without the value (the `_objectname` label if samples collide),
    /// see [`Prepared::object_name`].
    pub origin: Origin,
    /// Whether a `cache: true` rule made it.
    pub cached_rule: bool,
    /// Labels dropped because two had the same name.
    pub duplicate_labels: u32,
}

/// A result's labels: `(name, value)` pairs.
pub type Labels = Arc<[(Arc<str>, Arc<str>)]>;

/// The pattern input without the value, `domain<props><keys>attrName`, in three shared
/// parts: a bean's key is shared by all its attributes, and the path into composites and an
/// attribute's name by every bean that has them, where a copy per attribute would cost as
/// much as the rest of the result.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// `domain<props>`.
    pub bean: Arc<str>,
    /// `<keys>`: the path into composite values (`<>` for none).
    pub path: Arc<str>,
    /// The leaf name.
    pub attribute: Arc<str>,
}

/// A result's HELP text. The defaults name the attribute, so they differ for every
/// attribute; they are kept as their shared parts and written out only for the one sample
/// of each family whose help is shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Help {
    /// A rule's own `help`, expanded.
    Text(Arc<str>),
    /// jmx_exporter 1.x's default: this prefix (`domain:name=…,type=…,attribute=`, one per
    /// bean), then the attribute's name.
    Default(Arc<str>),
    /// jmx_exporter 0.x's default: `attrName (domain<props><keys>attrName)`.
    Default0x,
}

impl Prepared {
    /// The HELP text.
    pub fn help(&self) -> std::borrow::Cow<'_, str> {
        let Origin {
            bean,
            path,
            attribute,
        } = &self.origin;
        match &self.help {
            Help::Text(text) => std::borrow::Cow::Borrowed(text),
            Help::Default(prefix) => format!("{prefix}{attribute}").into(),
            Help::Default0x => format!("{attribute} ({bean}{path}{attribute})").into(),
        }
    }

    /// The pattern input without the value, as the `_objectname` label shows it.
    pub fn object_name(&self) -> String {
        let Origin {
            bean,
            path,
            attribute,
        } = &self.origin;
        format!("{bean}{path}{attribute}")
    }

    /// The sample value for `leaf`, or `None` when the attribute gives no sample (a string
    /// without a `value` in the rule).
    pub fn sample_value(&self, leaf: Leaf<'_>) -> Option<f64> {
        if let Some(value) = self.fixed_value {
            return Some(value * self.factor);
        }
        match leaf {
            Leaf::Number(text) => parse_number(text).map(|v| v * self.factor),
            Leaf::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            Leaf::Text(_) => None,
        }
    }
}

/// A number token from a bridge.
pub fn parse_number(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// The result of the rules for one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A rule matched and produced a sample description.
    Matched(Arc<Prepared>),
    /// A rule matched but dropped the attribute (empty name, non-numeric `value`).
    Dropped,
    /// No rule matched.
    Unmatched,
}

/// The pattern inputs of one attribute: the key part for plain and snake-cased names, and
/// the full inputs for the value and for `<cache>`.
#[derive(Debug, Default)]
pub struct Inputs {
    /// `domain<props><keys>attrName`.
    pub key: String,
    /// The same with the attribute name snake-cased (empty unless a rule needs it).
    pub snake_key: String,
    /// Length of `key` without the attribute name.
    pub bean_len: usize,
    /// Where in `key` the path into composites (`<keys>`) starts.
    pub path_start: usize,
    /// Buffer for a full input.
    full: String,
}

impl Inputs {
    /// Fills the key parts for `attribute`.
    pub fn prepare(&mut self, attribute: &Attribute<'_>, snake_needed: bool) {
        self.key.clear();
        self.path_start = attribute.write_bean_key(&mut self.key);
        let bean_len = self.key.len();
        self.bean_len = bean_len;
        self.key.push_str(attribute.name);
        self.snake_key.clear();
        if snake_needed {
            self.snake_key.push_str(&self.key[..bean_len]);
            self.snake_key
                .push_str(&super::names::to_snake_case(attribute.name));
        }
    }

    /// The full input of `rule` for `value`.
    pub fn full_for(&mut self, rule: &Rule, value: &str) -> &str {
        self.full.clear();
        self.full.push_str(if rule.snake_case {
            &self.snake_key
        } else {
            &self.key
        });
        self.full.push_str(": ");
        self.full
            .push_str(if rule.cache { "<cache>" } else { value });
        &self.full
    }
}

/// Runs the rules in order with each rule's own regex: jmx_exporter's algorithm, used where
/// the automaton cannot answer (inputs with line breaks, backtracking-only patterns).
pub fn first_match_sequential(
    rules: &RuleSet,
    inputs: &mut Inputs,
    value: &str,
    from: usize,
) -> Option<usize> {
    rules
        .rules
        .iter()
        .enumerate()
        .skip(from)
        .find_map(|(i, rule)| {
            let matched = match &rule.pattern {
                None => true,
                Some(pattern) => pattern.is_match(inputs.full_for(rule, value)),
            };
            matched.then_some(i)
        })
}

/// Buffers and shared strings reused from one outcome to the next.
#[derive(Debug, Default)]
pub struct Workspace {
    scratch: Scratch,
    /// A template's expansion.
    expanded: String,
    /// The family name being built.
    name: String,
    /// A label name being built.
    label: String,
    labels: Vec<(Arc<str>, Arc<str>)>,
    /// The labels of the last result, shared by the next one if it has the same.
    last_labels: Option<Labels>,
    /// The bean (`domain<props>`) and default help of the last result: the same for every
    /// attribute of a bean and for no other bean's, so shared this way rather than kept in
    /// `strings`, where they would outlive the results of a bean that is not remembered.
    last_bean: Recent,
    last_help: Recent,
    /// Names, help texts and labels, one copy each.
    pub strings: Interner,
}

/// The last string asked for, shared while the next one asked for is the same.
#[derive(Debug, Default)]
struct Recent(Option<Arc<str>>);

impl Recent {
    fn get(&mut self, text: &str) -> Arc<str> {
        match &self.0 {
            Some(last) if **last == *text => Arc::clone(last),
            _ => Arc::clone(self.0.insert(text.into())),
        }
    }
}

/// Builds the outcome of rule `index`, which is known to match.
pub fn prepare(
    rules: &RuleSet,
    index: usize,
    attribute: &Attribute<'_>,
    inputs: &mut Inputs,
    work: &mut Workspace,
) -> Outcome {
    let rule = &rules.rules[index];
    let value_text = attribute.value.text();
    let bean = inputs.key.get(..inputs.path_start).unwrap_or_default();
    let path = inputs
        .key
        .get(inputs.path_start..inputs.bean_len)
        .unwrap_or_default();
    let origin = Origin {
        bean: work.last_bean.get(bean),
        path: work.strings.get(path),
        attribute: work.strings.get(attribute.name),
    };
    let input = inputs.full_for(rule, value_text);
    let Workspace {
        scratch,
        expanded,
        name,
        label,
        labels,
        last_labels,
        last_bean: _,
        last_help,
        strings,
    } = work;
    let spans: &Spans = match (&rule.pattern, rule.uses_groups()) {
        (Some(pattern), true) => match pattern.captures(input, scratch) {
            Some(spans) => spans,
            // Only reachable if the automaton and the regex disagree; treat as no match.
            None => return Outcome::Unmatched,
        },
        _ => &[],
    };
    let expand = |template: &Template, out: &mut String| {
        out.clear();
        template.expand_into(input, spans, out);
    };

    let fixed_value = match &rule.value {
        None => None,
        Some(template) => {
            expand(template, expanded);
            match java_double(expanded) {
                Some(value) => Some(value),
                None => return Outcome::Dropped,
            }
        }
    };

    let mut kind = rule.kind;
    labels.clear();
    for (label_name, value) in attribute.extra_labels {
        let label_name = safe_label_name(rules, label_name, label, strings);
        labels.push((label_name, strings.get(value)));
    }
    name.clear();
    match &rule.name {
        Some(template) => {
            expand(template, expanded);
            to_safe_name_into(expanded, name);
            if name.is_empty() {
                return Outcome::Dropped;
            }
            for (key, value) in &rule.labels {
                expand(key, expanded);
                let key = safe_label_name(rules, expanded, label, strings);
                expand(value, expanded);
                if !key.is_empty() && !expanded.is_empty() {
                    labels.push((key, strings.get(expanded)));
                }
            }
        }
        None => {
            expanded.clear();
            expanded.push_str(attribute.domain);
            if let Some((_, first)) = attribute.properties.first() {
                expanded.push('_');
                expanded.push_str(first);
            }
            for key in attribute.attr_keys {
                expanded.push('_');
                expanded.push_str(key);
            }
            expanded.push('_');
            if rule.snake_case {
                expanded.push_str(&super::names::to_snake_case(attribute.name));
            } else {
                expanded.push_str(attribute.name);
            }
            to_safe_name_into(expanded, name);
            for (key, value) in attribute.properties.iter().skip(1) {
                let key = safe_label_name(rules, key, label, strings);
                labels.push((key, strings.get(value)));
            }
        }
    }
    if rules.lowercase_output_name {
        // A safe name is ASCII, so this is Java's `toLowerCase` exactly.
        name.make_ascii_lowercase();
    }
    if rules.infer_counter_type_from_name && name.ends_with("_total") {
        kind = Kind::Counter;
    }
    let help = match &rule.help {
        Some(template) => {
            expand(template, expanded);
            Help::Text(strings.get(expanded))
        }
        None => match rules.naming {
            Naming::V1 => {
                default_help_prefix(attribute, expanded);
                Help::Default(last_help.get(expanded))
            }
            Naming::V0 => Help::Default0x,
        },
    };

    // Two labels of one name would make the whole exposition invalid: keep the first. The
    // sort is stable, so the first of a name is the first written.
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    let before = labels.len();
    labels.dedup_by(|later, earlier| later.0 == earlier.0);
    let duplicate_labels = (before - labels.len()) as u32;

    // The naming choice is made here, once per cached result, never per sample.
    let name = match rules.naming {
        Naming::V1 => strip_reserved_suffixes(name),
        Naming::V0 => name.as_str(),
    };
    let labels = match last_labels {
        Some(last) if **last == **labels => Arc::clone(last),
        _ => {
            let fresh: Labels = labels.as_slice().into();
            *last_labels = Some(Arc::clone(&fresh));
            fresh
        }
    };
    Outcome::Matched(Arc::new(Prepared {
        name: strings.get(name),
        kind,
        help,
        labels,
        fixed_value,
        factor: rule.value_factor,
        origin,
        cached_rule: rule.cache,
        duplicate_labels,
    }))
}

/// `name` as a label name: made safe, lower-cased if the rules ask, one shared copy.
fn safe_label_name(
    rules: &RuleSet,
    name: &str,
    out: &mut String,
    strings: &mut Interner,
) -> Arc<str> {
    out.clear();
    to_safe_name_into(name, out);
    if rules.lowercase_output_label_names {
        out.make_ascii_lowercase();
    }
    strings.get(out)
}

/// `domain:name=<name>,type=<type>,attribute=`: what jmx_exporter 1.x writes before the
/// attribute's name as the help of a rule without `help` (the bridges carry no attribute
/// descriptions). jmx_exporter 0.x writes `<description> (<bean><attr>)`, the attribute name
/// standing in for the description, as MXBeans describe their attributes ([`Help::Default0x`]).
fn default_help_prefix(attribute: &Attribute<'_>, help: &mut String) {
    help.clear();
    for part in [
        attribute.domain,
        ":name=",
        attribute.property("name").unwrap_or("null"),
        ",type=",
        attribute.property("type").unwrap_or("null"),
        ",attribute=",
    ] {
        help.push_str(part);
    }
}
