#!/usr/bin/env bash
# kiln-graphite-exporter fed 5 000 series of 60 000-byte names with the default limits:
# what --graphite.series-bytes-limit stores and refuses, resident memory idle, after
# ingest, at the scrape peak, and one minute after the series expired (about 3 minutes).
#
#   scripts/bench/graphite_memory.sh [SERIES] [NAME_BYTES]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p kiln-graphite --bin kiln-graphite-exporter
python3 scripts/bench/graphite_memory.py "$PWD/target/release/kiln-graphite-exporter" \
  "${1:-5000}" "${2:-60000}" --log.level=error
