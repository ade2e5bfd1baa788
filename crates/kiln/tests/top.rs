//! `kiln top` against real exporters on loopback: a node exporter reading a procfs this
//! test writes, the GPU exporter on the fake NVML library, and a host that is down.
//!
//! The first test drives the view's code directly and draws into ratatui's test backend,
//! with the scrape times set by the test so that every rate is exact. The second runs the
//! `kiln` binary in tmux and reads the screen back with `capture-pane`.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kiln::top::app::App;
use kiln::top::fleet::{Answer, Fleet};
use kiln::top::render::{Screen, buffer_text};
use kiln::top::{poller, targets};
use kiln_registry::RunningExporter;
use kiln_scraper::ScrapeClient;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use support::{free_port_on, gpu_exporter, node_exporter};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");
/// The host that answers; 127.0.0.0/8 is all loopback, so each host gets an address.
const UP: &str = "127.0.0.2";
/// The host that is down: nothing listens there.
const DOWN: &str = "127.0.0.3";
/// The host that takes connections and never answers.
const HUNG: &str = "127.0.0.4";

/// CPU seconds, disk sectors and network bytes the procfs shows; `advance` moves them.
#[derive(Clone, Copy)]
struct Counters {
    user_ticks: u64,
    idle_ticks: u64,
    sectors_read: u64,
    sectors_written: u64,
    received: u64,
    transmitted: u64,
}

const START: Counters = Counters {
    user_ticks: 1000,
    idle_ticks: 9000,
    sectors_read: 10_000,
    sectors_written: 20_000,
    received: 1_000_000,
    transmitted: 400_000,
};

/// Two seconds later: each of the two CPUs 1.5 s busy and 0.5 s idle (75%), 2 000
/// sectors read and written (1 024 000 bytes: 512 kB/s), 2 MB received (1.0 MB/s) and
/// 0.5 MB sent (250 kB/s).
const LATER: Counters = Counters {
    user_ticks: 1150,
    idle_ticks: 9050,
    sectors_read: 11_000,
    sectors_written: 21_000,
    received: 3_000_000,
    transmitted: 900_000,
};

fn write_procfs(root: &Path, c: Counters) {
    let cpu = |name: &str, n: u64| {
        format!(
            "{name} {} 0 0 {} 0 0 0 0 0 0\n",
            c.user_ticks * n,
            c.idle_ticks * n
        )
    };
    let stat = format!(
        "{}{}{}intr 0\nctxt 0\nbtime 1700000000\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n",
        cpu("cpu ", 2),
        cpu("cpu0", 1),
        cpu("cpu1", 1)
    );
    std::fs::write(root.join("stat"), stat).unwrap();
    std::fs::write(
        root.join("meminfo"),
        "MemTotal:       16777216 kB\nMemFree:         2097152 kB\nMemAvailable:    4194304 kB\n",
    )
    .unwrap();
    std::fs::write(root.join("loadavg"), "2.50 1.75 1.00 3/200 12345\n").unwrap();
    std::fs::write(
        root.join("diskstats"),
        format!(
            "   8       0 sda 1000 0 {} 500 2000 0 {} 800 0 1000 1300\n",
            c.sectors_read, c.sectors_written
        ),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("net")).unwrap();
    std::fs::write(
        root.join("net/dev"),
        format!(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 5000 10 0 0 0 0 0 0 5000 10 0 0 0 0 0 0\n  \
             eth0: {} 100 0 0 0 0 0 0 {} 100 0 0 0 0 0 0\n",
            c.received, c.transmitted
        ),
    )
    .unwrap();
}

/// A host with a node and a GPU exporter, and the address of one that is down.
struct Lab {
    runtime: tokio::runtime::Runtime,
    procfs: tempfile::TempDir,
    _sysfs: tempfile::TempDir,
    _fixture: tempfile::TempDir,
    node: Option<RunningExporter>,
    node_address: String,
    gpu: Child,
    gpu_address: String,
    down_address: String,
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
        write_procfs(procfs.path(), START);
        let (node, node_address) = node_exporter(&runtime, UP, procfs.path(), sysfs.path());
        // The GPU exporter runs in `kiln up`, which gets the fixture through its environment.
        let fixture = tempfile::tempdir().unwrap();
        let (gpu, gpu_address) = gpu_exporter(KILN, UP, fixture.path());
        let lab = Self {
            runtime,
            procfs,
            _sysfs: sysfs,
            _fixture: fixture,
            node: Some(node),
            node_address,
            gpu,
            gpu_address,
            down_address: format!("{DOWN}:{}", free_port_on(DOWN)),
        };
        lab.wait_for_gpus();
        lab
    }

    /// Until the GPU exporter has read the fake driver, XID included.
    fn wait_for_gpus(&self) {
        let client = ScrapeClient::new().unwrap();
        let url = format!("http://{}/metrics", self.gpu_address);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self
                .runtime
                .block_on(client.scrape(&url))
                .map(|s| s.body)
                .unwrap_or_default();
            if body.contains("nvidia_gpu_xid_errors_total{") {
                return;
            }
            assert!(Instant::now() < deadline, "the GPU exporter never served");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn targets(&self) -> Vec<String> {
        vec![
            self.node_address.clone(),
            self.gpu_address.clone(),
            self.down_address.clone(),
        ]
    }

    /// Scrapes every target once, as if the answers came at `at`.
    fn round(&self, fleet: &mut Fleet, at: Instant) {
        let client = ScrapeClient::new().unwrap().timeout(Duration::from_secs(5));
        for (id, url) in fleet.urls() {
            let outcome = self.runtime.block_on(poller::scrape(&client, &url));
            fleet.record(Answer {
                id,
                outcome,
                at,
                took: Duration::from_millis(4),
            });
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            self.runtime.block_on(node.shutdown());
        }
        // The child this test started, by its PID.
        let _ = self.gpu.kill();
        let _ = self.gpu.wait();
    }
}

fn draw(fleet: &Fleet, app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            let screen = Screen {
                fleet,
                app,
                refresh: Duration::from_secs(2),
                interactive: true,
            };
            frame.render_widget(screen, frame.area());
        })
        .unwrap();
    terminal
}

fn press(app: &mut App, fleet: &Fleet, code: KeyCode) {
    let shown = app.visible(fleet).len();
    app.key(KeyEvent::new(code, KeyModifiers::NONE), shown);
}

#[test]
fn the_view_shows_hosts_gpus_rates_and_a_down_host() {
    let lab = Lab::start();
    let hosts = targets::resolve(&lab.targets(), None).unwrap();
    assert_eq!(hosts.len(), 2, "two exporters of one host share a row");
    let mut fleet = Fleet::new(&hosts);
    let t0 = Instant::now();
    lab.round(&mut fleet, t0);
    write_procfs(lab.procfs.path(), LATER);
    lab.round(&mut fleet, t0 + Duration::from_secs(2));

    let mut app = App::default();
    let terminal = draw(&fleet, &app, 130, 10);
    let down = format!("{DOWN}  down: connection refused");
    let expected = [
        "kiln top  2 hosts: 1 up, 1 down  ·  3 GPUs  ·  every 2s  ·  sorted by host",
        "HOST        CPU   MEM   LOAD        DISK      NET IN     NET OUT            PING  GPUS",
        "127.0.0.2   75%   75%   2.50  512.0 kB/s    1.0 MB/s  250.0 kB/s               -  3 at 44% avg",
        "  GPU0  H100 80GB HBM3  util ███████░  87%  mem ██████░░  73%   61°C  512/700 W  power_cap   xid 1 (79)  pid 4194242 49.0 GiB",
        "  GPU1  A100-SXM4-40GB  util ░░░░░░░░    -  mem ██░░░░░░  25%   44°C   95/400 W  gpu_idle    xid 0       pid 4194444 8.0 GiB",
        "  GPU2  Tesla T4        util ░░░░░░░░   0%  mem ░░░░░░░░   0%   31°C    27/70 W  gpu_idle    xid 0",
        &down,
        "",
        "",
        "↑↓ select  Enter details  / filter  s sort  r reverse  ? help  q quit",
    ];
    let buffer = terminal.backend().buffer();
    assert_eq!(buffer_text(buffer), expected);
    // The selected host is drawn reversed; a down host and an XID in red; a held clock
    // in yellow.
    assert!(
        buffer[(0, 2)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );
    assert_eq!(buffer[(0, 6)].fg, Color::Red);
    let xid_column = u16::try_from(expected[3].chars().position(|c| c == 'x').unwrap()).unwrap();
    assert_eq!(buffer[(xid_column, 3)].fg, Color::Red);
    let power_cap = u16::try_from(
        expected[3]
            .find("power_cap")
            .map(|b| expected[3][..b].chars().count())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(buffer[(power_cap, 3)].fg, Color::Yellow);

    // Sorted by GPU temperature, the host without GPUs goes last; reversed, first.
    press(&mut app, &fleet, KeyCode::Char('t'));
    press(&mut app, &fleet, KeyCode::Char('r'));
    let text = buffer_text(draw(&fleet, &app, 130, 10).backend().buffer());
    assert_eq!(text[2], down);
    assert!(
        text[0].ends_with("sorted by gpu temp, reversed"),
        "{}",
        text[0]
    );

    // The detail pane of the host that answers.
    press(&mut app, &fleet, KeyCode::Char('r'));
    press(&mut app, &fleet, KeyCode::Enter);
    let text = buffer_text(draw(&fleet, &app, 140, 24).backend().buffer());
    let pane: Vec<&str> = text
        .iter()
        .skip_while(|l| !l.starts_with("┌ 127.0.0.2 "))
        .map(String::as_str)
        .collect();
    let row = |s: &str| format!("│{s:<138}│");
    assert_eq!(
        pane[1],
        row(&format!(
            "http://{}/metrics  up in 4.0 ms",
            lab.node_address
        ))
    );
    assert_eq!(
        pane[2],
        row(&format!("http://{}/metrics  up in 4.0 ms", lab.gpu_address))
    );
    assert_eq!(
        pane[3],
        row("CPU 75% of 2  ·  load 2.50 1.75 1.00  ·  memory 12.0 GiB of 16.0 GiB used")
    );
    assert_eq!(
        pane[4],
        row(
            "GPU0 NVIDIA H100 80GB HBM3 GPU-5d3b1a52-6c2e-4f11-9a0e-0a1b2c3d4e5f  ·  memory 58.0 GiB of 79.6 GiB  ·  top process (pid 4194242) 49.0 GiB"
        )
    );

    // A filter on a GPU model keeps only the hosts that have one.
    press(&mut app, &fleet, KeyCode::Esc);
    press(&mut app, &fleet, KeyCode::Char('/'));
    for c in "t4".chars() {
        press(&mut app, &fleet, KeyCode::Char(c));
    }
    let text = buffer_text(draw(&fleet, &app, 130, 10).backend().buffer());
    assert!(text[0].ends_with("·  1 shown"), "{}", text[0]);
    assert_eq!(text[9], "filter: t4█   Enter keeps it, Esc clears it");
    assert!(!text.contains(&down));
}

/// Polls `tmux capture-pane` until `done` holds.
fn capture_until(socket: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let output = Command::new("tmux")
            .args(["-L", socket, "capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&output.stdout).into_owned();
        if done(&screen) {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "the screen never showed it:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A host that accepts connections and never answers, on an address of its own.
fn hung_host() -> String {
    let listener = std::net::TcpListener::bind((HUNG, 0)).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

#[test]
fn kiln_top_runs_in_a_terminal_with_one_host_down_and_one_hung() {
    let lab = Lab::start();
    let hung = hung_host();
    let work = tempfile::tempdir().unwrap();
    let status = work.path().join("status");
    // A socket of this test's own, so no other tmux server is touched.
    let socket = format!("kiln-top-test-{}", std::process::id());
    let command = format!(
        "{KILN} top --refresh=500ms {} {hung}; echo $? > {}",
        lab.targets().join(" "),
        status.display()
    );
    let started = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "120",
            "-y",
            "20",
        ])
        .arg(&command)
        .status()
        .unwrap();
    assert!(started.success());

    // The hung host times out on its own task while the others are drawn.
    let screen = capture_until(&socket, Duration::from_secs(20), |s| {
        s.contains("1 up, 2 down") && s.contains("GPU2  Tesla T4") && s.contains("% avg")
    });
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines[0].starts_with("kiln top  3 hosts: 1 up, 2 down  ·  3 GPUs"),
        "{screen}"
    );
    assert!(lines[2].starts_with("127.0.0.2 "), "{screen}");
    assert!(lines[2].ends_with("3 at 44% avg"), "{screen}");
    assert_eq!(lines[6], format!("{DOWN}  down: connection refused"));
    assert_eq!(lines[7], format!("{HUNG}  down: timed out after 500ms"));
    assert_eq!(
        lines[19],
        "↑↓ select  Enter details  / filter  s sort  r reverse  ? help  q quit"
    );

    // The help pane opens over the list and closes again.
    let send = |keys: &[&str]| {
        let sent = Command::new("tmux")
            .args(["-L", &socket, "send-keys", "-t", "top"])
            .args(keys)
            .status()
            .unwrap();
        assert!(sent.success());
    };
    send(&["?"]);
    capture_until(&socket, Duration::from_secs(5), |s| s.contains("┌ keys "));
    send(&["Escape"]);
    capture_until(&socket, Duration::from_secs(5), |s| !s.contains("┌ keys "));

    // `q` quits with status 0 and gives the terminal back.
    send(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status.exists() {
        assert!(Instant::now() < deadline, "kiln top did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(std::fs::read_to_string(&status).unwrap().trim(), "0");
    let _ = Command::new("tmux")
        .args(["-L", &socket, "kill-server"])
        .status();
}
