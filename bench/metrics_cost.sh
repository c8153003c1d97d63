#!/usr/bin/env bash
# bench/metrics_cost.sh: what --metrics costs the engine. `shardring run`
# with --sink null against `shardring gateway`, alternately without
# --metrics and with it and a scrape of /metrics every second; prints each
# run's engine CPU-seconds per million events and the medians of both.
#   bash bench/metrics_cost.sh [ROUNDS] [SHARDS] [RATE] [SECONDS]
# Engine on CPU 0, gateway on CPU 1 (when there are two). Loopback only;
# ports picked by the processes themselves (port 0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SHARDRING_BIN:-$ROOT/build/bin/shardring}"
ROUNDS="${1:-5}" SHARDS="${2:-256}" RATE="${3:-100}" SECS="${4:-12}"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
pin_engine=(taskset -c 0)
pin_gateway=(taskset -c 1)
if (($(nproc) < 2)); then pin_engine=(); pin_gateway=(); fi
"${pin_gateway[@]}" "$BIN" gateway --listen 127.0.0.1:0 --shards "$SHARDS" --rate "$RATE" \
  --threads 1 --max-concurrency 64 --identify-window-ms 10 2>"$tmp/gw.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$tmp/gw.log" && break; sleep 0.05; done
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/gw.log" | grep -o '[0-9]*$')
run=("${pin_engine[@]}" "$BIN" run --gateway "ws://127.0.0.1:$port" --total-shards "$SHARDS"
  --max-concurrency 64 --identify-window-ms 20 --threads 1 --sink null --duration "$SECS")
per_million() {
  /usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    if l.startswith("summary "):
        s = json.loads(l[8:]); print("%.3f" % (s["cpu_s"] / s["events"] * 1e6))' "$1"
}
off=() on=()
for r in $(seq "$ROUNDS"); do
  "${run[@]}" 2>"$tmp/off.log"
  off+=("$(per_million "$tmp/off.log")")
  "${run[@]}" --metrics 127.0.0.1:0 2>"$tmp/on.log" &
  rp=$!
  for _ in $(seq 100); do grep -q 'metrics listening' "$tmp/on.log" && break; sleep 0.05; done
  mport=$(grep -o 'metrics listening address="[^"]*' "$tmp/on.log" | grep -o '[0-9]*$')
  while kill -0 "$rp" 2>/dev/null; do
    /usr/bin/python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$mport/metrics').read()" \
      2>/dev/null || true
    sleep 1
  done
  wait "$rp" || true
  on+=("$(per_million "$tmp/on.log")")
  echo "round $r: without ${off[-1]}, with --metrics and a scrape a second ${on[-1]} CPU-s per million events"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_off=$(median "${off[@]}") m_on=$(median "${on[@]}")
echo "medians ($SHARDS shards x $RATE events/s, $ROUNDS rounds): without $m_off, with $m_on" \
  "($(/usr/bin/python3 -c "print('%+.1f%%' % (($m_on / $m_off - 1) * 100))"))"
