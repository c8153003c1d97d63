#!/usr/bin/env bash
# scripts/demo.sh: the README's first command. No token needed: sets up the
# machine (scripts/setup.sh), builds `shardring`, starts a synthetic Discord
# gateway on loopback and runs the engine against it with a live view of the
# shards and events. Events are written to $OUT (NDJSON, one per line).
#   SHARDS (default 16), RATE events/s per shard (default 50),
#   DURATION seconds (default 20; 0 runs until Ctrl-C), OUT (default
#   /tmp/shardring-demo.ndjson).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SHARDS="${SHARDS:-16}"
RATE="${RATE:-50}"
DURATION="${DURATION:-20}"
OUT="${OUT:-/tmp/shardring-demo.ndjson}"

bash scripts/setup.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target shardring -j"$(nproc)" >/dev/null
BIN=build/bin/shardring

log=$(mktemp)
"$BIN" gateway --listen 127.0.0.1:0 --shards "$SHARDS" --rate "$RATE" \
  --max-concurrency 4 --identify-window-ms 500 --heartbeat-ms 10000 --threads 1 2>"$log" &
gw=$!
trap 'kill -INT $gw 2>/dev/null; wait $gw 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q 'listening on' "$log" && break
  sleep 0.05
done
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
rm -f "$OUT"  # the sink appends: each demo starts a fresh file
echo "synthetic gateway on 127.0.0.1:$port ($SHARDS shards, $RATE events/s each); events -> $OUT"
dur=()
[[ "$DURATION" != 0 ]] && dur=(--duration "$DURATION")
"$BIN" run --api "http://127.0.0.1:$port/api/v10" --max-concurrency 4 \
  --identify-window-ms 500 --live --sink "ndjson:$OUT" "${dur[@]}"
echo
echo "first events written to $OUT:"
head -c 2000 "$OUT" | cut -c1-160 | head -5
echo "$(wc -l <"$OUT") events in $OUT"
