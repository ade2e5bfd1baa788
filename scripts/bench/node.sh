#!/usr/bin/env bash
# Side by side on this host: kiln-node-exporter and Debian's node_exporter with the same
# collectors (upstream's defaults; systemd off, since Debian turns it on and this host may
# have no D-Bus) and the same textfile. Per exporter, in one run:
#   RSS after start + 1 warm-up scrape, RSS after all scrapes and its anonymous (private)
#   part, which no other process shares and the kernel cannot reclaim without swap, bytes per scrape,
#   scrape latency (curl time_total: median, p90), and CPU time per scrape (utime+stime).
#
#   scripts/bench/node.sh [SCRAPES]        default 200 scrapes per exporter
set -euo pipefail
cd "$(dirname "$0")/../.."
scrapes=${1:-200}

command -v prometheus-node-exporter >/dev/null || {
  echo "Installing Debian's prometheus-node-exporter for the comparison" >&2
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null
  rm -f /usr/sbin/policy-rc.d
}
echo "Building kiln-node-exporter (release)" >&2
cargo build --release --quiet -p kiln-node --bin kiln-node-exporter
kiln=target/release/kiln-node-exporter

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
echo 'example_role{role="gpu_worker"} 1' > "$work/role.prom"

# Same collectors and filters on both sides: upstream's defaults, not Debian's.
common=(
  --collector.textfile.directory="$work"
  --no-collector.systemd
  --collector.netdev.device-exclude='^$'
  --collector.filesystem.mount-points-exclude='^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)'
)

rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_port() {
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$1/metrics" && return; sleep 0.05; done
  echo "nothing listens on $1" >&2; exit 1
}

measure() { # name port pid
  local name=$1 port=$2 pid=$3 url="http://127.0.0.1:$2/metrics"
  curl -s -o /dev/null "$url"; sleep 1
  local rss_start; rss_start=$(rss_kib "$pid")
  local ticks_start; ticks_start=$(cpu_ticks "$pid")
  for _ in $(seq 1 "$scrapes"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done > "$work/$name.times"
  local ticks_end; ticks_end=$(cpu_ticks "$pid")
  local rss_end; rss_end=$(rss_kib "$pid")
  local anon; anon=$(awk '/RssAnon/{print $2}' "/proc/$pid/status")
  local bytes; bytes=$(curl -s "$url" | wc -c)
  local hz; hz=$(getconf CLK_TCK)
  sort -n "$work/$name.times" | awk -v n="$name" -v rs="$rss_start" -v re="$rss_end" -v an="$anon" -v b="$bytes" \
      -v cpu="$(( ticks_end - ticks_start ))" -v hz="$hz" -v s="$scrapes" '
    { t[NR] = $1 * 1e3 }
    END { printf "| %-28s | %7d | %7d | %7d | %6d | %5.2f | %5.2f | %5.2f |\n", n, rs, re, an, b, t[int(NR/2)], t[int(NR*0.9)], cpu / hz / s * 1e3 }'
}

echo "| exporter ($scrapes scrapes) | RSS start KiB | RSS after KiB | of it anonymous KiB | bytes | median ms | p90 ms | CPU ms/scrape |"
echo "|---|---|---|---|---|---|---|---|"

port=19111; prometheus-node-exporter --web.listen-address=127.0.0.1:$port "${common[@]}" 2>/dev/null & pids+=($!)
wait_port $port; measure "node_exporter $(prometheus-node-exporter --version 2>&1 | awk 'NR==1{print $3}')" $port "${pids[-1]}"

port=19112; $kiln --web.listen-address=127.0.0.1:$port "${common[@]}" 2>/dev/null & pids+=($!)
wait_port $port; measure "kiln-node-exporter" $port "${pids[-1]}"
