#!/usr/bin/python3
"""An example worker for `shardring run --sink redis` (docs/workers.md).

Reads the shard streams P:shard:N through a consumer group, handles each
event, then acknowledges it (XACK). Started again under the same --consumer
name, it first handles what it had read but not acknowledged; entries left
pending by a worker that died are taken over (XAUTOCLAIM) once idle for
--claim-idle-ms. So every event is handled at least once, and exactly once
unless a worker dies between handling and acknowledging.

    /usr/bin/python3 tools/workers/worker.py --redis redis://127.0.0.1:6380 --shards 16

Needs python3-redis. "Handling" here counts events by type and, with --out,
appends `shard seq t` to a file; a real worker would json.loads(fields[b"d"]).
"""
import argparse
import collections
import json
import os
import signal
import socket
import sys
import time
import uuid

import redis


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379", help="redis://HOST:PORT[/DB]")
    p.add_argument("--prefix", default="shardring", help="key prefix (shardring's --redis-prefix)")
    p.add_argument("--group", default="workers", help="consumer group")
    p.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}",
                   help="this worker's name in the group; keep it across restarts")
    p.add_argument("--shards", type=int, default=1, help="total shard count: streams 0..N-1")
    p.add_argument("--shard-ids", help="A-B: read only these shards (inclusive)")
    p.add_argument("--count", type=int, default=100, help="entries per stream per read")
    p.add_argument("--block-ms", type=int, default=2000, help="how long one read waits")
    p.add_argument("--claim-idle-ms", type=int, default=30000,
                   help="take over entries pending longer than this in other consumers")
    p.add_argument("--out", help="append `shard seq t` per handled event to this file")
    p.add_argument("--command", help='once at start, send {"shard": N, "op": N, "d": {...}}')
    p.add_argument("--exit-after-idle-s", type=float, default=0,
                   help="exit 0 when nothing arrived for this long (0: never)")
    # Test hooks: slow handling; die (SIGKILL) after handling the first batch, before XACK.
    p.add_argument("--handle-delay-ms", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--crash-before-ack", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    first, last = 0, args.shards - 1
    if args.shard_ids:
        a, _, b = args.shard_ids.partition("-")
        first, last = int(a), int(b or a)
    if args.shards < 1 or not 0 <= first <= last < args.shards:
        p.error("--shard-ids must lie within 0..--shards-1")
    if args.count < 1 or args.block_ms < 1 or args.claim_idle_ms < 1:
        p.error("--count, --block-ms and --claim-idle-ms must be at least 1")
    args.shard_range = range(first, last + 1)
    return args


class Worker:
    def __init__(self, args):
        self.args = args
        self.r = redis.Redis.from_url(args.redis)
        self.streams = {f"{args.prefix}:shard:{n}".encode(): n for n in args.shard_range}
        self.out = open(args.out, "a") if args.out else None
        self.counts = collections.Counter()
        self.claimed = 0
        self.stopping = False

    def create_groups(self):
        for key in self.streams:
            try:  # from the start of the stream; MKSTREAM: the engine may not have written yet
                self.r.xgroup_create(key, self.args.group, id="0", mkstream=True)
            except redis.ResponseError as e:
                if "BUSYGROUP" not in str(e):  # the group exists already: fine
                    raise

    def read(self, ids, block):
        """XREADGROUP over every stream: [(key, [(id, fields), ...]), ...]."""
        return self.r.xreadgroup(self.args.group, self.args.consumer,
                                 {key: ids for key in self.streams},
                                 count=self.args.count, block=block) or []

    def handle_batch(self, batch):
        """Handle every entry, then acknowledge them all in one round trip."""
        acks = self.r.pipeline(transaction=False)
        handled = 0
        for key, entries in batch:
            shard = self.streams[key]
            for entry_id, fields in entries:
                if entry_id is None:
                    continue  # Redis 6.2's XAUTOCLAIM: deleted from the stream
                if fields:  # empty: trimmed from the stream while pending
                    self.handle(shard, fields)
                    handled += 1
            ids = [entry_id for entry_id, _ in entries if entry_id is not None]
            if ids:
                acks.xack(key, self.args.group, *ids)
        if self.out:
            self.out.flush()
        if self.args.crash_before_ack:
            os.kill(os.getpid(), signal.SIGKILL)
        acks.execute()
        return handled

    def handle(self, shard, fields):
        t = fields[b"t"].decode()
        self.counts[t] += 1
        if self.out:
            self.out.write(f"{shard} {int(fields[b'seq'])} {t}\n")
        if self.args.handle_delay_ms:
            time.sleep(self.args.handle_delay_ms / 1000)

    def finish_own_pending(self):
        """ID 0 reads this consumer's own pending entries (read before a crash
        or restart, never acknowledged); each pass acknowledges what it read."""
        while not self.stopping:
            batch = self.read("0", block=None)
            if not any(entries for _, entries in batch):
                return
            self.handle_batch(batch)

    def claim(self):
        """XAUTOCLAIM, stream by stream, what other consumers left pending for
        longer than --claim-idle-ms (they died, or hang), and handle it."""
        handled = 0
        for key in self.streams:
            start = "0-0"
            while not self.stopping:
                reply = self.r.xautoclaim(key, self.args.group, self.args.consumer,
                                          self.args.claim_idle_ms, start, count=self.args.count)
                start, entries = reply[0], reply[1]
                if entries:
                    n = self.handle_batch([(key, entries)])
                    print(f"claimed {len(entries)} entries of {key.decode()}", file=sys.stderr)
                    self.claimed += len(entries)
                    handled += n
                if start in (b"0-0", "0-0"):
                    break
        return handled

    def run(self):
        self.create_groups()
        self.finish_own_pending()
        idle_since, last_claim = time.monotonic(), float("-inf")
        while not self.stopping:
            if time.monotonic() - last_claim >= self.args.claim_idle_ms / 2000:
                last_claim = time.monotonic()
                if self.claim():
                    idle_since = time.monotonic()
            batch = self.read(">", block=self.args.block_ms)
            if batch:
                self.handle_batch(batch)
                idle_since = time.monotonic()
            elif 0 < self.args.exit_after_idle_s <= time.monotonic() - idle_since:
                break

    def send_command(self, text):
        """Append one gateway command to P:commands; the engine answers in
        P:command-results under the same id."""
        cmd = json.loads(text)
        command_id = uuid.uuid4().hex
        self.r.xadd(f"{self.args.prefix}:commands",
                    {"id": command_id, "shard": int(cmd["shard"]), "op": int(cmd["op"]),
                     "d": json.dumps(cmd["d"], separators=(",", ":"))})
        print(command_id, flush=True)


def main(argv):
    args = parse_args(argv)
    worker = Worker(args)

    def stop(signum, frame):
        worker.stopping = True  # the loop finishes and acknowledges its batch, then exits

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if args.command:
            worker.send_command(args.command)
        worker.run()
    except redis.RedisError as e:
        print(f"worker {args.consumer}: redis: {e}", file=sys.stderr)
        return 1
    counts = " ".join(f"{t}={n}" for t, n in sorted(worker.counts.items()))
    print(f"worker {args.consumer}: handled {sum(worker.counts.values())} ({counts}),"
          f" claimed {worker.claimed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
