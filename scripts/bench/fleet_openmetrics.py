#!/usr/bin/env python3
"""Writes OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`: HOSTS GPU
hosts as the shipped prometheus.yml would have scraped them (`instance` the host, jobs node,
gpu and ping), every 30 s from a minute before to 150 s after LEAD minutes from now: once
the file is written and backfilled (within LEAD minutes), a Prometheus started on the
blocks has the two recent samples `irate` needs for two and a half minutes of benchmark.

Each host has the series `kiln top --prometheus` reads, in the numbers a real scrape has
them (scripts/bench/sizing.py): 16 CPUs (8 modes each), 2 disks, eth0 and lo, 3
filesystems, 8 GPUs with their 9 clock-event reasons, one process each and one XID on one
GPU in ten, and one ping target; `up` for its three jobs; and the recorded CPU share of
deploy/prometheus/rules/kiln-recording.yml (unless RECORDED=0).

    fleet_openmetrics.py HOSTS LEAD > fleet.om
"""

import os
import sys
import time

HOSTS = int(sys.argv[1])
LEAD = int(sys.argv[2])
STEP = 30
now = int(time.time())
start = now + LEAD * 60
TIMES = list(range(start - 60, start + 150 + 1, STEP))
MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
REASONS = [f"reason_{n}" for n in range(9)]
out = sys.stdout
write = out.write


def host(n):
    return f"gpu-{n:05d}.ec2.internal"


def family(name, kind, series):
    """`series` yields (labels, value at time t)."""
    write(f"# TYPE {name} {kind}\n")
    sample = name + ("_total" if kind == "counter" else "")
    for labels, value in series:
        for t in TIMES:
            write(f"{sample}{{{labels}}} {value(t - now)!r} {t}\n")


def per_host(job, extra=lambda n: [("", None)]):
    for n in range(HOSTS):
        for labels, value in extra(n):
            prefix = f'instance="{host(n)}",job="{job}"'
            yield (prefix + ("," + labels if labels else ""), value)


family("up", "gauge", ((f'instance="{host(n)}",job="{job}"', lambda t: 1.0)
                       for job in ["node", "gpu", "ping"] for n in range(HOSTS)))
family("node_cpu_seconds", "counter", per_host("node", lambda n: [
    (f'cpu="{c}",mode="{m}"', lambda t, m=m, n=n: 1e6 + t * (0.5 if m == "user" else 0.05) + n)
    for c in range(16) for m in MODES]))
# What deploy/prometheus/rules/kiln-recording.yml records from those counters when the rules
# run (1 - (idle + iowait) / CPUs: 1 - 0.1 = 0.9), as a Prometheus with the shipped rules
# holds it; `kiln top --prometheus` then reads it instead of the counters. RECORDED=0
# leaves it out, as on a Prometheus without the rules.
if os.environ.get("RECORDED", "1") != "0":
    family("instance:node_cpu_utilisation:rate5m", "gauge",
           per_host("node", lambda n: [("", lambda t: 0.9)]))
for name, value in [("node_load1", 3.5), ("node_load5", 3.0), ("node_load15", 2.5),
                    ("node_memory_MemTotal_bytes", 2.0**39), ("node_memory_MemAvailable_bytes", 2.0**38)]:
    family(name, "gauge", per_host("node", lambda n, value=value: [("", lambda t: value)]))
for name in ["node_disk_read_bytes", "node_disk_written_bytes"]:
    family(name, "counter", per_host("node", lambda n: [
        (f'device="{d}"', lambda t: 1e12 + t * 1e6) for d in ["nvme0n1", "nvme1n1"]]))
for name in ["node_network_receive_bytes", "node_network_transmit_bytes"]:
    family(name, "counter", per_host("node", lambda n: [
        (f'device="{d}"', lambda t: 1e12 + t * 1e7) for d in ["eth0", "lo"]]))
MOUNTS = [("/dev/nvme0n1p1", "/", "ext4"), ("/dev/nvme1n1", "/mnt", "xfs"), ("tmpfs", "/run", "tmpfs")]
for name, value in [("node_filesystem_size_bytes", 1e12), ("node_filesystem_avail_bytes", 4e11)]:
    family(name, "gauge", per_host("node", lambda n, value=value: [
        (f'device="{d}",fstype="{f}",mountpoint="{m}"', lambda t: value) for d, m, f in MOUNTS]))


def gpus(n, more=""):
    return [f'gpu="{g}",uuid="GPU-{n:05d}-{g}"{more}' for g in range(8)]


family("nvidia_gpu_info", "gauge", per_host("gpu", lambda n: [
    (labels, lambda t: 1.0) for labels in gpus(n, ',name="NVIDIA H100 80GB HBM3"')]))
for name, value in [("nvidia_gpu_up", 1), ("nvidia_gpu_utilization_ratio", 0.87),
                    ("nvidia_gpu_memory_used_bytes", 6.2e10), ("nvidia_gpu_memory_total_bytes", 8.5e10),
                    ("nvidia_gpu_temperature_celsius", 61), ("nvidia_gpu_power_usage_watts", 512),
                    ("nvidia_gpu_power_limit_watts", 700)]:
    family(name, "gauge", per_host("gpu", lambda n, value=value: [
        (labels, lambda t: value) for labels in gpus(n)]))
family("nvidia_gpu_clocks_event_reason_active", "gauge", per_host("gpu", lambda n: [
    (f'{labels},reason="{r}"', lambda t, r=r: 1.0 if r == "reason_2" else 0.0)
    for labels in gpus(n) for r in REASONS]))
family("nvidia_gpu_process_memory_used_bytes", "gauge", per_host("gpu", lambda n: [
    (f'{labels},pid="{4242 + i}",process_name="python3"', lambda t: 5e10)
    for i, labels in enumerate(gpus(n))]))
family("nvidia_gpu_xid_errors", "counter", per_host("gpu", lambda n: [
    (f'gpu="0",uuid="GPU-{n:05d}-0",xid="79"', lambda t: 1.0)] if n % 10 == 0 else []))
family("nvidia_gpu_xid_last_timestamp_seconds", "gauge", per_host("gpu", lambda n: [
    (f'gpu="0",uuid="GPU-{n:05d}-0",xid="79"', lambda t: now - 3600.0)] if n % 10 == 0 else []))
for name, value in [("ping_rtt_mean_seconds", 0.0004), ("ping_loss_ratio", 0.0)]:
    family(name, "gauge", per_host("ping", lambda n, value=value: [
        ('ip="10.0.0.1",ip_version="4",target="gateway"', lambda t: value)]))
write("# EOF\n")
