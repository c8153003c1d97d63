#!/usr/bin/env bash
# bench/redis_handoff.sh: what handing every event to Redis costs, side by
# side in one invocation: shardring `run --sink null` (the engine's floor),
# shardring `run --sink redis` (one stream per shard, pipelined EVALSHA of
# the append script, one call per shard per flush), and discord.js
# (@discordjs/ws) publishing each dispatch with @discordjs/brokers'
# PubSubRedisBroker (one XADD per event, bench/peers/discordjs_broker_client.mjs);
# and the lag from the gateway's send to the stream, from
# `shardring load --sink redis` (the same sink, against a gateway it spawns).
#
# Usage:
#   bash bench/redis_handoff.sh [--rounds R] [--seconds S] [--rows "NxRATE ..."]
#                               [--variants "null redis discordjs lag"] [--keep]
#     --rounds R     rounds; every figure is the median over them (env ROUNDS; default 3)
#     --seconds S    how long each client runs (env SECONDS_RUN; default 20)
#     --rows L       shard count x events/s per shard, 0 = as fast as the client
#                    takes them (env ROWS; default "16x0 256x100")
#     --variants L   which of null, redis, discordjs, lag to run, in this
#                    order within each round (env VARIANTS; default all four)
#     --keep         keep the logs (printed at the end)
#   Environment: SHARDRING_BIN (default build/bin/shardring; copied at start,
#   so a rebuild during the run does not change it); PIN=0 to not pin;
#   REDIS_CPU: the CPU redis-server is pinned to (default the last one, the
#   gateway's).
# Needs a Release build (build/bin/shardring), redis-server and redis-cli
# (Debian's redis-server), and for the discordjs variant node with
# @discordjs/ws in .cache/npm (scripts/setup.sh); @discordjs/brokers
# ($BROKERS_VERSION below) is added there with npm when missing. A missing
# piece skips its variant with a message on stderr.
#
# Each run gets a fresh `shardring gateway` (--listen 127.0.0.1:0 --threads 1
# --max-concurrency 16 --identify-window-ms 1, the row's --shards and
# --rate; lag: the one `shardring load` spawns, on the last CPU, the engine
# on the others) and, for redis, discordjs and lag, a fresh private redis-server
# (127.0.0.1, a free port, a temporary --dir, --save "" --appendonly no),
# stopped by its pid after the run. Client pacing as bench/peers/compare.sh:
# one identify per bucket (shard % 16) every 5 ms. The client (engine or
# node) runs on CPU 0, the gateway and redis-server on the last CPU. Within
# a round the variants alternate (null, redis, discordjs), then the next
# row; rounds repeat that.
#
# Measured per run:
#   client CPU-s per million events: shardring's summary cpu_s (the whole
#     process, start to exit) / events; node's process.cpuUsage() from
#     before connect() until Redis confirmed the last publish / published.
#   Redis CPU-s per million events: utime+stime of the redis-server pid
#     (/proc/PID/stat) from just before the client starts to just after it
#     exits, / the entries in Redis.
#   events/s: shardring's events / elapsed_s (its --duration plus its close);
#     discord.js: published / its seconds. The discord.js client's window is
#     SECONDS from its connect() call, ready or not: one that cannot keep up
#     with the offered rate still stops in time (its connect_s, when every
#     shard was ready, is in the per-run line).
#   XLEN check: the sum of XLEN over P:shard:* (shardring) or P:* (discord.js,
#     streams by event type) against the events the client counted; "ok"
#     when equal.
#   other load: CPU-seconds per second that the machine spent outside the
#     client, the gateway and redis-server during the run (/proc/stat busy
#     time less theirs): other work on the host, and kernel work charged to
#     no process (softirqs of loopback traffic, about 0.1 at a million
#     events/s). Above 0.2 the run is marked "noisy" (its figures are still
#     used).
#   lag: `shardring load --shards N --rate R --duration SECONDS --sink redis
#     --redis-maxlen 0 --identify-window-ms 20 --json`: its redis_lag_ms, from
#     the gateway's send of each event to Redis acknowledging its append (the
#     sink's own histogram; `shardring run` has no send time to measure it
#     against). Only the lag is taken from this run; its CPU figures are
#     load's, not comparable with `run`'s.
#
# Output: a line per run, then per row a Markdown table of medians and the
# ratios: redis sink against null sink (engine CPU per event; target at most
# 2x), and discord.js + brokers against the redis sink (client CPU per event;
# target at least 10x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SHARDRING_BIN:-$ROOT/build/bin/shardring}"
ROUNDS="${ROUNDS:-3}"
SECONDS_RUN="${SECONDS_RUN:-20}"
ROWS="${ROWS:-16x0 256x100}"
VARIANTS="${VARIANTS:-null redis discordjs lag}"
KEEP=0
PIN="${PIN:-1}"
NPM="$ROOT/.cache/npm"
PEERS="$ROOT/bench/peers"
PY=/usr/bin/python3
BROKERS_VERSION=1.0.0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --variants) VARIANTS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "redis_handoff: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
note() { echo "redis_handoff: $*" >&2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { note "--rounds: a positive integer"; exit 2; }
[[ $SECONDS_RUN =~ ^[1-9][0-9]*$ ]] || { note "--seconds: a positive integer"; exit 2; }
for row in $ROWS; do
  [[ $row =~ ^[1-9][0-9]*x[0-9]+(\.[0-9]+)?$ ]] || { note "--rows: SHARDSxRATE, not '$row'"; exit 2; }
done
for v in $VARIANTS; do
  [[ $v == null || $v == redis || $v == discordjs || $v == lag ]] ||
    { note "--variants: null, redis, discordjs, lag; not '$v'"; exit 2; }
done
[[ -x $BIN ]] || { note "$BIN not built (cmake --build build, or ninja -C build shardring)"; exit 1; }
[[ -x $PY ]] || { note "$PY missing"; exit 1; }
BIN_SRC=$BIN

# What is there: a variant whose pieces are missing is skipped.
variants=()
have_redis=1
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  have_redis=0
fi
for v in $VARIANTS; do
  case $v in
    null) variants+=(null) ;;
    redis|lag)
      if ((have_redis)); then variants+=("$v")
      else note "redis-server or redis-cli missing (apt-get install redis-server): $v skipped"; fi ;;
    discordjs)
      if ((!have_redis)); then
        note "redis-server or redis-cli missing (apt-get install redis-server): discordjs skipped"
      elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        note "node or npm missing (scripts/setup.sh): discordjs skipped"
      elif [[ ! -d $NPM/node_modules/@discordjs/ws ]]; then
        note "@discordjs/ws not in $NPM (scripts/setup.sh): discordjs skipped"
      else
        if [[ ! -f $NPM/node_modules/@discordjs/brokers/package.json ]]; then
          note "adding @discordjs/brokers@$BROKERS_VERSION to $NPM (npm)"
          timeout 300 npm install --prefix "$NPM" --no-audit --no-fund --loglevel=error \
            "@discordjs/brokers@$BROKERS_VERSION" >/dev/null 2>&1 || true
        fi
        if [[ -f $NPM/node_modules/@discordjs/brokers/package.json && -d $NPM/node_modules/ioredis ]]; then
          cp "$PEERS/discordjs_broker_client.mjs" "$PEERS/discordjs_manager.mjs" "$NPM/"
          variants+=(discordjs)
        else
          note "@discordjs/brokers could not be installed with npm: discordjs skipped"
        fi
      fi ;;
  esac
done
((${#variants[@]})) || { note "nothing to run"; exit 1; }

client_pin=()
gw_pin=()
redis_pin=()
if ((PIN)) && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  client_pin=(taskset -c 0)
  gw_pin=(taskset -c "$(($(nproc) - 1))")
  redis_pin=(taskset -c "${REDIS_CPU:-$(($(nproc) - 1))}")
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shardring-redis-handoff.XXXXXX")
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_processes redis_handoff "$tmp" "$KEEP"
results="$tmp/results.jsonl"
: >"$results"
CLK_TCK=$(getconf CLK_TCK)
# The binary as it is now: a rebuild during the run must not change it.
cp "$BIN_SRC" "$tmp/shardring"
BIN="$tmp/shardring"

proc_cpu_s() {  # pid: utime+stime in seconds (fields 14 and 15 of /proc/PID/stat)
  local stat rest
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }  # after the command name, which may hold spaces
  # shellcheck disable=SC2086
  set -- $rest
  # $1 is field 3 (state): utime is field 14 -> ${12}, stime ${13}.
  $PY -c "print((${12} + ${13}) / $CLK_TCK)"
}
machine_busy_s() {  # busy CPU-seconds of the whole machine since boot (/proc/stat)
  local user nice system irq softirq steal
  read -r _ user nice system _ _ irq softirq steal _ </proc/stat
  $PY -c "print(($user + $nice + $system + $irq + $softirq + $steal) / $CLK_TCK)"
}
free_port() {
  $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

redis=""
rport=""
start_redis() {  # tag
  local dir="$tmp/$1.redis"
  mkdir -p "$dir"
  for _ in 1 2 3; do
    rport=$(free_port)
    "${redis_pin[@]}" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$dir" --daemonize no --logfile "" >"$dir/redis.log" 2>&1 &
    redis=$!
    pids+=("$redis")
    for _ in $(seq 100); do
      [[ $(redis-cli -p "$rport" ping 2>/dev/null) == PONG ]] && return 0
      kill -0 "$redis" 2>/dev/null || break
      sleep 0.05
    done
    stop_process "$redis" KILL
  done
  note "redis-server did not start:"
  tail -5 "$dir/redis.log" >&2
  exit 1
}
stop_redis() {
  [[ -n $redis ]] || return 0
  stop_process "$redis" TERM
  redis=""
}
xlen_total() {  # pattern: the sum of XLEN over the streams matching it
  local keys
  mapfile -t keys < <(redis-cli -p "$rport" --scan --pattern "$1")
  ((${#keys[@]})) || { echo 0; return 0; }
  printf 'TYPE %s\n' "${keys[@]}" | redis-cli -p "$rport" | paste -d' ' - <(printf '%s\n' "${keys[@]}") |
    awk '$1 == "stream" {print "XLEN " $2}' | redis-cli -p "$rport" | awk '{s += $1} END {print s + 0}'
}

gw=""
port=""
start_gateway() {  # tag shards rate
  local log="$tmp/$1.gw.log"
  "${gw_pin[@]}" "$BIN" gateway --listen 127.0.0.1:0 --threads 1 --shards "$2" --rate "$3" \
    --max-concurrency 16 --identify-window-ms 1 2>"$log" &
  gw=$!
  pids+=("$gw")
  port=$(gateway_port "$log" "$gw")
  [[ -n $port ]] || { note "the gateway did not start:"; cat "$log" >&2; exit 1; }
}
stop_gateway() {
  [[ -n $gw ]] || return 0
  stop_process "$gw" INT
  gw=""
}

run_one() {  # variant shards rate round: appends one JSON line to $results, or notes why not
  local v=$1 n=$2 rate=$3 r=$4 tag="r$4.$1.$2x$3" lim=$((SECONDS_RUN + 120))
  local log="$tmp/$tag.log" cpu0="" cpu1="" xlen="" pid gw0=0 gw1=0 busy0 busy1 t0 t1
  [[ $v == lag ]] || start_gateway "$tag" "$n" "$rate"
  [[ $v == null ]] || start_redis "$tag"
  [[ -n $redis ]] && cpu0=$(proc_cpu_s "$redis")
  [[ -n $gw ]] && gw0=$(proc_cpu_s "$gw")
  busy0=$(machine_busy_s)
  t0=$EPOCHREALTIME
  case $v in
    null|redis)
      local flags=(--gateway "ws://127.0.0.1:$port" --total-shards "$n" --max-concurrency 16
                   --identify-window-ms 5 --threads 1 --duration "$SECONDS_RUN")
      if [[ $v == null ]]; then flags+=(--sink null)
      else flags+=(--sink redis --redis "redis://127.0.0.1:$rport" --redis-prefix bench); fi
      timeout -k 10 "$lim" "${client_pin[@]}" "$BIN" run "${flags[@]}" >/dev/null 2>"$log" &
      pid=$!
      pids+=("$pid")
      wait "$pid" || note "$tag: run exited with $?"
      forget "$pid" ;;
    discordjs)
      (cd "$NPM" && exec timeout -k 10 "$lim" "${client_pin[@]}" node discordjs_broker_client.mjs \
        "$port" "$n" "$SECONDS_RUN" "redis://127.0.0.1:$rport" bench ws >"$log.out" 2>"$log") &
      pid=$!
      pids+=("$pid")
      wait "$pid" || note "$tag: node exited with $?"
      forget "$pid" ;;
    lag)
      # load pins its gateway and engine itself.
      timeout -k 10 "$lim" "$BIN" load --shards "$n" --rate "$rate" --duration "$SECONDS_RUN" \
        --max-concurrency 16 --identify-window-ms 20 --sink redis --redis "redis://127.0.0.1:$rport" \
        --redis-prefix bench --redis-maxlen 0 --json "$tmp/$tag.json" >/dev/null 2>"$log" &
      pid=$!
      pids+=("$pid")
      wait "$pid" || note "$tag: load exited with $?"
      forget "$pid" ;;
  esac
  t1=$EPOCHREALTIME
  busy1=$(machine_busy_s)
  [[ -n $gw ]] && gw1=$(proc_cpu_s "$gw")
  if [[ -n $redis ]]; then
    cpu1=$(proc_cpu_s "$redis")
    if [[ $v == discordjs ]]; then xlen=$(xlen_total 'bench:*'); else xlen=$(xlen_total 'bench:shard:*'); fi
  fi
  stop_redis
  stop_gateway
  local line=""
  if [[ $v == discordjs ]]; then
    line=$(grep '^{' "$log.out" 2>/dev/null | tail -1 || true)
  elif [[ $v == lag ]]; then
    line=$(cat "$tmp/$tag.json" 2>/dev/null || true)
  else
    line=$(grep '^summary ' "$log" | tail -1 || true)
    line=${line#summary }
  fi
  if [[ -z $line ]] || ! $PY - "$line" "$v" "$n" "$rate" "$r" "$cpu0" "$cpu1" "$xlen" \
      "$gw0" "$gw1" "$busy0" "$busy1" "$t0" "$t1" >>"$results" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
v, n, rate, r = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
cpu0, cpu1, xlen = sys.argv[6], sys.argv[7], sys.argv[8]
gw0, gw1, busy0, busy1, t0, t1 = map(float, sys.argv[9:15])
if v == "lag":
    events, seconds = s["events"], s["elapsed_s"]
    lag = s["redis_lag_ms"]
    extra = {"lag_p50_ms": lag["p50"], "lag_p99_ms": lag["p99"], "lag_max_ms": lag["max"],
             "lag_count": lag["count"], "gateway_cpu_s": s["gateway_cpu_s"]}
elif v == "discordjs":
    events, seconds = s["published"], s["seconds"]
    extra = {"received": s["events"], "failed": s["failed"], "in_flight": s["in_flight"],
             "connect_s": s.get("connect_s"), "drain_s": s.get("drain_s")}
else:
    events, seconds, extra = s["events"], s["elapsed_s"], {}
if not events:
    sys.exit("no events")
rec = {"variant": v, "shards": n, "rate": rate, "round": r, "events": events, "seconds": seconds,
       "events_per_s": events / seconds, "cpu_s": s["cpu_s"],
       "cpu_per_m": s["cpu_s"] * 1e6 / events, "peak_rss_kib": s["peak_rss_kib"], **extra}
if cpu0:
    rec["redis_cpu_s"] = float(cpu1) - float(cpu0)
    rec["xlen"] = int(xlen)
    rec["redis_cpu_per_m"] = rec["redis_cpu_s"] * 1e6 / max(int(xlen), 1)
    rec["xlen_ok"] = int(xlen) == events
ours = s["cpu_s"] + (gw1 - gw0) + rec.get("redis_cpu_s", 0) + extra.get("gateway_cpu_s", 0)
rec["other_load"] = max(0.0, (busy1 - busy0) - ours) / (t1 - t0)
print(json.dumps(rec))
PY
  then
    note "$tag gave no result; its stderr ends:"
    tail -5 "$log" >&2 || true
    return 0
  fi
  $PY - "$(tail -1 "$results")" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
line = (f"round {d['round']} {d['shards']}x{d['rate']:g} {d['variant']:9}: {d['events']:9d} events"
        f" {d['events_per_s']:9.0f}/s, " + ("load engine" if d["variant"] == "lag" else "client")
        + f" {d['cpu_per_m']:6.2f} CPU-s/M")
if "redis_cpu_s" in d:
    line += (f", redis {d['redis_cpu_per_m']:5.2f} CPU-s/M, XLEN {d['xlen']}"
             f" {'ok' if d['xlen_ok'] else 'MISMATCH'}")
if d["variant"] == "discordjs":
    c = "not within the window" if d["connect_s"] is None else f"{d['connect_s']:.1f} s"
    line += (f" (received {d['received']}, failed {d['failed']}, still in flight {d['in_flight']};"
             f" all shards ready at {c}, drain {d['drain_s']:.1f} s)")
if d["variant"] == "lag":
    line += (f"; lag to the stream p50 {d['lag_p50_ms']:.2f} ms, p99 {d['lag_p99_ms']:.2f},"
             f" max {d['lag_max_ms']:.2f} ({d['lag_count']} events)")
line += f"; other load {d['other_load']:.2f}" + (" NOISY" if d["other_load"] > 0.2 else "")
print(line)
PY
}

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit (the working tree has uncommitted changes: $(git -C "$ROOT" status --porcelain \
    --untracked-files=no | awk '{print $2}' | tr '\n' ' ' | sed 's/ $//'))"
fi
echo "command: bash bench/redis_handoff.sh --rounds $ROUNDS --seconds $SECONDS_RUN --rows \"$ROWS\" --variants \"${variants[*]}\""
echo "commit $commit"
echo "binary ${BIN_SRC#"$ROOT"/} (built $(date -u -r "$BIN_SRC" '+%Y-%m-%d %H:%M:%S UTC')); client ${client_pin[*]:-unpinned}, gateway ${gw_pin[*]:-unpinned}, redis-server ${redis_pin[*]:-unpinned}"
echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs;" \
  "$( ((have_redis)) && redis-server --version | grep -o 'v=[0-9.]*' | sed 's/v=/redis-server /')" \
  "$(command -v node >/dev/null && echo "; node $(node --version)")" \
  "$([[ -f $NPM/node_modules/@discordjs/brokers/package.json ]] && grep -o '"version": "[^"]*"' "$NPM/node_modules/@discordjs/brokers/package.json" | sed 's/"version": "\(.*\)"/; @discordjs\/brokers \1/')"

for ((r = 1; r <= ROUNDS; r++)); do
  for row in $ROWS; do
    for v in "${variants[@]}"; do
      run_one "$v" "${row%x*}" "${row#*x}" "$r"
    done
  done
done

"$PY" - "$results" "$ROWS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {"null": "shardring --sink null", "redis": "shardring --sink redis",
         "discordjs": "@discordjs/ws + @discordjs/brokers"}
def med(rs, k):
    xs = [r[k] for r in rs if k in r]
    return statistics.median(xs) if xs else None
def f(x, fmt):
    return "-" if x is None else format(x, fmt)
for spec in sys.argv[2].split():
    n, rate = int(spec.split("x")[0]), float(spec.split("x")[1])
    cell = [r for r in rows if r["shards"] == n and r["rate"] == rate]
    pace = ("as fast as the client takes them" if rate == 0
            else f"{rate:g} events/s per shard (offered: {n * rate:,.0f} events/s)")
    print(f"\n{n} shards, {pace}; medians of {len({r['round'] for r in cell})} rounds")
    print("| client | events/s | client CPU-s / M events | Redis CPU-s / M events |"
          " client + Redis | XLEN = events | other load |")
    print("|---|---|---|---|---|---|---|")
    m = {}
    for v in ("null", "redis", "discordjs"):
        rs = [r for r in cell if r["variant"] == v]
        if not rs:
            continue
        m[v] = {k: med(rs, k) for k in ("events_per_s", "cpu_per_m", "redis_cpu_per_m", "other_load")}
        tot = None if m[v]["redis_cpu_per_m"] is None else m[v]["cpu_per_m"] + m[v]["redis_cpu_per_m"]
        m[v]["total"] = tot
        ok = "-" if v == "null" else ("yes" if all(r.get("xlen_ok") for r in rs)
                                      else f"no in {sum(not r.get('xlen_ok') for r in rs)} of {len(rs)}")
        rounds = len({r["round"] for r in cell})
        name = names[v] + ("" if len(rs) == rounds else f" ({len(rs)} of {rounds} rounds)")
        print(f"| {name} | {m[v]['events_per_s']:,.0f} | {m[v]['cpu_per_m']:.2f} |"
              f" {f(m[v]['redis_cpu_per_m'], '.2f')} | {f(tot, '.2f')} | {ok} |"
              f" {m[v]['other_load']:.2f} |")
    if "null" in m and "redis" in m:
        x = m["redis"]["cpu_per_m"] / m["null"]["cpu_per_m"]
        verdict = "met" if x <= 2 else f"missed by {x / 2:.2f}x"
        print(f"redis sink / null sink, engine CPU per event: {x:.2f}x (target at most 2x: {verdict});"
              f" events/s {m['redis']['events_per_s'] / m['null']['events_per_s']:.2f}x")
    if "redis" in m and "discordjs" in m:
        x = m["discordjs"]["cpu_per_m"] / m["redis"]["cpu_per_m"]
        verdict = "met" if x >= 10 else f"missed: {x / 10:.2f} of the 10x"
        print(f"discord.js + brokers / shardring --sink redis, client CPU per event: {x:.1f}x"
              f" (target at least 10x: {verdict})")
        print(f"  Redis CPU per event: {m['discordjs']['redis_cpu_per_m'] / m['redis']['redis_cpu_per_m']:.1f}x;"
              f" client + Redis: {m['discordjs']['total'] / m['redis']['total']:.1f}x;"
              f" events/s: {m['discordjs']['events_per_s'] / m['redis']['events_per_s']:.2f}x")
    lags = [r for r in cell if r["variant"] == "lag"]
    if lags:
        print(f"lag from the gateway's send to the stream (shardring load --sink redis, {len(lags)} rounds,"
              f" medians): p50 {med(lags, 'lag_p50_ms'):.2f} ms, p99 {med(lags, 'lag_p99_ms'):.2f} ms,"
              f" max {med(lags, 'lag_max_ms'):.2f} ms; {med(lags, 'events_per_s'):,.0f} events/s,"
              f" Redis {med(lags, 'redis_cpu_per_m'):.2f} CPU-s/M,"
              f" XLEN = events {'yes' if all(r.get('xlen_ok') for r in lags) else 'NO'}")
PY
