#!/usr/bin/env bash
# kiln-gpu-exporter with eight GPUs on the fake driver (crates/fake-nvml), collecting every
# 5 s with per-process metrics on: CPU (share of one core) and RSS over a window, and the
# latency of scrapes served from the snapshot.
#
# nvidia-smi cannot run here, so the usual alternative (nvidia-smi --query-gpu on every
# scrape) is not measured side by side; docs/performance.md quotes its published cost.
#
#   scripts/bench/gpu.sh [SECONDS]       (CPU is measured over SECONDS, default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}

cargo build --release --quiet -p kiln-gpu --bin kiln-gpu-exporter
cargo build --release --quiet -p fake-nvml
exporter=$PWD/target/release/kiln-gpu-exporter
library=$PWD/target/release/libfake_nvml.so
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The fleet fixture's H100 eight times.
python3 - "$work/eight.json" <<'PY'
import json, sys
fleet = json.load(open("crates/gpu/tests/fixtures/fleet.json"))
h100 = fleet["devices"][0]
devices = []
for k in range(8):
    gpu = json.loads(json.dumps(h100))
    gpu["uuid"] = "GPU-5d3b1a52-6c2e-4f11-9a0e-0a1b2c3d4e5%d" % k
    gpu["minor_number"] = k
    devices.append(gpu)
fleet["devices"] = devices
json.dump(fleet, open(sys.argv[1], "w"))
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FAKE_NVML_FIXTURE=$work/eight.json "$exporter" --web.listen-address=127.0.0.1:"$port" \
  --nvml.library-path="$library" --collect.interval=5s --collect.processes 2>"$work/log" &
pid=$!
url=http://127.0.0.1:$port/metrics
for _ in $(seq 200); do curl -sf -o /dev/null "$url" && break; sleep 0.05; done

cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

echo "==> idle at a 5 s interval for ${seconds}s (no scrapes)"
before=$(cpu "$pid")
sleep "$seconds"
after=$(cpu "$pid")
printf 'cpu=%s%% of a core  rss=%s MiB\n' \
  "$(awk -v a="$after" -v b="$before" -v s="$seconds" 'BEGIN {printf "%.3f", 100 * (a - b) / s}')" "$(rss "$pid")"

echo "==> 300 scrapes"
for _ in $(seq 300); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done | sort -n |
  awk '{t[NR] = $1} END {printf "median=%.2f ms  p90=%.2f ms\n", 1000 * t[int(NR / 2)], 1000 * t[int(NR * 0.9)]}'
printf 'rss after scrapes=%s MiB  body=%s bytes\n' "$(rss "$pid")" "$(curl -s "$url" | wc -c)"
