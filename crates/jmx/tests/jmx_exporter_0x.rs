//! 0.x naming: a jmx_exporter 0.13-style NameNode rules file over real NameNode answers gives
//! exactly the series jmx_exporter 0.13 gives.
//!
//! The expected series are not copied from Kiln's output: [`expected_0_13`] works them out
//! from the answers by jmx_exporter 0.13's own algorithm (`JmxCollector.Receiver.recordBean`
//! and `defaultExport`, `JmxScraper.processBeanValue`, at tag `parent-0.13.0`), written out
//! for the two rules of the file. 0.13 wrote with the Prometheus Java client 0.9.0, which
//! writes a sample's name as the rule made it and a family's TYPE from its first sample.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use kiln_jmx::json::{self, Value};
use kiln_jmx::rules::Naming;
use kiln_scraper::MetricType;
use support::fixture;
use support::render::render_as;

/// Name and sorted labels of one series.
type Series = (String, Vec<(String, String)>);

const RULES: &str = "jmx_exporter-0.13-namenode.yml";
const ANSWERS: [&str; 2] = ["namenode-nameNodeInfo.json", "namenode-kiln-test-jvm.json"];

/// jmx_exporter's `safeName`: runs of characters outside `[A-Za-z0-9:]` (underscores
/// included) become one `_`; a leading digit gets a `_` in front.
fn safe_name(name: &str) -> String {
    let mut out = String::new();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == ':' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out
}

/// jmx_exporter's `toSnakeAndLowerCase`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        if c.is_uppercase() && previous.is_some_and(|p| !p.is_uppercase() && p != '_') {
            out.push('_');
        }
        out.extend(c.to_lowercase());
        previous = Some(c);
    }
    out
}

/// What 0.13 makes of the answers with the rules in [`RULES`]: series → (value, type).
///
/// Rule 1, `Hadoop<service=(.*), name=(.*)><>(.*): (\d+)` (the pattern is unanchored, so
/// `(\d+)` takes the leading digits of any value, strings included, and the rest of the
/// value is left over): `hdfs_$1_$3` with the attribute snake-cased, value `$4`,
/// `name="$2"` (every property after `service`), gauge. Rule 2, `.*` without a name: the
/// default format `<domain>_<first property value>_<attribute>` with the other properties
/// as labels, untyped, for numbers and booleans only. Lower-cased names and label names.
fn expected_0_13(answers: &[String]) -> BTreeMap<Series, (f64, MetricType)> {
    let mut expected = BTreeMap::new();
    for answer in answers {
        let document = json::parse(answer).unwrap();
        let Some(Value::Array(beans)) = document.get("beans") else {
            panic!("no beans")
        };
        for bean in beans {
            let Value::Object(attributes) = bean else {
                continue;
            };
            let object_name = bean.get("name").and_then(Value::as_str).unwrap();
            let (domain, properties) = object_name.split_once(':').unwrap();
            let properties: Vec<(String, String)> = properties
                .split(',')
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect();
            for (attribute, value) in attributes {
                if attribute == "name" || attribute == "modelerType" {
                    continue;
                }
                // An MXBean map arrives as key/value rows: the key joins the properties and
                // the `value` column keeps the attribute's name.
                if let Value::Array(rows) = value {
                    for row in rows {
                        let key = row.get("key").and_then(Value::as_str).unwrap();
                        let mut properties = properties.clone();
                        properties.push(("key".into(), key.into()));
                        let value = row.get("value").unwrap();
                        record(&mut expected, domain, &properties, attribute, value);
                    }
                    continue;
                }
                record(&mut expected, domain, &properties, attribute, value);
            }
        }
    }
    expected
}

fn record(
    expected: &mut BTreeMap<Series, (f64, MetricType)>,
    domain: &str,
    properties: &[(String, String)],
    attribute: &str,
    value: &Value<'_>,
) {
    let text = match value {
        Value::Number(text) => text.to_string(),
        Value::String(text) => text.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return,
    };
    let leading_digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let rule_one = domain == "Hadoop"
        && properties.len() >= 2
        && properties[0].0 == "service"
        && properties[1].0 == "name"
        && !leading_digits.is_empty();
    if rule_one {
        let name = safe_name(&format!("hdfs_{}_{}", properties[0].1, snake(attribute)));
        let label = properties[1..]
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                if i == 0 {
                    v.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let series = (name.to_lowercase(), vec![("name".to_owned(), label)]);
        expected.insert(series, (leading_digits.parse().unwrap(), MetricType::Gauge));
        return;
    }
    let value = match value {
        Value::Number(text) => match *text {
            "NaN" => f64::NAN,
            number => number.parse().unwrap(),
        },
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => return,
    };
    let name = safe_name(&format!("{domain}_{}_{attribute}", properties[0].1)).to_lowercase();
    let mut labels: Vec<(String, String)> = properties[1..]
        .iter()
        .map(|(k, v)| (safe_name(k).to_lowercase(), v.clone()))
        .collect();
    labels.sort();
    expected.insert((name, labels), (value, MetricType::Untyped));
}

/// Series → (value, family type) of an exposition.
fn series(text: &str) -> BTreeMap<Series, (f64, MetricType)> {
    let exposition = kiln_scraper::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut out = BTreeMap::new();
    for family in &exposition.families {
        for sample in &family.samples {
            let mut labels: Vec<(String, String)> = sample
                .labels
                .iter()
                .map(|l| (l.name.to_owned(), l.value.to_string()))
                .collect();
            labels.sort();
            let key = (sample.name.to_owned(), labels);
            assert!(out.insert(key, (sample.value, family.kind)).is_none());
        }
    }
    out
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn answers() -> Vec<String> {
    ANSWERS.iter().map(|name| read(name)).collect()
}

fn render(naming: Naming) -> String {
    let answers = answers();
    let answers: Vec<&str> = answers.iter().map(String::as_str).collect();
    render_as(&read(RULES), naming, &answers)
}

#[test]
fn every_series_is_what_jmx_exporter_0_13_gives() {
    let expected = expected_0_13(&answers());
    let text = render(Naming::V0);
    let got = series(&text);
    let names = |m: &BTreeMap<Series, _>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(&expected), "{text}");
    for (key, (value, kind)) in &expected {
        let (got_value, got_kind) = got[key];
        assert!(
            got_value == *value || (got_value.is_nan() && value.is_nan()),
            "{key:?}: {got_value} != {value}"
        );
        assert_eq!(got_kind, *kind, "{key:?}");
    }
    // The names dashboards built on 0.x look for, each once.
    for name in [
        "hdfs_namenode_capacity_total",
        "hdfs_namenode_total",
        "hdfs_namenode_files_total",
        "hdfs_namenode_files_created",
        "hdfs_namenode_blocks_total",
    ] {
        assert_eq!(
            got.keys().filter(|(n, _)| n == name).count(),
            1,
            "{name}\n{text}"
        );
    }
    assert!(
        text.contains("# TYPE hdfs_namenode_capacity_total gauge\n"),
        "{text}"
    );
    assert!(!text.contains("_objectname"), "{text}");
    // Enough of the answers went through both rules for the comparison to mean something.
    assert!(expected.len() > 60, "{}", expected.len());
    assert!(expected.values().any(|(_, k)| *k == MetricType::Untyped));
}

#[test]
fn one_x_naming_strips_the_suffixes_of_the_same_series() {
    let zero = series(&render(Naming::V0));
    let one = series(&render(Naming::V1));
    assert_eq!(zero.len(), one.len());
    let renamed: Vec<&str> = zero
        .keys()
        .filter(|key| !one.contains_key(*key))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        renamed.contains(&"hdfs_namenode_capacity_total"),
        "{renamed:?}"
    );
    // Every difference is the suffix rule: `CompileInfo` ("2015-06-29T06:04Z by ...") meets
    // rule 1 and loses `_info`.
    assert!(
        renamed.contains(&"hdfs_namenode_compile_info"),
        "{renamed:?}"
    );
    assert!(
        renamed.iter().all(|n| ["_total", "_created", "_info"]
            .iter()
            .any(|s| n.ends_with(s))),
        "{renamed:?}"
    );
    let one_names: Vec<&str> = one.keys().map(|(n, _)| n.as_str()).collect();
    assert!(one_names.contains(&"hdfs_namenode_capacity"));
    // FilesCreated and FilesTotal meet in one 1.x name.
    let files: Vec<_> = one
        .keys()
        .filter(|(n, _)| n == "hdfs_namenode_files")
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn info_created_and_counter_types_as_0_13_writes_them() {
    // A NameNode's JvmMetrics carries log4j's event counts (LogInfo, ...), and rules often
    // type metrics2 counters as counters without adding `_total`.
    let beans = r#"{"beans": [{"name": "Hadoop:service=NameNode,name=JvmMetrics", "LogInfo": 7, "LogWarn": 2},
        {"name": "Hadoop:service=NameNode,name=NameNodeActivity", "FilesCreated": 61, "CreateFileOps": -1}]}"#;
    let rules = "lowercaseOutputName: true\nrules:\n  - pattern: 'Hadoop<service=(.*), name=JvmMetrics><>Log(\\w+)'\n    name: hdfs_$1_log_$2\n    type: COUNTER\n  - pattern: 'Hadoop<service=(.*), name=NameNodeActivity><>(\\w+)'\n    attrNameSnakeCase: true\n    name: hdfs_$1_$2\n    type: COUNTER\n";
    let zero = render_as(rules, Naming::V0, &[beans]);
    assert_eq!(
        zero,
        "# HELP hdfs_namenode_create_file_ops CreateFileOps (Hadoop<service=NameNode, name=NameNodeActivity><>CreateFileOps)\n\
         # TYPE hdfs_namenode_create_file_ops counter\n\
         hdfs_namenode_create_file_ops -1\n\
         # HELP hdfs_namenode_files_created FilesCreated (Hadoop<service=NameNode, name=NameNodeActivity><>FilesCreated)\n\
         # TYPE hdfs_namenode_files_created counter\n\
         hdfs_namenode_files_created 61\n\
         # HELP hdfs_namenode_log_info LogInfo (Hadoop<service=NameNode, name=JvmMetrics><>LogInfo)\n\
         # TYPE hdfs_namenode_log_info counter\n\
         hdfs_namenode_log_info 7\n\
         # HELP hdfs_namenode_log_warn LogWarn (Hadoop<service=NameNode, name=JvmMetrics><>LogWarn)\n\
         # TYPE hdfs_namenode_log_warn counter\n\
         hdfs_namenode_log_warn 2\n"
    );
    let one = render_as(rules, Naming::V1, &[beans]);
    assert!(one.contains("\nhdfs_namenode_log_total 7\n"), "{one}");
    assert!(one.contains("\nhdfs_namenode_files_total 61\n"), "{one}");
}

#[test]
fn a_family_takes_the_type_of_its_first_sample_and_repeats_keep_the_first() {
    let beans = r#"{"beans": [{"name": "a:type=X", "One": 1, "Two": 2, "Three": 3}]}"#;
    let rules = "rules:\n  - pattern: 'a<type=X><>One'\n    name: m\n    type: COUNTER\n  - pattern: 'a<type=X><>Two'\n    name: m\n    type: GAUGE\n  - pattern: 'a<type=X><>Three'\n    name: m\n    labels: {k: v}\n";
    let zero = render_as(rules, Naming::V0, &[beans]);
    assert_eq!(
        zero.lines()
            .filter(|l| !l.starts_with("# HELP"))
            .collect::<Vec<_>>(),
        ["# TYPE m counter", "m 1", "m{k=\"v\"} 3"]
    );
    let one = render_as(rules, Naming::V1, &[beans]);
    assert!(one.contains("# TYPE m untyped\n"), "{one}");
    assert!(one.contains("_objectname"), "{one}");
}
