#!/usr/bin/env python3
"""Series per host for docs/sizing.md, counted from real scrapes of the built exporters.

- node: kiln-node-exporter with its default collectors on this machine (its shape, CPUs,
  disks, interfaces and filesystems, is printed with the count);
- GPU: kiln-gpu-exporter on the fake NVML library with 8 GPUs (the fixture's H100 board,
  copied to indexes 0-7, two processes each), with and without --collect.processes;
- ping: kiln-ping-exporter with 1, 10 and 100 targets (loopback addresses 127.0.2.N).

Spark (Graphite) and Hadoop (JMX) series need a Spark job and a JVM: the stack test counts
them (tests/stack/test_stack.py::test_series_per_target, with KILN_SIZING_OUT=FILE).

    cargo build --workspace --bins && sudo python3 scripts/bench/sizing.py
"""

import copy
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = ROOT / "target" / "debug"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def series(port, ready=lambda text: True, limit=30):
    """Samples in one scrape (every line that is not a comment), once `ready` holds."""
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
            if ready(text):
                lines = [l for l in text.splitlines() if l and not l.startswith("#")]
                return len(lines), lines
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"no answer on port {port}")
        time.sleep(0.2)


def run(args, env=None):
    return subprocess.Popen([str(a) for a in args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)


def stop(child):
    child.terminate()
    child.wait(timeout=10)


def machine_shape():
    cpus = os.cpu_count()
    disks = [l.split()[2] for l in open("/proc/diskstats") if not l.split()[2].startswith(("loop", "ram"))]
    interfaces = [l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]]
    mounts = len(open("/proc/mounts").readlines())
    return f"{cpus} CPUs, {len(disks)} block devices, {len(interfaces)} interfaces, {mounts} mounts"


def node():
    port = free_port()
    child = run([TARGET / "kiln-node-exporter", f"--web.listen-address=127.0.0.1:{port}"])
    try:
        count, lines = series(port)
    finally:
        stop(child)
    # What each more CPU adds: the series of CPU 0.
    per_cpu = sum(1 for l in lines if 'cpu="0"' in l)
    return {"series": count, "per_cpu": per_cpu, "machine": machine_shape()}


def gpu(work, processes):
    fleet = json.loads((ROOT / "crates/gpu/tests/fixtures/fleet.json").read_text())
    board = fleet["devices"][0]
    devices = []
    for n in range(8):
        device = copy.deepcopy(board)
        device["uuid"] = f"GPU-00000000-0000-0000-0000-00000000000{n}"
        device["pci_bus_id"] = f"00000000:{0x18 + n:02X}:00.0"
        device["minor_number"] = n
        device["serial"] = f"16501234567{n:02d}"
        device["processes"] = [dict(board["processes"][0], pid=4_190_000 + 10 * n + k) for k in range(2)] \
            if board.get("processes") else []
        devices.append(device)
    fleet["devices"] = devices
    fixture = work / "eight.json"
    fixture.write_text(json.dumps(fleet))
    port = free_port()
    args = [TARGET / "kiln-gpu-exporter", f"--web.listen-address=127.0.0.1:{port}",
            f"--nvml.library-path={TARGET / 'libfake_nvml.so'}"]
    if processes:
        args.append("--collect.processes")
    child = run(args, env=dict(os.environ, FAKE_NVML_FIXTURE=str(fixture)))
    try:
        count, lines = series(port, ready=lambda t: 'gpu="7"' in t)
    finally:
        stop(child)
    return {"series": count, "per_gpu": sum(1 for l in lines if 'gpu="7"' in l)}


def ping(targets):
    port = free_port()
    hosts = [f"127.0.2.{n}" for n in range(1, targets + 1)]
    child = run([TARGET / "kiln-ping-exporter", f"--web.listen-address=127.0.0.1:{port}",
                 "--ping.interval=100ms", *hosts])
    try:
        count, _ = series(port, ready=lambda t: f'target="{hosts[-1]}"' in t)
    finally:
        stop(child)
    return {"series": count}


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="kiln-sizing-"))
    result = {
        "node": node(),
        "gpu_8": gpu(work, processes=False),
        "gpu_8_processes": gpu(work, processes=True),
        "ping": {n: ping(n) for n in (1, 10, 100)},
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
