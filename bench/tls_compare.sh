#!/usr/bin/env bash
# bench/tls_compare.sh: the same in-memory TLS 1.3 work (bench/tls_peer_bench.cc)
# through our wolfSSL build (assembly), Debian's system libwolfssl (no
# assembly) and OpenSSL 3, REPEATS times each; prints medians side by side.
#   bash bench/tls_compare.sh [REPEATS]            (default 5)
#   FILTER=decrypt bash bench/tls_compare.sh 3     (a --benchmark_filter regex)
# Build first:
#   ninja -C build tls_peer_bench_ours tls_peer_bench_system_wolfssl tls_peer_bench_openssl
# Throughput: MB/s of plaintext per CPU second (1 MiB per iteration, as
# records of 1 or 16 KiB). Handshakes: CPU microseconds for client and server
# together. CPU time, not wall time: this machine is shared, and a preempted
# run would otherwise count someone else's work. A missing binary is skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS="${1:-5}"
BIN="${SHARDRING_BIN_DIR:-$ROOT/build/bin}"
PEERS=(ours system_wolfssl openssl)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(--benchmark_repetitions="$REPEATS" --benchmark_report_aggregates_only=true
      --benchmark_format=json)
[[ -n ${FILTER:-} ]] && args+=(--benchmark_filter="$FILTER")
echo "command: bash bench/tls_compare.sh $REPEATS${FILTER:+ (FILTER=$FILTER)}"
ran=0
for p in "${PEERS[@]}"; do
  b="$BIN/tls_peer_bench_$p"
  if [[ ! -x $b ]]; then
    echo "note: $b not built (library missing, or the same as ours); skipped"
    continue
  fi
  echo "  ${b#"$ROOT"/} ${args[*]}"
  # Which TLS library the binary really loads (the static build shows none).
  libs=$(ldd "$b" | awk '/lib(wolfssl|ssl)\.so/ {print $3}' | tr '\n' ' ')
  echo "    dynamic TLS library: ${libs:-none (static)}"
  "$b" "${args[@]}" >"$tmp/$p.json" 2>"$tmp/$p.err" || {
    echo "note: $b failed:"; sed 's/^/    /' "$tmp/$p.err"; rm -f "$tmp/$p.json"; continue; }
  ran=$((ran + 1))
done
((ran)) || { echo "tls_compare: nothing to run (build first)"; exit 1; }
/usr/bin/python3 - "$tmp" "${PEERS[@]}" <<'PY'
import json, os, sys
tmp, peers = sys.argv[1], sys.argv[2:]
titles = {"ours": "ours", "system_wolfssl": "system wolfSSL", "openssl": "OpenSSL"}
med, ctx, order, cvs, reps = {}, {}, [], [], None
for p in peers:
    f = os.path.join(tmp, p + ".json")
    if not os.path.exists(f):
        continue
    doc = json.load(open(f))
    ctx[p] = doc.get("context", {})
    m = {}
    for r in doc["benchmarks"]:
        name = r["run_name"]
        if r.get("error_occurred"):
            print(f"{titles[p]}: {name}: {r.get('error_message')}", file=sys.stderr)
            m[name] = None
        elif r.get("aggregate_name") == "median" or (
                r.get("run_type") == "iteration" and name not in m):  # 1 repetition
            m[name] = r
            reps = r.get("repetitions", 1)
        elif r.get("aggregate_name") == "cv":
            key = "bytes_per_second" if "bytes_per_second" in r else "cpu_time"
            cvs.append((abs(r[key]) * 100, titles[p], name))
        if name not in order:
            order.append(name)
    med[p] = m
for p in med:
    print(f"{titles[p]:>15}: {ctx[p].get('tls_library', '?')}  [{ctx[p].get('tls_library_file', '?')}]")
print(f"medians of {reps} repetitions; MB/s = plaintext per CPU second, us = CPU per handshake (both sides)")
print("ratios: ours / other of the figure shown (MB/s: >1 ours faster; us: <1 ours faster)\n")

def value(p, name):
    r = med.get(p, {}).get(name)
    if r is None:
        return None
    if "bytes_per_second" in r:
        return r["bytes_per_second"] / 1e6
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[r.get("time_unit", "ns")]
    return r["cpu_time"] * scale

def cell(v, unit):
    return f"{v:10.1f} {unit}" if v is not None else f"{'-':>13}"

hdr = (f"{'benchmark':34} {'ours':>13} {'system wolfSSL':>15} {'OpenSSL':>13} "
       f"{'ours/system':>12} {'ours/OpenSSL':>13}")
print(hdr)
print("-" * len(hdr))
for name in order:
    unit = "us" if name.startswith("handshake") else "MB/s"
    o, s, q = (value(p, name) for p in ("ours", "system_wolfssl", "openssl"))
    ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
    print(f"{name:34} {cell(o, unit)} {cell(s, unit):>15} {cell(q, unit)} "
          f"{ratio(o, s):>12} {ratio(o, q):>13}")
if cvs:
    cv, who, name = max(cvs)
    print(f"\nlargest coefficient of variation across repetitions: {cv:.1f}% ({who}, {name})")
PY
