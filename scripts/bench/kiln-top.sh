#!/usr/bin/env bash
# `kiln top` over 200 live targets at the default 2 s refresh: 160 hosts on their own
# loopback addresses (127.0.1.N), each serving a node exporter capture, every fourth also
# a GPU exporter answer. Reports the CPU share of one core and the RSS of `kiln top`
# running in a 200×60 tmux terminal. Frame times are in `cargo bench -p kiln --bench top`.
#
#   scripts/bench/kiln-top.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
cargo build --release --quiet -p kiln
work=$(mktemp -d)
server=
socket="kiln-top-bench-$$"
cleanup() {
  tmux -L "$socket" kill-server 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work" <<'PY' &
import asyncio, json, sys
work = sys.argv[1]
node = open("testdata/node_exporter_1.5.0_metrics.txt", "rb").read()
gpu = open("crates/gpu/tests/fixtures/fleet.metrics", "rb").read()
def answer(body):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body
async def serve(body, reader, writer):
    try:
        while True:
            request = await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    groups = [{"targets": [], "labels": {"job": "bench"}}]
    for n in range(1, 161):
        host = "127.0.1.%d" % n
        await asyncio.start_server(lambda r, w: serve(node, r, w), host, 19100)
        groups[0]["targets"].append("%s:19100" % host)
        if n % 4 == 0:
            await asyncio.start_server(lambda r, w: serve(gpu, r, w), host, 19445)
            groups[0]["targets"].append("%s:19445" % host)
    json.dump(groups, open(work + "/targets.json.tmp", "w"))
    import os; os.rename(work + "/targets.json.tmp", work + "/targets.json")
    await asyncio.Event().wait()
asyncio.run(main())
PY
server=$!
until [ -f "$work/targets.json" ]; do sleep 0.1; done
echo "targets: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))[0]["targets"]))' "$work/targets.json")"

tmux -L "$socket" new-session -d -s top -x 200 -y 60 \
  "exec target/release/kiln top --refresh=2s --file=$work/targets.json"
sleep 1
pid=$(tmux -L "$socket" list-panes -t top -F '#{pane_pid}')
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
sleep 10  # let every target answer a few times
before=$(ticks)
sleep "$seconds"
after=$(ticks)
hz=$(getconf CLK_TCK)
awk -v a="$before" -v b="$after" -v hz="$hz" -v s="$seconds" \
  'BEGIN { printf "CPU over %d s: %.1f%% of one core\n", s, (b - a) / hz / s * 100 }'
awk '/^VmRSS/ {printf "RSS: %.1f MiB\n", $2 / 1024} /^VmHWM/ {printf "peak RSS: %.1f MiB\n", $2 / 1024}' "/proc/$pid/status"
tmux -L "$socket" capture-pane -p -t top | head -8
