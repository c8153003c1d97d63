#!/usr/bin/python3
"""End-to-end: restarts and crashes RESUME instead of re-identifying, and the
NDJSON file sink holds every event exactly once across them, with real
processes on loopback (`shardring gateway` and `shardring run --state`).

- A clean stop (SIGTERM) saves every session; the next run sends 0 IDENTIFY
  and one RESUME per shard (the gateway's own counts).
- kill -9 in the middle of a stream, three times in a row: after the first
  start no IDENTIFY, every seq once in the file, no partial line.
- A saved session the gateway no longer knows falls back to IDENTIFY; a store
  of another bot is refused (exit 2); --logout ends the sessions; a fatal
  close clears them; a store older than --resume-max-age-s identifies.

The long scenarios carry the ctest label "long" (run once, in Release).
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
from sink_test import parse_ndjson, read, seqs_by_shard  # noqa: E402

# A token in Discord's form: its first segment is base64("123456789012345678"),
# the bot's user id. OTHER_BOT is another bot ("987654321098765432").
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDe.restart-test-secret"
OTHER_BOT = "OTg3NjU0MzIxMDk4NzY1NDMy.GabcDe.restart-test-secret"


def sessions_per_shard(events):
    """Per shard, its seqs split into sessions (a READY starts one)."""
    out = {}
    for ev in events:
        runs = out.setdefault(ev["shard"], [])
        if ev["t"] == "READY" or not runs:
            runs.append([])
        runs[-1].append(ev["seq"])
    return out


class Restarts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-restart-")
        self.gateways = []
        self.out = os.path.join(self.tmp, "out.ndjson")
        self.state = os.path.join(self.tmp, "state.json")

    def tearDown(self):
        for gw in self.gateways:
            if gw.proc.poll() is None:
                gw.stop()

    def gateway(self, shards, *flags, name="gateway", port=0):
        gw = Gateway("--shards", shards, "--max-concurrency", 16, "--identify-window-ms", 20,
                     *flags, tmp=self.tmp, name=name, port=port)
        self.gateways.append(gw)
        return gw

    def args(self, gw, shards, *flags, token=TOKEN):
        return [SHARDRING, "run", "--token", token, "--gateway", f"ws://127.0.0.1:{gw.port}",
                "--total-shards", str(shards), "--max-concurrency", "16",
                "--identify-window-ms", "30", "--threads", "2",
                "--sink", "ndjson:" + self.out, "--state", self.state, *map(str, flags)]

    def run_until_ready(self, gw, shards, *flags, settle=1.5, token=TOKEN):
        """Starts `run`, waits until every shard was READY or RESUMED (the
        log says so) and `settle` more seconds of events."""
        log_path = os.path.join(self.tmp, f"run-{time.monotonic_ns()}.log")
        log = open(log_path, "wb")
        p = subprocess.Popen(self.args(gw, shards, *flags, token=token),
                             stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 60
        while time.time() < deadline:
            text = read(log_path).decode(errors="replace")
            live = text.count(" ready seq=") + text.count(" resumed seq=")
            if live >= shards:
                break
            if p.poll() is not None:
                self.fail("run exited early: " + text[-3000:])
            time.sleep(0.05)
        else:
            self.fail("shards not all live within 60 s")
        time.sleep(settle)
        return p, log, log_path

    def stop(self, p, log, log_path, sig=signal.SIGTERM):
        p.send_signal(sig)
        p.wait(timeout=30)
        log.close()
        return p.returncode, read(log_path)

    def saved(self):
        with open(self.state) as f:
            return json.load(f)

    def assert_once_contiguous(self, shards, sessions=1):
        data = read(self.out)
        events = parse_ndjson(data)  # also: no partial line
        per = sessions_per_shard(events)
        self.assertEqual(sorted(per), list(range(shards)))
        for shard, runs in per.items():
            self.assertEqual(len(runs), sessions, f"shard {shard}: {len(runs)} sessions")
            for seqs in runs:
                self.assertEqual(seqs, list(range(1, len(seqs) + 1)),
                                 f"shard {shard}: seqs not once each and contiguous")
        return events

    def test_a_clean_restart_of_200_shards_resumes_every_one(self):
        shards = 200
        gw = self.gateway(shards, "--rate", 20)
        rc, err = self.stop(*self.run_until_ready(gw, shards))
        self.assertEqual(rc, 0, err.decode()[-3000:])
        first = summary_of(err)
        self.assertEqual(first["identifies"], shards)
        saved = self.saved()
        self.assertEqual(len(saved["shards"]), shards)
        self.assertEqual(saved["bot_user_id"], "123456789012345678")
        self.assertNotIn(TOKEN, json.dumps(saved))
        rc, err = self.stop(*self.run_until_ready(gw, shards))
        self.assertEqual(rc, 0, err.decode()[-3000:])
        second = summary_of(err)
        self.assertEqual(second["identifies"], 0)
        self.assertEqual(second["resumes"], shards)
        self.assertEqual(second["sessions_restored"], shards)
        self.assertIn(b"resume=200 identify=0", err)
        stats = gw.stop()
        self.assertEqual(stats["identifies"], shards)  # all from the first run
        self.assertEqual(stats["resumes"], shards)
        self.assertEqual(stats["resumes_refused"], 0)
        self.assertEqual(stats["identifies_refused"], 0)
        events = self.assert_once_contiguous(shards)
        self.assertEqual(len(events), first["events"] + second["events"])

    def test_kill_9_three_times_loses_nothing_and_writes_nothing_twice(self):
        """1,000 events/s (10 shards x 100/s); SIGKILL 1.5-2.5 s after every
        shard is live, three times, then a clean stop."""
        shards = 10
        gw = self.gateway(shards, "--rate", 100)
        for i in range(3):
            rc, err = self.stop(*self.run_until_ready(gw, shards, settle=1.5 + i * 0.5),
                                sig=signal.SIGKILL)
            self.assertEqual(rc, -signal.SIGKILL)
            self.assert_once_contiguous(shards)
        rc, err = self.stop(*self.run_until_ready(gw, shards))
        self.assertEqual(rc, 0, err.decode()[-3000:])
        self.assertEqual(summary_of(err)["identifies"], 0)
        stats = gw.stop()
        self.assertEqual(stats["identifies"], shards)  # the first start only
        self.assertEqual(stats["resumes"], 3 * shards)
        self.assertEqual(stats["resumes_refused"], 0)
        self.assert_once_contiguous(shards)

    def test_with_an_events_filter_the_file_keeps_ready_and_each_event_once(self):
        """--events MESSAGE_CREATE with --state and a file: READY stays in the
        file (it marks where each session starts); across two kill -9 every
        MESSAGE_CREATE is there once, in increasing seq order per shard."""
        shards = 3
        gw = self.gateway(shards, "--rate", 300)
        for _ in range(2):
            rc, err = self.stop(*self.run_until_ready(gw, shards, "--events", "MESSAGE_CREATE",
                                                      settle=1.5), sig=signal.SIGKILL)
        self.assertIn(b"READY kept in the sink file", err)
        events = parse_ndjson(read(self.out))
        self.assertEqual({e["t"] for e in events}, {"READY", "MESSAGE_CREATE"})
        for shard, seqs in seqs_by_shard(events).items():
            self.assertEqual(seqs, sorted(set(seqs)), f"shard {shard}: a seq twice or out of order")
        self.assertEqual(sum(e["t"] == "READY" for e in events), shards)

    def test_a_session_the_gateway_no_longer_knows_identifies(self):
        shards = 4
        gw = self.gateway(shards, "--rate", 50)
        rc, _ = self.stop(*self.run_until_ready(gw, shards, settle=0.5))
        self.assertEqual(rc, 0)
        gw.stop()
        # A new gateway where the old one was (the saved resume URL): it knows
        # no sessions.
        gw2 = self.gateway(shards, "--rate", 50, name="gateway2", port=gw.port)
        rc, err = self.stop(*self.run_until_ready(gw2, shards, settle=0.5))
        self.assertEqual(rc, 0, err.decode()[-3000:])
        s = summary_of(err)
        self.assertEqual(s["sessions_restored"], shards)
        self.assertEqual(s["identifies"], shards)
        stats = gw2.stop()
        self.assertEqual(stats["resumes_refused"], shards)
        self.assertEqual(stats["identifies"], shards)
        # Each shard: the first run's session, then a new one from seq 1.
        self.assert_once_contiguous(shards, sessions=2)

    def test_a_store_of_another_bot_is_refused(self):
        gw = self.gateway(2, "--rate", 10)
        rc, _ = self.stop(*self.run_until_ready(gw, 2, settle=0.2))
        self.assertEqual(rc, 0)
        before = read(self.state)
        p = subprocess.run(self.args(gw, 2, "--duration", 5, token=OTHER_BOT),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr.decode()[-2000:])
        self.assertIn(b"holds the sessions of another bot", p.stderr)
        self.assertIn(b"123456789012345678", p.stderr)
        self.assertEqual(read(self.state), before)  # untouched

    def test_logout_ends_the_sessions(self):
        gw = self.gateway(2, "--rate", 10)
        rc, err = self.stop(*self.run_until_ready(gw, 2, "--logout", settle=0.2))
        self.assertEqual(rc, 0, err.decode()[-2000:])
        self.assertEqual(self.saved()["shards"], [])
        rc, err = self.stop(*self.run_until_ready(gw, 2, settle=0.2))
        self.assertEqual(summary_of(err)["identifies"], 2)

    def test_a_fatal_close_clears_the_saved_sessions(self):
        gw = self.gateway(2, "--rate", 10)
        rc, _ = self.stop(*self.run_until_ready(gw, 2, settle=0.2))
        self.assertEqual(rc, 0)
        self.assertEqual(len(self.saved()["shards"]), 2)
        gw.stop()
        # The next gateway closes every connection with 4004 at once.
        gw2 = self.gateway(2, "--rate", 10, "--close-after", 1, "--close-code", 4004,
                           name="gateway2", port=gw.port)
        p = subprocess.run(self.args(gw2, 2), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 3, p.stderr.decode()[-2000:])
        self.assertIn(b"4004", p.stderr)
        self.assertEqual(self.saved()["shards"], [])

    def test_an_old_store_or_another_shard_count_identifies(self):
        gw = self.gateway(4, "--rate", 10)
        rc, _ = self.stop(*self.run_until_ready(gw, 2, settle=0.2))
        self.assertEqual(rc, 0)
        time.sleep(1.1)
        rc, err = self.stop(*self.run_until_ready(gw, 2, "--resume-max-age-s", 1, settle=0.2))
        self.assertEqual(summary_of(err)["identifies"], 2, err.decode()[-2000:])
        self.assertIn(b"too_old=2", err)
        rc, err = self.stop(*self.run_until_ready(gw, 4, settle=0.2))
        self.assertEqual(summary_of(err)["identifies"], 4, err.decode()[-2000:])
        self.assertIn(b"shard count 2 -> 4", err)

    def test_after_a_full_disk_the_next_run_resumes_and_the_file_has_every_event_once(self):
        """A write past RLIMIT_FSIZE stops run 1 (exit 4) with the sessions
        kept; run 2, with room again, resumes every shard from what was
        written and the file holds each seq once."""
        shards = 2
        gw = self.gateway(shards, "--rate", 2000)
        limit = 200_000 + 17

        def limit_fsize():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        p = subprocess.run(self.args(gw, shards, "--duration", 60), capture_output=True,
                           timeout=60, preexec_fn=limit_fsize)
        self.assertEqual(p.returncode, 4, p.stderr.decode()[-2000:])
        self.assertEqual(len(self.saved()["shards"]), shards)
        rc, err = self.stop(*self.run_until_ready(gw, shards, settle=1))
        self.assertEqual(rc, 0, err.decode()[-2000:])
        self.assertEqual(summary_of(err)["identifies"], 0)
        self.assertEqual(summary_of(err)["resumes"], shards)
        self.assertGreater(os.path.getsize(self.out), limit)
        self.assert_once_contiguous(shards)

    def test_the_start_reserve_counts_only_shards_that_must_identify(self):
        """The synthetic gateway's /gateway/bot grants 1000 starts: with 2
        shards to identify a reserve of 999 refuses to start (exit 3); with
        both sessions saved nothing must identify and the same run starts."""
        gw = self.gateway(2, "--rate", 10)
        base = [SHARDRING, "run", "--token", TOKEN, "--api", gw.api, "--identify-window-ms",
                "30", "--sink", "null", "--state", self.state, "--duration", "1"]
        p = subprocess.run(base + ["--start-reserve", "999"], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 3, p.stderr.decode()[-2000:])
        self.assertIn(b"not starting: 2 shards must identify", p.stderr)
        self.assertIn(b"--start-reserve", p.stderr)
        p = subprocess.run(base + ["--start-reserve", "998"], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        p = subprocess.run(base + ["--start-reserve", "999"], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        self.assertEqual(summary_of(p.stderr)["resumes"], 2)

    def test_bad_state_flags_exit_2(self):
        for flags, needle in ((("--checkpoint-ms", 5), b"--checkpoint-ms"),
                              (("--resume-max-age-s", -1), b"--resume-max-age-s"),
                              (("--identify-gate", "redis:x"), b"--identify-gate"),
                              (("--state", ""), b"--state")):
            p = subprocess.run([SHARDRING, "run", "--gateway", "ws://127.0.0.1:1",
                                "--total-shards", "1", *map(str, flags)],
                               capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2, flags)
            self.assertIn(needle, p.stderr)
        with open(self.state, "w") as f:
            f.write("{not json")
        p = subprocess.run([SHARDRING, "run", "--gateway", "ws://127.0.0.1:1",
                            "--total-shards", "1", "--state", self.state],
                           capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"not JSON", p.stderr)


class IdentifyMargin(unittest.TestCase):
    def test_the_demo_starts_cleanly_five_times(self):
        """scripts/demo.sh's set-up (16 shards, 4 buckets, a 500 ms window on
        both sides): the engine's margin keeps every identify outside the
        gateway's window, so no op 9 and no reconnect, run after run."""
        tmp = tempfile.mkdtemp(prefix="shardring-demo-")
        for run in range(5):
            gw = Gateway("--shards", 16, "--rate", 50, "--max-concurrency", 4,
                         "--identify-window-ms", 500, "--heartbeat-ms", 10000, tmp=tmp,
                         name=f"gateway{run}")
            p = subprocess.run([SHARDRING, "run", "--api", gw.api, "--max-concurrency", "4",
                                "--identify-window-ms", "500", "--duration", "2.5",
                                "--sink", "null"], capture_output=True, timeout=60)
            stats = gw.stop()
            self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
            s = summary_of(p.stderr)
            self.assertEqual((s["identifies"], s["reconnects"]), (16, 0), f"run {run}")
            self.assertEqual(stats["identifies_refused"], 0, f"run {run}")


class RollingRestart(unittest.TestCase):
    """Four processes run the quarters of 256 shards of one bot and share the
    identify buckets through `--identify-gate file:DIR`."""
    SHARDS = 256
    PROCS = 4
    BUCKETS = 4
    WINDOW_MS = 1000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-rolling-")
        self.gate_dir = os.path.join(self.tmp, "gate")
        self.gw = Gateway("--shards", self.SHARDS, "--max-concurrency", self.BUCKETS,
                          "--identify-window-ms", self.WINDOW_MS, "--rate", 4, tmp=self.tmp)

    def tearDown(self):
        if self.gw.proc.poll() is None:
            self.gw.stop()

    def start(self, i, token=TOKEN):
        per = self.SHARDS // self.PROCS
        log_path = os.path.join(self.tmp, f"proc{i}-{time.monotonic_ns()}.log")
        log = open(log_path, "wb")
        p = subprocess.Popen(
            [SHARDRING, "run", "--token", token, "--gateway", f"ws://127.0.0.1:{self.gw.port}",
             "--total-shards", str(self.SHARDS), "--shard-ids", f"{i * per}-{(i + 1) * per - 1}",
             "--max-concurrency", str(self.BUCKETS), "--identify-window-ms", str(self.WINDOW_MS),
             "--identify-gate", "file:" + self.gate_dir, "--threads", "1",
             "--state", os.path.join(self.tmp, f"state{i}.json"),
             "--sink", "ndjson:" + os.path.join(self.tmp, f"out{i}.ndjson")],
            stdout=subprocess.DEVNULL, stderr=log)
        return [p, log, log_path]

    def wait_live(self, procs, count, deadline_s):
        """Waits until the logs of `procs` show `count` shards live in all;
        returns the monotonic time it happened."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            live = 0
            for p, _, path in procs:
                text = read(path).decode(errors="replace")
                live += text.count(" ready seq=") + text.count(" resumed seq=")
                if p.poll() is not None:
                    self.fail("a process exited: " + text[-3000:])
            if live >= count:
                return time.monotonic()
            time.sleep(0.05)
        self.fail(f"not {count} shards live within {deadline_s} s")

    def test_four_processes_share_the_buckets_and_restart_one_by_one(self):
        t0 = time.monotonic()
        procs = [self.start(i) for i in range(self.PROCS)]
        # 64 identifies per bucket, one per window (plus the engine's margin):
        # the last one is due 63 windows after the first.
        windows = self.SHARDS // self.BUCKETS
        cold = self.wait_live(procs, self.SHARDS, windows * self.WINDOW_MS / 1000 * 1.5) - t0
        self.assertLessEqual(cold, windows * self.WINDOW_MS / 1000 * 1.05,
                             f"cold start took {cold:.1f} s")
        print(f"cold start of {self.SHARDS} shards in {self.PROCS} processes: {cold:.1f} s "
              f"(the schedule's minimum: {windows - 1} windows of {self.WINDOW_MS} ms)",
              file=sys.stderr)
        # Restart them one after another while events flow.
        for i in range(self.PROCS):
            p, log, path = procs[i]
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            log.close()
            self.assertEqual(p.returncode, 0, read(path).decode()[-3000:])
            procs[i] = self.start(i)
            self.wait_live([procs[i]], self.SHARDS // self.PROCS, 30)
            time.sleep(0.5)
        time.sleep(1)
        for p, log, path in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            log.close()
            self.assertEqual(p.returncode, 0, read(path).decode()[-3000:])
            self.assertEqual(summary_of(read(path))["identifies"], 0)
        stats = self.gw.stop()
        self.assertEqual(stats["identifies"], self.SHARDS)
        self.assertEqual(stats["identifies_refused"], 0)  # no op 9: the buckets held
        self.assertEqual(stats["resumes"], self.SHARDS)
        self.assertEqual(stats["resumes_refused"], 0)
        for i in range(self.PROCS):
            events = parse_ndjson(read(os.path.join(self.tmp, f"out{i}.ndjson")))
            per = sessions_per_shard(events)
            self.assertEqual(len(per), self.SHARDS // self.PROCS)
            for shard, runs in per.items():
                self.assertEqual(len(runs), 1, f"shard {shard}")
                self.assertEqual(runs[0], list(range(1, len(runs[0]) + 1)),
                                 f"shard {shard}: seqs not once each and contiguous")


if __name__ == "__main__":
    unittest.main()
