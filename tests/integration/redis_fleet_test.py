#!/usr/bin/python3
"""The Redis hand-off at fleet scale (label long: run once, in the Release
stage): three `shardring run` processes on slices of 300 shards each of one
bot, one `shardring gateway` enforcing 4 identify buckets, one private
redis-server shared as identify gate, session store and event streams. Every
shard becomes ready with no identify refused by the gateway (0 op 9); two
example workers in one consumer group handle every event exactly once (per
shard, seqs contiguous); a command a worker sends back reaches the gateway and
its result is in P:command-results; a forbidden one is refused with the
reason.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_gateway_test import SHARDRING, Gateway, summary_of  # noqa: E402
from redis_server import RedisServer, have_redis  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "..", "..", "tools", "workers", "worker.py")
PREFIX = "fleet"
SLICE = 300
PROCS = 3
SHARDS = SLICE * PROCS


@unittest.skipUnless(have_redis(), "needs redis-server and python3-redis")
class Fleet(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-fleet-")
        self.procs = []
        self.redis = RedisServer()
        self.addCleanup(self.redis.close)
        self.gw = Gateway("--shards", SHARDS, "--rate", 2, "--max-concurrency", 4,
                          "--identify-window-ms", 20, "--resume-window-s", 120, tmp=self.tmp)

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.gw.proc.poll() is None:
            self.gw.stop()

    def spawn(self, name, args):
        with open(os.path.join(self.tmp, name + ".log"), "wb") as log:
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        p.log_path = log.name
        self.procs.append(p)
        return p

    def log_of(self, p):
        with open(p.log_path, "rb") as f:
            return f.read()

    def test_three_slices_two_workers_commands_back(self):
        client = self.redis.client()
        runs = []
        for i in range(PROCS):
            runs.append(self.spawn(f"run{i}", [
                SHARDRING, "run", "--api", self.gw.api, "--total-shards", str(SHARDS),
                "--shard-ids", f"{i * SLICE}-{(i + 1) * SLICE - 1}", "--max-concurrency", "4",
                # The gateway enforces 20 ms: the slack absorbs its own lag
                # reading 900 connections on one core (as `shardring load`).
                "--identify-window-ms", "50", "--redis", self.redis.url,
                "--redis-prefix", PREFIX, "--sink", "redis", "--state", "redis",
                "--identify-gate", "redis", "--threads", "1", "--duration", "60"]))
        workers = []
        for i in range(2):
            workers.append(self.spawn(f"worker{i}", [
                "/usr/bin/python3", WORKER, "--redis", self.redis.url, "--prefix", PREFIX,
                "--shards", str(SHARDS), "--group", "handlers", "--consumer", f"w{i}",
                "--block-ms", "200", "--out", os.path.join(self.tmp, f"worker{i}.out")]))
        # Every shard ready: each stream holds its READY (the workers'
        # MKSTREAM made them all, empty).
        deadline = time.time() + 90
        while time.time() < deadline:
            pipe = client.pipeline(transaction=False)
            for s in range(SHARDS):
                pipe.xlen(f"{PREFIX}:shard:{s}")
            if all(pipe.execute()):
                break
            time.sleep(0.2)
        else:
            self.fail("not every shard wrote its READY")
        # Commands back, as a worker sends them: one allowed, one forbidden.
        presence = '{"since":null,"activities":[],"status":"idle","afk":false}'
        ids = []
        for cmd in ('{"shard":450,"op":3,"d":%s}' % presence,
                    '{"shard":450,"op":6,"d":{"token":"x","session_id":"y","seq":1}}'):
            out = subprocess.run(
                ["/usr/bin/python3", WORKER, "--redis", self.redis.url, "--prefix", PREFIX,
                 "--shards", "1", "--group", "commander", "--command", cmd, "--block-ms", "10",
                 "--exit-after-idle-s", "0.01"], capture_output=True, timeout=30)
            ids.append(out.stdout.decode().split()[0])
        results = {}
        deadline = time.time() + 20
        while time.time() < deadline and len(results) < 2:
            for _, f in client.xrange(f"{PREFIX}:command-results", "-", "+"):
                results[f[b"id"].decode()] = (f[b"status"].decode(), f[b"reason"].decode())
            time.sleep(0.1)
        for p in runs:
            p.send_signal(signal.SIGTERM)
        for p in runs:
            self.assertEqual(p.wait(timeout=60), 0, self.log_of(p)[-3000:])
        summaries = [summary_of(self.log_of(p)) for p in runs]
        self.assertEqual(sum(s["identifies"] for s in summaries), SHARDS, summaries)
        stats = self.gw.stop()
        self.assertEqual(stats.get("identifies_refused", 0), 0, stats)
        self.assertEqual(stats.get("identifies"), SHARDS, stats)
        self.assertEqual(results.get(ids[0]), ("sent", ""), results)
        self.assertEqual(results.get(ids[1], ("",))[0], "refused", results)
        with open(self.gw.log_path, "rb") as f:
            self.assertIn(b"received op 3 " + presence.replace('"', '\\"').encode(), f.read())
        # The workers drain the streams, then stop. (The streams themselves
        # were trimmed meanwhile below what the group acknowledged.)
        total = sum(s["events"] for s in summaries)

        def handled():
            lines = []
            for i in range(2):
                path = os.path.join(self.tmp, f"worker{i}.out")
                if os.path.exists(path):
                    with open(path) as f:
                        lines += [ln for ln in f.read().splitlines() if ln]
            return lines
        deadline = time.time() + 60
        while time.time() < deadline and len(handled()) < total:
            time.sleep(0.2)
        for w in workers:
            w.send_signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=30), 0, self.log_of(w)[-2000:])
        lines = handled()
        pairs = [(int(a), int(b)) for a, b, _ in (ln.split() for ln in lines)]
        self.assertEqual(len(pairs), len(set(pairs)), "an event handled twice")
        self.assertEqual(len(pairs), total)
        per = {}
        for shard, seq in pairs:
            per.setdefault(shard, []).append(seq)
        self.assertEqual(sorted(per), list(range(SHARDS)))
        for shard, seqs in per.items():
            self.assertEqual(sorted(seqs), list(range(1, len(seqs) + 1)), f"shard {shard}")
        # Both workers took a share.
        for i in range(2):
            with open(os.path.join(self.tmp, f"worker{i}.out")) as f:
                self.assertGreater(len(f.read()), 0, f"worker {i} handled nothing")


@unittest.skipUnless(have_redis(), "needs redis-server and python3-redis")
class Standby(unittest.TestCase):
    """A `--standby` process takes over the shards of one that died (kill
    -9) or froze (SIGSTOP) within the lease time plus 2 s, resumes them (0
    IDENTIFY), and the streams hold every seq once; the frozen one, woken
    after the takeover, is fenced off (exit 4) and writes nothing more."""
    SHARDS = 4
    LEASE_MS = 1500

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-standby-")
        self.procs = []
        self.redis = RedisServer()
        self.addCleanup(self.redis.close)
        self.client = self.redis.client()
        self.gw = Gateway("--shards", self.SHARDS, "--rate", 100, "--identify-window-ms", 20,
                          "--resume-window-s", 120, tmp=self.tmp)

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.gw.proc.poll() is None:
            self.gw.stop()

    def run_engine(self, name, *flags):
        with open(os.path.join(self.tmp, name + ".log"), "wb") as log:
            p = subprocess.Popen(
                [SHARDRING, "run", "--api", self.gw.api, "--total-shards", str(self.SHARDS),
                 "--identify-window-ms", "30", "--redis", self.redis.url,
                 "--redis-prefix", PREFIX, "--sink", "redis", "--state", "redis",
                 "--checkpoint-ms", "100", "--lease-ms", str(self.LEASE_MS), *flags],
                stdout=subprocess.DEVNULL, stderr=log)
        p.log_path = log.name
        self.procs.append(p)
        return p

    def log_of(self, p):
        with open(p.log_path, "rb") as f:
            return f.read()

    def wait_log(self, p, needle, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.log_of(p):
                return time.time()
            time.sleep(0.02)
        self.fail(f"{needle!r} not logged within {timeout} s: " + self.log_of(p)[-2000:].decode())

    def lengths(self):
        return [self.client.xlen(f"{PREFIX}:shard:{s}") for s in range(self.SHARDS)]

    def wait_growth(self, before, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(n > b + 20 for n, b in zip(self.lengths(), before)):
                return
            time.sleep(0.05)
        self.fail(f"streams did not grow after the takeover: {before} -> {self.lengths()}")

    def assertEveryEventOnce(self):
        for s in range(self.SHARDS):
            by_epoch = {}
            for eid, fields in self.client.xrange(f"{PREFIX}:shard:{s}", "-", "+"):
                epoch, seq = map(int, eid.decode().split("-"))
                self.assertEqual(int(fields[b"seq"]), seq)
                by_epoch.setdefault(epoch, []).append(seq)
            self.assertEqual(len(by_epoch), 1, f"shard {s}: one session, one epoch")
            for seqs in by_epoch.values():
                self.assertEqual(seqs, list(range(1, len(seqs) + 1)), f"shard {s}")

    def start_pair(self):
        first = self.run_engine("first")
        standby = self.run_engine("standby", "--standby")
        self.wait_log(standby, b"standby: watching the shard leases", 10)
        deadline = time.time() + 20
        while time.time() < deadline and min(self.lengths()) < 50:
            time.sleep(0.05)
        self.assertGreaterEqual(min(self.lengths()), 50)
        return first, standby

    def finish(self, standby):
        standby.send_signal(signal.SIGTERM)
        self.assertEqual(standby.wait(timeout=30), 0, self.log_of(standby)[-3000:])
        s = summary_of(self.log_of(standby))
        self.assertEqual(s["identifies"], 0, s)
        self.assertEqual(s["sessions_restored"], self.SHARDS, s)
        self.assertEveryEventOnce()

    def test_kill_9_standby_resumes_within_the_lease(self):
        first, standby = self.start_pair()
        first.send_signal(signal.SIGKILL)
        killed = time.time()
        first.wait()
        took = self.wait_log(standby, b"standby: taking shards over", 20)
        self.assertLess(took - killed, self.LEASE_MS / 1000 + 2)
        for shard in range(self.SHARDS):
            self.wait_log(standby, b"shard=%d resumed" % shard, 20)
        self.wait_growth(self.lengths())
        self.finish(standby)

    def test_a_frozen_owner_is_fenced_after_the_takeover(self):
        first, standby = self.start_pair()
        first.send_signal(signal.SIGSTOP)
        stopped = time.time()
        took = self.wait_log(standby, b"standby: taking shards over", 20)
        self.assertLess(took - stopped, self.LEASE_MS / 1000 + 2)
        time.sleep(0.5)
        # Woken: its next append is refused (FENCED), it stops, exit 4, and
        # its connections close, so the standby's resumes go through.
        first.send_signal(signal.SIGCONT)
        self.assertEqual(first.wait(timeout=30), 4, self.log_of(first)[-3000:])
        self.assertIn(b"FENCED", self.log_of(first))
        for shard in range(self.SHARDS):
            self.wait_log(standby, b"shard=%d resumed" % shard, 30)
        self.wait_growth(self.lengths())
        self.finish(standby)


if __name__ == "__main__":
    unittest.main()
