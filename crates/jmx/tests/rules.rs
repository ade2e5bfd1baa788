//! The rule engine against jmx_exporter's documented behaviour: pattern inputs, default
//! names, Java replacement syntax, types and suffixes, `_objectname`, and the match cache
//! agreeing with a plain run of the rules.

#![allow(clippy::unwrap_used)]

mod support;

use support::render::{render_as, rules};

use std::path::Path;

use kiln_jmx::rules::cache::{Attributes, MatchCache, Source, evaluate_uncached};
use kiln_jmx::rules::config::RawConfig;
use kiln_jmx::rules::evaluate::{Attribute, Leaf};
use kiln_jmx::rules::{Naming, RuleSet};
use kiln_registry::config::{ConfigError, parse_yaml};

/// Beans given as Hadoop `/jmx` JSON, through `yaml`, with 1.x names.
fn render(yaml: &str, beans: &str) -> String {
    render_as(yaml, Naming::V1, &[beans])
}

fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

const NAMENODE: &str = r#"{"beans": [{
    "name": "Hadoop:service=NameNode,name=FSNamesystem",
    "modelerType": "FSNamesystem",
    "tag.HAState": "active",
    "BlocksTotal": 15,
    "CapacityTotal": 107351072768,
    "CapacityTotalGB": 100.0,
    "PercentUsed": 3.918016E-5,
    "NotReady": NaN,
    "Safemode": false,
    "NameDirStatuses": "{\"active\":{}}"
}]}"#;

#[test]
fn default_rule_names_like_jmx_exporter() {
    let text = render("{}", NAMENODE);
    assert!(text.contains(
        "# HELP Hadoop_NameNode_BlocksTotal Hadoop:name=FSNamesystem,type=null,attribute=BlocksTotal\n# TYPE Hadoop_NameNode_BlocksTotal untyped\nHadoop_NameNode_BlocksTotal{name=\"FSNamesystem\"} 15\n"
    ), "{text}");
    let lines = samples(&text);
    assert!(
        lines.contains(&"Hadoop_NameNode_CapacityTotal{name=\"FSNamesystem\"} 1.07351072768e+11")
    );
    assert!(lines.contains(&"Hadoop_NameNode_PercentUsed{name=\"FSNamesystem\"} 3.918016e-05"));
    assert!(lines.contains(&"Hadoop_NameNode_NotReady{name=\"FSNamesystem\"} NaN"));
    assert!(lines.contains(&"Hadoop_NameNode_Safemode{name=\"FSNamesystem\"} 0"));
    // Strings give no sample without a `value`.
    assert!(!text.contains("HAState"), "{text}");
    assert!(!text.contains("NameDirStatuses"), "{text}");
}

#[test]
fn kafka_counter_rule_keeps_total_and_gauge_loses_it() {
    let beans = r#"{"beans": [{"name": "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec", "Count": 42, "OneMinuteRate": 0.7}]}"#;
    let counter = render(
        "lowercaseOutputName: true\nrules:\n  - pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*><>Count\n    name: kafka_$1_$2_$3_total\n    type: COUNTER\n",
        beans,
    );
    assert_eq!(
        counter,
        "# HELP kafka_server_brokertopicmetrics_messagesin_total kafka.server:name=MessagesInPerSec,type=BrokerTopicMetrics,attribute=Count\n# TYPE kafka_server_brokertopicmetrics_messagesin_total counter\nkafka_server_brokertopicmetrics_messagesin_total 42\n"
    );
    let gauge = render(
        "lowercaseOutputName: true\nrules:\n  - pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*><>Count\n    name: kafka_$1_$2_$3_total\n    type: GAUGE\n",
        beans,
    );
    assert_eq!(
        samples(&gauge),
        ["kafka_server_brokertopicmetrics_messagesin 42"]
    );
    let inferred = render(
        "lowercaseOutputName: true\ninferCounterTypeFromName: true\nrules:\n  - pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*><>Count\n    name: kafka_$1_$2_$3_total\n",
        beans,
    );
    assert!(
        inferred.contains("# TYPE kafka_server_brokertopicmetrics_messagesin_total counter"),
        "{inferred}"
    );
}

#[test]
fn composite_and_tabular_values() {
    let beans = r#"{"beans": [
      {"name": "java.lang:type=Memory", "HeapMemoryUsage": {"used": 78027104, "max": 100, "committed": 90, "init": 1}},
      {"name": "Hadoop:service=DataNode,name=DataNodeInfo",
       "DatanodeNetworkCounts": [{"key": "1.2.3.4", "value": [{"key": "networkErrors", "value": 338}]}],
       "History": [1, 2, 3]}
    ]}"#;
    let text = render("{}", beans);
    let lines = samples(&text);
    assert!(
        lines.contains(&"java_lang_Memory_HeapMemoryUsage_used 7.8027104e+07"),
        "{text}"
    );
    assert!(lines.contains(&"Hadoop_DataNode_DatanodeNetworkCounts{key=\"1.2.3.4\",key_=\"networkErrors\",name=\"DataNodeInfo\"} 338"), "{text}");
    assert!(!text.contains("History"), "arrays are skipped: {text}");

    // The pattern input, as jmx_exporter builds it.
    let text = render(
        "rules:\n  - pattern: '^(.*)$'\n    name: input\n    labels:\n      input: $1\n",
        beans,
    );
    assert!(text.contains(r#"input="Hadoop<service=DataNode, name=DataNodeInfo, key=1.2.3.4, key_=networkErrors><>DatanodeNetworkCounts: 338""#), "{text}");
    assert!(
        text.contains(r#"input="java.lang<type=Memory><HeapMemoryUsage>used: 78027104""#),
        "{text}"
    );
}

#[test]
fn values_labels_help_and_factor() {
    let text = render(
        r#"rules:
  - pattern: 'Hadoop<service=(\w+), name=FSNamesystem><>tag.HAState: active'
    name: hadoop_$1_ha_active
    value: 1
    help: "HA state of the $1"
  - pattern: 'Hadoop<service=(\w+), name=(\w+)><>CapacityTotal:'
    name: hadoop_capacity_bytes
    valueFactor: 0.5
    type: GAUGE
    labels:
      role: $1
      bean: "$2"
      empty: ""
  - pattern: 'Hadoop<service=(\w+), name=(\w+)><>Safemode'
    name: hadoop_safemode
    valueFactor: 10
"#,
        NAMENODE,
    );
    assert!(
        text.contains("# HELP hadoop_NameNode_ha_active HA state of the NameNode\n"),
        "{text}"
    );
    let lines = samples(&text);
    assert!(lines.contains(&"hadoop_NameNode_ha_active 1"), "{text}");
    assert!(
        lines.contains(
            &"hadoop_capacity_bytes{bean=\"FSNamesystem\",role=\"NameNode\"} 5.3675536384e+10"
        ),
        "{text}"
    );
    // Booleans are 1 or 0, unscaled.
    assert!(lines.contains(&"hadoop_safemode 0"), "{text}");
    assert_eq!(lines.len(), 3, "unmatched attributes are dropped: {text}");
}

#[test]
fn objectname_label_separates_colliding_samples() {
    let beans = r#"{"beans": [
      {"name": "kafka.rest:type=jersey-metrics,client=a", "request-total": 5},
      {"name": "kafka.rest:type=jersey-metrics,client=b", "request-total": 7}
    ]}"#;
    let text = render(
        "rules:\n  - pattern: 'kafka.rest<type=jersey-metrics.*><>request-total'\n    name: kafka_rest_requests\n",
        beans,
    );
    assert_eq!(
        samples(&text),
        [
            "kafka_rest_requests{_objectname=\"kafka.rest<type=jersey-metrics, client=a><>request-total\"} 5",
            "kafka_rest_requests{_objectname=\"kafka.rest<type=jersey-metrics, client=b><>request-total\"} 7",
        ]
    );
}

#[test]
fn negative_counters_and_mixed_types() {
    let beans = r#"{"beans": [{"name": "app:type=Queue", "Size": -1, "Depth": 3}]}"#;
    let text = render(
        "rules:\n  - pattern: 'app<type=Queue><>Size'\n    name: app_size\n    type: COUNTER\n  - pattern: 'app<type=Queue><>Depth'\n    name: app_depth\n    type: COUNTER\n",
        beans,
    );
    assert_eq!(samples(&text), ["app_depth_total 3"], "{text}");
    let mixed = render(
        "rules:\n  - pattern: 'Size'\n    name: app_things\n    type: COUNTER\n    labels: {what: size}\n  - pattern: 'Depth'\n    name: app_things_total\n    type: GAUGE\n    labels: {what: depth}\n",
        r#"{"beans": [{"name": "app:type=Queue", "Size": 1, "Depth": 3}]}"#,
    );
    assert!(mixed.contains("# TYPE app_things untyped"), "{mixed}");
}

#[test]
fn snake_case_and_cache_rules() {
    let beans = r#"{"beans": [{"name": "app:type=Pool", "ActiveCount": 4, "IdleCount": 2}]}"#;
    let snake = render(
        "rules:\n  - pattern: 'app<type=Pool><>active_count'\n    attrNameSnakeCase: true\n",
        beans,
    );
    assert_eq!(samples(&snake), ["app_Pool_active_count 4"]);
    // A cache rule sees `<cache>` for the value, so a value pattern never matches it.
    let cached = render(
        "rules:\n  - pattern: 'app<type=Pool><>ActiveCount: 4'\n    name: by_value\n    cache: true\n  - pattern: 'app<type=Pool><>ActiveCount: <cache>'\n    name: by_cache\n    cache: true\n",
        beans,
    );
    assert_eq!(samples(&cached), ["by_cache 4"], "{cached}");
}

#[test]
fn empty_name_or_bad_value_stops_the_search() {
    let beans = r#"{"beans": [{"name": "app:type=Pool", "State": "RUNNING", "Count": 1}]}"#;
    let text = render(
        "rules:\n  - pattern: 'State: (\\w+)'\n    name: app_state\n    value: $1\n  - pattern: 'Count'\n    name: '$0'\n    labels: {}\n  - pattern: '.*'\n",
        beans,
    );
    // `State` is dropped by rule 1 (RUNNING is no number), not passed on to the catch-all.
    assert!(!text.contains("State"), "{text}");
}

#[test]
fn lookaround_patterns_work() {
    let beans = r#"{"beans": [{"name": "org.apache.cassandra.metrics:type=Client,name=connectedNativeClients", "Count": 3},
                                {"name": "org.apache.cassandra.metrics:type=Client,name=scopeThing", "Count": 4}]}"#;
    let text = render(
        "rules:\n  - pattern: org.apache.cassandra.metrics<type=(\\w+), name=((?!scope)\\S*)><>Count\n    name: cassandra_$1_$2\n",
        beans,
    );
    assert_eq!(
        samples(&text),
        ["cassandra_Client_connectedNativeClients 3"]
    );
}

#[test]
fn config_errors_are_located() {
    let yaml = "rules:\n  - pattern: ok\n  - pattern: 'a(b'\n";
    let raw: RawConfig = parse_yaml(Path::new("r.yml"), yaml).unwrap();
    let error = RuleSet::compile(raw, &|path, message| {
        ConfigError::at_key(Path::new("r.yml"), yaml, path, message)
    })
    .unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.to_string().contains("rules[1].pattern"), "{error}");

    for (yaml, line, needle) in [
        (
            "rules:\n  - pattern: x\n    name: y\n    labels: {a: b}\n  - labels: {a: b}\n",
            5,
            "need a name",
        ),
        ("rules:\n  - pattern: x\n    name: $2\n", 3, "$2"),
        (
            "rules:\n  - pattern: x\n    valueFactor: lots\n",
            3,
            "valueFactor",
        ),
        ("startDelaySeconds: -1\n", 1, "startDelaySeconds"),
        ("includeObjectNames: ['nocolon']\n", 1, "includeObjectNames"),
    ] {
        let raw: RawConfig = parse_yaml(Path::new("r.yml"), yaml).unwrap();
        let error = RuleSet::compile(raw, &|path, message| {
            ConfigError::at_key(Path::new("r.yml"), yaml, path, message)
        })
        .unwrap_err();
        assert_eq!(error.line, Some(line), "{yaml}: {error}");
        assert!(error.to_string().contains(needle), "{yaml}: {error}");
    }
    // Unknown keys (agent and HTTP server settings, say) are accepted, as upstream.
    rules(
        "httpServer:\n  threads: 4\nhostPort: localhost:9999\nssl: false\nlowercaseOutputName: yes\nrules: []\n",
    );
}

/// The cached path must give what a plain run of the rules gives, for every value, with
/// patterns that look at the value, capture into it, or match everything; with rules in
/// every lane (plain and snake-cased names, values and `<cache>`), rules no lane holds
/// (lookaround), and a rule without a pattern.
#[test]
fn cache_agrees_with_plain_evaluation() {
    let value_rules = r#"
  - pattern: 'app<type=(\w+)><>Count: (\d+)$'
    name: by_value_$1
    value: $2
  - pattern: 'app<type=(\w+)><>Ratio: 0\.5'
    name: half_$1
  - pattern: 'app<type=(\w+)><>(Other): (.*)'
    name: tail_$2
    labels:
      rest: $3
  - pattern: 'app<type=(\w+)><>Level'
    name: level_$1
"#;
    let rule_sets = [
        format!(
            "rules:{value_rules}  - pattern: '(\\d)'\n    name: last_digit_$1\n  - pattern: 'Fixed'\n    name: fixed\n    cache: true\n  - pattern: '.*'\n"
        ),
        format!(
            "rules:\n  - pattern: 'app<type=(\\w+)><>x_(\\d)'\n    name: snake_$1_$2\n    attrNameSnakeCase: true\n  - pattern: 'app<type=(?!Pool)(\\w+)><>(\\w+): 1'\n    name: not_pool_$2\n{}  - {{}}\n",
            value_rules.trim_start_matches('\n')
        ),
        format!(
            "rules:{value_rules}  - pattern: 'app<type=Pool><>(\\w+): (?=4)(\\d+)'\n    name: lookahead_$1\n  - pattern: 'Fixed'\n    name: fixed\n    cache: true\n"
        ),
    ];
    let names = ["Count", "Ratio", "Level", "Other", "Fixed", "X9", "X_1"];
    let values = [
        "1",
        "42",
        "0.5",
        "0.25",
        "true",
        "false",
        "NaN",
        "-1",
        "1.0E9",
        "RUNNING",
        "a: b",
        "",
        "7",
        "Count: 3",
        "line\nbreak",
        "9",
    ];
    for yaml in &rule_sets {
        let rules = rules(yaml);
        let mut cache = MatchCache::new(&rules);
        let mut attributes = Attributes::default();
        let mut reused = 0;
        for round in 0..3 {
            for name in names {
                for (i, value) in values.iter().enumerate() {
                    let leaf = if i < 9 {
                        Leaf::Number(value)
                    } else {
                        Leaf::Text(value)
                    };
                    let properties = [("type", "Pool")];
                    let attribute = Attribute {
                        domain: "app",
                        properties: &properties,
                        attr_keys: &[],
                        name,
                        value: leaf,
                        extra_labels: &[],
                        bean_properties: 1,
                    };
                    let expected = evaluate_uncached(&rules, &attribute);
                    let (got, source) = cache.evaluate(&rules, &mut attributes, &attribute, true);
                    assert_eq!(got, expected, "{yaml}\nround {round}: {name}: {value}");
                    reused += usize::from(source == Source::Cached);
                }
            }
        }
        assert!(!attributes.is_empty(), "{yaml}");
        assert!(reused > 0, "{yaml}: nothing was reused");
    }
}

/// A target that answers with new bean names on every probe (what the idle sweep alone lets
/// grow for ten minutes) is held to the cache's limits: past them it starts afresh.
#[test]
fn new_names_every_pass_are_held_to_the_cache_limits() {
    use kiln_jmx::rules::cache::Limits;
    use kiln_jmx::walk::WalkStats;
    let rules = rules(
        "rules:\n  - pattern: 'app<type=(\\w+), name=(\\w+)><>Count'\n    name: app_$1_count\n    labels: {name: $2}\n",
    );
    let mut cache = MatchCache::new(&rules);
    cache.set_limits(Limits {
        entries: 100,
        bytes: usize::MAX,
    });
    let mut stats = WalkStats::default();
    // New names every pass are never remembered: a result is kept from a bean's second
    // answer on.
    for pass in 0..6 {
        cache.start_pass();
        for bean in 0..40 {
            let name = format!("app:type=Pool,name=p{pass}b{bean}");
            read_count(&mut cache, &rules, &name, &mut stats);
        }
        assert_eq!(cache.len(), 0);
    }
    // Each name twice (the names of two passes back, then new ones): 40 remembered a pass.
    let mut most = 0;
    for pass in 0..12 {
        cache.start_pass();
        most = most.max(cache.len());
        for bean in 0..40 {
            let name = format!("app:type=Pool,name=q{}b{bean}", pass / 2);
            read_count(&mut cache, &rules, &name, &mut stats);
        }
    }
    // The cache never starts a pass holding more than the limit plus one pass's worth, and
    // it did start afresh.
    assert!(most <= 100 + 40, "{most}");
    assert!(cache.resets() >= 1);
    assert!(cache.len() <= 140, "{}", cache.len());
}

/// One answer with more attributes than the cache may remember is held to the limits while
/// it is walked, not only from the next pass on.
#[test]
fn one_large_answer_is_held_to_the_cache_limits_within_its_pass() {
    use kiln_jmx::rules::cache::Limits;
    use kiln_jmx::walk::WalkStats;
    let rules = rules(
        "rules:\n  - pattern: 'app<type=(\\w+), name=(\\w+)><>(\\w+)'\n    name: app_$1_$3\n    labels: {name: $2}\n",
    );
    let mut cache = MatchCache::new(&rules);
    cache.set_limits(Limits {
        entries: 100,
        bytes: usize::MAX,
    });
    let mut stats = WalkStats::default();
    // 90 beans of 12 attributes: the first answer only makes the names known.
    let attributes: Vec<String> = (0..12).map(|a| format!("Count{a}")).collect();
    let attributes: Vec<&str> = attributes.iter().map(String::as_str).collect();
    cache.start_pass();
    for bean in 0..90 {
        let name = format!("app:type=Pool,name=b{bean}");
        read_attributes(&mut cache, &rules, &name, &attributes, &mut stats);
    }
    assert_eq!(cache.len(), 0);
    cache.start_pass();
    let mut most = 0;
    for bean in 0..90 {
        let name = format!("app:type=Pool,name=b{bean}");
        for outcome in read_attributes(&mut cache, &rules, &name, &attributes, &mut stats) {
            assert!(
                matches!(outcome, kiln_jmx::rules::evaluate::Outcome::Matched(_)),
                "{name}"
            );
        }
        most = most.max(cache.len());
    }
    assert!(most <= 100, "{most}");
    assert!(cache.resets() >= 9, "{}", cache.resets());
}

/// Reads bean `name`'s `attributes` through the cache, as a walk does.
fn read_attributes(
    cache: &mut MatchCache,
    rules: &RuleSet,
    name: &str,
    attributes: &[&str],
    stats: &mut kiln_jmx::walk::WalkStats,
) -> Vec<kiln_jmx::rules::evaluate::Outcome> {
    let Some((_, mut table)) = cache.open_bean(rules, name, stats) else {
        panic!("{name} is read");
    };
    let properties = [("type", "Pool"), ("name", "x")];
    let outcomes = attributes
        .iter()
        .map(|attribute| {
            let attribute = Attribute {
                domain: "app",
                properties: &properties,
                attr_keys: &[],
                name: attribute,
                value: Leaf::Number("1"),
                extra_labels: &[],
                bean_properties: 2,
            };
            cache.evaluate(rules, &mut table, &attribute, true).0
        })
        .collect();
    cache.close_bean(name, table);
    outcomes
}

/// Reads bean `name`'s `Count` attribute through the cache, as a walk does.
fn read_count(
    cache: &mut MatchCache,
    rules: &RuleSet,
    name: &str,
    stats: &mut kiln_jmx::walk::WalkStats,
) -> kiln_jmx::rules::evaluate::Outcome {
    let mut outcomes = read_attributes(cache, rules, name, &["Count"], stats);
    outcomes.remove(0)
}
