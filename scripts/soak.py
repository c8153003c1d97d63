#!/usr/bin/python3
"""scripts/soak.py: a long run of `shardring run` against `shardring gateway`
with faults on, checked as it goes.

    python3 scripts/soak.py [--minutes 30] [--shards 64] [--rate 20]

The run is split into phases, one fault each (every connection meets it):
  drop    the gateway drops connections without a close frame (every 1,500
          events of a connection) and splits messages into 512-byte frames
  op7     op 7 RECONNECT every 40 s on each connection
  op9     op 9 INVALID_SESSION (resumable) every 40 s
  zombie  heartbeat ACKs stop after 4 (heartbeats every 5 s): the engine
          must find the zombie, close and resume
Between phases the gateway is SIGKILLed and a new one started on the same
port: sessions are gone, RESUME is refused, every shard identifies again.
The engine's NDJSON output is read as it is written (nothing stored): every
shard's seqs must run 1, 2, 3... within a session with no gap and no repeat.
Every 10 s the engine's RSS and open descriptors are sampled (CSV in --out).
At the end: RSS after warm-up versus the end, descriptors, the last phase's
seqs against its gateway's --stats-json, and the token searched for in every
output stream. Exit 0 when all of it holds. Loopback only. Needs
build/bin/shardring (or SHARDRING_BIN_DIR).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(ROOT, "build", "bin"))
SHARDRING = os.path.join(BIN, "shardring")
TOKEN = "MTA5OTUxMjIxMTA0MjgyODI4OA.Gx1x2x.soak-secret-token_value"
LINE = re.compile(rb'^\{"shard":(\d+),"seq":(\d+),')
# The gateway's fault flags in each phase.
PHASES = {
    "drop": ["--close-every", "1500", "--fragment", "512"],
    "op7": ["--reconnect-every", "40"],
    "op9": ["--invalid-session-every", "40"],
    "zombie": ["--no-ack-after", "4"],
}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class SeqChecker:
    """Per shard: the last seq of the current session; a 1 starts a new one."""

    def __init__(self):
        self.last = {}
        self.events = 0
        self.sessions = 0
        self.errors = []

    def feed(self, raw):
        m = LINE.match(raw)
        if not m:
            self.errors.append(f"unparsable line: {raw[:120]!r}")
            return
        shard, seq = int(m.group(1)), int(m.group(2))
        self.events += 1
        prev = self.last.get(shard)
        if seq == 1:
            self.sessions += 1
        elif prev is None or seq != prev + 1:
            if len(self.errors) < 20:
                self.errors.append(f"shard {shard}: seq {seq} after {prev}")
        self.last[shard] = seq


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--shards", type=int, default=64)
    ap.add_argument("--rate", type=float, default=20, help="events/s per shard")
    ap.add_argument("--threads", type=int, default=1, help="engine I/O threads")
    ap.add_argument("--out", default=None, help="folder for logs and the CSV")
    ap.add_argument("--warmup-minutes", type=float, default=3)
    ap.add_argument("--phases", default="drop,op7,op9,zombie",
                    help="comma-separated, in order: " + ", ".join(PHASES))
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="shardring-soak-")
    os.makedirs(out, exist_ok=True)

    phases = args.phases.split(",")
    for ph in phases:
        if ph not in PHASES:
            sys.exit(f"soak: unknown phase {ph!r} (known: {', '.join(PHASES)})")
    gw_log = open(os.path.join(out, "gateway.log"), "ab")
    stats_path = os.path.join(out, "gateway-stats.json")

    def start_gateway(phase, port=0):
        return subprocess.Popen(
            [SHARDRING, "gateway", "--listen", f"127.0.0.1:{port}", "--threads", "1",
             "--shards", str(args.shards), "--max-concurrency", "16", "--identify-window-ms", "25",
             "--rate", str(args.rate), "--heartbeat-ms", "5000", "--token", TOKEN,
             "--stats-json", stats_path, *PHASES[phase]],
            stdout=subprocess.DEVNULL, stderr=gw_log)

    gw = start_gateway(phases[0])
    port = None
    deadline = time.time() + 10
    while port is None and time.time() < deadline:
        with open(os.path.join(out, "gateway.log"), "rb") as f:
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", f.read())
        port = int(m.group(1)) if m else None
        time.sleep(0.05)
    if port is None:
        sys.exit("soak: the gateway did not start; see " + out)

    env = dict(os.environ, DISCORD_TOKEN=TOKEN)
    eng_err = open(os.path.join(out, "engine.log"), "wb")
    eng = subprocess.Popen(
        [SHARDRING, "run", "--gateway", f"ws://127.0.0.1:{port}",
         "--total-shards", str(args.shards), "--max-concurrency", "16",
         "--identify-window-ms", "100", "--threads", str(args.threads),
         "--duration", str(args.minutes * 60), "--sink", "ndjson"],
        stdout=subprocess.PIPE, stderr=eng_err, env=env)
    checker = SeqChecker()
    token_in_stdout = [False]
    tok = TOKEN.encode()

    def read():
        for raw in eng.stdout:
            if tok in raw:
                token_in_stdout[0] = True
            checker.feed(raw)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    csv_path = os.path.join(out, "samples.csv")
    samples = []
    t0 = time.time()
    phase_s = args.minutes * 60 / len(phases)
    phase = 0
    print(f"soak: phase {phases[0]}", flush=True)
    with open(csv_path, "w") as csv:
        csv.write("seconds,rss_kib,fds,events\n")
        while eng.poll() is None:
            time.sleep(10)
            if phase + 1 < len(phases) and time.time() - t0 >= (phase + 1) * phase_s:
                phase += 1
                gw.kill()
                gw.wait()
                time.sleep(1)
                gw = start_gateway(phases[phase], port)
                print(f"soak: gateway killed; phase {phases[phase]}", flush=True)
            try:
                row = (round(time.time() - t0), rss_kib(eng.pid), fds(eng.pid), checker.events)
            except (FileNotFoundError, ProcessLookupError):
                break
            if eng.poll() is not None or row[1] == 0:
                break  # exited between the checks: not a sample
            samples.append(row)
            csv.write(",".join(map(str, row)) + "\n")
            csv.flush()
            print("soak: %5d s  rss %7d KiB  fds %4d  events %d" % row, flush=True)
    eng.wait()
    reader.join(timeout=30)
    eng_err.close()
    gw.send_signal(signal.SIGINT)
    gw.wait(timeout=30)
    gw_log.close()
    with open(stats_path) as f:
        stats = json.load(f)
    with open(os.path.join(out, "engine.log"), "rb") as f:
        eng_text = f.read()
    with open(os.path.join(out, "gateway.log"), "rb") as f:
        gw_text = f.read()

    problems = list(checker.errors)
    if eng.returncode != 0:
        problems.append(f"engine exited {eng.returncode}")
    for shard in range(args.shards):
        sent = stats["shards"].get(str(shard), {}).get("last_seq", 0)
        got = checker.last.get(shard, 0)
        # The engine stops reading at --duration; a few of the last events
        # may still have been on the wire.
        if got > sent or got < sent - max(50, int(args.rate * 2)):
            problems.append(f"shard {shard}: delivered up to {got}, gateway's session ended at {sent}")
    if token_in_stdout[0] or tok in eng_text or tok in gw_text:
        problems.append("the token appeared in an output stream")
    summary = {}
    for line in reversed(eng_text.decode(errors="replace").splitlines()):
        if line.startswith("summary {"):
            summary = json.loads(line[len("summary "):])
            break
    warm = [s for s in samples if s[0] >= args.warmup_minutes * 60] or samples
    if warm:
        first, last = warm[0], warm[-1]
        peak = max(s[1] for s in warm)
        growth = last[1] - first[1]
        print(f"soak: rss after warm-up {first[1]} KiB, at the end {last[1]} KiB "
              f"({growth:+d} KiB), peak {peak} KiB")
        print(f"soak: fds after warm-up {first[2]}, at the end {last[2]}, "
              f"max {max(s[2] for s in warm)}")
        # Flat: the end within 10 % (and 4 MiB) of the warm-up level.
        if growth > max(4096, first[1] // 10):
            problems.append(f"RSS grew {growth} KiB after warm-up")
        # A sample can fall while the gateway is down (every socket closed):
        # descriptors leak when the end holds more than one socket per shard
        # above the fewest ever held, and more than after warm-up.
        fixed = min(s[2] for s in samples)
        if last[2] > max(first[2], fixed + args.shards) + 2:
            problems.append(f"descriptors grew from {first[2]} to {last[2]} "
                            f"({args.shards} shards, {fixed} held with none connected)")
    print(f"soak: {checker.events} events, {checker.sessions} sessions started, "
          f"resumes {summary.get('resumes')}, reconnects {summary.get('reconnects')}, "
          f"zombies {summary.get('zombies')}, identifies {summary.get('identifies')}, "
          f"protocol errors {summary.get('protocol_errors')}")
    print(f"soak: files in {out}")
    if problems:
        print("soak: FAILED")
        for p in problems:
            print("  " + p)
        return 1
    print("soak: passed (seqs contiguous and unique on every shard, RSS flat, no descriptor "
          "leak, no token in any output)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
