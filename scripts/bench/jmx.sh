#!/usr/bin/env bash
# kiln-jmx-exporter end to end on loopback: probe latency for a 2 MB NameNode /jmx answer
# (default rules and the shipped NameNode rules) and for a 50 000-attribute Kafka broker
# through 50 rules (Jolokia), then resident memory after probing 50 NameNode-sized targets.
# jmx_exporter cannot run here (no Maven); see docs/performance.md for the comparison.
#
#   scripts/bench/jmx.sh [PROBES]
set -euo pipefail
cd "$(dirname "$0")/../.."
probes=${1:-30}
web=127.0.0.1:19404
first_port=19500
targets=50

cargo build --release --quiet -p kiln-jmx --bin kiln-jmx-exporter --example jmx_answers
work=$(mktemp -d)
target/release/examples/jmx_answers "$work"
cp crates/jmx/benches/kafka-50-rules.yml deploy/emr/jmx/hadoop-namenode.yml "$work/"
cat >"$work/jmx.yml" <<YAML
modules:
  hadoop: {bridge: hadoop, timeout: 30s}
  namenode: {bridge: hadoop, timeout: 30s, rules_file: hadoop-namenode.yml}
  namenode_0x: {bridge: hadoop, timeout: 30s, rules_file: hadoop-namenode.yml, naming: 0.x}
  kafka: {bridge: jolokia, timeout: 30s, rules_file: kafka-50-rules.yml}
YAML

python3 scripts/bench/jmx_serve.py "$work/namenode.json" $first_port $targets >"$work/nn.log" &
nn=$!
python3 scripts/bench/jmx_serve.py "$work/kafka-jolokia.json" $((first_port + targets)) 1 >"$work/kafka.log" &
kafka=$!
target/release/kiln-jmx-exporter --config.file="$work/jmx.yml" --web.listen-address=$web --log.level=warn &
pid=$!
trap 'kill $pid $nn $kafka 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  grep -q serving "$work/nn.log" && grep -q serving "$work/kafka.log" && curl -sf -o /dev/null http://$web/-/ready && break
  sleep 0.1
done

rss() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.4f", ($14 + $15) / hz}' /proc/$pid/stat; }
median() { sort -n | awk '{t[NR]=$1} END {printf "median=%.1fms min=%.1fms max=%.1fms", t[int((NR+1)/2)]*1000, t[1]*1000, t[NR]*1000}'; }
# Probe latency over $probes probes (after one that fills the caches), and CPU per probe.
probe() {
  local url=$1 label=$2 before after
  curl -sf -o /dev/null "$url"
  before=$(cpu)
  times=$(for _ in $(seq "$probes"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done)
  after=$(cpu)
  echo "$label: $(median <<<"$times") exporter_cpu_per_probe=$(awk -v a="$after" -v b="$before" -v n="$probes" 'BEGIN {printf "%.1fms", (a - b) * 1000 / n}') samples=$(curl -s "$url" | grep -vc '^#')"
}

echo "idle_rss=$(rss)KiB"
echo "== the JVM's answer alone (Python serving the file), for reference"
for _ in $(seq 10); do curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:$first_port/jmx; done | median; echo " (namenode.json, $(stat -c %s "$work/namenode.json") bytes)"
echo "== probes"
probe "http://$web/probe?module=hadoop&target=127.0.0.1:$first_port" "namenode_2mb default_rules"
probe "http://$web/probe?module=namenode&target=127.0.0.1:$first_port" "namenode_2mb namenode_rules"
probe "http://$web/probe?module=namenode_0x&target=127.0.0.1:$first_port" "namenode_2mb namenode_rules naming_0x"
probe "http://$web/probe?module=kafka&target=127.0.0.1:$((first_port + targets))" "kafka_50k_attributes 50_rules"


# Memory: a fresh exporter per module, probing all targets (4 at a time, as Prometheus
# spreads scrapes), three rounds.
for module in namenode hadoop; do
  kill $pid; wait $pid 2>/dev/null || true
  target/release/kiln-jmx-exporter --config.file="$work/jmx.yml" --web.listen-address=$web --log.level=warn &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null http://$web/-/ready && break; sleep 0.05; done
  for _ in 1 2 3; do
    seq $first_port $((first_port + targets - 1)) |
      xargs -P 4 -I{} curl -s -o /dev/null "http://$web/probe?module=$module&target=127.0.0.1:{}"
  done
  echo "rss_after_${targets}_targets module=$module: $(rss)KiB, $(curl -s http://$web/metrics | awk -v m="$module" '$1 == "jmx_rule_cache_entries{module=\""m"\"}" {print $2}') cached attributes"
done
