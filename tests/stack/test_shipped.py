"""Everything shipped under deploy/, dashboards/ and systemd/ passes its own tool's checks:
promtool for configurations and rules (with the rules' unit tests), systemd-analyze for the
units as deploy/install.sh installs them, the Kubernetes API schemas for the manifests,
and the house conventions for dashboards."""

import json
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TARGET = ROOT / "target" / "debug"


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


PROMETHEUS_CONFIGS = [
    DEPLOY / "prometheus" / "prometheus.yml",
    DEPLOY / "prometheus" / "prometheus-emr.yml",
    DEPLOY / "prometheus" / "federation.yml",
    DEPLOY / "prometheus" / "prometheus-agent.yml",
    DEPLOY / "emr" / "jmx" / "prometheus-jmx.yml",
]


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: p.name)
def test_prometheus_configs_are_valid(config):
    result = run("promtool", "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_agent_scrapes_as_the_server_does():
    """prometheus-agent.yml repeats prometheus.yml's scrape jobs (agent mode refuses the
    rule_files and alerting the server's file has, so it cannot be the same file)."""
    import yaml
    server = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    agent = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-agent.yml").read_text())
    assert agent["scrape_configs"] == server["scrape_configs"]
    assert {"rule_files", "alerting", "remote_read"}.isdisjoint(agent)
    assert agent["remote_write"]


def test_rule_files_are_valid():
    rules = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
    result = run("promtool", "check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test", sorted((DEPLOY / "prometheus" / "rules" / "tests").glob("*.test.yml")),
                         ids=lambda p: p.name)
def test_rule_unit_tests_pass(test):
    result = run("promtool", "test", "rules", test)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rules", ["kiln-alerts", "kiln-yarn"])
def test_every_alert_has_a_unit_test(rules):
    alerts = set(re.findall(r"^\s+- alert: (\w+)", (DEPLOY / f"prometheus/rules/{rules}.yml").read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", (DEPLOY / f"prometheus/rules/tests/{rules}.test.yml").read_text()))
    assert alerts and alerts == tested, alerts ^ tested


def test_dashboards_match_their_definitions():
    result = run(sys.executable, ROOT / "dashboards" / "generate.py", "--check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "dashboards").glob("*.json")), ids=lambda p: p.stem)
def test_dashboard_conventions(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert "job" in variables, "a job variable"
    assert {"instance", "application"} & variables.keys(), "a host (or application) variable"
    ids = set()
    for panel in dashboard["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_install_is_idempotent_and_the_units_verify():
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as checked:
        install = [DEPLOY / "install.sh", "--destdir", root, "--bin-dir", TARGET]
        first = run(*install)
        assert first.returncode == 0, first.stderr
        assert "installed" in first.stdout
        again = run(*install)
        assert (again.returncode, again.stdout) == (0, ""), again.stdout + again.stderr

        units = sorted(pathlib.Path(root, "etc/systemd/system").glob("*.service"))
        assert len(units) == 5
        # Verified where the binaries are: ExecStart pointed into the staging root.
        for unit in units:
            text = unit.read_text().replace("/usr/local/bin/", f"{root}/usr/local/bin/")
            pathlib.Path(checked, unit.name).write_text(text)
        result = run("systemd-analyze", "verify", *sorted(pathlib.Path(checked).glob("*.service")))
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr
        for unit in units:
            result = run("systemd-analyze", "security", "--offline=yes", unit)
            level = result.stdout.strip().splitlines()[-1]
            assert re.search(r"exposure level .*: \d\.\d (OK|SAFE|PERFECT)", level), f"{unit.name}: {level}"

        removed = run(DEPLOY / "install.sh", "--destdir", root, "--uninstall", "--purge")
        assert removed.returncode == 0, removed.stderr
        left = [p for p in pathlib.Path(root).rglob("*") if p.is_file()]
        assert not left, left


def test_install_refuses_an_unknown_exporter():
    result = run(DEPLOY / "install.sh", "--only", "nodes")
    assert result.returncode == 2
    assert "unknown exporter 'nodes'" in result.stderr


KUBERNETES = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


@pytest.mark.parametrize("manifest", KUBERNETES, ids=lambda p: p.name)
def test_kubernetes_manifests_match_the_api_schemas(manifest):
    result = run(sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", manifest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_containers_use_flags_their_binaries_have():
    import yaml

    for manifest in KUBERNETES:
        for document in yaml.safe_load_all(manifest.read_text()):
            spec = (document or {}).get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                binary = TARGET / pathlib.Path(container["command"][0]).name
                help_text = run(binary, "--help").stdout
                for arg in container.get("args", []):
                    flag = arg.split("=", 1)[0]
                    assert f"{flag}" in help_text, f"{manifest.name}: {binary.name} has no {flag}"


@pytest.mark.parametrize("script", [DEPLOY / "install.sh", DEPLOY / "emr" / "bootstrap.sh"], ids=lambda p: p.name)
def test_shell_scripts_parse(script):
    result = run("bash", "-n", script)
    assert result.returncode == 0, result.stderr


def test_emr_spark_metrics_agree_with_the_properties_file():
    configurations = json.loads((DEPLOY / "emr" / "configurations.json").read_text())
    classified = next(c["Properties"] for c in configurations if c["Classification"] == "spark-metrics")
    properties = dict(
        line.split("=", 1) for line in (DEPLOY / "emr" / "metrics.properties").read_text().splitlines()
        if line and not line.startswith("#"))
    for key, value in classified.items():
        assert properties.get(key) == value, key
    assert properties["*.sink.graphite.port"] == "9109"


def test_emr_yarn_setup_agrees_with_the_exporters():
    """The cgroup hierarchy YARN is told to use is the one the node exporter reads by default,
    the bootstrap's flag exists, and the JMX proxy's EMR file reads the ResourceManager."""
    cgroups = json.loads((DEPLOY / "emr" / "configurations-yarn-cgroups.json").read_text())
    site = next(c["Properties"] for c in cgroups if c["Classification"] == "yarn-site")
    hierarchy = site["yarn.nodemanager.linux-container-executor.cgroups.hierarchy"].strip("/")
    help_text = run(TARGET / "kiln-node-exporter", "--help").stdout
    assert re.search(r"--collector\.yarn\.cgroup-hierarchy[^\[]*\[default: " + re.escape(hierarchy) + r"\]",
                     help_text), help_text
    bootstrap = (DEPLOY / "emr" / "bootstrap.sh").read_text()
    assert 'ARGS="--collector.yarn"' in bootstrap
    assert re.search(r"^\s+--collector\.yarn\s", help_text, re.M), help_text
    import yaml

    jmx = yaml.safe_load((DEPLOY / "emr" / "jmx" / "kiln-jmx.yml").read_text())
    assert jmx["yarn"]["resourcemanager_url"] == "http://localhost:8088"
    result = run(TARGET / "kiln-jmx-exporter", f"--config.file={DEPLOY / 'emr' / 'jmx' / 'kiln-jmx.yml'}",
                 "--check-config")
    assert result.returncode == 0, result.stderr
