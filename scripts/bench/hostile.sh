#!/usr/bin/env bash
# The example exporter with basic auth (one cost-10 user) under 900 slow-loris and 200
# never-reading connections (1 100 against its 1 024-connection table) and 400 password
# guessers at once: the share of a legitimate scraper's scrapes answered within 2 s, and
# how long an unknown user and a wrong password take to be refused.
#
#   scripts/bench/hostile.sh [SECONDS]      (the load runs SECONDS, default 30)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
ulimit -n 8192

cargo build --release --quiet -p kiln-registry --bin kiln-example-exporter
exporter=$PWD/target/release/kiln-example-exporter
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# alice's password is "secret", hashed at cost 10 as htpasswd -B does by default.
printf 'basic_auth_users:\n  alice: $2b$10$82.37raG392eKCWaL.vVjOc3.lTTEYyLP3WSrzgf9fSIezdiyhHkq\n' > "$work/web.yml"
port=19700
"$exporter" --web.listen-address=127.0.0.1:$port --web.config.file="$work/web.yml" --log.level=error &
pid=$!
for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/-/healthy" && break; sleep 0.05; done

# Unknown user and wrong password, alternating, 40 each: median time to the 401.
python3 - "$port" <<'PY'
import statistics, subprocess, sys
url = f"http://127.0.0.1:{sys.argv[1]}/metrics"
times = {"unknown user": [], "wrong password": []}
for i in range(40):
    for kind, user in (("unknown user", "mallory"), ("wrong password", "alice")):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}",
                              "-u", f"{user}:guess{i}", url], capture_output=True, text=True)
        times[kind].append(float(out.stdout) * 1000)
for kind, t in times.items():
    print(f"{kind}: median {statistics.median(t):.1f} ms to be refused")
PY

# The good credentials are verified once before the load, as a scraper's would be.
curl -s -o /dev/null -u alice:secret "http://127.0.0.1:$port/metrics"
python3 scripts/bench/hostile_load.py $port 900 200 400 "$seconds"
