//! A real Prometheus probing through kiln-jmx-exporter: a JVM that cannot be read sets `up`
//! to 0 by default (as with the java agent) or leaves `up` 1 with `jmx_scrape_error 1`, and
//! the Hadoop dashboard's "reachable" query says 0 under both; a NameNode answer read with
//! 0.x names answers a 0.x dashboard's job variable.

#![allow(clippy::unwrap_used)]

mod support;

use kiln_test_support::Prometheus;
use support::{Exporter, StaticServer, fixture, free_port};

/// A probe job for `module` against `target`, with the usual multi-target relabelling.
fn job(name: &str, module: &str, target: &str, exporter: u16) -> String {
    format!(
        "  - job_name: {name}\n    metrics_path: /probe\n    params: {{module: [{module}]}}\n    static_configs:\n      - targets: ['{target}']\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        replacement: 127.0.0.1:{exporter}\n"
    )
}

#[test]
fn up_and_the_dashboard_under_both_choices_for_a_dead_jvm() {
    let rules = std::fs::read_to_string(fixture("jmx_exporter-0.13-namenode.yml")).unwrap();
    let exporter = Exporter::start(
        "modules:\n  agent_like:\n    bridge: hadoop\n    timeout: 1s\n  standalone_like:\n    bridge: hadoop\n    timeout: 1s\n    on_target_error: jmx_scrape_error\n  namenode_0x:\n    bridge: hadoop\n    naming: 0.x\n    rules_file: namenode.yml\n",
        &[("namenode.yml", &rules)],
    );
    let namenode = StaticServer::recorded("namenode-kiln-test-jvm.json");
    let dead = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n{}{}{}",
        job("dead_agent_like", "agent_like", &dead, exporter.port),
        job(
            "dead_standalone_like",
            "standalone_like",
            &dead,
            exporter.port
        ),
        job("namenode", "namenode_0x", &namenode.target(), exporter.port),
    );
    let prometheus = Prometheus::start(&config);
    // The dashboard's "Reachable through the JMX proxy" query (dashboards/generate.py).
    let reachable =
        |job: &str| format!("(1 - jmx_scrape_error{{job=~\"{job}\"}}) or up{{job=~\"{job}\"}}");
    let cases = [
        ("up{job=\"dead_agent_like\"}".to_owned(), 0.0),
        (reachable("dead_agent_like"), 0.0),
        ("up{job=\"dead_standalone_like\"}".to_owned(), 1.0),
        (
            "jmx_scrape_error{job=\"dead_standalone_like\"}".to_owned(),
            1.0,
        ),
        (reachable("dead_standalone_like"), 0.0),
        ("up{job=\"namenode\"}".to_owned(), 1.0),
        (reachable("namenode"), 1.0),
        // What a 0.x dashboard's job variable, label_values(hdfs_namenode_capacity_total,
        // job), finds.
        (
            "count by (job) (hdfs_namenode_capacity_total{job=\"namenode\"})".to_owned(),
            1.0,
        ),
        (
            "hdfs_namenode_files_created{job=\"namenode\"}".to_owned(),
            61.0,
        ),
    ];
    for (expr, expected) in cases {
        let result = prometheus.query_result(&expr);
        assert_eq!(result.as_array().unwrap().len(), 1, "{expr}: {result}");
        let got: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert_eq!(got, expected, "{expr}: {result}");
    }
}
