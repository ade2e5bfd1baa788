//! The test bed: two network namespaces joined by a veth pair, created by each test and
//! removed when it ends. The exporter runs in `a` and pings `b` (10.203.0.2/24,
//! fd00:203::2/64), where nftables drops packets on demand. Also: an exporter on loopback,
//! and a small DNS server whose answer a test can change.
#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Output, Stdio};

pub use kiln_test_support::{Process, free_port, run_to_exit};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const EXPORTER: &str = env!("CARGO_BIN_EXE_kiln-ping-exporter");
pub const B_V4: &str = "10.203.0.2";
pub const B_V6: &str = "fd00:203::2";

/// Runs what follows as nobody, without capabilities.
pub const NOBODY: [&str; 7] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
];

static BEDS: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, `a` and `b`, removed on drop.
pub struct TestBed {
    pub a: String,
    pub b: String,
}

impl TestBed {
    /// Creates the namespaces, or says why it cannot (no root, no netns) and returns None.
    pub fn new() -> Option<Self> {
        let id = format!(
            "{}x{}",
            std::process::id(),
            BEDS.fetch_add(1, Ordering::Relaxed)
        );
        let bed = Self {
            a: format!("kpa{id}"),
            b: format!("kpb{id}"),
        };
        if !ip(&["netns", "add", &bed.a]) {
            eprintln!("SKIPPED: cannot create network namespaces (needs root and CONFIG_NET_NS)");
            return None;
        }
        let (va, vb) = (format!("va{id}"), format!("vb{id}"));
        let (va, vb) = (&va[..va.len().min(15)], &vb[..vb.len().min(15)]);
        let ok = ip(&["netns", "add", &bed.b])
            && ip(&[
                "link", "add", va, "netns", &bed.a, "type", "veth", "peer", "name", vb, "netns",
                &bed.b,
            ])
            && ip(&["-n", &bed.a, "addr", "add", "10.203.0.1/24", "dev", va])
            && ip(&["-n", &bed.b, "addr", "add", "10.203.0.2/24", "dev", vb])
            && ip(&[
                "-n",
                &bed.a,
                "addr",
                "add",
                "fd00:203::1/64",
                "dev",
                va,
                "nodad",
            ])
            && ip(&[
                "-n",
                &bed.b,
                "addr",
                "add",
                "fd00:203::2/64",
                "dev",
                vb,
                "nodad",
            ])
            && [&bed.a, &bed.b]
                .iter()
                .all(|ns| ip(&["-n", ns, "link", "set", "lo", "up"]))
            && ip(&["-n", &bed.a, "link", "set", va, "up"])
            && ip(&["-n", &bed.b, "link", "set", vb, "up"]);
        assert!(ok, "cannot set up the namespaces");
        // Resolve the neighbours first: IPv6 neighbour discovery holds the first packets
        // for up to a second, which would read as late replies.
        for address in [B_V4, B_V6] {
            bed.exec(&bed.a, &["ping", "-n", "-q", "-c", "1", "-w", "5", address]);
        }
        Some(bed)
    }

    /// Runs a command in namespace `ns`, asserting success; returns stdout.
    pub fn exec(&self, ns: &str, args: &[&str]) -> String {
        let output = self.command(ns, args).output().expect("ip netns exec");
        assert!(
            output.status.success(),
            "{args:?} in {ns} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A command to run in namespace `ns`.
    pub fn command(&self, ns: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).args(args);
        command
    }

    /// Loads an nftables ruleset into `b`.
    pub fn nft_b(&self, ruleset: &str) {
        let mut child = self
            .command(&self.b, &["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ruleset.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft rejected:\n{ruleset}");
    }

    /// The packet count of the named nftables counter in `b`.
    pub fn nft_counter(&self, name: &str) -> u64 {
        let listing = self.exec(&self.b, &["nft", "list", "counter", "inet", "t", name]);
        let packets = listing.split("packets ").nth(1).expect("counter listing");
        packets.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Starts the exporter in `a`, listening on 127.0.0.1:9427 there.
    pub fn exporter(&self, args: &[&str]) -> Exporter {
        let mut all = vec![EXPORTER, "--web.listen-address=127.0.0.1:9427"];
        all.extend_from_slice(args);
        let command = self.command(&self.a, &all);
        Exporter::spawn(command, Some(self.a.clone()), "127.0.0.1:9427".into())
    }

    /// Starts the exporter in `a` as nobody, without capabilities.
    pub fn exporter_as_nobody(&self, args: &[&str]) -> Exporter {
        let mut all = NOBODY.to_vec();
        all.extend_from_slice(&[EXPORTER, "--web.listen-address=127.0.0.1:9427"]);
        all.extend_from_slice(args);
        let command = self.command(&self.a, &all);
        Exporter::spawn(command, Some(self.a.clone()), "127.0.0.1:9427".into())
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.a]);
        ip(&["netns", "del", &self.b]);
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running exporter, killed on drop.
pub struct Exporter {
    process: Process,
    netns: Option<String>,
    address: String,
}

impl Exporter {
    /// Starts the exporter on loopback in this namespace.
    pub fn on_loopback(args: &[&str]) -> Self {
        Self::on_loopback_with_env(args, &[])
    }

    /// Starts the exporter on loopback in this namespace with more environment variables.
    pub fn on_loopback_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let address = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(EXPORTER);
        command
            .arg(format!("--web.listen-address={address}"))
            .args(args)
            .envs(env.iter().copied());
        Self::spawn(command, None, address)
    }

    fn spawn(command: Command, netns: Option<String>, address: String) -> Self {
        let healthy = || curl(netns.as_deref(), &address, "GET", "/-/healthy").is_some();
        let process = Process::start(command, healthy);
        Self {
            process,
            netns,
            address,
        }
    }

    /// What it has logged.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// GETs a path; the body when the status is 200.
    pub fn get(&self, path: &str) -> Option<String> {
        let (status, body) = self.request(path)?;
        (status == 200).then_some(body)
    }

    /// GETs a path: status and body.
    pub fn request(&self, path: &str) -> Option<(u16, String)> {
        self.curl("GET", path)
    }

    /// POSTs to a path: status and body.
    pub fn request_post(&self, path: &str) -> (u16, String) {
        self.curl("POST", path).expect("POST")
    }

    fn curl(&self, method: &str, path: &str) -> Option<(u16, String)> {
        curl(self.netns.as_deref(), &self.address, method, path)
    }

    /// The metrics text, checked to parse.
    pub fn scrape(&self) -> String {
        let text = self.get("/metrics").expect("scrape");
        if let Err(error) = kiln_scraper::parse(&text) {
            panic!("invalid exposition: {error}\n{text}");
        }
        text
    }

    /// The value of one sample, by family and labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = self.scrape();
        kiln_scraper::parse(&text).ok()?.value(name, labels)
    }

    /// Waits until the sample reaches `at_least`, returning it.
    pub fn wait_for(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        at_least: f64,
        limit: Duration,
    ) -> f64 {
        let started = Instant::now();
        loop {
            if let Some(value) = self.value(name, labels).filter(|v| *v >= at_least) {
                return value;
            }
            assert!(
                started.elapsed() < limit,
                "{name}{labels:?} did not reach {at_least}; now {:?}\n{}",
                self.value(name, labels),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process id (`ip netns exec` runs the exporter in its own place).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(self, limit: Duration) -> (Option<i32>, String) {
        self.process.wait_exit(limit)
    }
}

/// A request with curl, in `netns` when one is given: status and body, `None` when nothing
/// answers.
fn curl(netns: Option<&str>, address: &str, method: &str, path: &str) -> Option<(u16, String)> {
    let url = format!("http://{address}{path}");
    let curl = [
        "curl",
        "-s",
        "-X",
        method,
        "-m",
        "20",
        "-w",
        "\n%{http_code}",
        &url,
    ];
    let output: Output = match netns {
        Some(ns) => Command::new("ip")
            .args(["netns", "exec", ns])
            .args(curl)
            .output(),
        None => Command::new(curl[0]).args(&curl[1..]).output(),
    }
    .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n')?;
    Some((
        status.trim().parse().ok().filter(|s| *s != 0)?,
        body.to_owned(),
    ))
}

/// A DNS server on loopback that answers every A query with the address it is set to
/// (and AAAA queries with no records).
pub struct DnsServer {
    pub port: u16,
    answer: Arc<Mutex<Ipv4Addr>>,
}

impl DnsServer {
    pub fn start(initial: Ipv4Addr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new(initial));
        let current = Arc::clone(&answer);
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((len, peer)) = socket.recv_from(&mut buf) {
                if let Some(reply) = dns_reply(&buf[..len], *current.lock().unwrap()) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Self { port, answer }
    }

    pub fn set(&self, address: Ipv4Addr) {
        *self.answer.lock().unwrap() = address;
    }
}

/// A reply to a one-question query: the question echoed, and one A record (TTL 1 s) when
/// it asks for A.
fn dns_reply(query: &[u8], address: Ipv4Addr) -> Option<Vec<u8>> {
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += usize::from(query[end]) + 1;
    }
    let question_end = end + 5;
    let qtype = u16::from_be_bytes([*query.get(end + 1)?, *query.get(end + 2)?]);
    let answers: u16 = u16::from(qtype == 1);
    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&query[..2]);
    reply.extend_from_slice(&[0x81, 0x80, 0, 1]);
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    if answers == 1 {
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4]);
        reply.extend_from_slice(&address.octets());
    }
    Some(reply)
}
