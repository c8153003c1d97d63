#!/usr/bin/python3
"""End-to-end: `shardring run --sink redis --state redis` with real processes
on loopback (`shardring gateway`, a private `redis-server`). Every event lands
in its shard's stream exactly once, with IDs E-seq, across a kill -9 and a
restart (which RESUMEs every shard from what the streams hold); a second
process claiming the same shards fences the first off (exit 4, nothing more
written by it); a Redis outage is waited out (the shards stop reading, their
heartbeats go on) and nothing is lost.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_gateway_test import SHARDRING, Gateway, summary_of  # noqa: E402
from operations_test import METRICS_LISTENING, http_get, wait_for_line  # noqa: E402
from redis_server import RedisServer, have_redis  # noqa: E402

PREFIX = "sr"


def stream_entries(client, shard):
    """[(epoch, seq, fields)] of P:shard:N in stream order."""
    out = []
    for eid, fields in client.xrange(f"{PREFIX}:shard:{shard}", "-", "+"):
        epoch, seq = eid.decode().split("-")
        out.append((int(epoch), int(seq), fields))
    return out


@unittest.skipUnless(have_redis(), "needs redis-server and python3-redis")
class RedisHandOff(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-redis-run-")
        self.procs = []
        self.gw = None

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.gw is not None and self.gw.proc.poll() is None:
            self.gw.stop()

    def start_redis(self, **kw):
        r = RedisServer(**kw)
        self.addCleanup(r.close)
        return r

    def start_gateway(self, shards, rate, *flags):
        self.gw = Gateway("--shards", shards, "--rate", rate, "--identify-window-ms", 20,
                          "--resume-window-s", 120, *flags, tmp=self.tmp)
        return self.gw

    def run_engine(self, redis, shards, *flags, name="run"):
        with open(os.path.join(self.tmp, name + ".log"), "wb") as log:
            p = subprocess.Popen(
                [SHARDRING, "run", "--api", self.gw.api, "--total-shards", str(shards),
                 "--identify-window-ms", "30", "--redis", redis.url, "--redis-prefix", PREFIX,
                 "--sink", "redis", "--state", "redis", "--checkpoint-ms", "100",
                 *map(str, flags)], stdout=subprocess.DEVNULL, stderr=log)
        p.log_path = log.name
        self.procs.append(p)
        return p

    def metrics_port(self, p):
        return int(wait_for_line(p.log_path, METRICS_LISTENING, p).group(1))

    def delivered(self, port):
        """The dispatches the engine has delivered (its /metrics)."""
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        self.assertEqual(status, 200, text)
        return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("shardring_events_total{"))

    def stderr_of(self, p):
        with open(p.log_path, "rb") as f:
            return f.read()

    def wait_streams(self, client, shards, at_least, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(client.xlen(f"{PREFIX}:shard:{s}") >= at_least for s in range(shards)):
                return
            time.sleep(0.05)
        self.fail(f"streams did not reach {at_least} entries: " +
                  str([client.xlen(f"{PREFIX}:shard:{s}") for s in range(shards)]))

    def assertExactlyOnce(self, client, shards):
        """Each stream: IDs E-seq with seq equal to the `seq` field; within
        each epoch (one Discord session) seqs 1..n, each once, in order."""
        for s in range(shards):
            entries = stream_entries(client, s)
            self.assertTrue(entries, f"shard {s}: empty stream")
            by_epoch = {}
            for epoch, seq, fields in entries:
                self.assertEqual(int(fields[b"seq"]), seq)
                self.assertIn(b"t", fields)
                json.loads(fields[b"d"])
                by_epoch.setdefault(epoch, []).append(seq)
            for epoch, seqs in by_epoch.items():
                self.assertEqual(seqs, list(range(1, len(seqs) + 1)),
                                 f"shard {s} epoch {epoch}: not contiguous from 1")
        return True

    def test_kill_9_and_restart_resume_with_every_event_once(self):
        shards = 8
        redis = self.start_redis()
        client = redis.client()
        self.start_gateway(shards, 200)
        p1 = self.run_engine(redis, shards)
        self.wait_streams(client, shards, 100)
        p1.send_signal(signal.SIGKILL)
        p1.wait()
        before = sum(client.xlen(f"{PREFIX}:shard:{s}") for s in range(shards))
        p2 = self.run_engine(redis, shards, "--duration", 3, name="run2")
        self.assertEqual(p2.wait(timeout=60), 0, self.stderr_of(p2)[-3000:])
        s = summary_of(self.stderr_of(p2))
        self.assertEqual(s["sessions_restored"], shards, s)
        self.assertEqual(s["identifies"], 0, s)
        self.assertGreater(s["events"], 0)
        after = sum(client.xlen(f"{PREFIX}:shard:{s}") for s in range(shards))
        self.assertLessEqual(after - before, s["events"])
        self.assertExactlyOnce(client, shards)
        # One session per shard: every entry under one epoch.
        for shard in range(shards):
            self.assertEqual(len({e for e, _, _ in stream_entries(client, shard)}), 1)
        stats = self.gw.stop()
        self.assertEqual(stats.get("identifies"), shards, stats)

    def test_a_second_owner_fences_the_first_off(self):
        shards = 2
        redis = self.start_redis()
        client = redis.client()
        self.start_gateway(shards, 100)
        first = self.run_engine(redis, shards, "--duration", 30, name="first")
        self.wait_streams(client, shards, 20)
        second = self.run_engine(redis, shards, "--duration", 3, name="second")
        self.assertEqual(first.wait(timeout=30), 4, self.stderr_of(first)[-3000:])
        self.assertIn(b"FENCED", self.stderr_of(first))
        self.assertEqual(second.wait(timeout=60), 0, self.stderr_of(second)[-3000:])
        # The second resumed what the first held, and the streams hold every
        # event once whoever wrote it.
        self.assertEqual(summary_of(self.stderr_of(second))["identifies"], 0)
        self.assertExactlyOnce(client, shards)

    def test_an_outage_is_waited_out_and_loses_nothing(self):
        self.outage(buffer_mib=0)

    def test_an_outage_is_buffered_and_loses_nothing(self):
        self.outage(buffer_mib=64)

    def outage(self, buffer_mib):
        """Redis stops for 4 s. With --redis-buffer-mib 0 the shards stop
        reading at once (backpressure); with 64 the outage's events (about
        5 MB here) are buffered and the shards go on reading. Either way
        every event lands once when Redis is back."""
        shards = 4
        # Every write on disk before Redis answers: a restart loses nothing.
        redis = self.start_redis(extra=("--appendonly", "yes", "--appendfsync", "always"))
        client = redis.client()
        # Fast enough to fill the engine's ring during the outage, with a
        # heartbeat interval much shorter than the outage: the paused shards
        # must not be taken for zombies.
        self.start_gateway(shards, 2000, "--heartbeat-ms", 500)
        p = self.run_engine(redis, shards, "--duration", 10,
                            "--redis-buffer-mib", buffer_mib, "--metrics", "127.0.0.1:0")
        port = self.metrics_port(p)
        self.wait_streams(client, shards, 20)
        redis.stop()
        # What the engine delivers to the sink over the outage's last 3 s,
        # once the unbuffered engine's rings had time to fill.
        time.sleep(1)
        before = self.delivered(port)
        time.sleep(3)
        during = self.delivered(port) - before
        redis.restart()
        client = redis.client()
        self.assertEqual(p.wait(timeout=60), 0, self.stderr_of(p)[-3000:])
        err = self.stderr_of(p)
        self.assertIn(b"redis unreachable", err)
        self.assertIn(b"redis reachable again", err)
        s = summary_of(err)
        # backpressure_ms adds up each shard's paused time: the outage
        # lasts 4 s, 16 s over the 4 shards.
        print(f"buffer {buffer_mib} MiB: {during} delivered in the outage's last 3 s, "
              f"backpressure {s['backpressure_ms']} ms", file=sys.stderr)
        if buffer_mib == 0:
            # Nothing goes to the sink while Redis is away: the shards pause.
            self.assertEqual(during, 0, s)
            self.assertGreater(s["backpressure_ms"], 2000 * shards, s)
        else:
            # The buffer takes the outage: the shards go on at the gateway's
            # pace (2000 a shard a second: 24,000 in those 3 s; at least a
            # quarter of it on a loaded host under ASan). How long the
            # catch-up holds them up once Redis is back (the buffer drains to
            # an fsync-always Redis while 8,000/s more arrive) depends on the
            # host's speed, so it is not judged.
            self.assertGreaterEqual(during, 2000 * shards * 3 // 4, s)
        self.assertEqual(s["zombies"], 0, s)
        self.assertEqual(s["reconnects"], 0, s)
        self.assertExactlyOnce(client, shards)
        total = sum(client.xlen(f"{PREFIX}:shard:{s}") for s in range(shards))
        self.assertEqual(total, s["events"])

    def test_commands_from_workers_reach_the_gateway_or_are_refused(self):
        """A worker appends commands to P:commands: the one for a shard of
        this process reaches the gateway; forbidden ones are refused with the
        reason; every outcome is in P:command-results under the worker's id,
        and every entry is acknowledged by the engine's group."""
        shards = 2
        redis = self.start_redis()
        client = redis.client()
        self.start_gateway(shards, 20)
        p = self.run_engine(redis, shards, "--duration", 30)
        self.wait_streams(client, shards, 2)
        # The engine's group exists once its shards run.
        deadline = time.time() + 10
        while time.time() < deadline:
            if client.exists(f"{PREFIX}:commands") and client.xinfo_groups(f"{PREFIX}:commands"):
                break
            time.sleep(0.05)
        presence = '{"since":null,"activities":[],"status":"idle","afk":false}'
        # As a worker appends them (tools/workers/worker.py --command).
        sent_ids = []
        for i, (shard, op, d) in enumerate(((1, 3, presence), (0, 2, '{"token":"x"}'),
                                            (0, 3, '"%s"' % ("x" * 5000)))):
            sent_ids.append(f"cmd-{i}")
            client.xadd(f"{PREFIX}:commands", {"id": sent_ids[-1], "shard": shard, "op": op,
                                               "d": d})
        # A command without a shard field.
        client.xadd(f"{PREFIX}:commands", {"id": "no-shard", "op": "3", "d": "{}"})
        deadline = time.time() + 15
        results = {}
        while time.time() < deadline and len(results) < 4:
            for _, f in client.xrange(f"{PREFIX}:command-results", "-", "+"):
                results[f[b"id"].decode()] = (f[b"status"].decode(), f[b"reason"].decode())
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=30), 0, self.stderr_of(p)[-3000:])
        self.assertEqual(len(results), 4, results)
        self.assertEqual(results[sent_ids[0]], ("sent", ""))
        self.assertEqual(results[sent_ids[1]][0], "refused")
        self.assertIn("identify and resume are the session's own", results[sent_ids[1]][1])
        self.assertEqual(results[sent_ids[2]][0], "refused")
        self.assertIn("over 4096 bytes", results[sent_ids[2]][1])
        self.assertEqual(results["no-shard"][0], "refused")
        with open(self.gw.log_path, "rb") as f:
            gw_log = f.read().decode()
        self.assertIn("received op 3 " + presence.replace('"', '\\"'), gw_log)
        self.assertNotIn("received op 2", gw_log)
        groups = client.xinfo_groups(f"{PREFIX}:commands")
        self.assertEqual([g["name"] for g in groups], [b"gateway-0-1"])
        self.assertEqual(groups[0]["pending"], 0)

    def test_lost_writes_are_replayed_into_the_streams(self):
        """Redis SAVEs mid-stream, is SIGKILLed 2 s later and restarted from
        that snapshot, twice: the engine finds each stream holding less than
        it appended, resumes those shards from there (the gateway replays),
        and every stream ends with each seq exactly once, none missing."""
        shards = 4
        redis = self.start_redis(rdb=True)
        client = redis.client()
        self.start_gateway(shards, 100)
        p = self.run_engine(redis, shards, "--duration", 30)
        self.wait_streams(client, shards, 20)
        for _ in range(2):
            client.save()
            time.sleep(2)
            redis.kill()
            redis.restart()
            client = redis.client()
            time.sleep(2)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=60), 0, self.stderr_of(p)[-3000:])
        err = self.stderr_of(p)
        self.assertIn(b"redis lost events this process appended", err)
        s = summary_of(err)
        self.assertEqual(s["identifies"], shards, s)  # resumed, never identified anew
        self.assertExactlyOnce(client, shards)
        for shard in range(shards):
            entries = stream_entries(client, shard)
            self.assertEqual(len({e for e, _, _ in entries}), 1, f"shard {shard}: one session")
            self.assertGreater(len(entries), 300, f"shard {shard}: events after the restarts")

    def test_load_measures_the_hand_off(self):
        """`shardring load --sink redis`: events into the streams, Redis's own
        CPU per event and the lag from the gateway's send to the stream."""
        redis = self.start_redis()
        client = redis.client()
        out = os.path.join(self.tmp, "load.json")
        p = subprocess.run([SHARDRING, "load", "--shards", "4", "--rate", "200", "--duration",
                            "3", "--sink", "redis", "--redis", redis.url, "--redis-prefix",
                            PREFIX, "--json", out], capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        self.assertIn(b"into redis", p.stdout)
        self.assertIn(b"lag to the stream", p.stdout)
        with open(out) as f:
            s = json.load(f)
        self.assertEqual(s["sink"], "redis")
        self.assertGreater(s["events"], 1000, s)
        self.assertGreater(s["redis_cpu_s"], 0, s)
        self.assertGreater(s["redis_cpu_s_per_million_events"], 0, s)
        # Every event but the READYs (which carry no send stamp).
        self.assertEqual(s["redis_lag_ms"]["count"], s["events"] - 4, s)
        self.assertGreater(s["redis_lag_ms"]["p50"], 0, s)
        total = sum(client.xlen(f"{PREFIX}:shard:{n}") for n in range(4))
        self.assertEqual(total, s["events"])
        bad = subprocess.run([SHARDRING, "load", "--sink", "redis"], capture_output=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn(b"--sink redis needs --redis URL", bad.stderr)


if __name__ == "__main__":
    unittest.main()
