#!/usr/bin/env bash
# kiln-graphite-exporter under load on this machine: sustained TCP and UDP ingest (every
# line counted in = counted processed), scrape time and memory with 100 000 live series.
# graphite_exporter is not packaged for Debian; its own benchmark (about 3.6 µs a line on
# one goroutine, 275 000 lines/s) is the comparison, see docs/performance.md.
#
#   scripts/bench/graphite.sh [SERIES]
set -euo pipefail
cd "$(dirname "$0")/../.."
series=${1:-100000}
web=127.0.0.1:19208
graphite=127.0.0.1:19209
url=http://$web/metrics

cargo build --release --quiet -p kiln-graphite --bin kiln-graphite-exporter --example graphite_load
exporter=target/release/kiln-graphite-exporter
load=target/release/examples/graphite_load

$exporter --graphite.mapping-config=crates/graphite/benches/ten-rules.yml \
  --web.listen-address=$web --graphite.listen-address=$graphite --log.level=warn &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null $url && break; sleep 0.05; done

rss() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }
# CPU seconds the exporter has used (user + system).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' /proc/$pid/stat; }
# Runs the load generator and adds the exporter's CPU time per line to its report.
measure() {
  local before after lines
  before=$(cpu)
  report=$("$load" "$@")
  after=$(cpu)
  lines=$(sed -E 's/.*processed=([0-9.e+]+).*/\1/' <<<"$report")
  echo "$report exporter_cpu_us_per_line=$(awk -v a="$after" -v b="$before" -v n="$lines" 'BEGIN {printf "%.2f", (a - b) * 1e6 / n}')"
}
idle_rss=$(rss)
echo "== fill: $series series (first sample of each: mapped and stored)"
measure fill $graphite $url "$series"
filled_rss=$(rss)
echo "rss idle=${idle_rss}KiB with_series=${filled_rss}KiB store_bytes_per_series=$(( (filled_rss - idle_rss) * 1024 / series ))"

echo "== TCP: 6 000 000 lines over known series, 1, 2 and 4 connections"
for connections in 1 2 4; do
  measure tcp $graphite $url "$series" 6000000 "$connections"
done

echo "== UDP: 1 000 000 datagrams (one line each, sendmmsg), unpaced, then paced at 300 000/s"
measure udp $graphite $url "$series" 1000000 1
measure udp $graphite $url "$series" 1500000 1 300000

echo "== scrape of $series series: 20 scrapes"
for _ in $(seq 20); do
  curl -s -o /dev/null -w '%{time_total}\n' $url
done | sort -n | awk '{t[NR]=$1} END {printf "scrape_seconds median=%s min=%s max=%s\n", t[int((NR+1)/2)], t[1], t[NR]}'
curl -s $url | awk '/^graphite_series / {print "series_served=" $2}'
echo "rss_after_scrapes=$(rss)KiB (the scrape's buffers, about 40 MB for 100 000 series, stay with the allocator)"
