#!/usr/bin/env bash
# scripts/lint.sh: formatting and static checks, part of the test command.
#   1. clang-format --dry-run -Werror over every C++ file we own (.clang-format);
#   2. clang-tidy over the library and command-line sources (.clang-tidy),
#      using BUILD_DIR/compile_commands.json (default build/), in parallel.
# Both are Debian's clang 14 tools. `bash scripts/lint.sh --fix` rewrites
# the files with clang-format instead of checking them.
# Environment: SHARDRING_JOBS (parallel clang-tidy runs; default nproc).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
JOBS="${SHARDRING_JOBS:-$(nproc)}"

mapfile -t sources < <(git ls-files '*.cc' '*.h' | grep -v '^tests/data/')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${sources[@]}"
  echo "lint: formatted ${#sources[@]} files"
  exit 0
fi

echo "lint: clang-format on ${#sources[@]} files"
clang-format --dry-run -Werror "${sources[@]}"

[[ -f "$BUILD_DIR/compile_commands.json" ]] ||
  { echo "lint: no $BUILD_DIR/compile_commands.json (configure a build first)"; exit 1; }
mapfile -t units < <(git ls-files 'base/*.cc' 'ws/*.cc' 'redis/*.cc' 'parse/*.cc' 'gateway/*.cc' 'tls/*.cc' \
  'conn/*.cc' 'engine/*.cc' 'tools/*.cc' 'tools/gateway/*.cc')
echo "lint: clang-tidy on ${#units[@]} files, $JOBS at a time"
filter="^$ROOT/(base|ws|redis|parse|gateway|tls|conn|engine|tools)/"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! printf '%s\n' "${units[@]}" |
    xargs -P "$JOBS" -n 4 clang-tidy -p "$BUILD_DIR" --quiet --header-filter="$filter" \
      >"$log" 2>&1; then
  grep -E 'error:|warning:' -A3 "$log" | head -200
  echo "lint: clang-tidy found problems (above)"
  exit 1
fi
echo "lint: clean"
