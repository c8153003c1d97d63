#!/usr/bin/env bash
# bench/restart.sh: how long until every shard is live again after a crash
# (`run --state`: each shard RESUMEs its saved session, no identify queue)
# against a cold start (every shard IDENTIFYs, one per bucket per window).
#
# Usage:
#   bash bench/restart.sh [--shards N] [--repeats R] [--max-concurrency K]
#                         [--window-ms W] [--gateway-window-ms G] [--events-s S]
#                         [--tls] [--keep]
#     --shards N          shards (env SHARDS; default 2000)
#     --repeats R         rounds of (a) and (b); medians over them (env REPEATS; default 3)
#     --max-concurrency K identify buckets, shard_id % K (env MAX_CONCURRENCY; default 16)
#     --window-ms W       identify window per bucket that `run` keeps
#                         (env WINDOW_MS; default 100; Discord's is 5000)
#     --gateway-window-ms G the window the gateway enforces (env GW_WINDOW_MS;
#                         default W/4, see below; G = W for the strict check)
#     --events-s S        seconds of events between "all live" and the kill -9
#                         (env EVENTS_S; default 2)
#     --tls               wss:// with a throwaway CA (needs the openssl CLI; off by default)
#     --keep              keep the logs, state files and stats (printed at the end)
#   Environment: SHARDRING_BIN (default build/bin/shardring), PIN=0 to not pin.
#
# Each round, against a fresh loopback `shardring gateway` each time
# (--threads 1 --rate 1 --max-concurrency K --identify-window-ms G,
# --listen 127.0.0.1:0, the port read from its "listening on" line):
#   (a) cold start: `run` without --state; every shard IDENTIFYs.
#   (b) crash: `run --state PATH` (a fresh file) until every shard is ready,
#       then EVENTS_S seconds of events (checkpoints every --checkpoint-ms
#       1000), then kill -9; then `run` again with the same --state: every
#       shard RESUMEs its saved session. Timed: that second start.
# `run` gets --threads 1 --sink null --total-shards N --max-concurrency K
# --identify-window-ms W --gateway ws://127.0.0.1:PORT --token <a synthetic
# token>. The engine spaces a bucket's identifies W plus its margin apart
# (W/40, at least 5 ms: 125 ms on Discord's 5 s); the gateway measures the
# interval when it reads each IDENTIFY, so jitter of more than 5 ms on either
# side (the send after the grant, the read on a busy core) makes identifies
# that were on time look early. With G = W on a 2-core host, 56 and 141 of
# 2,000 identifies got op 9 in two runs and retried later, taking the slowest
# shard from 13.2 s to 16.8-17.7 s: an artefact of compressing the window to
# 100 ms, which Discord's 125 ms margin absorbs; with G = 3/4 W on a loaded
# host still up to 118. Hence G = W/4 by default, as `shardring load` does:
# the gateway still refuses an engine that does not pace, and the cold start
# takes the engine's own pacing. With two or more CPUs the engine is pinned to CPU 0 and the gateway
# to CPU 1 (taskset), as in the other benchmarks.
#
# Time to live, per shard: from the moment the script started the `run`
# process (bash's $EPOCHREALTIME just before the fork) to the timestamp of
# that shard's first `ready` or `resumed` log line (ms resolution; the same
# wall clock). Also from the run's first log line, which leaves out exec and
# start-up. Once every shard is live the run is stopped with SIGTERM, and its
# `summary` gives identifies, resumes and sessions_restored; then the gateway
# is stopped and its --stats-json gives what it accepted and refused (for (b)
# both runs: the crashed run's identifies and the restart's resumes).
#
# Output: per round and per scenario a line; then a table of medians over
# the rounds (p50, p99 and max of the per-shard times, in ms), the counts, and
# what the cold start would take at Discord's 5 s window. Exit 1 when a run
# dies or not every shard is live within the time limit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SHARDRING_BIN:-$ROOT/build/bin/shardring}"
SHARDS="${SHARDS:-2000}"
REPEATS="${REPEATS:-3}"
MAX_CONCURRENCY="${MAX_CONCURRENCY:-16}"
WINDOW_MS="${WINDOW_MS:-100}"
GW_WINDOW_MS="${GW_WINDOW_MS:-}"
EVENTS_S="${EVENTS_S:-2}"
TLS=0
KEEP=0
PIN="${PIN:-1}"
TOKEN="MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDe.bench"
PY=/usr/bin/python3

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --shards) SHARDS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --max-concurrency) MAX_CONCURRENCY=$2; shift 2 ;;
    --window-ms) WINDOW_MS=$2; shift 2 ;;
    --gateway-window-ms) GW_WINDOW_MS=$2; shift 2 ;;
    --events-s) EVENTS_S=$2; shift 2 ;;
    --tls) TLS=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "restart: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n $GW_WINDOW_MS ]] || GW_WINDOW_MS=$((WINDOW_MS / 4 > 0 ? WINDOW_MS / 4 : 1))
for v in SHARDS REPEATS MAX_CONCURRENCY WINDOW_MS GW_WINDOW_MS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "restart: $v must be a positive integer" >&2; exit 2; }
done
[[ $EVENTS_S =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "restart: EVENTS_S must be seconds" >&2; exit 2; }
[[ -x $BIN ]] || { echo "restart: $BIN not built (ninja -C build shardring)" >&2; exit 1; }
[[ -x $PY ]] || { echo "restart: $PY missing" >&2; exit 1; }

# Each side holds one socket per shard (and a few more).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < SHARDS + 256)); then
  echo "restart: note: ulimit -n is $(ulimit -n); $SHARDS shards need about $((SHARDS + 256))" >&2
fi

engine_pin=()
gw_pin=()
if ((PIN)) && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  engine_pin=(taskset -c 0)
  gw_pin=(taskset -c "$(($(nproc) - 1))")
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shardring-restart.XXXXXX")
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_processes restart "$tmp" "$KEEP"

scheme=ws
tls_gw=()
tls_run=()
if ((TLS)); then
  command -v openssl >/dev/null || { echo "restart: --tls needs the openssl CLI" >&2; exit 1; }
  (cd "$tmp" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca.key -out ca.pem -days 2 -subj "/CN=shardring restart bench CA" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" &&
    echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >san.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 2 -extfile san.ext) >"$tmp/pki.log" 2>&1 ||
    { echo "restart: making the certificates failed:" >&2; cat "$tmp/pki.log" >&2; exit 1; }
  scheme=wss
  tls_gw=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")
  tls_run=(--ca-file "$tmp/ca.pem")
fi

# A generous limit for "every shard live": the paced identifies, plus slack.
windows=$(((SHARDS + MAX_CONCURRENCY - 1) / MAX_CONCURRENCY))
LIVE_LIMIT_S=$((windows * WINDOW_MS * 3 / 1000 + 60))

gw=""
port=""
start_gateway() {  # tag
  local log="$tmp/$1.gw.log"
  "${gw_pin[@]}" "$BIN" gateway --listen 127.0.0.1:0 --threads 1 --rate 1 \
    --shards "$SHARDS" --max-concurrency "$MAX_CONCURRENCY" --identify-window-ms "$GW_WINDOW_MS" \
    --stats-json "$tmp/$1.gw.json" "${tls_gw[@]}" 2>"$log" &
  gw=$!
  pids+=("$gw")
  port=$(gateway_port "$log" "$gw")
  [[ -n $port ]] || { echo "restart: the gateway did not start:" >&2; cat "$log" >&2; exit 1; }
}
stop_gateway() {
  stop_process "$gw" TERM
  gw=""
}

run_pid=""
start_run() {  # tag [extra flags...]: records the start time in $tmp/TAG.t0
  local tag=$1
  shift
  local t0=$EPOCHREALTIME
  "${engine_pin[@]}" "$BIN" run --threads 1 --sink null --total-shards "$SHARDS" \
    --max-concurrency "$MAX_CONCURRENCY" --identify-window-ms "$WINDOW_MS" \
    --gateway "$scheme://127.0.0.1:$port" --token "$TOKEN" "${tls_run[@]}" "$@" \
    >/dev/null 2>"$tmp/$tag.log" &
  run_pid=$!
  pids+=("$run_pid")
  echo "$t0" >"$tmp/$tag.t0"
}
wait_live() {  # tag: until every shard logged ready or resumed
  local log="$tmp/$1.log" deadline=$((SECONDS + LIVE_LIMIT_S)) n
  while :; do
    n=$(grep -cE ' shard=[0-9]+ (ready|resumed) ' "$log" 2>/dev/null || true)
    if ((n >= SHARDS)); then
      n=$(grep -oE ' shard=[0-9]+ (ready|resumed) ' "$log" | awk '{print $1}' | sort -u | wc -l)
      ((n >= SHARDS)) && return 0
    fi
    if ! kill -0 "$run_pid" 2>/dev/null; then
      echo "restart: $1: run exited before every shard was live:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "restart: $1: not every shard live after ${LIVE_LIMIT_S}s ($n of $SHARDS)" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
}
stop_run() { stop_process "$run_pid" TERM; }  # clean stop: the summary line
crash_run() { stop_process "$run_pid" KILL; }

echo "command: bash bench/restart.sh --shards $SHARDS --repeats $REPEATS" \
  "--max-concurrency $MAX_CONCURRENCY --window-ms $WINDOW_MS --gateway-window-ms $GW_WINDOW_MS --events-s $EVENTS_S$( ((TLS)) && echo ' --tls')"
echo "binary: ${BIN#"$ROOT"/}; engine ${engine_pin[*]:-unpinned}, gateway ${gw_pin[*]:-unpinned}; $scheme://; ulimit -n $(ulimit -n)"
echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"

for ((r = 1; r <= REPEATS; r++)); do
  # (a) cold start: no state, every shard identifies.
  start_gateway "r$r.cold"
  start_run "r$r.cold"
  wait_live "r$r.cold"
  stop_run
  stop_gateway
  # (b) crash: run with --state until all live plus EVENTS_S of events,
  # kill -9, start again with the same state: every shard resumes.
  start_gateway "r$r.crash"
  start_run "r$r.precrash" --state "$tmp/r$r.state"
  wait_live "r$r.precrash"
  sleep "$EVENTS_S" &  # in the background: a signal's trap runs at once
  pids+=("$!")
  wait "$!"
  forget "$!"
  crash_run
  start_run "r$r.crash" --state "$tmp/r$r.state"
  wait_live "r$r.crash"
  stop_run
  stop_gateway
  "$PY" - "$tmp" "$r" <<'PY'
import json, sys
from datetime import datetime, timezone
tmp, r = sys.argv[1], sys.argv[2]
def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
for tag in ("cold", "crash"):
    base = f"{tmp}/r{r}.{tag}"
    t0 = float(open(base + ".t0").read())
    first, live, kinds, summary = None, {}, {}, {}
    for line in open(base + ".log", errors="replace"):
        if line.startswith("summary "):
            summary = json.loads(line[8:])
            continue
        parts = line.split()
        if len(parts) < 4 or not parts[2].startswith("shard="):
            continue
        try:
            t = ts(parts[0])
        except ValueError:
            continue
        if first is None:
            first = t
        sid = parts[2][6:]
        if sid.isdigit() and parts[3] in ("ready", "resumed") and sid not in live:
            live[sid] = t
            kinds[parts[3]] = kinds.get(parts[3], 0) + 1
    gw = json.load(open(base + ".gw.json"))
    rec = {"scenario": tag, "shards_live": len(live), "start_to_first_log_ms": (first - t0) * 1e3,
           "from_start_ms": sorted((t - t0) * 1e3 for t in live.values()),
           "from_first_log_ms": sorted((t - first) * 1e3 for t in live.values()),
           "live_by": kinds,
           "run": {k: summary.get(k) for k in ("identifies", "resumes", "sessions_restored", "reconnects")},
           "gateway": {k: gw.get(k) for k in ("identifies", "resumes", "identify_rate_limited",
                                              "identifies_refused", "resumes_refused", "connections")}}
    json.dump(rec, open(f"{base}.result.json", "w"))
PY
  "$PY" - "$tmp" "$r" <<'PY'
import json, sys
tmp, r = sys.argv[1], sys.argv[2]
def pct(v, p):  # nearest rank
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]
for tag in ("cold", "crash"):
    d = json.load(open(f"{tmp}/r{r}.{tag}.result.json"))
    v = d["from_start_ms"]
    print(f"round {r} {tag:5}: p50 {pct(v, 50):8.0f} ms  p99 {pct(v, 99):8.0f}  max {v[-1]:8.0f}"
          f"  (first log line +{d['start_to_first_log_ms']:.0f} ms)"
          f"  run identifies {d['run']['identifies']} resumes {d['run']['resumes']}"
          f" restored {d['run']['sessions_restored']}; gateway identifies {d['gateway']['identifies']}"
          f" resumes {d['gateway']['resumes']} refused {d['gateway']['identifies_refused']}/{d['gateway']['resumes_refused']}")
PY
done

"$PY" - "$tmp" "$REPEATS" "$SHARDS" "$MAX_CONCURRENCY" "$WINDOW_MS" "$EVENTS_S" "$GW_WINDOW_MS" <<'PY'
import json, statistics, sys
tmp, reps, n, k, w, ev, g = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
def pct(v, p):
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def fmt(x, unit=""):
    if x is None:
        return "-"
    return f"{x:,.0f}{unit}" if isinstance(x, float) else f"{x:,}{unit}"
rows = {}
for tag in ("cold", "crash"):
    ds = [json.load(open(f"{tmp}/r{r}.{tag}.result.json")) for r in range(1, reps + 1)]
    row = {}
    for key in ("from_start_ms", "from_first_log_ms"):
        for p in (50, 99):
            row[f"{key}.p{p}"] = med([pct(d[key], p) for d in ds])
        row[f"{key}.max"] = med([d[key][-1] for d in ds])
    row["first_log"] = med([d["start_to_first_log_ms"] for d in ds])
    for side in ("run", "gateway"):
        for f in ds[0][side]:
            vals = [d[side][f] for d in ds]
            row[f"{side}.{f}"] = vals[0] if len(set(map(str, vals))) == 1 else ",".join(map(str, vals))
    rows[tag] = row
names = {"cold": f"(a) cold start: {n:,} IDENTIFYs", "crash": f"(b) after kill -9: {n:,} RESUMEs"}
print(f"\nmedians of {reps} rounds; {n:,} shards, max_concurrency {k}, identify window {w} ms"
      f" (the gateway enforces {g} ms);"
      " ms from the start of the `run` process to each shard's ready/resumed log line")
print("| start | p50 ms | p99 ms | max ms | run: identifies / resumes / sessions_restored |"
      " gateway: identifies / resumes (refused) |")
print("|---|---|---|---|---|---|")
for tag, row in rows.items():
    gw = f"{row['gateway.identifies']} / {row['gateway.resumes']}" \
         f" ({row['gateway.identifies_refused']} / {row['gateway.resumes_refused']})"
    print(f"| {names[tag]} | {fmt(row['from_start_ms.p50'])} | {fmt(row['from_start_ms.p99'])} |"
          f" {fmt(row['from_start_ms.max'])} | {row['run.identifies']} / {row['run.resumes']} /"
          f" {row['run.sessions_restored']} | {gw} |")
c, x = rows["cold"], rows["crash"]
print(f"\nfrom each run's first log line instead (medians): cold p50 {fmt(c['from_first_log_ms.p50'])},"
      f" max {fmt(c['from_first_log_ms.max'])} ms; crash p50 {fmt(x['from_first_log_ms.p50'])},"
      f" max {fmt(x['from_first_log_ms.max'])} ms; process start to first log line"
      f" {fmt(c['first_log'])} / {fmt(x['first_log'])} ms")
if x["from_start_ms.max"]:
    print(f"all live: the restart after a crash took {x['from_start_ms.max'] / c['from_start_ms.max']:.3f}x"
          f" the cold start's time ({c['from_start_ms.max'] / x['from_start_ms.max']:.0f}x faster)")
windows = -(-n // k)
margin = lambda win: max(win // 40, 5)  # engine/identify_gate.h
print(f"\nthe cold start is paced: {n:,} shards / {k} buckets = {windows} identifies per bucket, one per"
      f" window: about {windows} x {w} ms = {windows * w / 1000:.1f} s here, and at Discord's 5 s window"
      f" {windows} x 5 s = {windows * 5} s ({windows * 5 / 60:.1f} min). (The engine spaces them window +"
      f" margin apart, {w + margin(w)} ms here and 5,125 ms at 5 s, so a bucket's last identify goes out"
      f" {(windows - 1) * (w + margin(w)) / 1000:.1f} s, or {(windows - 1) * (5000 + margin(5000)) / 1000:.0f} s,"
      " after its first.) The restart after a crash does not go through the identify queue and does not"
      " scale with the window.")
print("(b)'s gateway counts cover both of its runs: the identifies (accepted and refused) are the crashed"
      f" run's, the resumes the restart's; the crashed run had {ev} s of events after every shard was ready.")
PY
