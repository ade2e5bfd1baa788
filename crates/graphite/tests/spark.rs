//! A real Spark (PySpark, installed by scripts/test) runs a small job whose GraphiteSinks
//! report to two exporters — one over TCP with the mapping a real team runs, one over UDP
//! with the fuller mapping shipped in deploy/emr — and to a plain TCP listener that
//! records exactly what Spark sent. Every mapped series must carry the value Spark sent.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use support::{Exporter, fixture, value_in};

/// Records every byte sent to it, over as many connections as come.
fn capture_server() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let sink = Arc::clone(&sink);
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = stream.read_to_end(&mut bytes);
                sink.lock().unwrap().extend_from_slice(&bytes);
            });
        }
    });
    (port, received)
}

/// Per name, the values in the order Spark sent them.
fn reports(captured: &[u8]) -> BTreeMap<String, Vec<f64>> {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in String::from_utf8_lossy(captured).lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "Spark sent {line:?}");
        values
            .entry(fields[0].to_owned())
            .or_default()
            .push(fields[1].parse().unwrap());
    }
    values
}

#[test]
fn spark_graphite_sink_over_tcp_and_udp() {
    let team = Exporter::start(&[&format!(
        "--graphite.mapping-config={}",
        fixture("spark-team.yml").display()
    )]);
    let full_mapping = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/emr/spark-graphite-mapping.yml"
    );
    let full = Exporter::start(&[&format!("--graphite.mapping-config={full_mapping}")]);
    let (capture_port, captured) = capture_server();

    let output = Command::new("python3")
        .arg(fixture("spark_job.py"))
        .arg(format!("capture=tcp:127.0.0.1:{capture_port}"))
        .arg(format!("team=tcp:127.0.0.1:{}", team.graphite_port))
        .arg(format!("full=udp:127.0.0.1:{}", full.graphite_port))
        .output()
        .expect("python3 with pyspark (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("done"),
        "the Spark job failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let app = stdout.lines().next().unwrap().trim().to_owned();
    assert!(app.starts_with("local-"), "{app}");
    // The last report is sent as the context stops; give the exporters a moment for it.
    std::thread::sleep(std::time::Duration::from_millis(500));

    let sent = reports(&captured.lock().unwrap());
    let last = |metric: &str| -> f64 {
        let name = format!("{app}.driver.{metric}");
        *sent
            .get(&name)
            .and_then(|v| v.last())
            .unwrap_or_else(|| panic!("Spark sent no {name}"))
    };
    assert!(last("DAGScheduler.job.allJobs") >= 2.0);

    // The team's mapping over TCP.
    let text = team.scrape();
    // Label sets as the exposition writes them: sorted by name.
    let labels = |extra: &str| {
        let mut pairs: Vec<String> = extra
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        pairs.push(format!("application=\"{app}\""));
        pairs.push("executor_id=\"driver\"".to_owned());
        pairs.sort();
        pairs.join(",")
    };
    for (series, metric) in [
        (
            format!(
                "jvm_memory_usage{{{}}}",
                labels("mem_type=\"heap\",qty=\"max\"")
            ),
            "jvm.heap.max",
        ),
        (
            format!(
                "jvm_memory_usage{{{}}}",
                labels("mem_type=\"heap\",qty=\"init\"")
            ),
            "jvm.heap.init",
        ),
        (
            format!(
                "jvm_memory_pools{{{}}}",
                labels("mem_type=\"G1-Eden-Space\",qty=\"max\"")
            ),
            "jvm.pools.G1-Eden-Space.max",
        ),
        (
            format!(
                "block_manager{{{}}}",
                labels("qty=\"maxMem_MB\",type=\"memory\"")
            ),
            "BlockManager.memory.maxMem_MB",
        ),
        (
            format!("executor_tasks{{{}}}", labels("qty=\"completeTasks\"")),
            "executor.threadpool.completeTasks",
        ),
        (
            format!("{}_driver_DAGScheduler_job_allJobs", app.replace('-', "_")),
            "DAGScheduler.job.allJobs",
        ),
    ] {
        assert_eq!(value_in(&text, &series), Some(last(metric)), "{series}");
    }
    assert_eq!(
        value_in(
            &text,
            "graphite_mapping_rule_matches_total{action=\"map\",match=\"DAGScheduler.*.*\",name=\"DAG_scheduler\",rule=\"6\"}"
        ),
        Some(0.0),
        "Spark's DAGScheduler names carry the application and executor"
    );

    // The full mapping over UDP (one datagram per line).
    let text = full.scrape();
    for (series, metric) in [
        (
            format!(
                "spark_dag_scheduler{{{}}}",
                labels("group=\"job\",qty=\"allJobs\"")
            ),
            "DAGScheduler.job.allJobs",
        ),
        (
            format!(
                "spark_dag_scheduler{{{}}}",
                labels("group=\"stage\",qty=\"failedStages\"")
            ),
            "DAGScheduler.stage.failedStages",
        ),
        (
            format!(
                "spark_block_manager{{{}}}",
                labels("qty=\"maxMem_MB\",type=\"memory\"")
            ),
            "BlockManager.memory.maxMem_MB",
        ),
        (
            format!(
                "spark_jvm_pool_memory{{{}}}",
                labels("pool=\"G1-Eden-Space\",qty=\"max\"")
            ),
            "jvm.pools.G1-Eden-Space.max",
        ),
        (
            format!(
                "spark_jvm_memory{{{}}}",
                labels("area=\"heap\",qty=\"max\"")
            ),
            "jvm.heap.max",
        ),
        (
            format!("spark_executor_succeededTasks_total{{{}}}", labels("")),
            "executor.succeededTasks.count",
        ),
        (
            format!(
                "spark_app_status_total{{{}}}",
                labels("group=\"jobs\",metric=\"succeededJobs\"")
            ),
            "appStatus.jobs.succeededJobs.count",
        ),
    ] {
        assert_eq!(value_in(&text, &series), Some(last(metric)), "{series}");
    }
    assert!(
        value_in(
            &text,
            &format!(
                "spark_listener_bus{{{}}}",
                labels("metric=\"queue.appStatus\",qty=\"size\"")
            )
        )
        .is_some(),
        "the regex rule takes LiveListenerBus names of any depth"
    );
    // Every name Spark sent is stored, and no line was refused.
    let names: BTreeSet<&String> = sent.keys().collect();
    assert_eq!(value_in(&text, "graphite_series"), Some(names.len() as f64));
    for reason in ["part_count", "value", "timestamp", "too_long"] {
        assert_eq!(
            value_in(
                &text,
                &format!("graphite_invalid_lines_total{{reason=\"{reason}\"}}")
            ),
            Some(0.0)
        );
    }
}
