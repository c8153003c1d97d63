#!/usr/bin/env bash
# bench/parse_compare.sh: the envelope parser against the peers' full DOM
# parsers and the floor (validate_utf8, memcpy), all in one process over the
# same bytes, REPEATS times; prints median throughput and ours as a ratio.
#   bash bench/parse_compare.sh [REPEATS] [SET...]     (default 5; gateway mix frames)
#   CAPTURE=events.ndjson bash bench/parse_compare.sh 5 capture
# CAPTURE: your own traffic (comma-separated files; gateway payloads or
# `shardring run` NDJSON, one per line) as the set "capture".
# "ours" is what the engine runs per event by default: the envelope check
# plus routing keys (with --validate-d it runs FullRouting, also shown).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS="${1:-5}"
shift || true
SETS=("${@:-gateway mix frames}")
BIN="$ROOT/build/bin/parse_envelope_bench"
[[ -x $BIN ]] || { echo "parse_compare: build first (cmake --build build)"; exit 1; }
export SHARDRING_CORPUS_DIR="${SHARDRING_CORPUS_DIR:-$ROOT/tests/data/corpus}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
filter="/($(echo ${SETS[*]} | tr ' ' '|'))\$"
capture=()
[[ -n ${CAPTURE:-} ]] && capture=(--capture="$CAPTURE")
"$BIN" "${capture[@]}" --benchmark_filter="$filter" --benchmark_repetitions="$REPEATS" \
  --benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true \
  --benchmark_format=json >"$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
med = {r["run_name"]: r for r in runs if r.get("aggregate_name") == "median"}
if not med:  # one repetition: no aggregates
    med = {r["run_name"]: dict(r, repetitions=1) for r in runs if r.get("run_type") == "iteration"}
for r in runs:
    if r.get("error_occurred"):
        print(f"{r['run_name']}: {r.get('error_message')}", file=sys.stderr)
sets = sorted({n.split("/")[1] for n in med})
for s in sets:
    get = lambda name: med.get(f"{name}/{s}")
    ours = get("BM_ParseEnvelopeRouting")
    if not ours:
        continue
    o = ours["bytes_per_second"]
    print(f"set {s}: medians of {ours['repetitions']} runs")
    print(f"  {'parser':30} {'MB/s':>10} {'events/s':>12} {'ours / it':>10}")
    for name in ("BM_ParseEnvelopeRouting", "BM_ParseEnvelope", "BM_ParseFullRouting",
                 "BM_ParseFull", "BM_ParseEventTypeOnly", "BM_PeerSimdjsonDom", "BM_PeerRapidJson",
                 "BM_PeerNlohmann", "BM_SimdjsonValidateUtf8", "BM_Memcpy"):
        r = get(name)
        if not r:
            continue
        b = r["bytes_per_second"]
        print(f"  {name[3:]:30} {b / 1e6:10.1f} {r['items_per_second']:12.0f} {o / b:10.2f}")
PY
