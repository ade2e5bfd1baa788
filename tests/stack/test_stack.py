"""The whole stack, end to end, with a real Prometheus (Debian's package).

Every exporter runs: node on this host, GPU on the fake NVML library, ping towards a host in
a network namespace this test creates, the Graphite bridge fed by a real PySpark job, and the
JMX proxy reading a real JVM (Hadoop's JMXJsonServlet with NameNode and ResourceManager
beans). Prometheus runs with the shipped prometheus.yml and rules, its file_sd files pointed
at the exporters. Then every query of every shipped dashboard, its variables filled in, must
return data through Prometheus' HTTP API.

For the per-application YARN view the test also makes two YARN containers as real cgroup v1
directories (named as YARN's LinuxContainerExecutor names them) with real processes in them,
read by the node exporter's yarn collector; serves recorded ResourceManager REST answers
(crates/jmx/tests/fixtures/yarn/) to the JMX proxy's yarn collector; and runs the Spark job
under the id of the YARN application those answers list, as Spark on YARN names its metrics.
The GPU exporter's fake process already runs in a container of that application.

Two central stores run beside it, each a Prometheus of its own: a receiver
(--web.enable-remote-write-receiver, with the shipped rules) written to by a Prometheus in
agent mode running prometheus-agent.yml, and a global Prometheus running federation.yml
against the per-cluster one. The dashboards must answer on both, the rules evaluate on the
receiver, and remote write must lose no sample.

Run by scripts/test; by hand: python3 -m pytest -q tests/stack (as root, for the namespace
and ICMP).
"""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = ROOT / "target" / "debug"
DEPLOY = ROOT / "deploy"
# The peer in the test's namespace, and this side of the veth pair.
PEER, LOCAL = "10.203.250.2", "10.203.250.1"
# The YARN applications of the recorded ResourceManager answers, and the cgroup hierarchy
# this test's containers live under (its own name, so it never meets a real NodeManager's).
SPARK_APP, MAPREDUCE_APP = "application_1700000000000_0042", "application_1700000000000_0043"
RM_FIXTURES = ROOT / "crates/jmx/tests/fixtures/yarn"
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
HIERARCHY = f"kiln-stack-{os.getpid()}"
# container -> what the process in it does: burn CPU, or hold 96 MiB.
CONTAINERS = {
    "container_e17_1700000000000_0042_01_000002": "burn",
    "container_e17_1700000000000_0043_01_000002": "hold",
}
HELD_MIB = 96


# ---- Helpers --------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read().decode()


def wait_for(what, check, limit=120, every=0.5):
    deadline = time.monotonic() + limit
    while True:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


class Processes:
    """Processes this test started; each is ended by its PID at the end."""

    def __init__(self, logs):
        self.logs = logs
        self.children = []

    def start(self, name, args, **kw):
        log = open(self.logs / f"{name}.log", "wb")
        child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kw)
        self.children.append((name, child))
        return child

    def check_alive(self):
        """Every server is still running (the Spark job ends by itself)."""
        for name, child in self.children:
            if name != "spark" and not name.startswith("worker-") and child.poll() is not None:
                log = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited ({child.returncode}):\n{log}")

    def stop(self):
        for _, child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def cargo_build():
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "kiln-node", "-p", "kiln-gpu", "-p", "kiln-ping",
         "-p", "kiln-graphite", "-p", "kiln-jmx", "-p", "fake-nvml", "-p", "kiln"],
        cwd=ROOT, check=True)


def pyspark_jars():
    import pyspark
    return pathlib.Path(pyspark.__file__).parent / "jars"


def java_classpath():
    jars = ["/usr/share/java/jolokia-core.jar", "/usr/share/java/json-simple.jar"]
    for jar in jars:
        assert pathlib.Path(jar).exists(), f"{jar} is missing (scripts/test installs it)"
    return ":".join(jars + [f"{pyspark_jars()}/*"])


def gpu_procfs(root):
    """/proc entries for the fake GPU processes: names and the cgroups that attribute them."""
    processes = {
        "4242": ("python3", "0::/hadoop-yarn/container_e17_1700000000000_0042_01_000003\n"),
        "4343": ("java", "0::/system.slice/docker-3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b.scope\n"),
        "4444": ("jupyter-kernel", "0::/system.slice/jupyterhub.service\n"),
    }
    for pid, (comm, cgroup) in processes.items():
        (root / pid).mkdir(parents=True)
        (root / pid / "comm").write_text(comm + "\n")
        (root / pid / "cgroup").write_text(cgroup)
    return root


RESOURCE_MANAGER = r"""
import http.server, pathlib, sys
port, apps, metrics = int(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
answers = {"/ws/v1/cluster/apps": apps.read_bytes(), "/ws/v1/cluster/metrics": metrics.read_bytes()}

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = answers.get(self.path.split("?")[0])
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"{}")

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

WORKER = r"""
import sys, time
sys.stdin.readline()  # moved into its cgroups
if sys.argv[1] == "burn":
    while True:
        pass
held = bytearray(int(sys.argv[2]) << 20)
for i in range(0, len(held), 4096):
    held[i] = 1
print("held", flush=True)
sys.stdin.readline()
"""


class Containers:
    """YARN containers as cgroup v1 directories (cpuacct, memory, blkio), each with a real
    process in it. Removed, with their processes, at the end."""

    CONTROLLERS = ("cpuacct", "memory", "blkio")

    def __init__(self, procs):
        missing = [c for c in self.CONTROLLERS if not (CGROUP_ROOT / c / "cgroup.procs").exists()]
        if missing:
            pytest.fail(f"the stack test needs the cgroup v1 controllers {missing} mounted under {CGROUP_ROOT}")
        self.made = []
        self.workers = []
        for controller in self.CONTROLLERS:
            for directory in [CGROUP_ROOT / controller / HIERARCHY,
                              *(CGROUP_ROOT / controller / HIERARCHY / c for c in CONTAINERS)]:
                directory.mkdir()
                self.made.append(directory)
        for container, work in CONTAINERS.items():
            worker = subprocess.Popen([sys.executable, "-c", WORKER, work, str(HELD_MIB)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            procs.children.append((f"worker-{container}", worker))
            for controller in self.CONTROLLERS:
                (CGROUP_ROOT / controller / HIERARCHY / container / "cgroup.procs").write_text(f"{worker.pid}\n")
            worker.stdin.write(b"go\n")
            worker.stdin.flush()
            if work == "hold":
                assert worker.stdout.readline() == b"held\n"
            self.workers.append(worker)

    def remove(self):
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        for directory in reversed(self.made):
            try:
                directory.rmdir()
            except OSError:
                pass


class Namespace:
    """A network namespace holding one ping peer, joined to this one by a veth pair."""

    def __init__(self):
        suffix = os.getpid() % 100000
        self.name = f"kiln-stack-{suffix}"
        self.link = f"kst{suffix}"
        self.run("ip", "netns", "add", self.name)
        self.run("ip", "link", "add", self.link, "type", "veth", "peer", "name", f"{self.link}p")
        self.run("ip", "link", "set", f"{self.link}p", "netns", self.name)
        self.run("ip", "addr", "add", f"{LOCAL}/30", "dev", self.link)
        self.run("ip", "link", "set", self.link, "up")
        inside = ["ip", "netns", "exec", self.name]
        self.run(*inside, "ip", "addr", "add", f"{PEER}/30", "dev", f"{self.link}p")
        self.run(*inside, "ip", "link", "set", f"{self.link}p", "up")
        self.run(*inside, "ip", "link", "set", "lo", "up")

    @staticmethod
    def run(*args):
        subprocess.run(args, check=True, capture_output=True)

    def remove(self):
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


# ---- The stack ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    if os.geteuid() != 0:
        pytest.fail("the stack test needs root: a network namespace and ICMP (scripts/test runs as root)")
    cargo_build()
    work = pathlib.Path(tempfile.mkdtemp(prefix="kiln-stack-"))
    logs = work / "logs"
    logs.mkdir()
    procs = Processes(logs)
    namespace = Namespace()
    containers = None
    try:
        containers = Containers(procs)
        yield start_stack(work, procs)
    finally:
        procs.stop()
        if containers:
            containers.remove()
        namespace.remove()
        shutil.rmtree(work, ignore_errors=True)


def start_stack(work, procs):
    ports = {name: free_port() for name in
             ["node", "gpu", "ping", "graphite", "graphite_in", "jmx", "prometheus", "rm",
              "agent", "receiver", "global"]}

    # The JVM: compiled here, started with the ResourceManager beans too.
    classes = work / "classes"
    classpath = java_classpath()
    subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", classpath,
                    str(ROOT / "crates/jmx/tests/java/KilnTestJvm.java")], check=True)
    jvm_log = open(work / "logs" / "jvm.log", "wb")
    jvm = subprocess.Popen(
        ["java", "-Xmx256m", "-XX:+UseSerialGC", "-Dkiln.yarn=true",
         "-cp", f"{classpath}:{classes}", "KilnTestJvm"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=jvm_log)
    procs.children.append(("jvm", jvm))
    line = jvm.stdout.readline().decode()
    assert line.startswith("listening "), f"the test JVM did not start: {line!r}"
    jvm_port = int(line.split()[1])

    jmx_config = work / "jmx.yml"
    jmx_config.write_text(
        "modules:\n"
        f"  namenode:\n    bridge: hadoop\n    rules_file: {DEPLOY}/emr/jmx/hadoop-namenode.yml\n"
        f"  resourcemanager:\n    bridge: hadoop\n    rules_file: {DEPLOY}/emr/jmx/hadoop-resourcemanager.yml\n"
        f"yarn:\n  resourcemanager_url: http://127.0.0.1:{ports['rm']}\n  timeout: 1s\n")
    procs.start("rm", [sys.executable, "-c", RESOURCE_MANAGER, str(ports["rm"]),
                       str(RM_FIXTURES / "rm-apps-running-gpu.json"), str(RM_FIXTURES / "rm-cluster-metrics-gpu.json")])

    fleet = json.loads((ROOT / "crates/gpu/tests/fixtures/fleet.json").read_text())
    fleet["xid_events"] = [{"gpu": 0, "xid": 79}]
    fixture = work / "fleet.json"
    fixture.write_text(json.dumps(fleet))
    env = dict(os.environ, FAKE_NVML_FIXTURE=str(fixture))

    listen = lambda name: f"--web.listen-address=127.0.0.1:{ports[name]}"
    procs.start("node", [TARGET / "kiln-node-exporter", listen("node"),
                         "--collector.yarn", f"--collector.yarn.cgroup-hierarchy={HIERARCHY}"])
    procs.start("gpu", [TARGET / "kiln-gpu-exporter", listen("gpu"),
                        f"--nvml.library-path={TARGET / 'libfake_nvml.so'}",
                        "--collect.processes", "--collect.interval=1s",
                        f"--path.procfs={gpu_procfs(work / 'proc')}"], env=env)
    procs.start("ping", [TARGET / "kiln-ping-exporter", listen("ping"), "--ping.interval=200ms", PEER])
    # The Spark job ends before the tests start: its series are kept for the whole run rather
    # than the default five minutes.
    procs.start("graphite", [TARGET / "kiln-graphite-exporter", listen("graphite"),
                             "--graphite.sample-expiry=1h",
                             f"--graphite.listen-address=127.0.0.1:{ports['graphite_in']}",
                             f"--graphite.mapping-config={DEPLOY}/emr/spark-graphite-mapping.yml"])
    procs.start("jmx", [TARGET / "kiln-jmx-exporter", listen("jmx"), f"--config.file={jmx_config}"])

    # A real Spark job reports through GraphiteSink while Prometheus starts, under the YARN
    # application id it would have on YARN (there Spark's metrics namespace is that id).
    spark_env = dict(os.environ, PYSPARK_SUBMIT_ARGS=f"--conf spark.metrics.namespace={SPARK_APP} pyspark-shell")
    spark = procs.start("spark", [sys.executable, str(ROOT / "crates/graphite/tests/fixtures/spark_job.py"),
                                  f"kiln=tcp:127.0.0.1:{ports['graphite_in']}"], env=spark_env)

    prometheus_dir = write_prometheus_config(work, ports, jvm_port)
    check = subprocess.run(["promtool", "check", "config", str(prometheus_dir / "prometheus.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    procs.start("prometheus", [
        "prometheus", f"--config.file={prometheus_dir / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
    ])
    api = f"http://127.0.0.1:{ports['prometheus']}/api/v1"
    central = start_central_stores(work, procs, ports, prometheus_dir)

    def targets_up():
        procs.check_alive()
        active = json.loads(get(f"{api}/targets"))["data"]["activeTargets"]
        down = [f"{t['labels']['job']} {t['scrapeUrl']}: {t['lastError']}" for t in active if t["health"] != "up"]
        return len(active) == 8 and not down and active
    wait_for("every target up", targets_up, limit=60)

    output = spark.wait(timeout=300)
    assert output == 0, (work / "logs" / "spark.log").read_text(errors="replace")[-3000:]
    wait_for("Spark's series in Prometheus", lambda: query(api, "spark_jvm_memory"), limit=30)
    # Enough samples for every rate, and a ping round trip histogram with replies in it.
    time.sleep(6)
    procs.check_alive()
    for name in ["receiver", "global"]:
        wait_for(f"Spark's series on the {name}", lambda: query(central[name], "spark_jvm_memory"), limit=30)
    return {"cluster": api, **central}


def start_central_stores(work, procs, ports, prometheus_dir):
    """The receiver fed by the agent, and the global Prometheus federating the cluster's."""
    at = lambda name: f"127.0.0.1:{ports[name]}"
    receiver = work / "receiver.yml"
    receiver.write_text(
        "global:\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {prometheus_dir / 'rules'}/*.yml\n  - {prometheus_dir / 'prices'}/*.yml\n")
    procs.start("receiver", [
        "prometheus", f"--config.file={receiver}", f"--storage.tsdb.path={work / 'tsdb-receiver'}",
        f"--web.listen-address={at('receiver')}", "--web.enable-remote-write-receiver",
    ])

    agent = prometheus_dir / "prometheus-agent.yml"
    config = faster(agent.read_text())
    config = config.replace("replacement: localhost:9404", f"replacement: {at('jmx')}")
    config = config.replace("- targets: ['localhost:9090']", f"- targets: ['{at('agent')}']")
    config = config.replace("http://central-prometheus:9090/api/v1/write",
                            f"http://{at('receiver')}/api/v1/write")
    # Sent within a second of being scraped, so the rules see fresh samples.
    config = config.replace("max_samples_per_send: 2000", "max_samples_per_send: 2000\n      batch_send_deadline: 1s")
    agent.write_text(config)
    check = subprocess.run(["promtool", "check", "config", str(agent)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    procs.start("agent", [
        "prometheus", "--enable-feature=agent", f"--config.file={agent}",
        f"--storage.agent.path={work / 'agent-wal'}", f"--web.listen-address={at('agent')}",
    ])

    federation = prometheus_dir / "federation.yml"
    config = federation.read_text().replace("scrape_interval: 60s", "scrape_interval: 1s\n  scrape_timeout: 1s")
    config = config.replace("['prometheus-cluster-a:9090', 'prometheus-cluster-b:9090']", f"['{at('prometheus')}']")
    federation.write_text(config)
    procs.start("global", [
        "prometheus", f"--config.file={federation}", f"--storage.tsdb.path={work / 'tsdb-global'}",
        f"--web.listen-address={at('global')}",
    ])
    return {
        "receiver": f"http://{at('receiver')}/api/v1",
        "global": f"http://{at('global')}/api/v1",
        "agent": f"http://{at('agent')}",
    }


def faster(config):
    """A one-second scrape (and evaluation) interval instead of the shipped 15 s."""
    config = config.replace("scrape_interval: 15s", "scrape_interval: 1s")
    config = config.replace("scrape_timeout: 10s", "scrape_timeout: 1s")
    return config.replace("evaluation_interval: 15s", "evaluation_interval: 1s")


def write_prometheus_config(work, ports, jvm_port):
    """The shipped configuration with its file_sd files pointed at this test's exporters and
    a one-second scrape interval."""
    directory = work / "prometheus"
    shutil.copytree(DEPLOY / "prometheus", directory)
    config = faster((directory / "prometheus.yml").read_text())
    # As federation.yml asks of each per-cluster server.
    config = config.replace("evaluation_interval: 1s", "evaluation_interval: 1s\n  external_labels:\n    cluster: cluster-a")
    config = config.replace("replacement: localhost:9404", f"replacement: 127.0.0.1:{ports['jmx']}")
    config = config.replace("- targets: ['localhost:9093']", "- targets: []")
    # Prices for the cost view, from the shipped example (kept apart from the shipped rules).
    config = config.replace("  - rules/*.yml\n", "  - rules/*.yml\n  - prices/*.yml\n")
    (directory / "prices").mkdir()
    shutil.copy(DEPLOY / "prometheus" / "kiln-prices.example.yml", directory / "prices" / "kiln-prices.yml")
    config = config.replace("- targets: ['localhost:9090']", f"- targets: ['127.0.0.1:{ports['prometheus']}']")
    (directory / "prometheus.yml").write_text(config)
    targets = directory / "targets"
    at = lambda name: f"- targets: ['127.0.0.1:{ports[name]}']\n"
    # The instance type EC2 discovery sets on EMR, for the cost view.
    (targets / "node.yml").write_text(at("node") + "  labels: {instance_type: m5.xlarge}\n")
    (targets / "gpu.yml").write_text(at("gpu"))
    (targets / "ping.yml").write_text(at("ping"))
    (targets / "spark.yml").write_text(at("graphite"))
    (targets / "jmx-exporter.yml").write_text(at("jmx"))
    (targets / "hadoop.yml").write_text(
        f"- targets: ['127.0.0.1:{jvm_port}']\n  labels: {{module: namenode}}\n"
        f"- targets: ['127.0.0.1:{jvm_port}']\n  labels: {{module: resourcemanager}}\n")
    return directory


def query(api, expr):
    answer = json.loads(get(f"{api}/query?" + urllib.parse.urlencode({"query": expr})))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


# ---- Dashboards -----------------------------------------------------------------------

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
# Variables that may legitimately have no value here: cluster_id exists only on EMR
# (from EC2 discovery); "All" (.*) then also matches series without the label.
MAY_BE_EMPTY = {"cluster_id"}


def fill(text, values):
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return text


def variable_values(api, variable, values):
    """The values Grafana would offer for a `label_values(...)` variable."""
    definition = fill(variable["definition"], values)
    match = re.fullmatch(r"label_values\((?:(.*),\s*)?(\w+)\)", definition)
    assert match, f"unsupported variable query {definition!r}"
    selector, label = match.groups()
    params = {"match[]": selector} if selector else {}
    url = f"{api}/label/{label}/values"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    answer = json.loads(get(url))
    assert answer["status"] == "success", answer
    return answer["data"]


def panel_queries(dashboard):
    for item in dashboard["panels"]:
        for panel in [item, *item.get("panels", [])]:
            for t in panel.get("targets", []):
                yield panel["title"], t["expr"]


# Recorded series over a day, sampled at whole minutes (see kiln-yarn.yml).
MINUTE_SAMPLED = re.compile(r":24h\b")


@pytest.mark.parametrize("server", ["cluster", "receiver", "global"])
@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_dashboard_query_returns_data(stack, path, server):
    """On the cluster's Prometheus, on the receiver of its agent's remote write, and on the
    global Prometheus federating it."""
    api = stack[server]
    dashboard = json.loads(path.read_text())
    values = {"__rate_interval": "10s", "__interval": "1s", "__range": "1m"}
    problems = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            continue
        offered = variable_values(api, variable, values)
        if not offered and variable["name"] not in MAY_BE_EMPTY:
            problems.append(f"variable {variable['name']} offers nothing: {variable['definition']}")
        # What is selected when the dashboard opens: "All" (the variable's all value) or
        # the values saved with it.
        current = variable["current"]["value"]
        if current == ["$__all"]:
            values[variable["name"]] = variable["allValue"]
        else:
            values[variable["name"]] = "|".join(current)
    queries = list(panel_queries(dashboard))
    assert queries, f"{path.name} has no queries"
    retry_until = time.monotonic() + 15
    for title, expr in queries:
        filled = fill(expr, values)
        assert "$" not in filled, f"{title}: a variable is left in {filled}"
        try:
            result = query(api, filled)
            # One slow scrape on a busy machine marks a target's series stale until the next;
            # a query in that second finds nothing. A few more tries tell it from a gap, within
            # one budget for the whole dashboard so that a real gap fails quickly.
            while not result and time.monotonic() < retry_until:
                time.sleep(1)
                result = query(api, filled)
        except Exception as error:  # noqa: BLE001 - reported with the panel
            problems.append(f"{title}: {filled}: {error}")
            continue
        if not result and MINUTE_SAMPLED.search(filled):
            # A rule sampling each minute ([24h:1m]) has nothing to add up until the stack
            # has lived across a minute boundary.
            try:
                result = wait_for(filled, lambda: query(api, filled), limit=70)
            except AssertionError:
                pass
        if not result:
            health = query(api, "min_over_time(up[1m])")
            problems.append(f"{title}: no data for {filled} (up over the last minute: {health})")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_every_rule_file_loads_in_prometheus(stack):
    api = stack["cluster"]
    groups = json.loads(get(f"{api}/rules"))["data"]["groups"]
    files = {pathlib.Path(g["file"]).name for g in groups}
    shipped = {p.name for p in (DEPLOY / "prometheus" / "rules").glob("*.yml")}
    assert files == shipped | {"kiln-prices.yml"}
    unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] == "err"]
    assert not unhealthy, unhealthy
    # The recording rules produce series from the live exporters.
    for record in ["instance:node_memory_utilisation:ratio", "instance:nvidia_gpu_utilization:avg",
                   "gpu:nvidia_gpu_process_memory_used_bytes:sum_by_yarn_application"]:
        wait_for(record, lambda: query(api, record), limit=20)


# ---- Both exposition formats ------------------------------------------------------------

# What Debian's Prometheus 2.42 sends: OpenMetrics first. (Prometheus 2.49 and later can be
# told `scrape_protocols: [OpenMetricsText1.0.0]`; 2.42 asks for it first unasked, so the
# Prometheus of this stack test already reads every exporter's OpenMetrics answer.)
OPENMETRICS_FIRST = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TEXT_ONLY = "text/plain;version=0.0.4"


def fetch(url, accept):
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Content-Type"], answer.read().decode()


def promtool_findings(text):
    """promtool's findings on a text-format answer, as (metric, message) pairs; a parse
    error is a finding without a metric."""
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    findings = []
    for line in (check.stdout + check.stderr).splitlines():
        if line.strip():
            metric, _, message = line.partition(" ")
            findings.append((metric, message) if re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", metric)
                            else ("", line))
    return findings


def kiln_check_findings(url):
    """kiln check's findings (a strict read, in whichever format the exporter chose, then
    promtool's lint rules), as (metric, message) pairs; a read error has no metric."""
    check = subprocess.run([TARGET / "kiln", "check", url], capture_output=True, text=True)
    findings = []
    for line in (check.stdout + check.stderr).splitlines():
        match = re.fullmatch(r".*: line \d+: ([a-zA-Z_:][a-zA-Z0-9_:]*): (.*)", line)
        findings.append(match.groups() if match else ("", line))
    if check.returncode not in (0, 3):
        findings.append(("", f"kiln check exited {check.returncode}"))
    return findings


# Lint findings on names Kiln keeps because the tool it replaces serves them so (renaming
# them would break users' dashboards and rules). Anything else fails the test.
INHERITED_NAMES = {
    # node_exporter's names: kernel field names as /proc writes them, and entropy in bits.
    "node": [r"node_(memory|netstat|vmstat|sockstat|snmp)_\S*[A-Z]\S*: metric names should be written in 'snake_case' not 'camelCase'",
             r'node_entropy_(available|pool_size)_bits: use base unit "bytes" instead of "bits"'],
    # Spark's own metric names, converted as graphite_exporter converts them; and
    # graphite_exporter's graphite_tag_parse_failures, a counter without `_total`.
    "spark": [r"(?!graphite_)\S+: .*", r'graphite_tag_parse_failures: counter metrics should have "_total" suffix'],
    # Names the JMX rules give (the shipped rules keep jmx_exporter's example names).
    "hadoop": [r"(?!jmx_)\S+: .*"],
}


def test_every_exporter_answers_both_formats_cleanly(stack):
    """Every exporter's /metrics and /probe, as Prometheus scrapes them, in the text format
    and in OpenMetrics: promtool reads the text answer and finds nothing but the names
    inherited from the tools Kiln replaces, kiln-scraper reads the OpenMetrics answer
    strictly with the same lint, and Prometheus itself ingested it (every target is up)."""
    api = stack["cluster"]
    active = json.loads(get(f"{api}/targets"))["data"]["activeTargets"]
    scraped = sorted({(t["labels"]["job"], t["scrapeUrl"]) for t in active
                      if t["labels"]["job"] != "prometheus" and t["health"] == "up"})
    ping = next(url for job, url in scraped if job == "ping")
    scraped.append(("ping", ping.replace("/metrics", f"/probe?target={PEER}&count=2&interval=50ms")))
    assert len(scraped) >= 7, scraped
    problems = []
    openmetrics = 0
    for job, url in scraped:
        allowed = [re.compile(p) for p in INHERITED_NAMES.get(job, [])]
        def report(where, findings):
            for metric, message in findings:
                text = f"{metric}: {message}"
                if not metric or not any(p.fullmatch(text) for p in allowed):
                    problems.append(f"{url} ({where}): {text}")

        content_type, text = fetch(url, TEXT_ONLY)
        if not content_type.startswith("text/plain"):
            problems.append(f"{url}: asked for text, got {content_type}")
        report("promtool, text", promtool_findings(text))

        content_type, text = fetch(url, OPENMETRICS_FIRST)
        if content_type.startswith("application/openmetrics-text"):
            openmetrics += 1
            if not text.endswith("# EOF\n"):
                problems.append(f"{url}: OpenMetrics answer without # EOF")
        elif not content_type.startswith("text/plain"):
            problems.append(f"{url}: unexpected {content_type}")
        report("kiln check", kiln_check_findings(url))
    assert not problems, "\n".join(problems)
    # Node, GPU, ping and JMX answer in OpenMetrics when asked; the Graphite store and
    # jmx_exporter 0.x modules answer in the text format only (docs/registry.md).
    assert openmetrics >= 5, openmetrics


def test_application_names_join_onto_container_gpu_and_spark_series(stack):
    """kiln-yarn.yml puts the ResourceManager's names on the series of the containers' cgroups,
    the GPU processes and Spark, with the values of those series unchanged."""
    api = stack["cluster"]
    spark = {"name": "nightly-features", "user": "analyst", "queue": "default", "application_type": "SPARK"}
    mapreduce = {"name": "word count", "user": "etl", "queue": "batch", "application_type": "MAPREDUCE"}

    def one(expr):
        result = wait_for(expr, lambda: query(api, expr), limit=30)
        assert len(result) == 1, result
        return result[0]["metric"], float(result[0]["value"][1])

    def named(record, app, labels):
        metric, value = one(f'{record}{{yarn_application="{app}"}}')
        assert {k: metric.get(k) for k in labels} == labels, metric
        return value

    info, _ = one(f'yarn_application_info{{yarn_application="{SPARK_APP}"}}')
    assert {k: info[k] for k in spark} == spark

    # Containers: the memory the holder touched, as the kernel counts it, under its name.
    holder = next(c for c, work in CONTAINERS.items() if work == "hold")
    kernel = int((CGROUP_ROOT / "memory" / HIERARCHY / holder / "memory.usage_in_bytes").read_text())
    memory = named("application:node_yarn_container_memory_bytes:sum", MAPREDUCE_APP, mapreduce)
    assert HELD_MIB << 20 <= memory <= 2 * (HELD_MIB << 20), memory
    assert abs(memory - kernel) <= 0.1 * kernel, (memory, kernel)
    _, raw = one(f'sum(node_yarn_container_memory_bytes{{yarn_application="{MAPREDUCE_APP}"}})')
    assert abs(memory - raw) <= 0.05 * raw, (memory, raw)
    # CPU: the burner's counter as the kernel keeps it (Prometheus' sample is at most a scrape
    # or two older than the file), and its rate under the application's name.
    burner = next(c for c, work in CONTAINERS.items() if work == "burn")
    _, counter = one(f'node_yarn_container_cpu_seconds_total{{yarn_container="{burner}"}}')
    kernel = int((CGROUP_ROOT / "cpuacct" / HIERARCHY / burner / "cpuacct.usage").read_text()) / 1e9
    assert 0 < counter <= kernel <= counter + 3, (counter, kernel)
    cpu = named("application:node_yarn_container_cpu_usage:rate5m", SPARK_APP, spark)
    _, raw = one(f'sum(rate(node_yarn_container_cpu_seconds_total{{yarn_application="{SPARK_APP}"}}[5m]))')
    assert cpu > 0 and abs(cpu - raw) <= 0.1 * raw, (cpu, raw)
    # Used per allocated: YARN gave the application 5 vcores.
    per_vcore = named("application:yarn_vcores_used_per_allocated:ratio", SPARK_APP, spark)
    assert abs(per_vcore - raw / 5) <= 0.1 * raw / 5, (per_vcore, raw)

    # GPUs: the fake process 4242 (52613349376 bytes on GPU 0, at 87 %) is in a container of
    # the Spark application, which YARN gave one GPU.
    assert named("application:nvidia_gpu_process_memory_used_bytes:sum", SPARK_APP, spark) == 52613349376
    assert named("application:nvidia_gpu_utilization:avg", SPARK_APP, spark) == 0.87
    assert named("application:yarn_gpus_busy_per_allocated:ratio", SPARK_APP, spark) == 0.87

    # Spark: the job's own series, summed, under the application's name.
    heap = named("application:spark_jvm_heap_used_bytes:sum", SPARK_APP, spark)
    _, raw = one(f'sum(spark_jvm_memory{{application="{SPARK_APP}", area="heap", qty="used"}})')
    assert heap == raw and heap > 0, (heap, raw)


def healthy_rules(api):
    groups = json.loads(get(f"{api}/rules"))["data"]["groups"]
    unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] == "err"]
    assert not unhealthy, unhealthy
    return [r for g in groups for r in g["rules"]]


def test_rules_and_alerts_evaluate_on_the_remote_write_receiver(stack):
    cluster, receiver = stack["cluster"], stack["receiver"]
    rules = healthy_rules(receiver)
    assert len(rules) == len(healthy_rules(cluster))
    # Every recording rule that has series on the cluster's server has them on the receiver.
    recorded = [r["name"] for r in rules if r["type"] == "recording"]
    for record in recorded:
        if query(cluster, record):
            wait_for(f"{record} on the receiver", lambda: query(receiver, record), limit=30)
    # Every alert active on the cluster's server becomes active on the receiver too.
    for alert in {a["labels"]["alertname"] for a in json.loads(get(f"{cluster}/alerts"))["data"]["alerts"]}:
        wait_for(f"alert {alert} on the receiver",
                 lambda: query(receiver, f'ALERTS{{alertname="{alert}"}}'), limit=30)
    # The series carry the agent's external label.
    assert all(s["metric"].get("cluster") == "cluster-a" for s in query(receiver, "up"))


def agent_metric(stack, name):
    """The sum of a counter over the agent's remote-write queues, from its /metrics."""
    total, seen = 0.0, False
    for line in get(f"{stack['agent']}/metrics").splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    assert seen, f"the agent does not report {name}"
    return total


def test_remote_write_keeps_up_and_loses_nothing(stack):
    assert agent_metric(stack, "prometheus_remote_storage_samples_total") > 0
    for counter in ["prometheus_remote_storage_samples_failed_total",
                    "prometheus_remote_storage_samples_dropped_total",
                    "prometheus_remote_storage_samples_retried_total"]:
        assert agent_metric(stack, counter) == 0, counter
    # Nothing waits in the queue for long: the newest sample sent is within seconds of the
    # newest sample scraped.
    lag = query(stack["receiver"],
                'time() - max(timestamp(up{job="node"}))')
    assert float(lag[0]["value"][1]) < 10, lag


def test_the_global_prometheus_federates_rules_and_alerts(stack):
    cluster, global_ = stack["cluster"], stack["global"]
    for record in ["instance:node_memory_utilisation:ratio", "instance:nvidia_gpu_utilization:avg"]:
        wait_for(f"{record} on the global Prometheus", lambda: query(global_, record), limit=30)
    if query(cluster, "ALERTS"):
        wait_for("ALERTS on the global Prometheus", lambda: query(global_, "ALERTS"), limit=30)
    assert all(s["metric"].get("cluster") == "cluster-a" for s in query(global_, 'up{job="node"}'))


def test_series_per_target(stack):
    """Series per scrape of each job (and per Hadoop daemon, per Spark executor), for
    docs/sizing.md: written to $KILN_SIZING_OUT when set."""
    api = stack["cluster"]
    counts = {}
    for sample in query(api, "sum by (job, module) (scrape_samples_post_metric_relabeling)"):
        metric = sample["metric"]
        key = metric["job"] + (f"/{metric['module']}" if metric.get("module") else "")
        counts[key] = int(float(sample["value"][1]))
    executors = {}
    for sample in query(api, 'count by (executor_id) ({job="spark", executor_id!=""})'):
        executors[sample["metric"]["executor_id"]] = int(float(sample["value"][1]))
    counts["spark per executor"] = executors
    counts["spark without executor_id"] = int(float(
        (query(api, 'count({job="spark", executor_id=""})') or [{"value": [0, "0"]}])[0]["value"][1]))
    for job in ["node", "gpu", "ping", "spark", "hadoop/namenode", "hadoop/resourcemanager"]:
        assert counts.get(job, 0) > 0, counts
    assert executors, counts
    out = os.environ.get("KILN_SIZING_OUT")
    if out:
        pathlib.Path(out).write_text(json.dumps(counts, indent=2) + "\n")
