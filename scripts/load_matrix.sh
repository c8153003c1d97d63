#!/usr/bin/env bash
# scripts/load_matrix.sh: `shardring load` at several shard counts, plain and
# TLS, each REPEATS times; prints a Markdown table of the medians (the figures
# in docs/load-testing.md come from here) and keeps every run's JSON in OUT_DIR.
#   bash scripts/load_matrix.sh [REPEATS] [-- extra load flags]
# Environment: SHARDS ("1 100 2000 10000"), RATE (100; the 10,000-shard rows
# use RATE_10K, default 10), DURATION (30), OUT_DIR, MODES ("plain tls"; also
# zlib, zstd, tls-zlib, tls-zstd for --compress).
# 10,000 shards need about 10,100 descriptors per process (the engine's
# sockets, the spawned gateway's): the script raises the soft limit (ulimit
# -n) to the hard limit and stops with a message when the hard limit is
# lower; raise it then (systemd LimitNOFILE=, /etc/security/limits.conf, or
# `ulimit -Hn 65536` as root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPEATS="${1:-3}"
shift || true
[[ "${1:-}" == "--" ]] && shift
SHARDS="${SHARDS:-1 100 2000 10000}"
RATE="${RATE:-100}"
RATE_10K="${RATE_10K:-10}"
DURATION="${DURATION:-30}"
OUT_DIR="${OUT_DIR:-build/load-matrix}"
mkdir -p "$OUT_DIR"
BIN=build/bin/shardring
[[ -x $BIN ]] || { echo "load_matrix: build first (cmake --build build)"; exit 1; }

MODES="${MODES:-plain tls}"
max_shards=0
for n in $SHARDS; do (( n > max_shards )) && max_shards=$n; done
need=$((max_shards + 200))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ $(ulimit -n) != unlimited ]] && (( $(ulimit -n) < need )); then
  echo "load_matrix: $max_shards shards need about $need open files; the hard limit is" \
    "$(ulimit -Hn): raise it (ulimit -Hn $need as root, or LimitNOFILE=)" >&2
  exit 1
fi
for n in $SHARDS; do
  for mode in $MODES; do
    for r in $(seq 1 "$REPEATS"); do
      out="$OUT_DIR/$n-$mode-$r.json"
      rate=$RATE
      (( n >= 10000 )) && rate=$RATE_10K
      flags=(--shards "$n" --rate "$rate" --duration "$DURATION" --json "$out" "$@")
      # 10,000 shards: 64 buckets at a 40 ms window start them in about 6.5 s.
      (( n >= 10000 )) && flags+=(--max-concurrency 64 --identify-window-ms 40 --gateway-threads 1)
      [[ $mode == tls* ]] && flags+=(--tls)
      [[ $mode == *zlib ]] && flags+=(--compress zlib-stream)
      [[ $mode == *zstd ]] && flags+=(--compress zstd-stream)
      echo "load_matrix: $BIN load ${flags[*]}" >&2
      "$BIN" load "${flags[@]}" >/dev/null 2>"$OUT_DIR/$n-$mode-$r.log" ||
        { tail -5 "$OUT_DIR/$n-$mode-$r.log"; exit 1; }
    done
  done
done

/usr/bin/python3 - "$OUT_DIR" "$SHARDS" "$REPEATS" "$MODES" <<'PY'
import json, os, statistics, sys
out_dir, shards, repeats, modes = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), sys.argv[4].split()
def med(runs, f):
    return statistics.median(f(r) for r in runs)
print("| shards | transport | steady events/s | engine CPU s per M events (steady) | peak RSS MiB | "
      "RSS KiB per shard | storm s (schedule) | heartbeat late p50/p99/max ms | "
      "delivery p50/p99/max ms |")
print("|---|---|---|---|---|---|---|---|---|")
for n in shards:
    for mode in modes:
        runs = [json.load(open(os.path.join(out_dir, f"{n}-{mode}-{r}.json")))
                for r in range(1, repeats + 1)]
        hb = lambda k: med(runs, lambda r: r["heartbeat_lateness_ms"][k])
        dl = lambda k: med(runs, lambda r: r["delivery_latency_ms"][k])
        print(f"| {n} | {mode} "
              f"| {med(runs, lambda r: r['steady_events_per_s']):,.0f} "
              f"| {med(runs, lambda r: r['steady_cpu_s_per_million_events']):.2f} "
              f"| {med(runs, lambda r: r['peak_rss_kib']) / 1024:.1f} "
              f"| {med(runs, lambda r: r['rss_per_shard_kib']):.1f} "
              f"| {med(runs, lambda r: r['storm_s']):.2f} "
              f"({med(runs, lambda r: r.get('storm_schedule_s', 0)):.2f}) "
              f"| {hb('p50'):.2f} / {hb('p99'):.2f} / {hb('max'):.2f} "
              f"| {dl('p50'):.2f} / {dl('p99'):.2f} / {dl('max'):.2f} |")
PY
