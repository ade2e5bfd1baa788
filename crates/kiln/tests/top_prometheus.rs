//! `kiln top --prometheus` against a real Prometheus (Debian's) scraping real exporters on
//! loopback with the shipped configuration: the figures it shows equal the ones read by
//! polling the exporters directly, and a Prometheus that is down, a wrong URL and a failing
//! query each give a clear message while the screen lives on.
//!
//! The node exporter reads a procfs whose counters a thread advances at fixed rates (75%
//! busy CPUs, 512 kB/s each way on disk, 1 MB/s in and 250 kB/s out on eth0), so the rates
//! both ways of reading are known in advance; the GPU exporter runs on the fake NVML
//! library.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kiln::top::fleet::{Answer, Fleet, Status};
use kiln::top::prometheus::{Detail, PrometheusSource};
use kiln::top::reading::Reading;
use kiln::top::targets::HostSpec;
use kiln::top::terminal::draw_text;
use kiln::top::{app::App, poller};
use kiln_registry::RunningExporter;
use kiln_scraper::ScrapeClient;
use kiln_test_support::Prometheus;
use kiln_test_support::{free_port, serve_queries};
use support::{free_port_on, gpu_exporter, node_exporter};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");
/// The host that answers, and one where nothing listens.
const UP: &str = "127.0.0.2";
const DOWN: &str = "127.0.0.3";

/// Per second: CPU ticks (USER_HZ 100) busy and idle per CPU, sectors read and written
/// each, bytes received and sent.
const BUSY_TICKS: f64 = 75.0;
const IDLE_TICKS: f64 = 25.0;
const SECTORS: f64 = 1000.0;
const RECEIVED: f64 = 1_000_000.0;
const SENT: f64 = 250_000.0;

/// Writes the procfs for `seconds` after the start; each file is replaced whole, so a
/// read never sees half of one.
fn write_procfs(root: &Path, seconds: f64) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let at = |base: f64, per_second: f64| (base + per_second * seconds) as u64;
    let (user, idle) = (at(1000.0, BUSY_TICKS), at(9000.0, IDLE_TICKS));
    let cpu = |name: &str, n: u64| format!("{name} {} 0 0 {} 0 0 0 0 0 0\n", user * n, idle * n);
    let files = [
        (
            "stat",
            format!(
                "{}{}{}intr 0\nctxt 0\nbtime 1700000000\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n",
                cpu("cpu ", 2),
                cpu("cpu0", 1),
                cpu("cpu1", 1)
            ),
        ),
        (
            "meminfo",
            "MemTotal:       16777216 kB\nMemFree:         2097152 kB\nMemAvailable:    4194304 kB\n"
                .to_owned(),
        ),
        ("loadavg", "2.50 1.75 1.00 3/200 12345\n".to_owned()),
        (
            "diskstats",
            format!(
                "   8       0 sda 1000 0 {} 500 2000 0 {} 800 0 1000 1300\n",
                at(10_000.0, SECTORS),
                at(20_000.0, SECTORS)
            ),
        ),
        (
            "net/dev",
            format!(
                "Inter-|   Receive                                                |  Transmit\n \
                 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
                 lo: 5000 10 0 0 0 0 0 0 5000 10 0 0 0 0 0 0\n  \
                 eth0: {} 100 0 0 0 0 0 0 {} 100 0 0 0 0 0 0\n",
                at(1_000_000.0, RECEIVED),
                at(400_000.0, SENT)
            ),
        ),
    ];
    std::fs::create_dir_all(root.join("net")).unwrap();
    for (name, text) in files {
        let temporary = root.join(format!("{}.new", name.replace('/', "_")));
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, root.join(name)).unwrap();
    }
}

/// The exporters of one host, a Prometheus scraping them with the shipped configuration,
/// and a second host that is down.
struct Lab {
    runtime: tokio::runtime::Runtime,
    _procfs: tempfile::TempDir,
    _sysfs: tempfile::TempDir,
    _files: tempfile::TempDir,
    ticking: Arc<AtomicBool>,
    node: Option<RunningExporter>,
    node_address: String,
    gpu: Child,
    gpu_address: String,
    prometheus: Prometheus,
}

impl Lab {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let procfs = tempfile::tempdir().unwrap();
        let sysfs = tempfile::tempdir().unwrap();
        write_procfs(procfs.path(), 0.0);
        let ticking = Arc::new(AtomicBool::new(true));
        {
            let (root, ticking) = (procfs.path().to_path_buf(), ticking.clone());
            let started = Instant::now();
            std::thread::spawn(move || {
                while ticking.load(Ordering::Relaxed) {
                    write_procfs(&root, started.elapsed().as_secs_f64());
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        let (node, node_address) = node_exporter(&runtime, UP, procfs.path(), sysfs.path());
        let files = tempfile::tempdir().unwrap();
        let (gpu, gpu_address) = gpu_exporter(KILN, UP, files.path());
        let down_address = format!("{DOWN}:{}", free_port_on(DOWN));
        let config = shipped_config(
            files.path(),
            &[
                ("node", vec![node_address.clone(), down_address]),
                ("gpu", vec![gpu_address.clone()]),
                ("ping", vec![]),
            ],
        );
        let prometheus = Prometheus::start(&config);
        let lab = Self {
            runtime,
            _procfs: procfs,
            _sysfs: sysfs,
            _files: files,
            ticking,
            node: Some(node),
            node_address,
            gpu,
            gpu_address,
            prometheus,
        };
        // Enough samples for `irate`, XID included, on every series.
        lab.prometheus
            .query_result("count_over_time(nvidia_gpu_xid_errors_total[1m]) >= 3");
        lab.prometheus
            .query_result(r#"count_over_time(node_cpu_seconds_total{mode="idle"}[1m]) >= 3"#);
        lab
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.prometheus.port())
    }

    fn source(&self) -> PrometheusSource {
        let client = ScrapeClient::new().unwrap().timeout(Duration::from_secs(5));
        PrometheusSource::new(&self.url(), client).unwrap()
    }

    /// The fleet read from Prometheus.
    fn through_prometheus(&self) -> Fleet {
        let mut fleet = Fleet::new(&[]);
        fleet.replace(self.runtime.block_on(self.source().read()));
        fleet
    }

    /// The fleet read by polling both exporters twice, two seconds apart.
    fn polled(&self) -> Fleet {
        let mut fleet = Fleet::new(&[HostSpec {
            name: UP.into(),
            urls: vec![
                format!("http://{}/metrics", self.node_address),
                format!("http://{}/metrics", self.gpu_address),
            ],
        }]);
        let client = ScrapeClient::new().unwrap().timeout(Duration::from_secs(5));
        for round in 0..2 {
            if round > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            for (id, url) in fleet.urls() {
                let outcome = self.runtime.block_on(poller::scrape(&client, &url));
                fleet.record(Answer {
                    id,
                    outcome,
                    at: Instant::now(),
                    took: Duration::from_millis(1),
                });
            }
        }
        fleet
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
        if let Some(node) = self.node.take() {
            self.runtime.block_on(node.shutdown());
        }
        // The child this test started, by its PID.
        let _ = self.gpu.kill();
        let _ = self.gpu.wait();
    }
}

/// deploy/prometheus/prometheus.yml with a one-second scrape interval, its file_sd files
/// written for `jobs`, and no Alertmanager.
fn shipped_config(dir: &Path, jobs: &[(&str, Vec<String>)]) -> String {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus");
    let mut config = std::fs::read_to_string(deploy.join("prometheus.yml")).unwrap();
    for (from, to) in [
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
        ("- targets: ['localhost:9093']", "- targets: []"),
    ] {
        config = config.replace(from, to);
    }
    config = config.replace("rules/*.yml", &format!("{}/rules/*.yml", deploy.display()));
    for name in ["node", "gpu", "ping", "spark", "hadoop", "jmx-exporter"] {
        let file: PathBuf = dir.join(format!("{name}.yml"));
        let targets = jobs
            .iter()
            .find(|(job, _)| *job == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(&file, format!("- targets: [{}]\n", list.join(", "))).unwrap();
        config = config.replace(
            &format!("'targets/{name}.yml'"),
            &format!("'{}'", file.display()),
        );
    }
    config
}

fn close(what: &str, a: Option<f64>, b: Option<f64>, tolerance: f64) {
    let (a, b) = (
        a.unwrap_or_else(|| panic!("{what}: no value read directly")),
        b.unwrap_or_else(|| panic!("{what}: no value through Prometheus")),
    );
    assert!(
        (a - b).abs() <= tolerance * a.abs().max(1e-9),
        "{what}: {a} directly, {b} through Prometheus"
    );
}

/// A GPU's figures, its throttle reasons in one order (Prometheus does not keep the
/// exporter's).
fn gpus(reading: &Reading) -> Vec<kiln::top::reading::GpuReading> {
    let mut gpus = reading.gpus.clone();
    for gpu in &mut gpus {
        gpu.throttle_reasons.sort();
    }
    gpus
}

#[test]
fn prometheus_figures_equal_direct_polling_and_failures_keep_the_screen() {
    let lab = Lab::start();
    let polled = lab.polled();
    let through = lab.through_prometheus();
    assert_eq!(through.problem, None);

    let names: Vec<&str> = through.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [UP, DOWN],
        "one row per host, its exporters together"
    );
    let (direct, host) = (&polled.hosts[0], &through.hosts[0]);
    assert_eq!(host.status(), Status::Up);
    let Status::Down(down) = through.hosts[1].status() else {
        panic!("{DOWN} has up 0");
    };
    assert_eq!(down.short, "up is 0 (node)");

    // Rates: both from the last two samples of counters moving at known speeds.
    let (a, b) = (direct.rates().unwrap(), host.rates().unwrap());
    close("cpu", Some(a.cpu_busy), Some(b.cpu_busy), 0.03);
    close("cpu", Some(0.75), Some(b.cpu_busy), 0.03);
    close(
        "disk",
        Some(a.disk_bytes_per_second),
        Some(b.disk_bytes_per_second),
        0.05,
    );
    close(
        "disk",
        Some(1_024_000.0),
        Some(b.disk_bytes_per_second),
        0.05,
    );
    close(
        "in",
        Some(a.receive_bytes_per_second),
        Some(b.receive_bytes_per_second),
        0.05,
    );
    close(
        "out",
        Some(a.transmit_bytes_per_second),
        Some(b.transmit_bytes_per_second),
        0.05,
    );

    // Gauges: exactly the same.
    let (a, b) = (direct.reading(), host.reading());
    let (node_a, node_b) = (a.node.as_ref().unwrap(), b.node.as_ref().unwrap());
    assert_eq!(node_a.cpus, node_b.cpus);
    assert_eq!(
        (node_a.load1, node_a.load5, node_a.load15),
        (node_b.load1, node_b.load5, node_b.load15)
    );
    assert_eq!(node_a.memory_total_bytes, node_b.memory_total_bytes);
    assert_eq!(node_a.memory_available_bytes, node_b.memory_available_bytes);
    assert_eq!(node_a.fullest_filesystem, node_b.fullest_filesystem);
    assert_eq!(b.gpus.len(), 3);
    assert_eq!(gpus(a), gpus(b), "every GPU row");

    // The GPU detail only of the hosts near the view: the others keep what their rows, the
    // filter and the sort need. The host name is a regular expression's literal: its dots
    // match dots alone.
    let read = |hosts: &[&str]| {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let snapshot = lab
            .runtime
            .block_on(lab.source().read_with(Detail::Hosts(&hosts)))
            .unwrap();
        assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
        snapshot.hosts[0].reading().clone()
    };
    assert_eq!(gpus(&read(&[UP])), gpus(b), "every GPU row near the view");
    for far in [vec![], vec!["127x0x0x2", "127.0.0.20"]] {
        let far = read(&far);
        assert!(far.gpus.is_empty(), "no GPU rows away from the view");
        let brief = far.gpu_brief.as_ref().unwrap();
        let mut models: Vec<String> = b.gpus.iter().map(|gpu| gpu.name.clone()).collect();
        models.sort();
        models.dedup();
        assert_eq!((brief.count, &brief.models), (3, &models));
        assert_eq!(far.max_gpu_utilization(), b.max_gpu_utilization());
        assert_eq!(far.max_gpu_temperature(), b.max_gpu_temperature());
        assert!(far.max_gpu_utilization().is_some() && far.max_gpu_temperature().is_some());
    }

    // The screen: the same rows, rates aside.
    let text = draw_text(&through, &App::default(), Duration::from_secs(2), 130);
    let polled_text = draw_text(&polled, &App::default(), Duration::from_secs(2), 130);
    assert!(
        text[0].starts_with("kiln top  2 hosts: 1 up, 1 down  ·  3 GPUs"),
        "{}",
        text[0]
    );
    assert_eq!(text[3..6], polled_text[3..6], "GPU rows");
    assert_eq!(text[6], format!("{DOWN}  down: up is 0 (node)"));

    // The binary prints the same screen.
    let output = Command::new(KILN)
        .args(["top", "--once", "--width=130", "--prometheus", &lab.url()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("  GPU0  H100 80GB HBM3  util ███████░  87%"),
        "{stdout}"
    );
    assert!(stdout.contains("down: up is 0 (node)"), "{stdout}");

    // Prometheus goes away: the rows stay, each down with the reason, and the title says
    // what happened.
    let mut fleet = through;
    let source = lab.source();
    drop(lab);
    fleet.replace(
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(source.read()),
    );
    assert_eq!(fleet.hosts.len(), 2);
    let text = draw_text(&fleet, &App::default(), Duration::from_secs(2), 200);
    assert!(
        text[2].contains("down: Prometheus: connection refused"),
        "{text:?}"
    );
    assert!(text[0].contains("Connection refused"), "{}", text[0]);
}

#[test]
fn a_wrong_or_unreachable_prometheus_is_named_in_the_error() {
    let run = |url: &str| {
        let output = Command::new(KILN)
            .args(["top", "--once", "--prometheus", url])
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let error = run("prometheus:9090");
    assert!(error.contains("--prometheus prometheus:9090"), "{error}");
    assert!(error.contains("http:// or https://"), "{error}");
    let url = format!("http://127.0.0.1:{}", free_port());
    let error = run(&url);
    assert!(
        error.contains(&url) && error.contains("Connection refused"),
        "{error}"
    );
    // Not a Prometheus: a server that answers 404 on the query API.
    let address = serve("404 Not Found", "not found");
    let error = run(&format!("http://{address}"));
    assert!(error.contains("HTTP status 404"), "{error}");
}

#[test]
fn a_failing_query_is_reported_and_the_rest_still_shows() {
    // A Prometheus that refuses queries touching more than a few samples: `up` answers,
    // the rates over a minute do not.
    let dir = tempfile::tempdir().unwrap();
    let node = serve(
        "200 OK",
        "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 10\n\
         node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 10\n\
         node_load1 0.5\nnode_load5 0.5\nnode_load15 0.5\n",
    );
    let config = shipped_config(dir.path(), &[("node", vec![node])]);
    let prometheus = Prometheus::start_with_flags(&config, &["--query.max-samples=1".to_owned()]);
    let port = prometheus.port();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = ScrapeClient::new().unwrap().timeout(Duration::from_secs(5));
    let source = PrometheusSource::new(&format!("http://127.0.0.1:{port}"), client).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let snapshot = loop {
        match runtime.block_on(source.read()) {
            Ok(snapshot)
                if snapshot
                    .hosts
                    .first()
                    .is_some_and(|h| h.status() == Status::Up) =>
            {
                break snapshot;
            }
            _ => {
                assert!(Instant::now() < deadline, "Prometheus never answered");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    };
    drop(prometheus);
    assert_eq!(snapshot.hosts[0].name, "127.0.0.1");
    assert!(
        snapshot
            .problems
            .iter()
            .any(|p| p.contains("query processing would load too many samples")),
        "{:?}",
        snapshot.problems
    );
    let mut fleet = Fleet::new(&[]);
    fleet.replace(Ok(snapshot));
    let text = draw_text(&fleet, &App::default(), Duration::from_secs(2), 400);
    assert!(text[0].contains("failed (execution)"), "{}", text[0]);
    assert!(text[2].starts_with("127.0.0.1 "), "{}", text[2]);
    assert!(!text[2].contains("down"), "{}", text[2]);
}

#[test]
fn malformed_and_oversized_answers_are_reported_and_the_rest_still_shows() {
    // `up` answers; the node gauges' answer is cut short after one series; the GPU
    // utilization's and temperature's are valid vectors of 120 KB each, sent slowly so
    // that they are in flight together; every other query finds no series.
    let up = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","instance":"h1","job":"node"},"value":[1,"1"]}]}}"#;
    let cut = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"node_load1","instance":"h1"},"value":[1,"0.5"]},{"metr"#;
    let series = r#"{"metric":{"instance":"h1","gpu":"0"},"value":[1,"0.5"]}"#;
    let large = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        vec![series; 2000].join(",")
    );
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let address = serve_queries(move |query| {
        if query.starts_with("up%7B") {
            up.to_owned()
        } else if query.contains("node_load1") {
            cut.to_owned()
        } else if query.contains("nvidia_gpu_utilization_ratio")
            || query.contains("nvidia_gpu_temperature_celsius")
        {
            large.clone()
        } else {
            empty.to_owned()
        }
    });
    let client = ScrapeClient::new().unwrap().timeout(Duration::from_secs(5));
    let source = PrometheusSource::new(&format!("http://{address}"), client)
        .unwrap()
        .answer_budget(64 << 10);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let snapshot = runtime.block_on(source.read()).unwrap();
    assert_eq!(snapshot.problems.len(), 3, "{:?}", snapshot.problems);
    assert!(
        snapshot.problems.iter().any(|p| p.contains("node_load1")
            && p.contains("not the query API's JSON: EOF while parsing")),
        "{:?}",
        snapshot.problems
    );
    assert!(
        snapshot
            .problems
            .iter()
            .any(|p| p.contains("nvidia_gpu_utilization_ratio")
                && p.contains("is larger than the 64 KiB kept for answers")),
        "{:?}",
        snapshot.problems
    );
    // Nothing of the cut answer is shown, not even its first, complete series.
    let host = &snapshot.hosts[0];
    assert_eq!(host.name, "h1");
    assert_eq!(host.status(), Status::Up);
    assert_eq!(host.reading().node.as_ref().and_then(|n| n.load1), None);

    let mut fleet = Fleet::new(&[]);
    fleet.replace(Ok(snapshot));
    let text = draw_text(&fleet, &App::default(), Duration::from_secs(2), 400);
    assert!(text[0].contains("kiln top  1 host: 1 up"), "{}", text[0]);
    assert!(text[0].contains("EOF while parsing"), "{}", text[0]);
    assert!(text[2].starts_with("h1 "), "{}", text[2]);

    // Room for one large answer but not for both: the one that does not fit beside the
    // other is asked again once it is alone, and both are read.
    let source = source.answer_budget(200 << 10);
    let snapshot = runtime.block_on(source.read()).unwrap();
    assert_eq!(snapshot.problems.len(), 1, "{:?}", snapshot.problems);
    let gpu = &snapshot.hosts[0].reading().gpus[0];
    assert_eq!(
        (gpu.utilization, gpu.temperature_celsius),
        (Some(0.5), Some(0.5))
    );
}

#[test]
fn the_recorded_cpu_share_is_read_alone_while_every_host_has_it() {
    // A server whose `instance:node_cpu_utilisation:rate5m` answers 0.5 for h1 or nothing,
    // as `recorded` says, and whose counters give a CPU idle 0.2 and in iowait 0.05 of the
    // time, so 0.75 busy; it notes every query.
    let recorded = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let vector = |series: &str| {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{series}]}}}}"#)
    };
    let address = {
        let (recorded, asked) = (recorded.clone(), asked.clone());
        serve_queries(move |query| {
            asked.lock().unwrap().push(query.to_owned());
            let h1 =
                |value: &str| format!(r#"{{"metric":{{"instance":"h1"}},"value":[1,"{value}"]}}"#);
            if query.starts_with("up%7B") {
                vector(r#"{"metric":{"instance":"h1","job":"node"},"value":[1,"1"]}"#)
            } else if query.contains("node_cpu_utilisation") {
                vector(&if recorded.load(Ordering::Relaxed) {
                    h1("0.5")
                } else {
                    String::new()
                })
            } else if query.contains("node_cpu_seconds_total") && query.contains("irate") {
                vector(&h1(if query.contains("iowait") {
                    "0.05"
                } else {
                    "0.2"
                }))
            } else if query.contains("node_cpu_seconds_total") {
                vector(&h1("16"))
            } else {
                vector("")
            }
        })
    };
    let client = ScrapeClient::new().unwrap().timeout(Duration::from_secs(5));
    let source = PrometheusSource::new(&format!("http://{address}"), client).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The busy share of one read, and whether it read the counters.
    let read = || {
        asked.lock().unwrap().clear();
        let snapshot = runtime.block_on(source.read()).unwrap();
        assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
        let counters = asked
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("irate%28node_cpu"));
        (snapshot.hosts[0].rates().map(|r| r.cpu_busy), counters)
    };
    assert_eq!(
        read(),
        (Some(0.75), true),
        "no recorded series: the counters"
    );
    assert_eq!(read(), (Some(0.75), true));
    recorded.store(true, Ordering::Relaxed);
    assert_eq!(read(), (Some(0.75), true), "the counters while read");
    assert_eq!(read(), (Some(0.5), false), "then the recorded share alone");
    recorded.store(false, Ordering::Relaxed);
    assert_eq!(read(), (None, false), "gone: one read without");
    assert_eq!(read(), (Some(0.75), true), "and the counters again");
}

/// A server on 127.0.0.1 that answers every request with `status` and `body`; its address.
fn serve(status: &'static str, body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    address
}

/// A CA and a server certificate for `localhost`, signed by it, written into `dir`.
fn write_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

#[test]
fn tls_and_basic_auth_reach_a_protected_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    std::fs::write(
        dir.path().join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  alice: {}\n",
            bcrypt::hash("secret", 10).unwrap()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("password"), "secret\n").unwrap();
    let node = serve("200 OK", "node_load1 0.5\n");
    let config = shipped_config(dir.path(), &[("node", vec![node])]);
    let web_config = format!("--web.config.file={}", dir.path().join("web.yml").display());
    let prometheus = Prometheus::start_with_flags(&config, &[web_config]);
    let port = prometheus.port();
    let url = format!("https://localhost:{port}");
    let ca = dir.path().join("ca.crt");
    let password = dir.path().join("password");
    let run = |extra: &[&str]| {
        Command::new(KILN)
            .args(["top", "--once", "--prometheus", &url])
            .arg(format!("--prometheus.ca-file={}", ca.display()))
            .args(extra)
            .output()
            .unwrap()
    };
    let with_auth = [
        "--prometheus.username=alice".to_owned(),
        format!("--prometheus.password-file={}", password.display()),
    ];
    let with_auth: Vec<&str> = with_auth.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let screen = loop {
        let output = run(&with_auth);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() && stdout.contains("127.0.0.1 ") && !stdout.contains("0 hosts") {
            break stdout;
        }
        assert!(
            Instant::now() < deadline,
            "never read the fleet: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(screen.contains("1 host: 1 up"), "{screen}");
    // Without credentials, Prometheus answers 401 and the message says so.
    let output = run(&[]);
    drop(prometheus);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("HTTP status 401"), "{error}");
}
