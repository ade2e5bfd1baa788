#!/usr/bin/env python3
"""Writes Kiln's Grafana dashboards (dashboards/*.json) from the definitions below.

    python3 dashboards/generate.py          # rewrite the JSON files
    python3 dashboards/generate.py --check  # exit 1 if a JSON file differs from its definition

The JSON files are what users import or provision; this file is where they are edited, so
that every dashboard shares one layout, one set of variables and one style. Every panel
query is evaluated against a live Prometheus by tests/stack/test_e2e.py.
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39


# ---- Variables ------------------------------------------------------------------------

def datasource_variable():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
    }


def query_variable(name, label, query, all_value=".*", multi=True):
    """A variable filled from `label_values(...)`; "All" means `all_value` (a regex)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": all_value,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
    }


def job_variable(metric, default_job):
    """The scrape job; the job name of prometheus.yml is selected to begin with."""
    variable = query_variable("job", "Job", f"label_values({metric}, job)")
    variable["current"] = {"selected": True, "text": [default_job], "value": [default_job]}
    return variable


def instance_variable(metric):
    return query_variable("instance", "Host", f'label_values({metric}{{job=~"$job"}}, instance)')


def cluster_variable(metric):
    # Empty on plain hosts (no cluster_id label): "All" (.*) matches the missing label too.
    return query_variable("cluster_id", "EMR cluster", f"label_values({metric}, cluster_id)")


# ---- Panels ---------------------------------------------------------------------------

def target(expr, legend="", instant=False, fmt=None, ref="A"):
    t = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    if fmt:
        t["format"] = fmt
    return t


def thresholds(*steps, mode="absolute"):
    """steps: (value, colour) pairs above a green base."""
    result = [{"color": "green", "value": None}]
    result += [{"color": colour, "value": value} for value, colour in steps]
    return {"mode": mode, "steps": result}


def panel(kind, title, targets, unit="short", width=12, height=8, description="",
          limits=None, min_value=None, max_value=None, options=None, overrides=None,
          custom=None):
    refs = "ABCDEFGHIJ"
    built = []
    for i, t in enumerate(targets):
        t = dict(t)
        t["refId"] = refs[i]
        built.append(t)
    defaults = {"unit": unit}
    if limits:
        defaults["thresholds"] = limits
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    if custom:
        defaults["custom"] = custom
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": built,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "_size": (width, height),
    }


def series(title, *targets, **kw):
    kw.setdefault("options", {"legend": {"displayMode": "table", "placement": "right",
                                         "calcs": ["lastNotNull", "max"]},
                              "tooltip": {"mode": "multi", "sort": "desc"}})
    return panel("timeseries", title, list(targets), **kw)


def stat(title, expr, unit="short", limits=None, width=4, height=4, **kw):
    return panel("stat", title, [target(expr, instant=True)], unit=unit, width=width,
                 height=height, limits=limits,
                 options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background",
                          "graphMode": "none"}, **kw)


def table(title, expr, unit="short", width=24, height=8, **kw):
    return panel("table", title, [target(expr, instant=True, fmt="table")], unit=unit,
                 width=width, height=height,
                 options={"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
                 **kw)


def states(title, *targets, **kw):
    return panel("state-timeline", title, list(targets),
                 options={"showValue": "never", "mergeValues": True,
                          "legend": {"displayMode": "list", "placement": "bottom"}}, **kw)


def heatmap(title, expr, unit="s", **kw):
    return panel("heatmap", title, [target(expr, "{{le}}", fmt="heatmap")], unit=unit,
                 options={"calculate": False, "yAxis": {"unit": unit},
                          "cellGap": 1, "color": {"scheme": "Oranges", "mode": "scheme"}},
                 **kw)


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


# ---- Layout ---------------------------------------------------------------------------

def lay_out(items):
    """Places panels left to right, wrapping at 24 columns; rows take a line of their own."""
    x = y = line_height = 0
    placed = []
    for ident, item in enumerate(items, start=1):
        item = dict(item)
        width, height = item.pop("_size")
        if item["type"] == "row" or x + width > 24:
            x, y = 0, y + line_height
            line_height = 0
        item["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        item["id"] = ident
        x += width
        line_height = max(line_height, height)
        if item["type"] == "row":
            x, y, line_height = 0, y + 1, 0
        placed.append(item)
    return placed


def dashboard(uid, title, description, variables, items, tags=()):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["kiln", *tags],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "links": [{"type": "dashboards", "tags": ["kiln"], "asDropdown": True,
                   "title": "Kiln dashboards", "includeVars": True, "keepTime": True}],
        "templating": {"list": [datasource_variable(), *variables]},
        "annotations": {"list": []},
        "panels": lay_out(items),
    }


# ---- The dashboards -------------------------------------------------------------------

GPU = 'job=~"$job", instance=~"$instance", gpu=~"$gpu"'


def gpu_fleet():
    variables = [
        job_variable("nvidia_gpu_up", "gpu"),
        cluster_variable("nvidia_gpu_up"),
        query_variable("instance", "Host",
                       'label_values(nvidia_gpu_up{job=~"$job", cluster_id=~"$cluster_id"}, instance)'),
        query_variable("gpu", "GPU", 'label_values(nvidia_gpu_up{job=~"$job", instance=~"$instance"}, gpu)'),
    ]
    who = "{{instance}} GPU {{gpu}}"
    items = [
        row("Fleet"),
        stat("GPUs up", f"count(nvidia_gpu_up{{{GPU}}} == 1) or vector(0)"),
        stat("GPUs lost", f"count(nvidia_gpu_up{{{GPU}}} == 0) or vector(0)",
             limits=thresholds((1, "red"))),
        stat("Mean utilisation", f"avg(nvidia_gpu_utilization_ratio{{{GPU}}})", unit="percentunit",
             limits=thresholds((0.75, "yellow"), (0.9, "red"))),
        stat("Memory in use", f"sum(nvidia_gpu_memory_used_bytes{{{GPU}}}) / sum(nvidia_gpu_memory_total_bytes{{{GPU}}})",
             unit="percentunit", limits=thresholds((0.8, "yellow"), (0.95, "red"))),
        stat("Power draw", f"sum(nvidia_gpu_power_usage_watts{{{GPU}}})", unit="watt"),
        stat("XID errors, 24 h", f"sum(increase(nvidia_gpu_xid_errors_total{{{GPU}}}[24h])) or vector(0)",
             limits=thresholds((1, "red"))),

        row("Utilisation and memory"),
        series("GPU utilisation", target(f"nvidia_gpu_utilization_ratio{{{GPU}}}", who),
               unit="percentunit", min_value=0, max_value=1),
        series("Memory used", target(f"nvidia_gpu_memory_used_bytes{{{GPU}}} / nvidia_gpu_memory_total_bytes{{{GPU}}}", who),
               unit="percentunit", min_value=0, max_value=1,
               limits=thresholds((0.8, "yellow"), (0.95, "red"))),
        series("Memory copy utilisation", target(f"nvidia_gpu_memory_copy_utilization_ratio{{{GPU}}}", who),
               unit="percentunit", min_value=0, max_value=1),
        series("Encoder and decoder", target(f"nvidia_gpu_encoder_utilization_ratio{{{GPU}}}", f"{who} encoder"),
               target(f"nvidia_gpu_decoder_utilization_ratio{{{GPU}}}", f"{who} decoder"),
               unit="percentunit", min_value=0, max_value=1),

        row("Temperature and power"),
        series("Temperature", target(f"nvidia_gpu_temperature_celsius{{{GPU}}}", who),
               unit="celsius", limits=thresholds((75, "yellow"), (85, "red")),
               custom={"thresholdsStyle": {"mode": "line+area"}}),
        series("Power against the enforced limit",
               target(f"nvidia_gpu_power_usage_watts{{{GPU}}} / nvidia_gpu_power_limit_watts{{{GPU}}}", who),
               unit="percentunit", min_value=0, limits=thresholds((0.95, "yellow"))),
        series("Power draw", target(f"nvidia_gpu_power_usage_watts{{{GPU}}}", who), unit="watt"),
        series("Energy per day",
               target(f"increase(nvidia_gpu_energy_consumption_joules_total{{{GPU}}}[1d]) / 3.6e6", who),
               unit="kwatth", description="Energy used over the 24 hours before each point."),

        row("Clocks and throttling"),
        series("SM clock", target(f'nvidia_gpu_clock_hertz{{{GPU}, clock="sm"}}', who), unit="hertz"),
        states("Clock-event (throttle) reasons",
               target(f"nvidia_gpu_clocks_event_reason_active{{{GPU}}} == 1", f"{who} {{{{reason}}}}"),
               description="Why the clocks are held below their maximum: idle, power cap, thermal or hardware slowdown."),
        series("Time throttled", target(f"rate(nvidia_gpu_throttle_seconds_total{{{GPU}}}[$__rate_interval])",
                                        f"{who} {{{{reason}}}}"),
               unit="percentunit", description="Share of time each policy held the clocks down."),
        series("Performance state", target(f"nvidia_gpu_performance_state{{{GPU}}}", who),
               description="P0 is full performance, P8 idle, P12 minimum."),

        row("Health"),
        states("GPU up", target(f"nvidia_gpu_up{{{GPU}}}", who),
               limits=thresholds((0, "red"), (1, "green"))),
        table("XID errors by code", f"sum by (instance, gpu, xid) (nvidia_gpu_xid_errors_total{{{GPU}}})",
              width=12),
        series("ECC errors per hour",
               target(f'sum by (instance, gpu, error) (increase(nvidia_gpu_ecc_errors_total{{{GPU}, counter="volatile"}}[1h]))',
                      f"{who} {{{{error}}}}")),
        series("Remapped rows and retired pages",
               target(f"nvidia_gpu_remapped_rows{{{GPU}}}", f"{who} remapped {{{{cause}}}}"),
               target(f"nvidia_gpu_retired_pages{{{GPU}}}", f"{who} retired {{{{cause}}}}")),
        series("PCIe replays per second",
               target(f"rate(nvidia_gpu_pcie_replays_total{{{GPU}}}[$__rate_interval])", who)),
        series("NVLink errors per second",
               target(f"sum by (instance, gpu, type) (rate(nvidia_gpu_nvlink_errors_total{{{GPU}}}[$__rate_interval]))",
                      f"{who} {{{{type}}}}")),

        row("Processes"),
        table("GPU memory by process",
              f"sum by (instance, gpu, pid, process_name, yarn_application, yarn_container, container_id, systemd_unit) "
              f"(nvidia_gpu_process_memory_used_bytes{{{GPU}}})",
              unit="bytes", description="Needs --collect.processes on the exporter."),
        series("GPU memory by YARN application",
               target(f'sum by (yarn_application) (nvidia_gpu_process_memory_used_bytes{{{GPU}, yarn_application!=""}})',
                      "{{yarn_application}}"),
               unit="bytes"),
        table("Boards", f"nvidia_gpu_info{{{GPU}}}", width=12),
    ]
    return dashboard("kiln-gpu-fleet", "Kiln / GPU fleet",
                     "Every NVIDIA GPU of the fleet from kiln-gpu-exporter; pick a host and a GPU to drill down.",
                     variables, items, tags=("gpu",))


NODE = 'job=~"$job", instance=~"$instance", cluster_id=~"$cluster_id"'


def host():
    variables = [
        job_variable("node_uname_info", "node"),
        cluster_variable("node_uname_info"),
        query_variable("instance", "Host",
                       'label_values(node_uname_info{job=~"$job", cluster_id=~"$cluster_id"}, instance)'),
    ]
    items = [
        row("Overview"),
        stat("Uptime", f"time() - node_boot_time_seconds{{{NODE}}}", unit="s", width=4),
        stat("CPUs", f'count without (cpu, mode) (node_cpu_seconds_total{{{NODE}, mode="idle"}})', width=4),
        stat("Memory", f"node_memory_MemTotal_bytes{{{NODE}}}", unit="bytes", width=4),
        stat("CPU busy", f'1 - avg without (cpu) (sum without (mode) (rate(node_cpu_seconds_total{{{NODE}, mode=~"idle|iowait"}}[5m])))',
             unit="percentunit", limits=thresholds((0.75, "yellow"), (0.9, "red")), width=4),
        stat("Memory in use", f"1 - node_memory_MemAvailable_bytes{{{NODE}}} / node_memory_MemTotal_bytes{{{NODE}}}",
             unit="percentunit", limits=thresholds((0.8, "yellow"), (0.95, "red")), width=4),
        stat("Load per CPU", f'node_load5{{{NODE}}} / on (instance, job) count without (cpu, mode) (node_cpu_seconds_total{{{NODE}, mode="idle"}})',
             unit="short", limits=thresholds((1, "yellow"), (2, "red")), width=4),

        row("CPU"),
        series("CPU by mode",
               target(f'sum by (instance, mode) (rate(node_cpu_seconds_total{{{NODE}, mode!="idle"}}[$__rate_interval])) '
                      f'/ on (instance) group_left count by (instance) (node_cpu_seconds_total{{{NODE}, mode="idle"}})',
                      "{{instance}} {{mode}}"),
               unit="percentunit", custom={"stacking": {"mode": "normal"}, "fillOpacity": 30}),
        series("Load", target(f"node_load1{{{NODE}}}", "{{instance}} 1m"),
               target(f"node_load15{{{NODE}}}", "{{instance}} 15m")),

        row("Memory"),
        series("Memory",
               target(f"node_memory_MemTotal_bytes{{{NODE}}} - node_memory_MemAvailable_bytes{{{NODE}}}", "{{instance}} used"),
               target(f"node_memory_Cached_bytes{{{NODE}}} + node_memory_Buffers_bytes{{{NODE}}}", "{{instance}} cache"),
               target(f"node_memory_MemAvailable_bytes{{{NODE}}}", "{{instance}} available"),
               unit="bytes"),
        series("Swap and major page faults",
               target(f"node_memory_SwapTotal_bytes{{{NODE}}} - node_memory_SwapFree_bytes{{{NODE}}}", "{{instance}} swap used"),
               target(f"rate(node_vmstat_pgmajfault{{{NODE}}}[$__rate_interval])", "{{instance}} major faults/s"),
               unit="short"),

        row("Disks and filesystems"),
        series("Disk throughput",
               target(f"sum by (instance, device) (rate(node_disk_read_bytes_total{{{NODE}}}[$__rate_interval]))", "{{instance}} {{device}} read"),
               target(f"sum by (instance, device) (rate(node_disk_written_bytes_total{{{NODE}}}[$__rate_interval]))", "{{instance}} {{device}} written"),
               unit="Bps"),
        series("Disk busy", target(f"rate(node_disk_io_time_seconds_total{{{NODE}}}[$__rate_interval])", "{{instance}} {{device}}"),
               unit="percentunit", min_value=0, max_value=1),
        panel("bargauge", "Filesystems in use",
              [target(f'1 - node_filesystem_avail_bytes{{{NODE}, fstype!~"tmpfs|ramfs|squashfs|overlay"}} '
                      f'/ node_filesystem_size_bytes{{{NODE}, fstype!~"tmpfs|ramfs|squashfs|overlay"}}',
                      "{{instance}} {{mountpoint}}", instant=True)],
              unit="percentunit", min_value=0, max_value=1, width=24,
              limits=thresholds((0.8, "yellow"), (0.9, "red")),
              options={"displayMode": "gradient", "orientation": "horizontal",
                       "reduceOptions": {"calcs": ["lastNotNull"]}}),

        row("Network"),
        series("Network traffic",
               target(f'rate(node_network_receive_bytes_total{{{NODE}, device!~"lo|veth.+|docker.+|br-.+"}}[$__rate_interval])', "{{instance}} {{device}} in"),
               target(f'rate(node_network_transmit_bytes_total{{{NODE}, device!~"lo|veth.+|docker.+|br-.+"}}[$__rate_interval])', "{{instance}} {{device}} out"),
               unit="Bps"),
        series("Network errors and drops",
               target(f'rate(node_network_receive_errs_total{{{NODE}, device!="lo"}}[$__rate_interval]) + rate(node_network_receive_drop_total{{{NODE}, device!="lo"}}[$__rate_interval])', "{{instance}} {{device}} in"),
               target(f'rate(node_network_transmit_errs_total{{{NODE}, device!="lo"}}[$__rate_interval]) + rate(node_network_transmit_drop_total{{{NODE}, device!="lo"}}[$__rate_interval])', "{{instance}} {{device}} out"),
               unit="pps"),

        row("Pressure"),
        series("Time stalled (PSI)",
               target(f"rate(node_pressure_cpu_waiting_seconds_total{{{NODE}}}[$__rate_interval])", "{{instance}} CPU"),
               target(f"rate(node_pressure_memory_waiting_seconds_total{{{NODE}}}[$__rate_interval])", "{{instance}} memory"),
               target(f"rate(node_pressure_io_waiting_seconds_total{{{NODE}}}[$__rate_interval])", "{{instance}} IO"),
               unit="percentunit", width=24,
               description="Share of time some task waited for CPU, memory or IO (Linux pressure stall information)."),
    ]
    return dashboard("kiln-host", "Kiln / Host",
                     "CPU, memory, disks, filesystems, network and pressure of one host or many, from kiln-node-exporter (or node_exporter). Works for plain hosts and EMR nodes (cluster_id from EC2 discovery).",
                     variables, items, tags=("node",))


SPARK = 'job=~"$job", application=~"$application", executor_id=~"$executor"'


def spark():
    variables = [
        job_variable("spark_jvm_memory", "spark"),
        query_variable("application", "Application", 'label_values(spark_jvm_memory{job=~"$job"}, application)'),
        query_variable("executor", "Executor",
                       'label_values(spark_jvm_memory{job=~"$job", application=~"$application"}, executor_id)'),
        cluster_variable("nvidia_gpu_up"),
    ]
    who = "{{application}} {{executor_id}}"
    items = [
        row("Application"),
        stat("Executors reporting", f'count(spark_jvm_memory{{{SPARK}, area="heap", qty="used"}}) or vector(0)'),
        stat("Active tasks", f'sum(spark_executor_threadpool{{{SPARK}, qty="activeTasks"}}) or vector(0)'),
        stat("Completed tasks", f'sum(spark_app_status_total{{{SPARK}, metric="completedTasks"}}) or vector(0)'),
        stat("Failed tasks", f'sum(spark_app_status_total{{{SPARK}, metric="failedTasks"}}) or vector(0)',
             limits=thresholds((1, "red"))),
        stat("Running stages", f'sum(spark_dag_scheduler{{{SPARK}, group="stage", qty="runningStages"}}) or vector(0)'),
        stat("Active jobs", f'sum(spark_dag_scheduler{{{SPARK}, group="job", qty="activeJobs"}}) or vector(0)'),

        row("Executors and JVM"),
        series("JVM heap used", target(f'spark_jvm_memory{{{SPARK}, area="heap", qty="used"}}', who),
               target(f'spark_jvm_memory{{{SPARK}, area="heap", qty="max"}}', f"{who} max"), unit="bytes"),
        series("Memory pools", target(f'spark_jvm_pool_memory{{{SPARK}, qty="used"}}', f"{who} {{{{pool}}}}"), unit="bytes"),
        series("GC time", target(f"rate(spark_jvm_gc_time_milliseconds{{{SPARK}}}[$__rate_interval]) / 1000", f"{who} {{{{gc}}}}"),
               unit="percentunit", description="Share of time in garbage collection."),
        series("GC collections per second", target(f"rate(spark_jvm_gc_collections{{{SPARK}}}[$__rate_interval])", f"{who} {{{{gc}}}}")),
        series("Executor memory (peak metrics)",
               target(f'spark_executor_metrics{{{SPARK}, metric=~"JVMHeapMemory|JVMOffHeapMemory|OnHeapExecutionMemory|OnHeapStorageMemory"}}',
                      f"{who} {{{{metric}}}}"), unit="bytes"),
        series("Tasks", target(f'spark_executor_threadpool{{{SPARK}, qty="activeTasks"}}', f"{who} active"),
               target(f"rate(spark_executor_succeededTasks_total{{{SPARK}}}[$__rate_interval])", f"{who} succeeded/s")),
        series("Task time", target(f"rate(spark_executor_runTime_total{{{SPARK}}}[$__rate_interval]) / 1000", f"{who} run"),
               target(f"rate(spark_executor_jvmGCTime_total{{{SPARK}}}[$__rate_interval]) / 1000", f"{who} GC"),
               unit="percentunit", description="Task run and GC time per second of wall time (executor slots busy)."),
        series("Shuffle", target(f"rate(spark_executor_shuffleTotalBytesRead_total{{{SPARK}}}[$__rate_interval])", f"{who} read"),
               target(f"rate(spark_executor_shuffleBytesWritten_total{{{SPARK}}}[$__rate_interval])", f"{who} written"),
               unit="Bps"),

        row("Scheduler and block manager"),
        series("DAG scheduler stages",
               target(f'spark_dag_scheduler{{{SPARK}, group="stage"}}', "{{application}} {{qty}}")),
        series("Scheduler message processing time",
               target(f'spark_dag_scheduler{{{SPARK}, group="messageProcessingTime", qty=~"p50|p99"}}', "{{application}} {{qty}}"),
               unit="ms"),
        series("Block manager memory",
               target(f'spark_block_manager{{{SPARK}, type="memory", qty=~"memUsed_MB|maxMem_MB"}} * 1048576', f"{who} {{{{qty}}}}"),
               unit="bytes"),
        series("Task outcomes", target(f'spark_app_status_total{{{SPARK}, group="tasks", metric=~"completedTasks|failedTasks|killedTasks"}}',
                                       "{{application}} {{metric}}")),

        row("GPUs under the executors (RAPIDS on EMR)"),
        table("GPU use per host beside its YARN containers",
              'avg by (instance) (nvidia_gpu_utilization_ratio{cluster_id=~"$cluster_id"}) '
              'and on (instance) count by (instance) (nvidia_gpu_process_memory_used_bytes{cluster_id=~"$cluster_id", yarn_application=~"$application"})',
              unit="percentunit", width=12,
              description="Mean GPU utilisation of each host that runs a container of the selected applications."),
        table("GPU memory by YARN container",
              'sum by (instance, gpu, yarn_application, yarn_container) '
              '(nvidia_gpu_process_memory_used_bytes{cluster_id=~"$cluster_id", yarn_application=~"$application"})',
              unit="bytes", width=12,
              description="From kiln-gpu-exporter --collect.processes, which reads each process's YARN container from its cgroup."),
        series("GPU utilisation of those hosts",
               target('nvidia_gpu_utilization_ratio{cluster_id=~"$cluster_id"} and on (instance) '
                      'count by (instance) (nvidia_gpu_process_memory_used_bytes{cluster_id=~"$cluster_id", yarn_application=~"$application"})',
                      "{{instance}} GPU {{gpu}}"),
               unit="percentunit", min_value=0, max_value=1),
        series("GPU memory of those hosts",
               target('nvidia_gpu_memory_used_bytes{cluster_id=~"$cluster_id"} and on (instance) '
                      'count by (instance) (nvidia_gpu_process_memory_used_bytes{cluster_id=~"$cluster_id", yarn_application=~"$application"})',
                      "{{instance}} GPU {{gpu}}"),
               unit="bytes"),
    ]
    return dashboard("kiln-spark", "Kiln / Spark on EMR",
                     "Spark applications through GraphiteSink and kiln-graphite-exporter (deploy/emr/spark-graphite-mapping.yml), with the GPUs their YARN containers run on.",
                     variables, items, tags=("spark", "emr"))


HADOOP = 'job=~"$job", instance=~"$instance"'


def hadoop():
    variables = [
        job_variable("jmx_scrape_error", "hadoop"),
        query_variable("instance", "Daemon host", 'label_values(up{job=~"$job"}, instance)'),
    ]
    items = [
        row("HDFS"),
        stat("Capacity used", f"sum(hadoop_namenode_capacity_used_bytes{{{HADOOP}}}) / sum(hadoop_namenode_capacity_total_bytes{{{HADOOP}}})",
             unit="percentunit", limits=thresholds((0.8, "yellow"), (0.9, "red"))),
        stat("Live DataNodes", f"sum(hadoop_namenode_num_live_data_nodes{{{HADOOP}}})"),
        stat("Dead DataNodes", f"sum(hadoop_namenode_num_dead_data_nodes{{{HADOOP}}})", limits=thresholds((1, "red"))),
        stat("Missing blocks", f"sum(hadoop_namenode_missing_blocks{{{HADOOP}}})", limits=thresholds((1, "red"))),
        stat("Under-replicated blocks", f"sum(hadoop_namenode_under_replicated_blocks{{{HADOOP}}})",
             limits=thresholds((1, "yellow"))),
        stat("Corrupt blocks", f"sum(hadoop_namenode_corrupt_blocks{{{HADOOP}}})", limits=thresholds((1, "red"))),
        series("Capacity", target(f"hadoop_namenode_capacity_used_bytes{{{HADOOP}}}", "{{instance}} DFS used"),
               target(f"hadoop_namenode_capacity_used_non_dfs_bytes{{{HADOOP}}}", "{{instance}} non-DFS used"),
               target(f"hadoop_namenode_capacity_remaining_bytes{{{HADOOP}}}", "{{instance}} remaining"),
               unit="bytes", custom={"stacking": {"mode": "normal"}, "fillOpacity": 30}),
        series("Blocks needing attention", target(f"hadoop_namenode_missing_blocks{{{HADOOP}}}", "{{instance}} missing"),
               target(f"hadoop_namenode_under_replicated_blocks{{{HADOOP}}}", "{{instance}} under-replicated"),
               target(f"hadoop_namenode_corrupt_blocks{{{HADOOP}}}", "{{instance}} corrupt")),
        series("DataNodes", target(f"hadoop_namenode_num_live_data_nodes{{{HADOOP}}}", "{{instance}} live"),
               target(f"hadoop_namenode_num_dead_data_nodes{{{HADOOP}}}", "{{instance}} dead")),
        series("Files and blocks", target(f"hadoop_namenode_files{{{HADOOP}}}", "{{instance}} files"),
               target(f"hadoop_namenode_blocks{{{HADOOP}}}", "{{instance}} blocks")),

        row("YARN"),
        series("NodeManagers by state", target(f"hadoop_resourcemanager_nodemanagers{{{HADOOP}}}", "{{state}}"),
               custom={"stacking": {"mode": "normal"}, "fillOpacity": 30}),
        series("Applications by queue", target(f"hadoop_resourcemanager_queue_apps_running{{{HADOOP}}}", "{{queue}} running"),
               target(f"hadoop_resourcemanager_queue_apps_pending{{{HADOOP}}}", "{{queue}} pending")),
        series("Containers by queue", target(f"hadoop_resourcemanager_queue_allocated_containers{{{HADOOP}}}", "{{queue}} allocated"),
               target(f"hadoop_resourcemanager_queue_pending_containers{{{HADOOP}}}", "{{queue}} pending")),
        series("Queue memory", target(f"hadoop_resourcemanager_queue_allocated_mb{{{HADOOP}}} * 1048576", "{{queue}} allocated"),
               target(f"hadoop_resourcemanager_queue_available_mb{{{HADOOP}}} * 1048576", "{{queue}} available"),
               target(f"hadoop_resourcemanager_queue_pending_mb{{{HADOOP}}} * 1048576", "{{queue}} pending"),
               unit="bytes"),

        row("Daemons"),
        series("Daemon heap", target(f"hadoop_jvm_mem_heap_used_m{{{HADOOP}}} * 1048576", "{{instance}} {{module}} used"),
               target(f"hadoop_jvm_mem_heap_max_m{{{HADOOP}}} * 1048576", "{{instance}} {{module}} max"), unit="bytes"),
        # jmx_scrape_error is 1 for an unreadable JVM under on_target_error: jmx_scrape_error;
        # under fail_scrape the probe fails, jmx_scrape_error goes stale and `up` is 0.
        states("Reachable through the JMX proxy",
               target(f"(1 - jmx_scrape_error{{{HADOOP}}}) or up{{{HADOOP}}}", "{{instance}} {{module}}")),
    ]
    return dashboard("kiln-hadoop", "Kiln / HDFS and YARN",
                     "HDFS NameNode and YARN ResourceManager through kiln-jmx-exporter (deploy/emr/jmx rules).",
                     variables, items, tags=("hadoop", "emr"))


PING = 'job=~"$job", instance=~"$instance", target=~"$target"'


def network():
    variables = [
        job_variable("ping_loss_ratio", "ping"),
        query_variable("instance", "From", 'label_values(ping_loss_ratio{job=~"$job"}, instance)'),
        query_variable("target", "To", 'label_values(ping_loss_ratio{job=~"$job", instance=~"$instance"}, target)'),
    ]
    pair = "{{instance}} → {{target}}"
    items = [
        row("Between hosts"),
        heatmap("Round-trip time", f"sum by (le) (rate(ping_rtt_seconds_bucket{{{PING}}}[$__rate_interval]))",
                width=24, height=9),
        series("Loss", target(f"ping_loss_ratio{{{PING}}}", pair), unit="percentunit", min_value=0,
               limits=thresholds((0.01, "yellow"), (0.05, "red")), custom={"thresholdsStyle": {"mode": "line"}}),
        series("Mean round trip", target(f"ping_rtt_mean_seconds{{{PING}}}", pair), unit="s"),
        table("Loss by pair, now", f"ping_loss_ratio{{{PING}}}", unit="percentunit", width=12,
              limits=thresholds((0.01, "yellow"), (0.05, "red"))),
        series("Round trip spread (p50, p99)",
               target(f"histogram_quantile(0.5, sum by (instance, target, le) (rate(ping_rtt_seconds_bucket{{{PING}}}[$__rate_interval])))", f"{pair} p50"),
               target(f"histogram_quantile(0.99, sum by (instance, target, le) (rate(ping_rtt_seconds_bucket{{{PING}}}[$__rate_interval])))", f"{pair} p99"),
               unit="s"),
        series("Timeouts per second", target(f"rate(ping_timeouts_total{{{PING}}}[$__rate_interval])", pair), unit="pps"),
    ]
    return dashboard("kiln-network", "Kiln / Network",
                     "Latency and loss between hosts from kiln-ping-exporter.",
                     variables, items, tags=("ping",))


def exporters():
    variables = [
        query_variable("job", "Job", "label_values(up, job)"),
        query_variable("instance", "Target", 'label_values(up{job=~"$job"}, instance)'),
    ]
    sel = 'job=~"$job", instance=~"$instance"'
    items = [
        row("Scrapes"),
        states("Targets up", target(f"up{{{sel}}}", "{{job}} {{instance}}"), width=24, height=8),
        series("Scrape duration", target(f"scrape_duration_seconds{{{sel}}}", "{{job}} {{instance}}"), unit="s"),
        series("Samples per scrape", target(f"scrape_samples_scraped{{{sel}}}", "{{job}} {{instance}}")),
        row("Collectors"),
        states("Collector success",
               target(f'{{__name__=~".+_scrape_collector_success", {sel}}}', "{{instance}} {{collector}}"),
               description="Node and registry collectors: 1 when the collector worked in the last scrape."),
        series("Collector duration",
               target(f'{{__name__=~".+_scrape_collector_duration_seconds", {sel}}}', "{{instance}} {{collector}}"),
               unit="s"),
        series("GPU exporter: NVML calls failing per second",
               target(f"sum by (instance, call, error) (rate(nvidia_gpu_collect_errors_total{{{sel}}}[$__rate_interval]))",
                      "{{instance}} {{call}} {{error}}")),
        states("GPU exporter: NVML up, collection stalled",
               target(f"nvidia_gpu_nvml_up{{{sel}}}", "{{instance}} NVML up"),
               target(f"nvidia_gpu_collect_stalled{{{sel}}}", "{{instance}} stalled")),
        series("Graphite bridge: lines per second",
               target(f"rate(graphite_samples_stored_total{{{sel}}}[$__rate_interval])", "{{instance}} stored"),
               target(f"rate(graphite_invalid_lines_total{{{sel}}}[$__rate_interval])", "{{instance}} invalid"),
               target(f"rate(graphite_unmatched_lines_total{{{sel}}}[$__rate_interval])", "{{instance}} unmatched")),
        series("JMX proxy: probes and errors per second",
               target(f"sum by (instance) (rate(jmx_probes_total{{{sel}}}[$__rate_interval]))", "{{instance}} probes"),
               # Errors appear as a series only once one happened: 0 until then.
               target(f"sum by (instance) (rate(jmx_probe_errors_total{{{sel}}}[$__rate_interval])) "
                      f"or 0 * sum by (instance) (rate(jmx_probes_total{{{sel}}}[$__rate_interval]))",
                      "{{instance}} errors")),
        table("Versions", f"kiln_build_info{{{sel}}}", width=24),
    ]
    return dashboard("kiln-exporters", "Kiln / Exporters health",
                     "Whether every Kiln exporter is scraped, and how each of its collectors fares.",
                     variables, items)

# The recorded series of deploy/prometheus/rules/kiln-yarn.yml carry the application's name;
# $application selects by name.
APP = 'cluster_id=~"$cluster_id", name=~"$application"'
CLUSTER = 'cluster_id=~"$cluster_id"'


def named(expr):
    """A per-application series of the yarn collector, with the application's name."""
    return (f'{expr} * on (cluster_id, yarn_application) group_left (name) '
            f'application:yarn_application_info:max{{{APP}}}')


def emr_efficiency():
    variables = [
        query_variable("job", "Job", "label_values(yarn_application_info, job)"),
        cluster_variable("yarn_application_info"),
        query_variable("application", "Application",
                       'label_values(yarn_application_info{job=~"$job", cluster_id=~"$cluster_id"}, name)'),
    ]
    who = "{{name}} ({{yarn_application}})"
    YARN = 'job=~"$job", cluster_id=~"$cluster_id"'
    items = [
        row("Cluster"),
        stat("Running applications", f"count(application:yarn_application_info:max{{{CLUSTER}}})",
             description="Applications the ResourceManager lists as RUNNING."),
        stat("vCores allocated", f"cluster:yarn_vcores_allocated:ratio{{{CLUSTER}}}", unit="percentunit",
             description="Share of the cluster's vcores YARN has given to containers."),
        stat("Memory allocated", f"cluster:yarn_memory_allocated:ratio{{{CLUSTER}}}", unit="percentunit"),
        stat("GPUs allocated", f"cluster:yarn_gpus_allocated:ratio{{{CLUSTER}}}", unit="percentunit",
             description="Only where the cluster schedules yarn.io/gpu."),
        stat("CPU used of allocated", f"cluster:yarn_vcores_used_per_allocated:ratio{{{CLUSTER}}}",
             unit="percentunit", limits=thresholds((0, "red"), (0.3, "orange"), (0.6, "green")),
             description="CPU time the containers burn per vcore YARN allocated: low means containers hold cores they do not use."),
        stat("Node CPU busy", f"cluster:node_cpu_utilisation:avg{{{CLUSTER}}}", unit="percentunit",
             limits=thresholds((0, "red"), (0.2, "orange"), (0.5, "green"))),
        stat("Idle node-hours, 24 h", f"cluster:node_idle_hours:24h{{{CLUSTER}}}", unit="h",
             description="Nodes' worth of idle CPU summed over the last 24 hours: a node at 25 % busy for an hour counts 0.75."),
        stat("Idle GPU-hours, 24 h", f"cluster:nvidia_gpu_idle_hours:24h{{{CLUSTER}}}", unit="h",
             description="GPUs' worth of unused GPU summed over the last 24 hours: a GPU at 10 % for an hour counts 0.9."),
        stat("Cost, 24 h", f"cluster:kiln_cost:24h{{{CLUSTER}}}", unit="currencyUSD",
             description="From kiln_instance_price_per_hour (see deploy/prometheus/kiln-prices.example.yml); empty without prices."),
        stat("Idle CPU cost, 24 h", f"cluster:kiln_idle_cost:24h{{{CLUSTER}}}", unit="currencyUSD",
             description="What the idle share of each node's CPU cost over the last 24 hours."),
        stat("Active nodes", f'max by (cluster_id) (yarn_cluster_nodes{{{YARN}, state="active"}})'),
        stat("ResourceManager read", f"min(yarn_resourcemanager_up{{{YARN}}})",
             limits=thresholds((0, "red"), (1, "green")),
             description="1 when the last scrape read the ResourceManager's REST API."),
        series("Allocated and used over time",
               target(f"cluster:yarn_vcores_allocated:ratio{{{CLUSTER}}}", "vcores allocated"),
               target(f"cluster:yarn_memory_allocated:ratio{{{CLUSTER}}}", "memory allocated"),
               target(f"cluster:yarn_vcores_used_per_allocated:ratio{{{CLUSTER}}}", "CPU used of allocated"),
               target(f"cluster:node_cpu_utilisation:avg{{{CLUSTER}}}", "node CPU busy"),
               unit="percentunit", min_value=0),
        series("Idle capacity now",
               target(f"cluster:node_cpu_idle:sum{{{CLUSTER}}}", "nodes' worth of idle CPU"),
               target(f"cluster:nvidia_gpu_idle:sum{{{CLUSTER}}}", "GPUs' worth idle"),
               min_value=0),
        series("YARN capacity by state",
               target(f'yarn_cluster_vcores{{{YARN}, state=~"total|allocated"}}', "vcores {{state}}"),
               target(f'yarn_cluster_gpus{{{YARN}, state=~"total|allocated"}}', "GPUs {{state}}"),
               target(f'yarn_cluster_containers{{{YARN}, state=~"allocated|pending"}}', "containers {{state}}")),
        series("Cost per hour",
               target(f"cluster:kiln_cost_per_hour:sum{{{CLUSTER}}}", "all nodes"),
               target(f"cluster:kiln_idle_cost_per_hour:sum{{{CLUSTER}}}", "idle CPU"),
               unit="currencyUSD"),

        row("Applications: allocated against used"),
        table("Running applications", f"application:yarn_application_info:max{{{APP}}}",
              description="As the ResourceManager lists them: name, user, queue and type."),
        series("CPU used per vcore allocated",
               target(f"application:yarn_vcores_used_per_allocated:ratio{{{APP}}}", who),
               unit="percentunit", min_value=0,
               description="CPU seconds per second of the application's containers (node exporter, cgroups) per vcore YARN allocated."),
        series("Memory used per memory allocated",
               target(f"application:yarn_memory_used_per_allocated:ratio{{{APP}}}", who),
               unit="percentunit", min_value=0),
        series("vCores: allocated and used",
               target(named(f"yarn_application_allocated_vcores{{{YARN}}}"), f"{who} allocated"),
               target(f"application:node_yarn_container_cpu_usage:rate5m{{{APP}}}", f"{who} used")),
        series("Memory: allocated, used and peak",
               target(named(f"yarn_application_allocated_memory_bytes{{{YARN}}}"), f"{who} allocated"),
               target(f"application:node_yarn_container_memory_bytes:sum{{{APP}}}", f"{who} used"),
               target(f"application:node_yarn_container_memory_peak_bytes:sum{{{APP}}}", f"{who} peak"),
               unit="bytes"),
        series("Container I/O",
               target(f"application:node_yarn_container_io_read_bytes:rate5m{{{APP}}}", f"{who} read"),
               target(f"application:node_yarn_container_io_write_bytes:rate5m{{{APP}}}", f"{who} written"),
               unit="Bps"),
        series("Containers",
               target(f"application:node_yarn_containers:count{{{APP}}}", f"{who} seen on nodes"),
               target(named(f"yarn_application_running_containers{{{YARN}}}"), f"{who} per YARN")),

        row("GPUs"),
        table("GPU busy per GPU allocated",
              f"sort(application:yarn_gpus_busy_per_allocated:ratio{{{APP}}})", unit="percentunit", width=12,
              description="GPU utilisation summed over the application's GPUs, per GPU YARN allocated to it. Under 5 % for 30 minutes raises YarnApplicationGpusIdle."),
        series("GPUs: allocated and in use",
               target(named(f"yarn_application_allocated_gpus{{{YARN}}}"), f"{who} allocated"),
               target(f"application:nvidia_gpus_in_use:count{{{APP}}}", f"{who} with a process"),
               min_value=0),
        series("Utilisation of the application's GPUs",
               target(f"application:nvidia_gpu_utilization:avg{{{APP}}}", who),
               unit="percentunit", min_value=0, max_value=1),
        series("GPU memory of the application's processes",
               target(f"application:nvidia_gpu_process_memory_used_bytes:sum{{{APP}}}", who),
               unit="bytes"),

        row("Containers"),
        table("Container CPU", f"container:node_yarn_container_cpu_usage:rate5m{{{APP}}}", width=12,
              description="CPU seconds per second of each container's cgroup."),
        table("Container memory", f"container:node_yarn_container_memory_bytes:named{{{APP}}}", unit="bytes", width=12),

        row("Spark"),
        series("Task CPU",
               target(f"application:spark_executor_cpu_usage:rate5m{{{APP}}}", who),
               description="CPU seconds per second Spark's tasks report (executor cpuTime), beside what the containers burn."),
        series("Active tasks", target(f"application:spark_executor_active_tasks:sum{{{APP}}}", who), min_value=0),
        series("JVM heap used", target(f"application:spark_jvm_heap_used_bytes:sum{{{APP}}}", who), unit="bytes"),
        table("Holding containers with no task running",
              f"application:node_yarn_containers:count{{{APP}}} and on (cluster_id, yarn_application) "
              f"(application:spark_executor_active_tasks:sum{{{APP}}} == 0)",
              width=12,
              description="Spark applications whose executors hold YARN containers while no task runs (dynamic allocation off, or an idle notebook)."),
    ]
    return dashboard("kiln-emr-efficiency", "Kiln / EMR efficiency",
                     "Per YARN application: what YARN allocated against what its containers, GPUs and Spark executors use; idle node- and GPU-hours and cost. Needs deploy/prometheus/rules/kiln-yarn.yml; see docs/yarn-efficiency.md.",
                     variables, items, tags=("emr", "yarn", "spark"))


DASHBOARDS = {
    "gpu-fleet.json": gpu_fleet,
    "host.json": host,
    "spark.json": spark,
    "hadoop.json": hadoop,
    "network.json": network,
    "exporters.json": exporters,
    "emr-efficiency.json": emr_efficiency,
}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python3 dashboards/generate.py):", ", ".join(stale), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
