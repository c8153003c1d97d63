#!/usr/bin/env bash
# bench/peers/compare.sh: shardring against other gateway clients on the same
# `shardring gateway` (pinned to the last CPU; each client pinned to the
# first), same shards, mix, rate and compression. For each client: events,
# client CPU seconds per million events, peak RSS; and the ratio to shardring.
#   bash bench/peers/compare.sh [SHARDS] [RATE] [SECONDS] [none|zlib-stream]
# (defaults 16, 0 = unlimited, 10, none). Clients: shardring run --sink null,
# discord.js @discordjs/ws (from .cache/npm, installed by scripts/setup.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARDS="${1:-16}"; RATE="${2:-0}"; SECONDS_RUN="${3:-10}"; COMPRESS="${4:-none}"
BIN="$ROOT/build/bin/shardring"
NPM="$ROOT/.cache/npm"
[[ -x $BIN ]] || { echo "compare: build first (cmake --build build)"; exit 1; }
ncpu=$(nproc)
gw_cpu=$((ncpu - 1)); client_cpu=0
tmp=$(mktemp -d)
trap 'kill -INT $gw 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

start_gateway() {
  taskset -c "$gw_cpu" "$BIN" gateway --listen 127.0.0.1:0 --threads 1 --shards "$SHARDS" \
    --rate "$RATE" --max-concurrency 16 --identify-window-ms 1 2>"$tmp/gw.log" &
  gw=$!
  for _ in $(seq 200); do grep -q 'listening on' "$tmp/gw.log" && break; sleep 0.05; done
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/gw.log" | grep -o '[0-9]*$')
}
stop_gateway() { kill -INT "$gw"; wait "$gw" 2>/dev/null || true; }

results=()
# shardring
start_gateway
flags=(--gateway "ws://127.0.0.1:$port" --total-shards "$SHARDS" --max-concurrency 16
       --identify-window-ms 5 --threads 1 --sink null --duration "$SECONDS_RUN")
[[ $COMPRESS != none ]] && flags+=(--compress "$COMPRESS")
taskset -c "$client_cpu" "$BIN" run "${flags[@]}" 2>"$tmp/run.log" || true
stop_gateway
line=$(grep '^summary ' "$tmp/run.log" | tail -1)
results+=("$(/usr/bin/python3 -c 'import json,sys; s=json.loads(sys.argv[1][8:]); print(json.dumps({"client":"shardring","events":s["events"],"cpu_s":s["cpu_s"],"seconds":s["elapsed_s"],"peak_rss_kib":s["peak_rss_kib"]}))' "$line")")
# discord.js
if [[ -d $NPM/node_modules/@discordjs/ws ]] && command -v node >/dev/null; then
  start_gateway
  cp "$ROOT/bench/peers/discordjs_client.mjs" "$NPM/"
  results+=("$(cd "$NPM" && taskset -c "$client_cpu" node discordjs_client.mjs "$port" "$SHARDS" "$SECONDS_RUN" \
    "$([[ $COMPRESS == zlib-stream ]] && echo zlib-stream)")")
  stop_gateway
else
  echo "compare: @discordjs/ws not installed (scripts/setup.sh): skipped" >&2
fi

printf '%s\n' "${results[@]}" >"$tmp/results.jsonl"
/usr/bin/python3 - "$tmp/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = rows[0]["cpu_s"] * 1e6 / max(rows[0]["events"], 1)
print(f"{'client':12} {'events':>10} {'events/s':>10} {'CPU s/M ev':>11} {'x shardring':>12} {'peak RSS MiB':>13}")
for r in rows:
    per_m = r["cpu_s"] * 1e6 / max(r["events"], 1)
    print(f"{r['client']:12} {r['events']:10d} {r['events'] / r['seconds']:10.0f} {per_m:11.2f} "
          f"{per_m / base:12.1f} {r['peak_rss_kib'] / 1024:13.1f}")
PY
