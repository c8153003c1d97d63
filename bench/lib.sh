# shellcheck shell=bash
# bench/lib.sh: what the end-to-end bench scripts share, sourced by them:
# the processes a script starts (each in `pids`, stopped and reaped when it
# exits, however it exits) and the port a `shardring gateway` bound.
#   bench_processes NAME DIR KEEP: from here on, on exit every process in
#     `pids` gets SIGTERM, then SIGKILL, and DIR is removed unless KEEP is 1
#     (then NAME says where it is).
#   forget PID: it was reaped; no longer stopped on exit.
#   stop_process PID SIGNAL: sends SIGNAL, waits for it, forgets it.
#   gateway_port LOG PID: waits (up to 10 s, while PID lives) for the
#     gateway's "listening on 127.0.0.1:PORT" line in LOG; prints PORT, or
#     nothing when it never came.

pids=()
bench_processes() {
  _bench_name=$1 _bench_dir=$2 _bench_keep=$3
  trap _bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
_bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  ((${#pids[@]})) && sleep 0.2
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((_bench_keep)); then
    echo "$_bench_name: files kept in $_bench_dir" >&2
  else
    rm -rf "$_bench_dir"
  fi
}
forget() {
  local keep=() p
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}
gateway_port() {
  local port=""
  for _ in $(seq 200); do
    port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$1" 2>/dev/null | grep -o '[0-9]*$' || true)
    [[ -n $port ]] && break
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "$port"
}
stop_process() {
  kill "-$2" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}
