#!/usr/bin/env bash
# kiln-jmx-exporter's memory for one large Hadoop /jmx answer on loopback: for each size
# (MB), the exporter's peak resident memory (VmHWM, reset before the probe), its resident
# memory right after and a minute later, and the probe's duration. Two probes at once of the
# largest size show the byte budget of /probe at work.
#
#   scripts/bench/jmx_memory.sh [SIZE_MB...]          (default: 100 250)
#   KILN_JMX_BIN=target/debug/kiln-jmx-exporter scripts/bench/jmx_memory.sh 32
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("${@:-100 250}")
read -r -a sizes <<<"${sizes[*]}"
bin=${KILN_JMX_BIN:-target/release/kiln-jmx-exporter}
settle=${KILN_SETTLE_S:-60}
web=127.0.0.1:19414
port=19514

[ -n "${KILN_JMX_BIN:-}" ] || cargo build --release --quiet -p kiln-jmx --bin kiln-jmx-exporter
work=$(mktemp -d)
cat >"$work/jmx.yml" <<YAML
modules:
  hadoop: {bridge: hadoop, timeout: 120s}
YAML
"$bin" --config.file="$work/jmx.yml" --web.listen-address=$web --log.level=warn &
pid=$!
server=
trap 'kill $pid $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null http://$web/-/ready && break; sleep 0.1; done

kib() { awk -v k="$1" '$1 == k":" {print $2}' /proc/$pid/status; }
mib() { echo $(($1 / 1024)); }
echo "idle: RSS $(mib "$(kib VmRSS)") MiB"
for size in "${sizes[@]}"; do
  python3 scripts/bench/jmx_big_answer.py "$size" "$work/answer.json"
  python3 scripts/bench/jmx_serve.py "$work/answer.json" $port 1 >"$work/serve.log" &
  server=$!
  for _ in $(seq 300); do grep -q serving "$work/serve.log" && break; sleep 0.1; done
  echo 5 >/proc/$pid/clear_refs
  start=$(date +%s.%N)
  status=$(curl -s -o "$work/out.txt" -w '%{http_code}' "http://$web/probe?module=hadoop&target=127.0.0.1:$port")
  took=$(echo "$(date +%s.%N) - $start" | bc)
  peak=$(kib VmHWM)
  after=$(kib VmRSS)
  echo "${size} MB: status $status, $(wc -c <"$work/out.txt") bytes out, probe ${took}s, peak RSS $(mib "$peak") MiB, RSS after $(mib "$after") MiB"
  # Two at once: past the byte budget, one is refused at once.
  echo 5 >/proc/$pid/clear_refs
  clients=()
  for i in 1 2; do
    curl -s -o /dev/null -w "  concurrent probe $i: %{http_code} in %{time_total}s\n" \
      "http://$web/probe?module=hadoop&target=127.0.0.1:$port" &
    clients+=($!)
  done
  wait "${clients[@]}"
  echo "  two at once: peak RSS $(mib "$(kib VmHWM)") MiB"
  sleep "$settle"
  echo "  ${settle}s later: RSS $(mib "$(kib VmRSS)") MiB"
  kill $server; wait $server 2>/dev/null || true; server=
done
curl -s http://$web/metrics | grep -E '^jmx_probe' | grep -v '^#' || true
