#!/usr/bin/env bash
# Side by side: a bare Kiln exporter vs Debian's node_exporter with every collector off,
# and both serving the same 1 000 series (node_exporter through its textfile collector).
# Reports RSS after start and after the scrapes, and scrape latency (curl time_total).
#
#   scripts/bench/registry.sh [SCRAPES]       default 300 scrapes per exporter
set -euo pipefail
cd "$(dirname "$0")/../.."
scrapes=${1:-300}

command -v prometheus-node-exporter >/dev/null || {
  echo "Installing Debian's prometheus-node-exporter for the comparison" >&2
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null
  rm -f /usr/sbin/policy-rc.d
}
cargo build --release --quiet -p kiln-registry --bin kiln-example-exporter
kiln=target/release/kiln-example-exporter

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The same 1 000 gauges for node_exporter's textfile collector.
{
  echo "# HELP example_series One of many example series."
  echo "# TYPE example_series gauge"
  for i in $(seq 0 999); do echo "example_series{series=\"$i\"} $i"; done
} > "$work/series.prom"

rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

wait_port() {
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$1/metrics" && return; sleep 0.05; done
  echo "nothing listens on $1" >&2; exit 1
}

measure() { # name port pid
  local name=$1 port=$2 pid=$3
  sleep 1
  local rss_start; rss_start=$(rss_kib "$pid")
  local times="$work/$name.times"
  for _ in $(seq 1 "$scrapes"); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics"
  done > "$times"
  local rss_end; rss_end=$(rss_kib "$pid")
  local bytes; bytes=$(curl -s "http://127.0.0.1:$port/metrics" | wc -c)
  sort -n "$times" | awk -v n="$name" -v rs="$rss_start" -v re="$rss_end" -v b="$bytes" '
    { t[NR] = $1 * 1e6 }
    END { printf "| %-44s | %6d | %6d | %7d | %6.0f | %6.0f |\n", n, rs, re, b, t[int(NR/2)], t[int(NR*0.9)] }'
}

echo "| exporter | RSS start KiB | RSS after KiB | bytes | median µs | p90 µs |"
echo "|---|---|---|---|---|---|"

port=19101; $kiln --web.listen-address=127.0.0.1:$port --example.series=0 2>/dev/null & pids+=($!)
wait_port $port; measure "kiln-example-exporter (bare)" $port "${pids[-1]}"

port=19102; prometheus-node-exporter --web.listen-address=127.0.0.1:$port --collector.disable-defaults 2>/dev/null & pids+=($!)
wait_port $port; measure "node_exporter $(prometheus-node-exporter --version 2>&1 | awk 'NR==1{print $3}') (all collectors off)" $port "${pids[-1]}"

port=19103; $kiln --web.listen-address=127.0.0.1:$port --example.series=1000 2>/dev/null & pids+=($!)
wait_port $port; measure "kiln-example-exporter (1 000 series)" $port "${pids[-1]}"

port=19104; prometheus-node-exporter --web.listen-address=127.0.0.1:$port --collector.disable-defaults \
  --collector.textfile --collector.textfile.directory="$work" 2>/dev/null & pids+=($!)
wait_port $port; measure "node_exporter (1 000 series, textfile)" $port "${pids[-1]}"
