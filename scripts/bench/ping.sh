#!/usr/bin/env bash
# kiln-ping-exporter against Debian's prometheus-smokeping-prober on this machine, pinging
# thousands of distinct addresses at 1 s: CPU (cores), RSS, loss and scrape time; then the
# mean RTT against iputils ping on the same path at the same time.
#
# Everything runs in two network namespaces this script creates and removes: the exporter
# in one, and in the other an AnyIP route that answers for 10.203.0.0/17. Needs root.
#
#   scripts/bench/ping.sh [SECONDS]       (CPU is measured over SECONDS, default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
a=kbench-a-$$
b=kbench-b-$$

if ! command -v prometheus-smokeping-prober >/dev/null; then
  echo "==> installing prometheus-smokeping-prober (the comparison)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus-smokeping-prober iputils-ping >/dev/null
fi
cargo build --release --quiet -p kiln-ping --bin kiln-ping-exporter
exporter=$PWD/target/release/kiln-ping-exporter

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add kbva$$ netns "$a" type veth peer name kbvb$$ netns "$b"
ip -n "$a" addr add 10.203.255.1/30 dev kbva$$
ip -n "$b" addr add 10.203.255.2/30 dev kbvb$$
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set kbva$$ up
ip -n "$b" link set kbvb$$ up
ip -n "$b" route add local 10.203.0.0/17 dev lo
ip -n "$a" route add 10.203.0.0/17 via 10.203.255.2
ip netns exec "$a" ping -q -c 1 -w 5 10.203.255.2 >/dev/null

# The first N addresses of 10.203.0.0/17.
addresses() { awk -v n="$1" 'BEGIN {for (i = 0; i < n; i++) printf "10.203.%d.%d\n", int(i / 250), 1 + i % 250}'; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_up() { for _ in $(seq 200); do ip netns exec "$a" curl -sf -o /dev/null "$1" && return; sleep 0.05; done; echo "not up: $1" >&2; exit 1; }

# Measures one running prober: CPU over the window, RSS, one scrape's time.
measure() {
  local name=$1 pid=$2 url=$3 n=$4 before after scrape
  sleep 3
  before=$(cpu "$pid")
  sleep "$seconds"
  after=$(cpu "$pid")
  scrape=$(ip netns exec "$a" curl -s -o /dev/null -w '%{time_total}' "$url")
  printf '%-28s targets=%-6s cores=%-7s rss=%-6sMiB scrape=%ss' "$name" "$n" \
    "$(awk -v a="$after" -v b="$before" -v s="$seconds" 'BEGIN {printf "%.4f", (a - b) / s}')" \
    "$(awk -v k="$(rss "$pid")" 'BEGIN {printf "%.1f", k / 1024}')" "$scrape"
}

echo "== kiln-ping-exporter, one socket per family, interval 1s, timeout 1s"
for n in 1000 4000 10000; do
  config=$(mktemp)
  { echo "targets:"; addresses "$n" | sed 's/^/  - /'; echo "ping: {interval: 1s, timeout: 1s}"; } >"$config"
  ip netns exec "$a" "$exporter" --config.path="$config" --web.listen-address=127.0.0.1:19427 --log.level=warn &
  pid=$!; pids+=("$pid")
  wait_up http://127.0.0.1:19427/metrics
  measure kiln-ping-exporter "$pid" http://127.0.0.1:19427/metrics "$n"
  ip netns exec "$a" curl -s http://127.0.0.1:19427/metrics | awk '
    /^ping_requests_total/ {r += $2} /^ping_timeouts_total/ {t += $2}
    END {printf " requests=%d timeouts=%d loss=%.5f\n", r, t, t / r}'
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$config"
done

echo "== prometheus-smokeping-prober $(prometheus-smokeping-prober --version 2>&1 | awk 'NR==1 {print $3}'), one socket and goroutine per target, interval 1s"
for n in 100 400; do
  # shellcheck disable=SC2046
  ip netns exec "$a" prometheus-smokeping-prober --web.listen-address=127.0.0.1:19374 --ping.interval=1s \
    $(addresses "$n") >/dev/null 2>&1 &
  pid=$!; pids+=("$pid")
  wait_up http://127.0.0.1:19374/metrics
  measure smokeping_prober "$pid" http://127.0.0.1:19374/metrics "$n"
  ip netns exec "$a" curl -s http://127.0.0.1:19374/metrics | awk '
    /^smokeping_requests_total/ {r += $2} /^smokeping_response_duration_seconds_count/ {c += $2}
    END {printf " requests=%d responses=%d\n", r, c}'
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo "== RTT on one path (10.203.255.2, every 10 ms for 10 s): kiln and iputils at the same time"
config=$(mktemp)
printf 'targets: [10.203.255.2]\nping: {interval: 10ms, timeout: 1s}\n' >"$config"
ip netns exec "$a" "$exporter" --config.path="$config" --web.listen-address=127.0.0.1:19427 --log.level=warn &
pid=$!; pids+=("$pid")
wait_up http://127.0.0.1:19427/metrics
sum_count() { ip netns exec "$a" curl -s http://127.0.0.1:19427/metrics | awk '/^ping_rtt_seconds_sum/ {s = $2} /^ping_rtt_seconds_count/ {c = $2} END {print s, c}'; }
read -r s0 c0 < <(sum_count)
iputils=$(ip netns exec "$a" ping -q -c 1000 -i 0.01 10.203.255.2 | awk -F/ '/^rtt/ {print $5}')
read -r s1 c1 < <(sum_count)
awk -v s="$s1" -v s0="$s0" -v c="$c1" -v c0="$c0" -v i="$iputils" 'BEGIN {
  printf "mean_rtt kiln=%.1fus iputils=%.1fus difference=%.1fus over %d replies\n", (s - s0) / (c - c0) * 1e6, i * 1000, (s - s0) / (c - c0) * 1e6 - i * 1000, c - c0 }'
rm -f "$config"
