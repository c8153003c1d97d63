#!/usr/bin/env bash
# Runs discordjs_client_check.mjs against a fresh `shardring gateway`.
# usage: discordjs_client_check.sh PATH/TO/shardring NODE_MODULES_PARENT [zlib-stream]
set -euo pipefail
bin=$1; modules=$2; compress=${3:-}
if [[ ! -d "$modules/node_modules/@discordjs/ws" ]] || ! command -v node >/dev/null; then
  echo "SKIPPED: @discordjs/ws is not installed in $modules (scripts/setup.sh installs it)"
  exit 77
fi
if [[ $compress == zlib-stream && ! -d "$modules/node_modules/zlib-sync" ]]; then
  echo "SKIPPED: zlib-sync is not installed in $modules (scripts/setup.sh builds it)"
  exit 77
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log=$(mktemp)
"$bin" gateway --listen 127.0.0.1:0 --threads 1 --shards 2 --max-concurrency 2 --rate 100 \
  --heartbeat-ms 1000 --identify-window-ms 100 2>"$log" &
gw=$!
trap 'kill -INT $gw 2>/dev/null; wait $gw 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$log" && break; sleep 0.05; done
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
# Node resolves '@discordjs/ws' from the script's folder upwards: run a copy
# placed next to the installed node_modules.
cp "$here/discordjs_client_check.mjs" "$modules/"
cd "$modules" && node discordjs_client_check.mjs "$port" 2 $compress
