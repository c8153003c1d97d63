#!/usr/bin/python3
"""End-to-end: the example workers (tools/workers/worker.py and the C++
build/bin/shardring-worker-example) against a private redis-server, the shard
streams filled as `shardring run --sink redis` writes them (P:shard:N, ids
EPOCH-seq, fields seq, t, d). Checks what docs/workers.md promises: workers in
one group share the streams and handle every entry exactly once, each shard in
order within a worker; a worker killed between handling and acknowledging has
its entries taken over by another (XAUTOCLAIM), or finishes them itself when
restarted under its name; SIGTERM finishes and acknowledges the batch; nothing
stays pending; --command appends a well-formed entry to P:commands.
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from redis_server import RedisServer, have_redis  # noqa: E402

BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(HERE, "../../build/bin"))
WORKER_CC = os.path.join(BIN, "shardring-worker-example")
WORKER_PY = os.path.join(HERE, "../../tools/workers/worker.py")
HAVE_CC = os.access(WORKER_CC, os.X_OK)  # not built without hiredis
needs_cc = unittest.skipUnless(HAVE_CC, f"{WORKER_CC} was not built (libhiredis-dev)")
PREFIX = "t"
SHARDS = 8
EVENTS = 500  # per shard, seq 1..EVENTS
EPOCH = 1767225600000
TYPES = ("MESSAGE_CREATE", "TYPING_START", "GUILD_MEMBER_UPDATE")
ALL = collections.Counter((shard, seq) for shard in range(SHARDS)
                          for seq in range(1, EVENTS + 1))
# Small timeouts: a read waits 100 ms, a worker exits after 1.5 s without work.
FAST = ("--block-ms", 100, "--exit-after-idle-s", 1.5)


def entry(shard, seq):
    t = TYPES[seq % len(TYPES)]
    d = json.dumps({"guild_id": str(1000 + shard), "content": f"event {seq}"},
                   separators=(",", ":"))
    return f"{EPOCH}-{seq}", {"seq": seq, "t": t, "d": d}


@unittest.skipUnless(have_redis(), "needs redis-server and python3-redis "
                     "(apt-get install redis-server python3-redis)")
class Workers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-workers-")
        self.procs = {}
        self.server = RedisServer()
        self.r = self.server.client()

    def tearDown(self):
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            proc.stdout.close()
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the engine's side, and the workers -------------------------------

    def fill(self, chunks=1, pause=0.0):
        """Every shard's stream, seq 1..EVENTS, as the engine writes it, in
        `chunks` pipelined rounds `pause` seconds apart."""
        per = EVENTS // chunks
        for c in range(chunks):
            pipe = self.r.pipeline(transaction=False)
            for seq in range(c * per + 1, (c + 1) * per + 1):
                for shard in range(SHARDS):
                    entry_id, fields = entry(shard, seq)
                    pipe.xadd(f"{PREFIX}:shard:{shard}", fields, id=entry_id)
            pipe.execute()
            time.sleep(pause)

    def start(self, name, *flags, cc=False):
        """A worker with --consumer NAME and --out tmp/NAME-K.out (K counts
        runs of that name); stderr to tmp/NAME-K.err."""
        runs = sum(1 for n in self.procs if n.split("#")[0] == name)
        base = os.path.join(self.tmp, f"{name}-{runs}")
        cmd = [WORKER_CC] if cc else ["/usr/bin/python3", WORKER_PY]
        cmd += ["--redis", self.server.url, "--prefix", PREFIX, "--shards", str(SHARDS),
                "--consumer", name, "--out", base + ".out", *map(str, flags)]
        err = open(base + ".err", "wb")
        self.addCleanup(err.close)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        self.procs[f"{name}#{runs}"] = (proc, base)
        return proc

    def finish(self, proc, rc=0, timeout=30):
        proc.wait(timeout=timeout)
        base = next(b for p, b in self.procs.values() if p is proc)
        with open(base + ".err", errors="replace") as f:
            err = f.read()
        self.assertEqual(proc.returncode, rc, err[-2000:])
        return err

    def handled(self, proc):
        """The (shard, seq) a worker run wrote to its --out, in order."""
        base = next(b for p, b in self.procs.values() if p is proc)
        if not os.path.exists(base + ".out"):
            return []
        out = []
        with open(base + ".out") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written
                shard, seq, t = line.split()
                shard, seq = int(shard), int(seq)
                self.assertEqual(t, TYPES[seq % len(TYPES)], line)
                out.append((shard, seq))
        return out

    def wait_blocked(self, n, timeout=10):
        """Until n clients are blocked in XREADGROUP (the workers are ready)."""
        deadline = time.time() + timeout
        while self.r.info("clients")["blocked_clients"] < n:
            self.assertLess(time.time(), deadline, "the workers did not start reading")
            time.sleep(0.02)

    def pending(self):
        return sum(self.r.xpending(f"{PREFIX}:shard:{s}", "workers")["pending"]
                   for s in range(SHARDS))

    def assertInOrder(self, handled, what):
        last = {}
        for shard, seq in handled:
            self.assertGreater(seq, last.get(shard, 0), f"{what}: shard {shard} out of order")
            last[shard] = seq

    def crash(self):
        """A worker that handles one batch (20 entries of each stream) and is
        SIGKILLed before acknowledging it: those entries stay pending to it."""
        proc = self.start("crasher", "--count", 20, "--crash-before-ack")
        self.finish(proc, rc=-signal.SIGKILL)
        crashed = self.handled(proc)
        self.assertEqual(len(crashed), SHARDS * 20)
        self.assertEqual(self.pending(), SHARDS * 20)
        return crashed

    # -- the tests ---------------------------------------------------------

    def check_shared(self, cc):
        """Two workers in one group, reading while the streams are written:
        every (shard, seq) handled exactly once, both did some, each in seq
        order per shard, nothing left pending."""
        a = self.start("a", "--block-ms", 100, cc=cc)
        b = self.start("b", "--block-ms", 100, cc=cc)
        self.wait_blocked(2)
        self.fill(chunks=10, pause=0.02)
        deadline = time.time() + 30
        while len(self.handled(a)) + len(self.handled(b)) < len(ALL):
            self.assertLess(time.time(), deadline, "the workers did not finish")
            time.sleep(0.05)
        for proc in (a, b):  # SIGTERM while blocked in a read: exit 0
            os.kill(proc.pid, signal.SIGTERM)
            self.finish(proc, timeout=10)
        ha, hb = self.handled(a), self.handled(b)
        self.assertEqual(collections.Counter(ha + hb), ALL)
        self.assertTrue(ha and hb, f"one worker did everything: {len(ha)} / {len(hb)}")
        self.assertInOrder(ha, "worker a")
        self.assertInOrder(hb, "worker b")
        self.assertEqual(self.pending(), 0)

    def test_two_python_workers_share_the_streams_exactly_once(self):
        self.check_shared(cc=False)

    @needs_cc
    def test_two_cpp_workers_share_the_streams_exactly_once(self):
        self.check_shared(cc=True)

    def check_claimed(self, cc):
        """A worker dies with entries pending; another (with a small
        --claim-idle-ms) claims and handles them: that worker alone handled
        every entry exactly once, the crashed-on ones are in both outputs,
        nothing is left pending."""
        self.fill()
        crashed = self.crash()
        survivor = self.start("survivor", "--claim-idle-ms", 300, *FAST, cc=cc)
        err = self.finish(survivor)
        handled = self.handled(survivor)
        self.assertEqual(collections.Counter(handled), ALL)
        self.assertEqual(collections.Counter(handled + crashed),
                         ALL + collections.Counter(crashed))
        self.assertIn(f"claimed {SHARDS * 20}\n", err)
        self.assertEqual(self.pending(), 0)

    def test_a_dead_workers_entries_are_claimed_python(self):
        self.check_claimed(cc=False)

    @needs_cc
    def test_a_dead_workers_entries_are_claimed_cpp(self):
        self.check_claimed(cc=True)

    def check_restarted(self, cc):
        """Started again under its name (no claiming: the default 30 s idle),
        the crashed worker first re-reads and handles what it had pending,
        then the rest: every entry once in its second run. Pending entries
        deleted from their stream meanwhile come back empty: acknowledged,
        not handled."""
        self.fill()
        crashed = self.crash()
        deleted = [(shard, seq) for shard, seq in crashed if seq % 5 == 0]
        for shard, seq in deleted:
            self.r.xdel(f"{PREFIX}:shard:{shard}", f"{EPOCH}-{seq}")
        again = self.start("crasher", *FAST, cc=cc)
        err = self.finish(again)
        handled = self.handled(again)
        self.assertEqual(collections.Counter(handled), ALL - collections.Counter(deleted))
        first = len(crashed) - len(deleted)
        self.assertEqual(sorted(handled[:first]), sorted(set(crashed) - set(deleted)))
        self.assertIn("claimed 0\n", err)
        self.assertEqual(self.pending(), 0)

    def test_a_restarted_worker_first_finishes_its_own_pending_entries_python(self):
        self.check_restarted(cc=False)

    @needs_cc
    def test_a_restarted_worker_first_finishes_its_own_pending_entries_cpp(self):
        self.check_restarted(cc=True)

    def test_sigterm_finishes_and_acknowledges_the_batch(self):
        """SIGTERM in the middle of a slow batch: the worker handles the rest
        of it, acknowledges it and exits 0; what it handled is exactly what
        the group delivered to it (a prefix of each shard), nothing pending;
        another worker then handles the rest, nothing twice."""
        for cc in (False, True) if HAVE_CC else (False,):
            with self.subTest(cc=cc):
                self.r.flushall()
                self.fill()
                slow = self.start(f"slow-cc{int(cc)}", "--count", 10, "--handle-delay-ms", 2,
                                  *FAST, cc=cc)
                deadline = time.time() + 20
                while len(self.handled(slow)) < 100:  # at least one batch of 80 done
                    self.assertLess(time.time(), deadline, "the worker handled nothing")
                    time.sleep(0.02)
                os.kill(slow.pid, signal.SIGTERM)
                self.finish(slow, timeout=10)
                first = self.handled(slow)
                self.assertEqual(len(first) % (SHARDS * 10), 0, "a batch was cut short")
                self.assertLess(len(first), SHARDS * EVENTS)
                self.assertEqual(self.pending(), 0)
                for shard in range(SHARDS):
                    info = self.r.xinfo_groups(f"{PREFIX}:shard:{shard}")[0]
                    delivered = int(info["last-delivered-id"].split(b"-")[1])
                    self.assertEqual([s for sh, s in first if sh == shard],
                                     list(range(1, delivered + 1)), f"shard {shard}")
                rest = self.start(f"rest-cc{int(cc)}", *FAST, cc=cc)
                self.finish(rest)
                self.assertEqual(collections.Counter(first + self.handled(rest)), ALL)
                self.assertEqual(self.pending(), 0)

    def test_command_appends_an_entry_to_the_commands_stream(self):
        """--command {"shard", "op", "d"}: one entry in P:commands with the
        id the worker printed, shard and op in decimal, d as JSON text."""
        cmd = {"shard": 3, "op": 3,
               "d": {"since": None, "activities": [{"name": "x", "type": 0}],
                     "status": "online", "afk": False}}
        proc = self.start("sender", "--command", json.dumps(cmd), "--block-ms", 50,
                          "--exit-after-idle-s", 0.2)
        self.finish(proc)
        command_id = proc.stdout.read().decode().strip()
        self.assertRegex(command_id, r"^[0-9a-f]{32}$")
        entries = self.r.xrange(f"{PREFIX}:commands")
        self.assertEqual(len(entries), 1)
        fields = entries[0][1]
        self.assertEqual(set(fields), {b"id", b"shard", b"op", b"d"})
        self.assertEqual(fields[b"id"].decode(), command_id)
        self.assertEqual(fields[b"shard"], b"3")
        self.assertEqual(fields[b"op"], b"3")
        self.assertEqual(json.loads(fields[b"d"]), cmd["d"])

    def test_bad_flags_exit_2(self):
        for cmd in [["/usr/bin/python3", WORKER_PY]] + [[WORKER_CC]] * HAVE_CC:
            for flags in (["--bogus", "1"], ["--shards", "2", "--shard-ids", "1-2"],
                          ["--count", "0"]):
                with self.subTest(cmd=cmd[-1], flags=flags):
                    p = subprocess.run(cmd + ["--redis", self.server.url, *flags],
                                       capture_output=True, timeout=10)
                    self.assertEqual(p.returncode, 2, p.stderr)


if __name__ == "__main__":
    unittest.main()
