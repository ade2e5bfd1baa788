#!/usr/bin/env bash
# `kiln up` with node, GPU (eight GPUs on the fake driver), Graphite and ping (loopback)
# in one process: time from start to the first served scrape, and RSS after scrapes.
#
#   scripts/bench/kiln-up.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p kiln -p fake-nvml
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
python3 - "$work/eight.json" <<'PY'
import json, sys
fleet = json.load(open("crates/gpu/tests/fixtures/fleet.json"))
h100 = fleet["devices"][0]
fleet["devices"] = [dict(json.loads(json.dumps(h100)), uuid="GPU-00000000-0000-0000-0000-00000000000%d" % k, minor_number=k) for k in range(8)]
json.dump(fleet, open(sys.argv[1], "w"))
PY
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
node=$(port) gpu=$(port) graphite=$(port) ingest=$(port) ping=$(port)
start=$(date +%s.%N)
FAKE_NVML_FIXTURE=$work/eight.json target/release/kiln up --summary-interval=1h \
  --node.listen-address=127.0.0.1:$node --gpu.listen-address=127.0.0.1:$gpu \
  --nvml.library-path=target/release/libfake_nvml.so \
  --graphite.listen-address=127.0.0.1:$graphite --graphite.ingest-address=127.0.0.1:$ingest \
  --ping.listen-address=127.0.0.1:$ping --ping.target=127.0.0.1 >"$work/out" 2>&1 &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$node/metrics"; do sleep 0.005; done
printf 'start to first served scrape: %.0f ms\n' "$(echo "($(date +%s.%N) - $start) * 1000" | bc)"
for _ in $(seq 20); do
  for p in $node $gpu $graphite $ping; do curl -s -o /dev/null "http://127.0.0.1:$p/metrics"; done
done
awk '/^VmRSS/ {printf "RSS after 20 scrapes of each: %.1f MiB\n", $2 / 1024}' "/proc/$pid/status"
cat "$work/out"
