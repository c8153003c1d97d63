#!/usr/bin/env bash
# scripts/fuzz.sh: builds the libFuzzer targets (clang, build-fuzz/) and runs
# each for SECONDS, one after another, rebuilding a target just before its run
# so a long campaign picks up the latest code.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]    (default 15 s, every *_fuzz)
# Each run starts from the committed seeds (tests/fuzz/seeds/<name>) plus the
# corpus it grew before (build-fuzz/corpus/<name>). A crash stops the script
# with the log's tail; the reproducer is build-fuzz/<target>-crash-*.
# Environment: SHARDRING_JOBS (build parallelism).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${1:-15}"
shift || true
JOBS="${SHARDRING_JOBS:-$(nproc)}"

mkdir -p build-fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSHARDRING_FUZZ=ON -DSHARDRING_BENCH=OFF >build-fuzz/configure.log 2>&1 ||
  { cat build-fuzz/configure.log; exit 1; }
if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^build bin\/\([a-z0-9_]*_fuzz\): .*/\1/p' build-fuzz/build.ninja | sort -u)
fi
((${#targets[@]})) || { echo "fuzz: no targets"; exit 0; }
cmake --build build-fuzz -j"$JOBS" --target "${targets[@]}"
for name in "${targets[@]}"; do
  cmake --build build-fuzz -j"$JOBS" --target "$name" >/dev/null
  seeds="tests/fuzz/seeds/${name%_fuzz}"
  work="build-fuzz/corpus/${name%_fuzz}"
  mkdir -p "$work" "$seeds"
  echo "fuzz: $name (${SECONDS_EACH}s, $(date -u +%H:%M:%S))"
  ASAN_OPTIONS=detect_leaks=1 "build-fuzz/bin/$name" -max_total_time="$SECONDS_EACH" \
    -print_final_stats=1 -artifact_prefix="build-fuzz/$name-" "$work" "$seeds" \
    >"build-fuzz/$name.log" 2>&1 || { tail -60 "build-fuzz/$name.log"; exit 1; }
  grep -E '^(#[0-9]+ *DONE|Done)|stat::number_of_executed_units|^cov:' "build-fuzz/$name.log" | tail -2 || true
  grep -E '^#[0-9]+.*(cov|ft):' "build-fuzz/$name.log" | tail -1 || true
done
