"""The published GPU dashboards, answered by kiln-gpu-exporter through the compatibility rules.

kiln-gpu-exporter runs on the fake NVML library with the fleet fixture; a real Prometheus
(Debian's package) scrapes it every second with every rule file of deploy/prometheus/rules
loaded and the GPU job relabelled as deploy/prometheus/mindprince-relabel.yml says. Then each
dashboard vendored in tests/stack/dashboards has its template variables filled as Grafana
fills them (label_values and query_result asked of the same Prometheus, the regex and sort
of the variable applied, "All" as Grafana writes it) and every panel query is evaluated for
each choice of a single-valued variable — every GPU a user can pick. A panel answers when
each of its queries returns data for at least one choice. Every panel must answer except
those in ALLOWED, each with the reason; an entry that no longer applies fails the test too,
so the counts in docs/gpu-exporter.md (checked at the end) stay true.

Also checked here: the series of tankbusta/nvidia_exporter and
mindprince/nvidia_gpu_prometheus_exporter exist with their names and labels.

Run by scripts/test; by hand: python3 -m pytest -q tests/stack/test_gpu_dashboards.py
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse

import pytest
import yaml

from test_stack import Processes, free_port, get, gpu_procfs, query, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = ROOT / "target" / "debug"
DEPLOY = ROOT / "deploy" / "prometheus"
VENDORED = pathlib.Path(__file__).resolve().parent / "dashboards"
DASHBOARDS = {
    "12239": VENDORED / "dcgm-exporter" / "12239-dcgm-exporter-dashboard.json",
    "14574-2024": VENDORED / "nvidia_gpu_exporter" / "14574-2024-dashboard.json",
    "14574": VENDORED / "nvidia_gpu_exporter" / "14574-dashboard.json",
    "25547": VENDORED / "nvidia_gpu_exporter" / "25547-dashboard-overview.json",
}
# Grafana's values for its built-in variables: the Prometheus data source's default scrape
# interval is 15 s, so $__rate_interval is at least four of them.
BUILTIN = {"__rate_interval": "1m", "__interval": "15s", "__range": "6h", "__range_s": "21600"}


# (dashboard, panel title) -> (why the panel has no data on the fake driver, whether that
# still holds). An entry that no longer holds is not allowed: the panel must answer.
ALLOWED = {}

# The labels each upstream exporter puts on its series, besides `instance` and `job`.
TANKBUSTA = {name: {"device_id", "device_uuid", "device_name"} for name in [
    "nvml_power_watts", "nvml_fan_speed", "nvml_gpu_percent", "nvml_memory_free",
    "nvml_memory_total", "nvml_memory_used", "nvml_memory_percent",
    "nvml_temperature_fahrenheit", "nvml_temperature_celsius"]}
TANKBUSTA["nvml_up"] = set()
MINDPRINCE = {name: {"minor_number", "uuid", "name"} for name in [
    "nvidia_gpu_duty_cycle", "nvidia_gpu_power_usage_milliwatts", "nvidia_gpu_fanspeed_percent"]}
MINDPRINCE["nvidia_gpu_num_devices"] = set()
# The names Kiln serves too keep its `gpu` beside mindprince's labels.
MINDPRINCE.update({name: {"minor_number", "uuid", "name", "gpu"} for name in [
    "nvidia_gpu_temperature_celsius", "nvidia_gpu_memory_used_bytes", "nvidia_gpu_memory_total_bytes"]})


# ---- The exporter and Prometheus -------------------------------------------------------

def fleet_fixture(path):
    """fleet.json (an H100, an A100 in MIG mode, a T4), with an XID on the H100; since all
    three are passively cooled, a fourth board with a fan so fan panels have a reading; and
    an H100 in MIG mode, whose GPU instances GPM reads (the A100's it cannot)."""
    fleet = json.loads((ROOT / "crates/gpu/tests/fixtures/fleet.json").read_text())
    fleet["xid_events"] = [{"gpu": 0, "xid": 79}]
    workstation = json.loads(json.dumps(fleet["devices"][2]))
    workstation.update(name="NVIDIA RTX A4000", uuid="GPU-c0ffee00-1111-4222-8333-444455556666",
                       pci_bus_id="00000000:3B:00.0", minor_number=3, fans=[41])
    fleet["devices"].append(workstation)
    hopper = json.loads(json.dumps(fleet["devices"][0]))
    hopper.update(uuid="GPU-4bd0e6a1-7c55-4e02-b1f3-5a6b7c8d9e0f", pci_bus_id="00000000:4C:00.0",
                  minor_number=4, processes=[])
    instance_gpm = {"graphics_util": 61.5, "sm_util": 58.5, "sm_occupancy": 22.5,
                    "any_tensor_util": 47.5, "dram_bw_util": 12}
    hopper["mig"] = {"current": True, "pending": True, "max_devices": 7, "devices": [
        {"uuid": f"MIG-3c1d2e4f-5a6b-5c7d-8e9f-0a1b2c3d4e{index}f",
         "name": f"NVIDIA H100 80GB HBM3 MIG {size}g.{size * 10}gb",
         "gpu_instance_id": instance, "compute_instance_id": 0,
         "memory": {"total": size * 10 << 30, "used": size << 30},
         "gpm": dict(instance_gpm, sm_util=instance_gpm["sm_util"] / size)}
        for index, (instance, size) in enumerate([(1, 4), (5, 2)])]}
    fleet["devices"].append(hopper)
    path.write_text(json.dumps(fleet))


# The boards fleet_fixture gives the exporter.
GPUS = 5


def opt_in_collectors():
    """Every --collect.* switch the exporter offers (per-process memory, PCIe throughput, ...):
    the dashboards have panels for all of them."""
    help_text = subprocess.run([TARGET / "kiln-gpu-exporter", "--help"], capture_output=True,
                               text=True, check=True).stdout
    switches = re.findall(r"^\s+(--collect\.[\w.-]+)\s*$", help_text, re.M)
    assert "--collect.processes" in switches, help_text
    return switches


def prometheus_config(directory, gpu_port):
    relabel = yaml.safe_load((DEPLOY / "mindprince-relabel.yml").read_text())
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "rules" / "*.yml")],
        "scrape_configs": [{
            "job_name": "gpu",
            "static_configs": [{"targets": [f"127.0.0.1:{gpu_port}"]}],
            # As the shipped prometheus.yml: `instance` is the host alone.
            "relabel_configs": [{"source_labels": ["__address__"], "regex": "(.+):\\d+",
                                 "target_label": "instance"}],
            "metric_relabel_configs": relabel,
        }],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def api():
    subprocess.run(["cargo", "build", "--quiet", "-p", "kiln-gpu", "-p", "fake-nvml"], cwd=ROOT, check=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="kiln-gpu-dashboards-"))
    (work / "logs").mkdir()
    procs = Processes(work / "logs")
    try:
        gpu_port, prometheus_port = free_port(), free_port()
        fleet_fixture(work / "fleet.json")
        procs.start("gpu", [TARGET / "kiln-gpu-exporter", f"--web.listen-address=127.0.0.1:{gpu_port}",
                            f"--nvml.library-path={TARGET / 'libfake_nvml.so'}",
                            "--collect.interval=1s", *opt_in_collectors(),
                            f"--path.procfs={gpu_procfs(work / 'proc')}"],
                    env=dict(os.environ, FAKE_NVML_FIXTURE=str(work / "fleet.json")))
        config = prometheus_config(work, gpu_port)
        check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        procs.start("prometheus", ["prometheus", f"--config.file={config}",
                                   f"--storage.tsdb.path={work / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{prometheus_port}"])
        url = f"http://127.0.0.1:{prometheus_port}/api/v1"

        def gpu_target_up():
            procs.check_alive()
            active = json.loads(get(f"{url}/targets"))["data"]["activeTargets"]
            return active and all(t["health"] == "up" for t in active)
        wait_for("the GPU target up", gpu_target_up, limit=60)
        # Rules read rules (mindprince's names feed dcgm-compat) and rates need two samples.
        wait_for("the recorded series", lambda: query(url, "nvidia_smi_gpu_info") and query(url, "nvml_up")
                 and query(url, "nvidia_gpu_duty_cycle"), limit=30)
        time.sleep(5)
        procs.check_alive()
        yield url
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)


def ask(api, expr, where):
    """An instant query; a query Prometheus refuses fails with its message and where it was."""
    try:
        return query(api, expr)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{where}: {error.read().decode(errors='replace')}") from None


# ---- Grafana's template variables ------------------------------------------------------

def fill(text, values):
    """Grafana's interpolation: $name, ${name} and ${name:raw}, longest names first."""
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f"${{{name}:raw}}", value).replace(f"${{{name}}}", value)
        text = re.sub(rf"\${re.escape(name)}\b", lambda _: value, text)
    return text


def variable_query(variable):
    q = variable.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    return q or variable.get("definition", "")


def metric_string(series):
    """How Grafana shows a query_result series to a variable's regex."""
    labels = dict(series["metric"])
    name = labels.pop("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {series['value'][1]} {int(float(series['value'][0]) * 1000)}"


def apply_regex(variable, texts):
    """A variable's regex as Grafana applies it: the first group, or the named groups
    `text` and `value`; without a regex each string is its own text and value."""
    source = variable.get("regex") or ""
    if not source:
        return [(t, t) for t in texts]
    match = re.fullmatch(r"/(.*)/([gimsuy]*)", source)
    pattern = re.compile(re.sub(r"\(\?<(\w+)>", r"(?P<\1>", match.group(1)))
    options = []
    for text in texts:
        found = {}
        for m in pattern.finditer(text):
            groups = m.groupdict()
            if groups:
                for key in ("text", "value"):
                    if groups.get(key) and key not in found:
                        found[key] = groups[key]
            elif "value" not in found:
                found["value"] = m.group(1) if m.groups() else m.group(0)
            if "g" not in match.group(2):
                break
        if "value" in found or "text" in found:
            value = found.get("value", found.get("text"))
            options.append((found.get("text", value), value))
    return options


def variable_options(api, variable, values):
    """The (text, value) pairs Grafana offers for a query variable, sorted as it sorts them."""
    definition = fill(variable_query(variable), values)
    if definition.startswith("query_result("):
        texts = [metric_string(s) for s in query(api, definition[len("query_result("):-1])]
    else:
        match = re.fullmatch(r"label_values\((?:(.*),\s*)?(\w+)\)", definition.strip())
        assert match, f"unsupported variable query {definition!r}"
        selector, label = match.groups()
        url = f"{api}/label/{label}/values"
        if selector:
            url += "?" + urllib.parse.urlencode({"match[]": selector})
        texts = json.loads(get(url))["data"]
    options = list(dict.fromkeys(apply_regex(variable, texts)))
    sort = variable.get("sort") or 0
    if sort in (1, 2):
        options.sort(key=lambda o: o[0], reverse=sort == 2)
    elif sort in (3, 4):
        options.sort(key=lambda o: float(re.search(r"\d+", o[0]).group()) if re.search(r"\d+", o[0]) else 0,
                     reverse=sort == 4)
    return options


def regex_escape(value):
    """A value inside a PromQL regex string, as Grafana writes it: the regex escape's
    backslash doubled inside the double-quoted string."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def selections(api, dashboard):
    """Every filling of the dashboard's variables a user can choose: multi-valued ones
    (and those with "All") at "All", single-valued ones at each value they offer."""
    variables = [v for v in dashboard["templating"]["list"] if v["type"] not in ("datasource", "constant")]
    problems = []

    def walk(index, values):
        if index == len(variables):
            yield dict(values)
            return
        variable = variables[index]
        if variable["type"] == "custom":
            options = [(o["text"], o["value"]) for o in variable.get("options", [])]
        else:
            options = variable_options(api, variable, values)
        if not options and not variable.get("allValue"):
            problems.append(f"variable {variable['name']} offers nothing: {variable_query(variable)}")
            return
        if variable.get("includeAll") or variable.get("multi"):
            chosen = [variable.get("allValue") or "(" + "|".join(regex_escape(v) for _, v in options) + ")"]
        else:
            chosen = [v for _, v in options]
        for value in chosen:
            yield from walk(index + 1, {**values, variable["name"]: value})

    fillings = list(walk(0, dict(BUILTIN)))
    assert not problems, problems
    return fillings


def panels(dashboard):
    def walk(items):
        for panel in items:
            yield panel
            yield from walk(panel.get("panels", []))
    return [p for p in walk(dashboard["panels"]) if p.get("type") != "row" and p.get("targets")]


def evaluate(api, dashboard):
    """{panel title: (queries, queries with data for some filling)}; panel titles that occur
    twice get a suffix."""
    fillings = selections(api, dashboard)
    results, seen = {}, set()
    for panel in panels(dashboard):
        title = panel["title"]
        while title in seen:
            title += " (again)"
        seen.add(title)
        exprs = [t["expr"] for t in panel["targets"] if t.get("expr") and not t.get("hide")]
        answered = 0
        for expr in exprs:
            for values in fillings:
                filled = fill(expr, values)
                assert not re.search(r"\$[A-Za-z_{]", filled), f"{title}: a variable is left in {filled}"
                if ask(api, filled, f"{title}: {filled}"):
                    answered += 1
                    break
        results[title] = (len(exprs), answered)
    return results


# ---- Tests -------------------------------------------------------------------------------

MEASURED = {}


@pytest.mark.parametrize("key", list(DASHBOARDS), ids=list(DASHBOARDS))
def test_every_panel_answers_but_the_allowed(api, key):
    dashboard = json.loads(DASHBOARDS[key].read_text())
    results = evaluate(api, dashboard)
    silent = {title for title, (total, answered) in results.items() if answered < total}
    allowed = {title for (board, title), (_, applies) in ALLOWED.items() if board == key and applies}
    MEASURED[key] = {
        "panels": len(results),
        "panels_answered": len(results) - len(silent),
        "queries": sum(t for t, _ in results.values()),
        "queries_answered": sum(a for _, a in results.values()),
        "silent": sorted(silent),
    }
    print(f"\n{key}: {MEASURED[key]}")
    assert not silent - allowed, f"{key}: panels without data: {sorted(silent - allowed)}"
    assert not allowed - silent, f"{key}: these panels answer now; remove them from ALLOWED: {sorted(allowed - silent)}"


def test_docs_state_the_measured_counts():
    """docs/gpu-exporter.md has one table row per dashboard with what the test above measured."""
    if len(MEASURED) < len(DASHBOARDS):
        pytest.skip("needs every dashboard measured in this run")
    docs = (ROOT / "docs" / "gpu-exporter.md").read_text()
    for key, m in MEASURED.items():
        row = f"| {m['panels_answered']} of {m['panels']} | {m['queries_answered']} of {m['queries']} |"
        line = next((l for l in docs.splitlines() if l.startswith(f"| {key} ")), None)
        assert line is not None, f"docs/gpu-exporter.md has no row for {key}"
        assert row in line, f"docs/gpu-exporter.md says {line!r}; measured {row}"


@pytest.mark.parametrize("exporter,expected", [("tankbusta", TANKBUSTA), ("mindprince", MINDPRINCE)],
                         ids=["tankbusta", "mindprince"])
def test_older_exporters_series_exist_with_their_labels(api, exporter, expected):
    problems = []
    for name, labels in expected.items():
        result = query(api, name)
        if not result:
            problems.append(f"{name}: no series")
            continue
        for series in result:
            have = set(series["metric"]) - {"__name__", "instance", "job"}
            if have != labels:
                problems.append(f"{name}: labels {sorted(have)}, expected {sorted(labels)}")
                break
    assert not problems, f"{exporter}:\n  " + "\n  ".join(problems)


def test_mindprince_names_are_one_series_per_gpu(api):
    """The relabelled names come back once per GPU, not beside the scraped ones."""
    for name in ["nvidia_gpu_temperature_celsius", "nvidia_gpu_memory_used_bytes", "nvidia_gpu_memory_total_bytes"]:
        result = query(api, name)
        gpus = [s["metric"]["gpu"] for s in result]
        assert sorted(gpus) == [str(gpu) for gpu in range(GPUS)], (name, result)
        assert all(s["metric"]["minor_number"] == s["metric"]["gpu"] for s in result), result


def test_every_compatibility_rule_evaluates_cleanly(api):
    """No rule fails at run time (a join that matches twice, a label_replace that makes two
    series one), with the relabelling in place."""
    groups = json.loads(get(f"{api}/rules"))["data"]["groups"]
    names = {g["name"] for g in groups}
    assert {"dcgm-compat", "nvidia-smi-compat", "nvml-compat", "mindprince-compat"} <= names, names
    failing = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] == "err"]
    assert not failing, failing


def test_the_shipped_gpu_dashboard_still_answers_with_the_relabelling(api):
    """dashboards/gpu-fleet.json reads the three names mindprince's relabelling re-records."""
    dashboard = json.loads((ROOT / "dashboards" / "gpu-fleet.json").read_text())
    results = evaluate(api, dashboard)
    silent = sorted(title for title, (total, answered) in results.items() if answered < total)
    assert not silent, silent


def test_rules_over_the_relabelled_names_see_one_series_per_gpu(api):
    """The rules that combine a relabelled name with another one still match them up, and
    the per-host sum is one series."""
    for expr, expected in [
        ("DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE + DCGM_FI_DEV_FB_RESERVED)", GPUS),
        ("DCGM_FI_DEV_GPU_TEMP", GPUS),
        ("nvidia_smi_memory_used_bytes / nvidia_smi_memory_total_bytes", GPUS),
        ("nvidia_smi_temperature_gpu * on (uuid) group_left (index, name) nvidia_smi_gpu_info", GPUS),
        ("nvml_memory_used", GPUS),
        ("instance:nvidia_gpu_memory_used_bytes:sum", 1),
    ]:
        result = query(api, expr)
        assert len(result) == expected, (expr, result)


def test_the_relabelling_in_the_docs_is_the_shipped_one():
    docs = (ROOT / "docs" / "gpu-exporter.md").read_text()
    section = docs[docs.index("### mindprince's names and the relabelling"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    job = yaml.safe_load(block)[0]
    assert job["metric_relabel_configs"] == yaml.safe_load((DEPLOY / "mindprince-relabel.yml").read_text())
