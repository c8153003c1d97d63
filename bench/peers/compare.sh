#!/usr/bin/env bash
# bench/peers/compare.sh: shardring against other gateway clients, end to end,
# side by side. Every client runs against its own fresh `shardring gateway`
# (same flags each time: same built-in event mix, same rate, same shard
# count; --max-concurrency 16 --identify-window-ms 1, default heartbeat
# interval; one I/O thread pinned to the last CPU) with the client pinned to
# CPU 0 (taskset), so gateway and client never share a core.
#
# Usage:
#   bash bench/peers/compare.sh [SHARDS] [RATE] [SECONDS] [none|zlib-stream]
#     SHARDS   shard count of a single run (default: SHARD_LIST; 0 = SHARD_LIST)
#     RATE     dispatch events per second per shard; 0 = unlimited (default 0)
#     SECONDS  how long each client runs (default 10)
#     none|zlib-stream  transport compression (default none); only shardring
#              and discordjs speak zlib-stream, the others are skipped then.
#   Environment:
#     SHARD_LIST  shard counts to run (default "1 16 256 2000"; overrides SHARDS)
#     MODES       "plain" (ws://), "tls" (wss://) or both (default "plain tls")
#     CLIENTS     clients to run, in this order (default: all seven below)
#     OUT_DIR     where the CSV and the chart go (default build/peers)
#     ROUNDS      runs of every client in each cell (default 1). Each round
#              starts one client later in CLIENTS than the last, so none
#              always runs first on a drifting host; the tables then give
#              medians, and each ratio is the median of the ratios measured
#              within one round.
#     BIN_DIR     where shardring and floor_client are (default build/bin)
#     FLOOR_COALESCE_US  floor-batch's coalescing time (default 1000)
#     FLOOR_URING  io_uring features the floors use where the kernel has them
#              (default "min_wait,bundle", as the engine; "none" for neither;
#              SHARDRING_FLAGS="--uring-fallback min_wait,recv_bundle" is the
#              engine's counterpart)
#   Examples:
#     bash bench/peers/compare.sh                     # the full matrix, unlimited
#     bash bench/peers/compare.sh 16 0 10             # 16 shards, plain and tls
#     SHARD_LIST="1 16" MODES=plain bash bench/peers/compare.sh 0 100 8
#
# Clients (a missing one is skipped with a note on stderr):
#   shardring          build/bin/shardring run --sink null --threads 1
#   floor              the floor: what no gateway client can beat on this
#                      kernel (bench/peers/floor_client.cc ->
#                      build/bin/floor_client: `ninja -C build floor_client`,
#                      built whenever liburing is found). One thread, one
#                      io_uring, a multishot recv per connection into a
#                      provided-buffer ring; each buffer is only walked for
#                      WebSocket frame headers and a text frame starting
#                      {"t":" counted as a dispatch: no parsing, no copy, no
#                      hand-off. It does the upgrade, reads HELLO, sends a
#                      paced IDENTIFY and heartbeats (op 1, d null, each
#                      heartbeat_interval: none in a run shorter than the
#                      gateway's default 41.25 s). In tls mode it runs wss://
#                      through our wolfSSL build (tls::Session, records
#                      decrypted into one scratch buffer that the walk
#                      reads); skipped with a note with zlib-stream.
#                      `wake`: io_uring_submit_and_wait(1), a wake-up per
#                      completion: the floor at full speed.
#   floor-batch        the same binary, `batch FLOOR_COALESCE_US` (default
#                      1000, shardring's --coalesce-us default): after a light
#                      pass (1-63 completions) waits for 64 completions or
#                      that long, as the engine does: the floor at a real
#                      bot's pace.
#   discordjs          discord.js's @discordjs/ws (.cache/npm, scripts/setup.sh)
#   node-ws            plain Node `ws` + JSON.parse: Node's ceiling
#                      (bench/peers/node_ws_client.mjs)
#   python-websockets  /usr/bin/python3 asyncio + websockets + json.loads
#                      (bench/peers/python_websockets_client.py)
#   beast              Boost.Beast + asio + simdjson DOM, one io_context thread
#                      (bench/peers/beast_client.cc -> build/bin/beast_client:
#                      `ninja -C build beast_client`; needs libboost-dev)
# Each one but the floors parses every message in full and counts the
# dispatches, and keeps heartbeating. Note: shardring's default dispatch
# check is its envelope parse (extent, top level, UTF-8 and strings of d);
# SHARDRING_FLAGS adds flags to its run, e.g. SHARDRING_FLAGS=--validate-d
# for a full JSON check.
# Identify pacing is the same for all: one IDENTIFY per bucket (shard % 16)
# every 5 ms (shardring: --identify-window-ms 5; the peers pace themselves
# the same way and re-identify 1 s after an op 9). python-websockets opens at
# most 64 connections at a time. shardring's seconds are its --duration plus
# its close handshakes; the peers' are SECONDS from their first open
# connection (discordjs: from connect(), which waits for every shard). A
# client that has not finished SECONDS + 240 s after it started is killed
# and its cell left out. The script raises `ulimit -n` to the hard limit
# and says so when that is short of the largest shard count plus 100.
#
# TLS: a throwaway CA and a server certificate for 127.0.0.1/localhost are
# made once per invocation (openssl CLI); the gateway gets --tls-cert/--tls-key,
# the clients the CA (shardring --ca-file, Node NODE_EXTRA_CA_CERTS, Python
# ssl.create_default_context(cafile=), beast its CAFILE argument).
#
# Output: per (mode, shards) a table: events, events/s, client CPU seconds per
# million events (the main figure; with ROUNDS above 1 also its lowest and
# highest), ratio to shardring, ratio to the floor (the lower CPU per million
# events of floor and floor-batch in the same round; "-" when neither ran),
# peak RSS (total and per shard); with ROUNDS above 1 each one the median over
# the rounds. Then ${OUT_DIR}/peers.csv, a row per run (mode,rate,shards,
# client,events,seconds,events_per_s,cpu_s,cpu_s_per_million,peak_rss_kib,
# rss_kib_per_shard,round) and ${OUT_DIR}/peers.png (gnuplot: CPU s per
# million events against shard count, log-log, one panel per mode, one line
# per client, medians; skipped with a note without gnuplot; its data and
# script stay in ${OUT_DIR}/plot/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARDS_ARG="${1:-0}"; RATE="${2:-0}"; SECONDS_RUN="${3:-10}"; COMPRESS="${4:-none}"
if [[ -n ${SHARD_LIST:-} ]]; then
  shard_list="$SHARD_LIST"
elif [[ $SHARDS_ARG != 0 ]]; then
  shard_list="$SHARDS_ARG"
else
  shard_list="1 16 256 2000"
fi
modes="${MODES:-plain tls}"
clients="${CLIENTS:-shardring floor floor-batch discordjs node-ws python-websockets beast}"
OUT_DIR="${OUT_DIR:-$ROOT/build/peers}"
BIN_DIR="${BIN_DIR:-$ROOT/build/bin}"
BIN="$BIN_DIR/shardring"
BEAST="$BIN_DIR/beast_client"
FLOOR="$BIN_DIR/floor_client"
ROUNDS="${ROUNDS:-1}"
NPM="$ROOT/.cache/npm"
PY=/usr/bin/python3
PEERS="$ROOT/bench/peers"
[[ -x $BIN ]] || { echo "compare: build first (cmake --build build)"; exit 1; }
[[ $COMPRESS == none || $COMPRESS == zlib-stream ]] || { echo "compare: compression: none or zlib-stream"; exit 2; }
for m in $modes; do
  [[ $m == plain || $m == tls ]] || { echo "compare: MODES: plain and/or tls, not '$m'"; exit 2; }
done
[[ $ROUNDS =~ ^[1-9][0-9]{0,2}$ ]] || { echo "compare: ROUNDS: a whole number from 1 to 999, not '$ROUNDS'"; exit 2; }
ncpu=$(nproc)
gw_cpu=$((ncpu - 1)); client_cpu=0
# N shards: N sockets in the client and as many in the gateway, each
# process with its own limit; about 100 more for the rest.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
most=0
for n in $shard_list; do (( n > most )) && most=$n; done
if [[ $(ulimit -n) != unlimited ]] && (( $(ulimit -n) < most + 100 )); then
  echo "compare: note: ulimit -n is $(ulimit -n); $most shards need about $((most + 100)) descriptors (ulimit -Hn as root)" >&2
fi
mkdir -p "$OUT_DIR"
tmp=$(mktemp -d)
gw=""
trap '[[ -n $gw ]] && kill -INT $gw 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
results="$tmp/results.jsonl"
: >"$results"
note() { echo "compare: $*" >&2; }

# The npm folder holds the modules the Node clients import.
node_ok=0
if command -v node >/dev/null && [[ -d $NPM/node_modules ]]; then
  node_ok=1
  cp "$PEERS/discordjs_client.mjs" "$PEERS/discordjs_manager.mjs" "$PEERS/node_ws_client.mjs" "$NPM/"
fi

make_pki() {  # like tests/integration/run_gateway_test.py's make_pki
  local d="$tmp/pki"
  mkdir -p "$d"
  (cd "$d" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca.key -out ca.pem -days 2 -subj "/CN=shardring peers bench CA" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" &&
    echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >san.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 2 -extfile san.ext) >"$tmp/pki.log" 2>&1
  CA="$d/ca.pem"; CERT="$d/server.pem"; KEY="$d/server.key"
}
[[ " $modes " == *" tls "* ]] && make_pki

start_gateway() {  # mode shards
  local tls=()
  [[ $1 == tls ]] && tls=(--tls-cert "$CERT" --tls-key "$KEY")
  : >"$tmp/gw.log"
  taskset -c "$gw_cpu" "$BIN" gateway --listen 127.0.0.1:0 --threads 1 --shards "$2" \
    --rate "$RATE" --max-concurrency 16 --identify-window-ms 1 "${tls[@]}" 2>"$tmp/gw.log" &
  gw=$!
  for _ in $(seq 200); do grep -q 'listening on' "$tmp/gw.log" && break; sleep 0.05; done
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/gw.log" | grep -o '[0-9]*$' || true)
  [[ -n $port ]] || { note "gateway did not start:"; cat "$tmp/gw.log" >&2; exit 1; }
}
stop_gateway() { kill -INT "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; gw=""; }

# Each client prints one JSON line {"client","events","cpu_s","seconds",
# "peak_rss_kib"} on stdout (shardring: its summary line, converted).
client_available() {  # client mode
  case $1 in
    shardring) return 0 ;;
    discordjs)
      ((node_ok)) && [[ -d $NPM/node_modules/@discordjs/ws ]] && return 0
      note "@discordjs/ws or node not installed (scripts/setup.sh): discordjs skipped" ;;
    node-ws)
      [[ $COMPRESS == none ]] || { note "node-ws does not speak $COMPRESS: skipped"; return 1; }
      ((node_ok)) && [[ -d $NPM/node_modules/ws ]] && return 0
      note "node or the ws package not installed (scripts/setup.sh): node-ws skipped" ;;
    python-websockets)
      [[ $COMPRESS == none ]] || { note "python-websockets does not speak $COMPRESS: skipped"; return 1; }
      [[ -x $PY ]] && $PY -c 'import websockets' 2>/dev/null && return 0
      note "python3-websockets not installed (scripts/setup.sh): python-websockets skipped" ;;
    beast)
      [[ $COMPRESS == none ]] || { note "beast does not speak $COMPRESS: skipped"; return 1; }
      [[ -x $BEAST ]] && return 0
      note "build/bin/beast_client not built (libboost-dev, then ninja -C build beast_client): beast skipped" ;;
    floor|floor-batch)
      [[ $COMPRESS == none ]] || { note "$1 does not speak $COMPRESS: skipped"; return 1; }
      [[ -x $FLOOR ]] && return 0
      note "build/bin/floor_client not built (ninja -C build floor_client): $1 skipped" ;;
    *) note "unknown client '$1': skipped" ;;
  esac
  return 1
}

run_client() {  # client mode shards -> one JSON line on stdout, or nothing
  local c=$1 mode=$2 n=$3 scheme=ws lim=$((SECONDS_RUN + 240))
  [[ $mode == tls ]] && scheme=wss
  local pin=(timeout -k 10 "$lim" taskset -c "$client_cpu")
  case $c in
    shardring)
      local flags=(--gateway "$scheme://127.0.0.1:$port" --total-shards "$n" --max-concurrency 16
                   --identify-window-ms 5 --threads 1 --sink null --duration "$SECONDS_RUN")
      [[ $COMPRESS != none ]] && flags+=(--compress "$COMPRESS")
      [[ $mode == tls ]] && flags+=(--ca-file "$CA")
      # shellcheck disable=SC2206
      flags+=(${SHARDRING_FLAGS:-})
      "${pin[@]}" "$BIN" run "${flags[@]}" 2>"$tmp/client.log" >/dev/null || true
      local line
      line=$(grep '^summary ' "$tmp/client.log" | tail -1 || true)
      [[ -n $line ]] && $PY -c 'import json,sys; s=json.loads(sys.argv[1][8:]); print(json.dumps({"client":"shardring","events":s["events"],"cpu_s":s["cpu_s"],"seconds":s["elapsed_s"],"peak_rss_kib":s["peak_rss_kib"]}))' "$line"
      ;;
    discordjs)
      (cd "$NPM" && NODE_EXTRA_CA_CERTS="${CA:-}" "${pin[@]}" node discordjs_client.mjs "$port" "$n" "$SECONDS_RUN" \
        "$COMPRESS" "$scheme" 2>"$tmp/client.log") || true ;;
    node-ws)
      (cd "$NPM" && NODE_EXTRA_CA_CERTS="${CA:-}" "${pin[@]}" node node_ws_client.mjs "$port" "$n" "$SECONDS_RUN" \
        "$scheme" 2>"$tmp/client.log") || true ;;
    python-websockets)
      local ca=()
      [[ $mode == tls ]] && ca=("$CA")
      "${pin[@]}" $PY "$PEERS/python_websockets_client.py" "$port" "$n" "$SECONDS_RUN" "${ca[@]}" \
        2>"$tmp/client.log" || true ;;
    beast)
      local tls=()
      [[ $mode == tls ]] && tls=(tls "$CA")
      "${pin[@]}" "$BEAST" 127.0.0.1 "$port" "$n" "$SECONDS_RUN" "${tls[@]}" 2>"$tmp/client.log" || true ;;
    floor|floor-batch)
      local args=(wake) tls=()
      [[ $c == floor-batch ]] && args=(batch "${FLOOR_COALESCE_US:-1000}")
      [[ $mode == tls ]] && tls=(tls "$CA")
      "${pin[@]}" "$FLOOR" 127.0.0.1 "$port" "$n" "$SECONDS_RUN" "${args[@]}" "${tls[@]}" \
        2>"$tmp/client.log" || true ;;
  esac
}

table() {  # mode shards: the table of that cell
  $PY - "$results" "$1" "$2" "$COMPRESS" <<'PY'
import json, sys
from statistics import median
path, mode, shards, compress = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = [r for r in map(json.loads, filter(str.strip, open(path)))
        if r["mode"] == mode and r["shards"] == shards]
rate = rows[0]["rate"] if rows else 0
rounds = sorted({r["round"] for r in rows})
print(f"\n== {mode}, {shards} shards, rate {'unlimited' if rate == 0 else f'{rate:g}/s per shard'}"
      + ("" if compress == "none" else f", {compress}")
      + ("" if len(rounds) < 2 else f", medians of {len(rounds)} rounds"))
per_m = lambda r: r["cpu_s"] * 1e6 / r["events"] if r["events"] else float("inf")
# Each ratio is taken within a round (runs minutes apart share less of the
# host's drift), then the median over the rounds.
by_round = {k: {r["client"]: r for r in rows if r["round"] == k and r["events"]} for k in rounds}
def floor_of(k):  # the better (lower CPU per million events) of the two floor clients
    floors = [r for c, r in by_round[k].items() if c in ("floor", "floor-batch")]
    return min(floors, key=per_m) if floors else None
def ratio(client, ref_of, w, digits):
    xs = [per_m(got[client]) / per_m(ref) for k, got in by_round.items()
          if client in got and (ref := ref_of(k)) is not None]
    return f"{median(xs):{w}.{digits}f}" if xs else f"{'-':>{w}}"
spread = len(rounds) > 1
print(f"{'client':18} {'events':>10} {'events/s':>10} {'CPU s/M ev':>11} "
      + (f"{'CPU s/M range':>14} " if spread else "")
      + f"{'x shardring':>12} {'x floor':>8} {'peak RSS MiB':>13} {'KiB/shard':>10}")
for c in dict.fromkeys(r["client"] for r in rows):
    runs = [r for r in rows if r["client"] == c]
    cpu = sorted(per_m(r) for r in runs)
    events = median(r["events"] for r in runs)
    rss = median(r["peak_rss_kib"] for r in runs)
    print(f"{c:18} {events:10.0f} {median(r['events'] / r['seconds'] for r in runs):10.0f} "
          f"{median(cpu):11.2f} "
          + (f"{f'{cpu[0]:.2f}-{cpu[-1]:.2f}':>14} " if spread else "")
          + f"{ratio(c, lambda k: by_round[k].get('shardring'), 12, 1)} "
          f"{ratio(c, floor_of, 8, 2)} {rss / 1024:13.1f} {rss / shards:10.0f}")
PY
}

for mode in $modes; do
  # The clients this mode runs, in CLIENTS order (each skip noted once).
  ready=()
  for c in $clients; do client_available "$c" "$mode" && ready+=("$c"); done
  for n in $shard_list; do
    for ((round = 1; round <= ROUNDS; round++)); do
      for ((i = 0; i < ${#ready[@]}; i++)); do
        # Round r starts with the r-th client: none always runs first.
        c=${ready[$(((i + round - 1) % ${#ready[@]}))]}
        start_gateway "$mode" "$n"
        out=$(run_client "$c" "$mode" "$n" | grep '^{' | tail -1 || true)
        stop_gateway
        if [[ -z $out ]] || ! $PY - "$out" "$mode" "$RATE" "$n" "$round" >>"$results" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r.update(mode=sys.argv[2], rate=float(sys.argv[3]), shards=int(sys.argv[4]),
         round=int(sys.argv[5]))
print(json.dumps(r))
PY
        then
          note "$c ($mode, $n shards, round $round) gave no result; its stderr ends:"
          tail -5 "$tmp/client.log" >&2 || true
          continue
        fi
        # The peers' own complaints (failed connections and the like).
        if [[ $c != shardring && -s $tmp/client.log ]]; then
          tail -3 "$tmp/client.log" | sed "s/^/compare: $c: /" >&2
        fi
      done
    done
    table "$mode" "$n"
  done
done

# CSV, and the chart's data files and gnuplot script.
$PY - "$results" "$OUT_DIR" "$RATE" "$shard_list" <<'PY'
import csv, json, os, sys
from statistics import median
path, out, rate, shard_list = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
rows = [json.loads(l) for l in open(path) if l.strip()]
cols = ["mode", "rate", "shards", "client", "events", "seconds", "events_per_s", "cpu_s",
        "cpu_s_per_million", "peak_rss_kib", "rss_kib_per_shard", "round"]
with open(os.path.join(out, "peers.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(cols)
    for r in rows:
        per_m = r["cpu_s"] * 1e6 / r["events"] if r["events"] else ""
        w.writerow([r["mode"], f"{r['rate']:g}", r["shards"], r["client"], r["events"],
                    f"{r['seconds']:.3f}", f"{r['events'] / r['seconds']:.1f}", f"{r['cpu_s']:.3f}",
                    f"{per_m:.4f}" if per_m != "" else "", r["peak_rss_kib"],
                    f"{r['peak_rss_kib'] / r['shards']:.1f}", r["round"]])
plot = os.path.join(out, "plot")
os.makedirs(plot, exist_ok=True)
for f in os.listdir(plot):
    os.remove(os.path.join(plot, f))
modes = list(dict.fromkeys(r["mode"] for r in rows))
clients = list(dict.fromkeys(r["client"] for r in rows))
panels = []
for mode in modes:
    lines = []
    for c in clients:
        runs = {}  # shards -> CPU s per million events of each round
        for r in rows:
            if r["mode"] == mode and r["client"] == c and r["events"]:
                runs.setdefault(r["shards"], []).append(r["cpu_s"] * 1e6 / r["events"])
        pts = sorted((n, median(v)) for n, v in runs.items())
        if not pts:
            continue
        dat = os.path.join(plot, f"{mode}_{c}.dat")
        with open(dat, "w") as f:
            f.writelines(f"{s} {v:.6f}\n" for s, v in pts)
        lines.append(f"'{dat}' using 1:2 with linespoints lw 2 pt 7 title '{c}'")
    if lines:
        panels.append((mode, lines))
shards = sorted({r["shards"] for r in rows})
rate_s = "unlimited rate" if rate == 0 else f"{rate:g} events/s per shard"
gp = [f"set output '{os.path.join(out, 'peers.png')}'",
      "set logscale xy", "set grid", "set key top left",
      "set xlabel 'shards'", "set ylabel 'client CPU s per million events'",
      "set xtics (" + ", ".join(f"'{s}' {s}" for s in shards) + ")" if shards else "",
      f"set xrange [{min(shards) / 1.5 if shards else 0.5}:{max(shards) * 1.5 if shards else 3000}]",
      f"set multiplot layout 1,{max(len(panels), 1)} title 'shardring vs peers, {rate_s}'"]
for mode, lines in panels:
    gp.append(f"set title '{'ws:// (plain)' if mode == 'plain' else 'wss:// (TLS)'}'")
    gp.append("plot " + ", \\\n     ".join(lines))
gp.append("unset multiplot")
with open(os.path.join(plot, "peers.gp"), "w") as f:
    f.write("\n".join(gp) + "\n")
PY
echo
echo "compare: CSV: $OUT_DIR/peers.csv"
if ! command -v gnuplot >/dev/null; then
  note "gnuplot not installed (apt-get install gnuplot-nox): no chart"
elif [[ ! -s $results ]]; then
  note "no results: no chart"
else
  term="pngcairo size 1400,600 enhanced font 'sans,10'"
  echo 'set terminal' | gnuplot 2>&1 | grep -q pngcairo || term="png size 1400,600"
  if { echo "set terminal $term"; cat "$OUT_DIR/plot/peers.gp"; } | gnuplot 2>"$tmp/gnuplot.log"; then
    echo "compare: chart: $OUT_DIR/peers.png"
  else
    note "gnuplot failed:"; cat "$tmp/gnuplot.log" >&2
  fi
fi
