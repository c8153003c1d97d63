#!/usr/bin/env bash
# scripts/test.sh: the README's test command, and what CI runs.
# Set-up (Debian packages, wolfSSL with assembly), then three builds:
#   build/       Release: every test, and every benchmark compiled; the
#                formatting and static checks (scripts/lint.sh) on it;
#   build-asan/  ASan+UBSan: the whole suite again, less the long scenarios
#                (label "long": restarts, fleets), which run once, in Release;
#   build-tsan/  TSan: the threaded tests (label "threaded");
#   build-fuzz/  clang + libFuzzer: each fuzz target for a short, bounded run.
# Environment: SHARDRING_FUZZ_SECONDS (default 15 per target),
#              SHARDRING_SKIP=asan,tsan,fuzz to skip stages while iterating.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${SHARDRING_JOBS:-$(nproc)}"
SKIP=",${SHARDRING_SKIP:-},"
FUZZ_SECONDS="${SHARDRING_FUZZ_SECONDS:-15}"

stage() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

stage "set-up"
bash scripts/setup.sh

configure() {  # configure DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  grep -E 'shardring:|WARNING' "$dir.configure.log" || true
}

stage "release build"
configure build
cmake --build build -j"$JOBS"
stage "lint (clang-format, clang-tidy)"
SHARDRING_JOBS="$JOBS" bash scripts/lint.sh
stage "release tests"
ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 300

if [[ $SKIP != *,asan,* ]]; then
  stage "ASan+UBSan build"
  configure build-asan -DSHARDRING_SANITIZE=address,undefined -DSHARDRING_BENCH=OFF
  cmake --build build-asan -j"$JOBS"
  stage "ASan+UBSan tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 600 -LE long
fi

if [[ $SKIP != *,tsan,* ]]; then
  stage "TSan build (threaded parts)"
  configure build-tsan -DSHARDRING_SANITIZE=thread -DSHARDRING_BENCH=OFF
  mapfile -t tsan_targets < <(ctest --test-dir build-tsan -N -L threaded | sed -n 's/^ *Test *#[0-9]*: //p')
  if ((${#tsan_targets[@]})); then
    cmake --build build-tsan -j"$JOBS" --target "${tsan_targets[@]}"
    stage "TSan tests"
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      ctest --test-dir build-tsan --output-on-failure -L threaded --timeout 600
  fi
fi

if [[ $SKIP != *,fuzz,* ]]; then
  stage "fuzz (clang, libFuzzer, ${FUZZ_SECONDS}s per target)"
  SHARDRING_JOBS="$JOBS" bash scripts/fuzz.sh "$FUZZ_SECONDS"
fi
stage "all green"
