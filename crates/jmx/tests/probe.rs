//! `/probe` without a JVM: recorded Hadoop answers, targets that refuse or never answer,
//! requests that are wrong in themselves, bad configuration at start, and reloads.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use kiln_test_support::value;
use support::{Exporter, StaticServer, check_config, deploy_file, free_port, http};

#[test]
fn recorded_namenode_and_datanode_answers() {
    let namenode = StaticServer::recorded("namenode-nameNodeInfo.json");
    let datanode = StaticServer::recorded("datanode-dataNodeInfo.json");
    let exporter = Exporter::start(
        "modules:\n  hadoop:\n    bridge: hadoop\n  namenode:\n    bridge: hadoop\n    rules_file: namenode.yml\n",
        &[("namenode.yml", &deploy_file("emr/jmx/hadoop-namenode.yml"))],
    );
    let text = exporter.probe(&namenode.target(), "hadoop");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(0.0), "{text}");
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_Total{name="NameNodeInfo"}"#),
        Some(62_725_623_808.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_PercentUsed{name="NameNodeInfo"}"#),
        Some(3.918016e-5)
    );
    assert_eq!(
        value(
            &text,
            r#"Hadoop_NameNode_UpgradeFinalized{name="NameNodeInfo"}"#
        ),
        Some(1.0)
    );
    // DistinctVersions is an MXBean map of version → count.
    assert!(
        text.contains(r#"Hadoop_NameNode_DistinctVersions{key="#),
        "{text}"
    );

    let text = exporter.probe(&namenode.target(), "namenode");
    assert_eq!(value(&text, "hadoop_namenode_PercentUsed"), None);
    assert_eq!(
        value(&text, "hadoop_namenode_percentused"),
        Some(3.918016e-5),
        "{text}"
    );
    assert_eq!(
        value(&text, "hadoop_namenode_safemode"),
        Some(0.0),
        "{text}"
    );

    let text = exporter.probe(&datanode.target(), "hadoop");
    assert_eq!(
        value(
            &text,
            r#"Hadoop_DataNode_XceiverCount{name="DataNodeInfo"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn dead_and_hung_targets_fail_fast() {
    let hung = StaticServer::start(None);
    let exporter = Exporter::start(
        "modules:\n  hadoop:\n    bridge: hadoop\n    timeout: 1s\n    on_target_error: jmx_scrape_error\n  jolokia:\n    bridge: jolokia\n    timeout: 1s\n    on_target_error: jmx_scrape_error\n  agent_like:\n    bridge: hadoop\n    timeout: 1s\n",
        &[],
    );
    let closed = format!("127.0.0.1:{}", free_port());
    let text = exporter.probe(&closed, "hadoop");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(1.0), "{text}");

    // By default a JVM that cannot be read fails the scrape, so `up` is 0 as with the agent.
    for target in [&closed, &hung.target()] {
        let started = Instant::now();
        let (status, body) = exporter.probe_answer(target, "agent_like");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.starts_with(&format!("cannot read {target} (module agent_like)")),
            "{body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    for module in ["hadoop", "jolokia"] {
        let started = Instant::now();
        let text = exporter.probe(&hung.target(), module);
        assert_eq!(value(&text, "jmx_scrape_error"), Some(1.0), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    // The scrape timeout Prometheus sends shortens the module's.
    let started = Instant::now();
    let (status, text) = http(
        exporter.port,
        "GET",
        &format!("/probe?target={}&module=hadoop", hung.target()),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "0.6")],
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(value(&text, "jmx_scrape_error"), Some(1.0), "{text}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    let metrics = exporter.metrics();
    assert_eq!(
        value(
            &metrics,
            r#"jmx_probe_errors_total{module="hadoop",reason="connect"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        value(
            &metrics,
            r#"jmx_probe_errors_total{module="hadoop",reason="timeout"}"#
        ),
        Some(2.0),
        "{metrics}"
    );
}

#[test]
fn malformed_answers_are_errors_not_crashes() {
    let truncated = StaticServer::start(Some("\"beans\" : [ {\"name\": ".into()));
    let exporter = Exporter::start(
        "modules:\n  hadoop:\n    bridge: hadoop\n    on_target_error: jmx_scrape_error\n  failing:\n    bridge: hadoop\n",
        &[],
    );
    let text = exporter.probe(&truncated.target(), "hadoop");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(1.0), "{text}");
    let (status, body) = exporter.probe_answer(&truncated.target(), "failing");
    assert_eq!(status, 503, "{body}");
    let metrics = exporter.metrics();
    assert_eq!(
        value(
            &metrics,
            r#"jmx_probe_errors_total{module="hadoop",reason="invalid_json"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn requests_that_are_wrong_in_themselves() {
    let exporter = Exporter::start(
        "modules:\n  hadoop:\n    bridge: hadoop\n  other:\n    bridge: jolokia\nallowed_targets: ['127.0.0.1', 'nn1:9870']\n",
        &[],
    );
    let cases = [
        (
            "/probe?target=127.0.0.1:1&module=nope",
            400,
            "unknown module",
        ),
        (
            "/probe?target=127.0.0.1:1",
            400,
            "module parameter is missing",
        ),
        ("/probe?module=hadoop", 400, "target parameter is missing"),
        (
            "/probe?target=http://127.0.0.1:1/x&module=hadoop",
            400,
            "target",
        ),
        (
            "/probe?target=127.0.0.1:1/../admin&module=hadoop",
            400,
            "target",
        ),
        (
            "/probe?target=10.9.9.9:9870&module=hadoop",
            403,
            "allowed_targets",
        ),
        (
            "/probe?target=nn2:9870&module=hadoop",
            403,
            "allowed_targets",
        ),
    ];
    for (path, status, needle) in cases {
        let (got, body) = exporter.get(path).unwrap();
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
}

#[test]
fn builtin_modules_without_a_file() {
    let server = StaticServer::recorded("datanode-dataNodeInfo.json");
    let exporter = Exporter::start_with(tempfile::tempdir().unwrap(), &[]);
    let text = exporter.probe(&server.target(), "hadoop");
    assert_eq!(
        value(
            &text,
            r#"Hadoop_DataNode_XceiverCount{name="DataNodeInfo"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn bad_configuration_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jmx.yml");
    std::fs::write(
        &config,
        "modules:\n  hdfs:\n    bridge: hadoop\n    rules_file: rules.yml\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("rules.yml"), "lowercaseOutputName: true\nrules:\n  - pattern: ok\n  - pattern: 'Hadoop<(.+'\n    name: x\n").unwrap();
    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("rules.yml:4"), "{stderr}");
    assert!(stderr.contains("rules[1].pattern"), "{stderr}");

    std::fs::write(dir.path().join("rules.yml"), "rules: []\n").unwrap();
    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(0), "{stderr}");

    // Keys jmx_exporter does not know are reported with file, line and key, and a misspelt
    // `rules` is refused.
    std::fs::write(
        dir.path().join("rules.yml"),
        "lowercaseOutputNme: true\nrules:\n  - pattern: ok\n    nmae: x\n",
    )
    .unwrap();
    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("rules.yml:1: lowercaseOutputNme: unknown key, ignored (did you mean `lowercaseOutputName`?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rules.yml:4: rules[0].nmae: unknown key"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("rules.yml"),
        "lowercaseOutputName: true\nRule:\n  - pattern: ok\n",
    )
    .unwrap();
    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("rules.yml:2: Rule: unknown key `Rule` holds what looks like rules"),
        "{stderr}"
    );

    // The shipped EMR configuration loads.
    let shipped = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/emr/jmx/kiln-jmx.yml");
    let (code, stderr) = check_config(&shipped);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn rules_reload_on_change_and_on_request() {
    let server = StaticServer::recorded("datanode-dataNodeInfo.json");
    let exporter = Exporter::start(
        "modules:\n  dn:\n    bridge: hadoop\n    rules_file: rules.yml\n",
        &[(
            "rules.yml",
            "rules:\n  - pattern: XceiverCount\n    name: first_name\n",
        )],
    );
    assert_eq!(
        value(&exporter.probe(&server.target(), "dn"), "first_name"),
        Some(1.0)
    );
    // The exporter's own families come from a collector the registry runs.
    let metrics = exporter.metrics();
    assert_eq!(
        value(&metrics, "jmx_scrape_collector_success{collector=\"jmx\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(metrics.contains("jmx_scrape_collector_duration_seconds{collector=\"jmx\"} "));

    // A broken file is refused and the rules in force stay.
    std::fs::write(
        exporter.dir.path().join("rules.yml"),
        "rules:\n  - pattern: '('\n",
    )
    .unwrap();
    let (status, body) = exporter.request("POST", "/-/reload").unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("rules.yml"), "{body}");
    assert_eq!(
        value(&exporter.probe(&server.target(), "dn"), "first_name"),
        Some(1.0)
    );

    // A good one is picked up by itself, as jmx_exporter watches its file.
    std::fs::write(
        exporter.dir.path().join("rules.yml"),
        "rules:\n  - pattern: XceiverCount\n    name: second_name\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = exporter.probe(&server.target(), "dn");
        if value(&text, "second_name") == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "not reloaded: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = exporter.metrics();
    assert!(
        value(&metrics, "jmx_config_reload_success_total").is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
    assert!(
        value(&metrics, "jmx_config_reload_failure_total").is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
}

#[test]
fn a_plain_jmx_exporter_file_with_its_target_named_by_flag() {
    let namenode = StaticServer::recorded("namenode-nameNodeInfo.json");
    let dir = tempfile::tempdir().unwrap();
    let rules =
        std::fs::read_to_string(support::fixture("jmx_exporter-0.13-namenode.yml")).unwrap();
    std::fs::write(dir.path().join("namenode.yml"), &rules).unwrap();
    let args = [
        format!(
            "--config.file={}",
            dir.path().join("namenode.yml").display()
        ),
        format!("--jmx.target=http://{}/jmx", namenode.target()),
        "--jmx.naming=0.x".to_owned(),
    ];
    let exporter = Exporter::start_with(dir, &args);
    // /probe without parameters reads the flag's target with the file's rules.
    let (status, text) = exporter.get("/probe").unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        value(&text, r#"hdfs_namenode_total{name="NameNodeInfo"}"#),
        Some(62_725_623_808.0),
        "{text}"
    );
    assert_eq!(value(&text, "jmx_scrape_error"), Some(0.0), "{text}");
    // The flag's target is the only one it reaches.
    let other = StaticServer::recorded("datanode-dataNodeInfo.json");
    let (status, _) = exporter
        .get(&format!("/probe?target={}", other.target()))
        .unwrap();
    assert_eq!(status, 403);
}

#[test]
fn rmi_keys_in_a_plain_file_are_refused_and_flags_need_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("standalone.yml");
    std::fs::write(
        &file,
        "hostPort: nn1:8004\nlowercaseOutputName: true\nrules:\n  - pattern: '.*'\n",
    )
    .unwrap();
    let (code, stderr) = check_config(&file);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("standalone.yml:1: hostPort: names a JMX (RMI) port"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--jmx.target=http://HOST:PORT/jmx"),
        "{stderr}"
    );

    // The same file without hostPort is a valid configuration as it is.
    std::fs::write(
        &file,
        "lowercaseOutputName: true\nrules:\n  - pattern: '.*'\n",
    )
    .unwrap();
    let (code, stderr) = check_config(&file);
    assert_eq!(code, Some(0), "{stderr}");

    // --jmx.* flags complete a plain file only.
    let modules = dir.path().join("jmx.yml");
    std::fs::write(&modules, "modules:\n  a:\n    bridge: hadoop\n").unwrap();
    let output = std::process::Command::new(support::EXPORTER)
        .arg(format!("--config.file={}", modules.display()))
        .arg("--jmx.naming=0.x")
        .arg("--check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("--jmx.naming completes a plain jmx_exporter file"),
        "{stderr}"
    );
}

#[test]
fn repeated_series_under_0x_naming_keep_the_first_and_are_counted() {
    // Two beans whose samples a rule gives one name and no labels: 0.x repeats the series
    // (Prometheus keeps the first), 1.x tells them apart with `_objectname`.
    let server = StaticServer::start(Some(
        r#"{"beans": [{"name": "a:type=X,name=one", "Count": 1}, {"name": "a:type=X,name=two", "Count": 2}]}"#.into(),
    ));
    let rules = "rules:\n  - pattern: 'a<type=X, name=\\w+><>Count'\n    name: a_count\n";
    let exporter = Exporter::start(
        &format!(
            "modules:\n  old:\n    bridge: hadoop\n    naming: 0.x\n    rules: {{{rules}}}\n  new:\n    bridge: hadoop\n    rules_file: rules.yml\n",
            rules = "rules: [{pattern: 'a<type=X, name=\\w+><>Count', name: a_count}]"
        ),
        &[("rules.yml", rules)],
    );
    let old = exporter.probe(&server.target(), "old");
    let counts: Vec<&str> = old.lines().filter(|l| l.starts_with("a_count")).collect();
    assert_eq!(counts.len(), 1, "{old}");
    let new = exporter.probe(&server.target(), "new");
    assert_eq!(
        new.lines()
            .filter(|l| l.starts_with("a_count{_objectname="))
            .count(),
        2,
        "{new}"
    );
    let metrics = exporter.metrics();
    assert_eq!(
        value(
            &metrics,
            r#"jmx_probe_dropped_total{module="old",reason="duplicate_sample"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn a_plain_jmx_exporter_file_without_a_target_flag_probes_any_target() {
    let namenode = StaticServer::recorded("namenode-nameNodeInfo.json");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plain.yml"), "lowercaseOutputName: true\n").unwrap();
    let args = [format!(
        "--config.file={}",
        dir.path().join("plain.yml").display()
    )];
    let exporter = Exporter::start_with(dir, &args);
    let (status, text) = exporter
        .get(&format!("/probe?target={}", namenode.target()))
        .unwrap();
    assert_eq!(status, 200, "{text}");
    // 1.x names by default: `Total` loses its suffix.
    assert_eq!(
        value(&text, r#"hadoop_namenode{name="NameNodeInfo"}"#),
        Some(62_725_623_808.0),
        "{text}"
    );
    let (status, _) = exporter.get("/probe").unwrap();
    assert_eq!(status, 400);
}

#[test]
fn a_panicking_collector_is_reported_and_probes_still_served() {
    let server = StaticServer::recorded("datanode-dataNodeInfo.json");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jmx.yml"),
        "modules:\n  dn:\n    bridge: hadoop\n",
    )
    .unwrap();
    let args = [format!(
        "--config.file={}",
        dir.path().join("jmx.yml").display()
    )];
    let exporter =
        Exporter::start_with_env(dir, &args, &[(kiln_registry::PANIC_COLLECTORS_ENV, "jmx")]);
    let metrics = exporter.metrics();
    assert_eq!(
        value(&metrics, "jmx_scrape_collector_success{collector=\"jmx\"}"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        value(
            &metrics,
            "jmx_scrape_collector_duration_seconds{collector=\"jmx\"}"
        )
        .is_some()
    );
    assert!(metrics.contains("process_resident_memory_bytes"));
    assert!(!metrics.contains("jmx_probes_total"), "{metrics}");
    // The collector serves the exporter's own families only; probes do not depend on it.
    let answer = exporter.probe(&server.target(), "dn");
    assert_eq!(
        value(
            &answer,
            "Hadoop_DataNode_XceiverCount{name=\"DataNodeInfo\"}"
        ),
        Some(1.0),
        "{answer}"
    );
    assert!(exporter.log_text().contains("made to panic"));
}
