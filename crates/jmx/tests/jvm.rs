//! kiln-jmx-exporter against a real JVM: Hadoop's own JMXJsonServlet (with real metrics2
//! sources) and a real Jolokia 1.7.1 agent core, over the platform MBeans and test MBeans
//! (composite, tabular, boolean, string, NaN, date), with jmx_exporter's example rules and
//! the Hadoop rule files shipped in deploy/.

#![allow(clippy::unwrap_used)]

mod support;

use kiln_test_support::value;
use support::{Exporter, TestJvm, deploy_file, fixture};

const BOTH: &str = "modules:\n  hadoop:\n    bridge: hadoop\n  jolokia:\n    bridge: jolokia\n";

#[test]
fn hadoop_servlet_with_default_rules() {
    let jvm = TestJvm::start();
    let exporter = Exporter::start(BOTH, &[]);
    let text = exporter.probe(&jvm.target(), "hadoop");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(0.0), "{text}");

    // A metrics2 source, as a NameNode's FSNamesystem is published.
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_BlocksTotal{name="FSNamesystem"}"#),
        Some(15.0)
    );
    assert_eq!(
        value(
            &text,
            r#"Hadoop_NameNode_CapacityTotal{name="FSNamesystem"}"#
        ),
        Some(107_351_072_768.0)
    );
    assert_eq!(
        value(
            &text,
            r#"Hadoop_NameNode_CapacityTotalGB{name="FSNamesystem"}"#
        ),
        Some(100.0)
    );
    // Hadoop's own JvmMetrics.
    assert!(
        value(&text, r#"Hadoop_NameNode_MemHeapUsedM{name="JvmMetrics"}"#).is_some_and(|v| v > 0.0),
        "{text}"
    );
    // The test MXBean: number, composite, MXBean map, boolean, NaN; strings, dates and arrays
    // give no sample.
    assert!(value(&text, r#"kiln_test_Sample_Count{name="first"}"#).is_some_and(|v| v >= 42.0));
    assert_eq!(
        value(&text, r#"kiln_test_Sample_Usage_used{name="first"}"#),
        Some(1024.0)
    );
    assert_eq!(
        value(
            &text,
            r#"kiln_test_Sample_CountsByKind{key="read",name="first"}"#
        ),
        Some(7.0)
    );
    assert_eq!(
        value(
            &text,
            r#"kiln_test_Sample_CountsByKind{key="write",name="first"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&text, r#"kiln_test_Sample_Enabled{name="first"}"#),
        Some(1.0)
    );
    assert!(value(&text, r#"kiln_test_Sample_NotANumber{name="first"}"#).is_some_and(f64::is_nan));
    assert!(!text.contains("kiln_test_Sample_State"), "{text}");
    assert!(!text.contains("kiln_test_Sample_History"), "{text}");
    // A quoted property value keeps its quotes, as in jmx_exporter.
    assert_eq!(
        value(&text, r#"kiln_test_Sample_Ratio{name="\"quoted,name\""}"#),
        Some(0.25),
        "{text}"
    );
    // The platform MBeans.
    assert!(value(&text, "java_lang_Memory_HeapMemoryUsage_used").is_some_and(|v| v > 0.0));
    // The JDK registers its collectors as `name=…,type=…`, so jmx_exporter (and this) names
    // them by collector.
    assert!(
        value(
            &text,
            r#"java_lang_Copy_CollectionCount{type="GarbageCollector"}"#
        )
        .is_some(),
        "{text}"
    );

    let metrics = exporter.metrics();
    assert_eq!(
        value(
            &metrics,
            r#"jmx_probes_total{module="hadoop",outcome="success"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    // Results are remembered from a bean's second answer on.
    assert_eq!(
        value(&metrics, r#"jmx_rule_cache_entries{module="hadoop"}"#),
        Some(0.0),
        "{metrics}"
    );
    let second = exporter.probe(&jvm.target(), "hadoop");
    let metrics = exporter.metrics();
    assert!(
        value(&metrics, r#"jmx_rule_cache_entries{module="hadoop"}"#).is_some_and(|v| v > 10.0),
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, r#"jmx_rule_cache_hits_total{module="hadoop"}"#),
        Some(0.0),
        "{metrics}"
    );

    // The third probe is answered from the match cache, with the same families.
    let again = exporter.probe(&jvm.target(), "hadoop");
    let families = |t: &str| {
        let mut names: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    };
    assert_eq!(families(&text), families(&second));
    assert_eq!(families(&text), families(&again));
    let metrics = exporter.metrics();
    let hits = value(&metrics, r#"jmx_rule_cache_hits_total{module="hadoop"}"#).unwrap();
    let attributes = value(&metrics, r#"jmx_rule_attributes_total{module="hadoop"}"#).unwrap();
    // Of three probes' attributes, the third's (less the few that hinge on their value).
    assert!(hits > attributes / 4.0, "{metrics}");
}

#[test]
fn jolokia_agent_with_default_rules() {
    let jvm = TestJvm::start();
    let exporter = Exporter::start(BOTH, &[]);
    let text = exporter.probe(&jvm.target(), "jolokia");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(0.0), "{text}");
    // Registration order (`type` first) even though Jolokia 1.7 sorts names by default.
    assert!(
        value(&text, r#"kiln_test_Sample_Count{name="first"}"#).is_some_and(|v| v >= 42.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"kiln_test_Sample_Usage_max{name="first"}"#),
        Some(4096.0)
    );
    // Jolokia writes an MXBean map as an object: without type information it reads as a
    // composite (documented difference from in-process jmx_exporter).
    assert_eq!(
        value(&text, r#"kiln_test_Sample_CountsByKind_read{name="first"}"#),
        Some(7.0)
    );
    // Jolokia writes NaN as null: no sample.
    assert!(!text.contains("NotANumber"), "{text}");
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_BlocksTotal{name="FSNamesystem"}"#),
        Some(15.0)
    );
    assert!(value(&text, "java_lang_Memory_HeapMemoryUsage_used").is_some_and(|v| v > 0.0));
    // The JVM's system properties are never read (as in jmx_exporter).
    assert!(!text.contains("SystemProperties"), "{text}");
}

#[test]
fn jmx_exporter_kafka_example_rules_through_jolokia() {
    let jvm = TestJvm::start();
    let rules = std::fs::read_to_string(fixture("jmx_exporter-kafka-kraft-3_0_0.yml")).unwrap();
    let exporter = Exporter::start(
        "modules:\n  kafka:\n    bridge: jolokia\n    rules_file: kafka.yml\n",
        &[("kafka.yml", &rules)],
    );
    let text = exporter.probe(&jvm.target(), "kafka");
    assert!(
        text.contains("# TYPE kafka_server_brokertopicmetrics_messagesin_total counter\n"),
        "{text}"
    );
    assert_eq!(
        value(&text, "kafka_server_brokertopicmetrics_messagesin_total"),
        Some(42.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"kafka_server_brokertopicmetrics_bytesin_total{topic="orders"}"#
        ),
        Some(7.0),
        "{text}"
    );
    // Everything else is left out by the rules.
    assert!(!text.contains("java_lang"), "{text}");
}

#[test]
fn shipped_namenode_rules_through_the_hadoop_servlet() {
    let jvm = TestJvm::start();
    let exporter = Exporter::start(
        "modules:\n  namenode:\n    bridge: hadoop\n    rules_file: namenode.yml\n",
        &[("namenode.yml", &deploy_file("emr/jmx/hadoop-namenode.yml"))],
    );
    let text = exporter.probe(&jvm.target(), "namenode");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(0.0), "{text}");
    for (series, expected) in [
        (r#"hadoop_namenode_ha_state{state="active"}"#, 1.0),
        ("hadoop_namenode_capacity_total_bytes", 107_351_072_768.0),
        (
            "hadoop_namenode_capacity_used_non_dfs_bytes",
            13_422_587_904.0,
        ),
        ("hadoop_namenode_blocks", 15.0),
        ("hadoop_namenode_files", 42.0),
        ("hadoop_namenode_under_replicated_blocks", 2.0),
        ("hadoop_namenode_num_live_data_nodes", 3.0),
        ("hadoop_namenode_num_dead_data_nodes", 1.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series}\n{text}");
    }
    assert!(
        value(&text, r#"hadoop_jvm_mem_heap_used_m{service="NameNode"}"#).is_some_and(|v| v > 0.0),
        "{text}"
    );
    assert!(
        value(&text, r#"hadoop_jvm_gc_count_total{service="NameNode"}"#).is_some(),
        "{text}"
    );
    // includeObjectNames keeps the test beans out.
    assert!(!text.contains("kiln_test"), "{text}");
}

#[test]
fn basic_auth_and_include_patterns() {
    let jvm = TestJvm::start();
    let exporter = Exporter::start(
        "modules:\n  good:\n    bridge: hadoop\n    path: /auth/jmx\n    basic_auth: {username: monitor, password_file: pass}\n    rules:\n      includeObjectNames: ['Hadoop:name=FSNamesystem,*', 'kiln.test:name=first,*']\n  bad:\n    bridge: hadoop\n    path: /auth/jmx\n    basic_auth: {username: monitor, password: wrong}\n",
        &[("pass", "s3cret\n")],
    );
    let text = exporter.probe(&jvm.target(), "good");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(0.0), "{text}");
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_BlocksTotal{name="FSNamesystem"}"#),
        Some(15.0)
    );
    assert!(
        text.contains("kiln_test_Sample_Count{name=\"first\"}"),
        "{text}"
    );
    assert!(!text.contains("quoted"), "{text}");
    assert!(!text.contains("JvmMetrics"), "{text}");

    let (status, body) = exporter.probe_answer(&jvm.target(), "bad");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("401"), "{body}");
    let metrics = exporter.metrics();
    assert_eq!(
        value(
            &metrics,
            r#"jmx_probe_errors_total{module="bad",reason="http_status"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn hadoop_servlet_with_0x_naming_per_module() {
    let jvm = TestJvm::start();
    let rules = std::fs::read_to_string(fixture("jmx_exporter-0.13-namenode.yml")).unwrap();
    let exporter = Exporter::start(
        "modules:\n  old:\n    bridge: hadoop\n    naming: 0.x\n    rules_file: namenode.yml\n  new:\n    bridge: hadoop\n    rules_file: namenode.yml\n",
        &[("namenode.yml", &rules)],
    );
    let old = exporter.probe(&jvm.target(), "old");
    let new = exporter.probe(&jvm.target(), "new");
    for (series_0x, series_1x, expected) in [
        (
            r#"hdfs_namenode_capacity_total{name="FSNamesystem"}"#,
            r#"hdfs_namenode_capacity{name="FSNamesystem"}"#,
            107_351_072_768.0,
        ),
        (
            r#"hdfs_namenode_files_total{name="FSNamesystem"}"#,
            r#"hdfs_namenode_files{name="FSNamesystem"}"#,
            42.0,
        ),
        (
            r#"hdfs_namenode_files_created{name="NameNodeActivity"}"#,
            r#"hdfs_namenode_files{name="NameNodeActivity"}"#,
            61.0,
        ),
    ] {
        assert_eq!(value(&old, series_0x), Some(expected), "{old}");
        assert_eq!(value(&new, series_1x), Some(expected), "{new}");
        assert_eq!(value(&new, series_0x), None, "{new}");
    }
    assert!(
        old.contains("# TYPE hdfs_namenode_capacity_total gauge\n"),
        "{old}"
    );
}

#[test]
fn a_plain_jmx_exporter_file_sends_its_username_and_password_as_basic_auth() {
    let jvm = TestJvm::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agent.yml"),
        "username: monitor\npassword: s3cret\nincludeObjectNames: ['Hadoop:name=FSNamesystem,*']\n",
    )
    .unwrap();
    let args = [
        format!("--config.file={}", dir.path().join("agent.yml").display()),
        format!("--jmx.target=http://{}/auth/jmx", jvm.target()),
    ];
    let exporter = Exporter::start_with(dir, &args);
    let (status, text) = exporter.get("/probe").unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_BlocksTotal{name="FSNamesystem"}"#),
        Some(15.0),
        "{text}"
    );
}

#[test]
fn jvm_metrics_from_the_same_answer_through_both_bridges() {
    let jvm = TestJvm::start();
    let exporter = Exporter::start(
        "modules:\n  hadoop_0x:\n    bridge: hadoop\n    naming: 0.x\n    jvm_metrics: true\n    rules:\n      includeObjectNames: ['Hadoop:name=FSNamesystem,*']\n  jolokia_1x:\n    bridge: jolokia\n    jvm_metrics: true\n    rules:\n      includeObjectNames: ['Hadoop:name=FSNamesystem,*']\n  without:\n    bridge: hadoop\n    rules:\n      includeObjectNames: ['Hadoop:name=FSNamesystem,*']\n",
        &[],
    );
    for (module, used, pool_used) in [
        (
            "hadoop_0x",
            "jvm_memory_bytes_used",
            "jvm_memory_pool_bytes_used",
        ),
        (
            "jolokia_1x",
            "jvm_memory_used_bytes",
            "jvm_memory_pool_used_bytes",
        ),
    ] {
        let text = exporter.probe(&jvm.target(), module);
        assert!(
            value(&text, &format!(r#"{used}{{area="heap"}}"#)).is_some_and(|v| v > 0.0),
            "{module}\n{text}"
        );
        assert!(
            value(&text, &format!(r#"{pool_used}{{pool="Eden Space"}}"#)).is_some_and(|v| v > 0.0),
            "{module}\n{text}"
        );
        for series in [
            r#"jvm_gc_collection_seconds_count{gc="Copy"}"#,
            r#"jvm_gc_collection_seconds_sum{gc="MarkSweepCompact"}"#,
            "jvm_threads_started_total",
        ] {
            assert!(value(&text, series).is_some(), "{module} {series}\n{text}");
        }
        for series in [
            "jvm_threads_current",
            "jvm_classes_loaded_total",
            "process_cpu_seconds_total",
            "process_open_fds",
        ] {
            assert!(
                value(&text, series).is_some_and(|v| v > 0.0),
                "{module} {series}\n{text}"
            );
        }
        let started = value(&text, "process_start_time_seconds").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(now - 600.0 < started && started <= now, "{started} {now}");
        // The rules still see only the beans their own filter admits.
        assert!(!text.contains("java_lang"), "{module}\n{text}");
        assert!(
            text.contains("Hadoop_NameNode_BlocksTotal"),
            "{module}\n{text}"
        );
    }
    let text = exporter.probe(&jvm.target(), "without");
    assert!(!text.contains("jvm_"), "{text}");
}
