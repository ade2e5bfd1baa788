#!/usr/bin/env bash
# `kiln top --prometheus` over a 5,000-host GPU fleet: the hosts' series (fleet_openmetrics.py:
# ~300 a host, 8 GPUs each) backfilled with `promtool tsdb create-blocks-from openmetrics`
# into a Prometheus of its own, timestamps around the time of the run. `kiln top` runs in a
# 200×60 tmux terminal at a 2 s refresh; reported: the time each refresh took (all its
# queries, as the title's "read in" shows it), the CPU share of one core and the RSS of
# `kiln top`, and the query time on Prometheus' side. Compare with scripts/bench/kiln-top.sh
# (direct polling of 200 targets). The series include the CPU share the shipped recording
# rules record, as a fleet Prometheus with them holds it; RECORDED=0 leaves it out, to
# measure a Prometheus without the rules. KILN="BINARY…" measures those builds instead of
# this tree's, one after the other against the same Prometheus (two fit in the samples'
# 150 s at the default 30 s each), to compare builds under the same load.
#
#   [RECORDED=0] [KILN="old/kiln new/kiln"] scripts/bench/kiln-top-prometheus.sh [HOSTS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
hosts=${1:-5000}
seconds=${2:-30}
work=$(mktemp -d)
prometheus=
socket="kiln-top-prom-bench-$$"
cleanup() {
  tmux -L "$socket" kill-server 2>/dev/null || true
  [ -n "$prometheus" ] && kill "$prometheus" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The samples run from one minute before `lead` minutes from now to 150 s after: the
# generation and backfill fit in the lead, the measurement in the 150 s.
lead=${LEAD_MINUTES:-15}
start=$(date +%s)
t0=$(( start + lead * 60 ))
python3 scripts/bench/fleet_openmetrics.py "$hosts" "$lead" > "$work/fleet.om"
echo "generated $(du -h "$work/fleet.om" | cut -f1) of OpenMetrics in $(( $(date +%s) - start )) s"
start=$(date +%s)
promtool tsdb create-blocks-from openmetrics --max-block-duration=2h "$work/fleet.om" "$work/data" \
  | tail -1 | awk '{print "block: " $5 " samples, " $7 " series"}'
echo "backfilled in $(( $(date +%s) - start )) s"
rm "$work/fleet.om"
if [ -z "${KILN:-}" ]; then
  cargo build --release --quiet -p kiln
  KILN=target/release/kiln
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 15s\n' > "$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --storage.tsdb.retention.time=1y --web.listen-address="127.0.0.1:$port" \
  > "$work/prometheus.log" 2>&1 &
prometheus=$!
url="http://127.0.0.1:$port"
until curl -sf "$url/-/ready" > /dev/null; do sleep 0.5; done
# Wait until the samples reach the present and every host answers.
if [ "$(date +%s)" -gt $(( t0 + 60 )) ]; then
  echo "the backfill took longer than LEAD_MINUTES=$lead: run again with a longer lead" >&2
  exit 1
fi
while [ "$(date +%s)" -lt "$t0" ]; do sleep 1; done
until [ "$(curl -s "$url/api/v1/query" --data-urlencode 'query=count(up{job="node"})' \
  | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')" = "$hosts" ]; do
  sleep 2
done
echo "Prometheus serves $hosts hosts"

# One build: a few refreshes, then SECONDS of them measured.
measure() {
  local kiln=$1
  echo "== $kiln"
  tmux -L "$socket" new-session -d -s top -x 200 -y 60 \
    "exec $kiln top --refresh=2s --timeout=10s --prometheus=$url"
  sleep 1
  pid=$(tmux -L "$socket" list-panes -t top -F '#{pane_pid}')
  ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  sleep 10  # a few refreshes first
  before=$(ticks)
  reads=()
  for _ in $(seq 1 "$seconds"); do
    reads+=("$(tmux -L "$socket" capture-pane -p -t top | head -1 | grep -o 'read in [0-9.]* m\?s' || true)")
    sleep 1
  done
  after=$(ticks)
  hz=$(getconf CLK_TCK)
  printf '%s\n' "${reads[@]}" | sort | uniq -c | sort -rn | head -8 | sed 's/^/  refresh took: /'
  printf '%s\n' "${reads[@]}" | python3 -c '
import re, statistics, sys
values = []
for line in sys.stdin:
    m = re.search(r"read in ([0-9.]+) (ms|s)", line)
    if m:
        values.append(float(m.group(1)) * (1 if m.group(2) == "s" else 0.001))
if values:
    print(f"refresh time: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} samples")'
  awk -v a="$before" -v b="$after" -v hz="$hz" -v s="$seconds" \
    'BEGIN { printf "kiln top CPU over %d s: %.1f%% of one core\n", s, (b - a) / hz / s * 100 }'
  awk '/^VmRSS/ {printf "kiln top RSS: %.1f MiB\n", $2 / 1024} /^VmHWM/ {printf "kiln top peak RSS: %.1f MiB\n", $2 / 1024}' "/proc/$pid/status"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  awk '/^VmHWM/ {printf "Prometheus peak RSS: %.1f MiB\n", $2 / 1024}' "/proc/$prometheus/status"
  curl -s "$url/metrics" | awk '/^prometheus_engine_query_duration_seconds\{slice="inner_eval",quantile="0.9"\}/ {printf "Prometheus inner_eval p90: %.3f s\n", $2}'
  tmux -L "$socket" capture-pane -p -t top | head -6
  tmux -L "$socket" kill-server 2>/dev/null || true
  # The next build's session needs a new server on the same socket.
  while tmux -L "$socket" has-session 2>/dev/null; do sleep 0.2; done
  sleep 1
}
for kiln in $KILN; do measure "$kiln"; done
