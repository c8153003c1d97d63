#!/usr/bin/python3
"""End-to-end: the NDJSON sink of `shardring run` loses nothing and fails
loudly, with real processes on loopback (`shardring gateway` and `shardring
run --sink ndjson[:PATH]`). A file is appended to across runs and only a
partial last line is ever cut; a full disk (RLIMIT_FSIZE) or a closed pipe
stops the run with exit 4 and its summary, every line before the failure
whole and no seq missing; SIGHUP reopens the file (log rotation) with no
event lost or written twice.
"""
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_gateway_test import SHARDRING, Gateway, summary_of  # noqa: E402


def parse_ndjson(data):
    """The events of an NDJSON sink's bytes: every line whole (the bytes end
    with a newline) and a JSON object with exactly shard, seq, t, d."""
    if data and not data.endswith(b"\n"):
        raise AssertionError("sink output ends in a partial line: %r" % data[-200:])
    events = []
    for raw in data.splitlines():
        ev = json.loads(raw)
        if set(ev) != {"shard", "seq", "t", "d"}:
            raise AssertionError("unexpected line %r" % raw[:200])
        events.append(ev)
    return events


def seqs_by_shard(events):
    out = {}
    for ev in events:
        out.setdefault(ev["shard"], []).append(ev["seq"])
    return out


def read(path):
    with open(path, "rb") as f:
        return f.read()


def no_xfsz():
    """preexec_fn: SIGXFSZ ignored (survives exec), so a write past
    RLIMIT_FSIZE returns EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class NdjsonSink(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-sink-")
        self.gateways = []

    def tearDown(self):
        for gw in self.gateways:
            if gw.proc.poll() is None:
                gw.stop()

    def gateway(self, shards, *flags):
        gw = Gateway("--shards", shards, "--identify-window-ms", 20, *flags, tmp=self.tmp)
        self.gateways.append(gw)
        return gw

    def engine_args(self, gw, shards, sink, *flags):
        return [SHARDRING, "run", "--gateway", f"ws://127.0.0.1:{gw.port}",
                "--total-shards", str(shards), "--identify-window-ms", "30",
                "--sink", sink, *map(str, flags)]

    def assertContiguous(self, events, shards, what):
        per = seqs_by_shard(events)
        self.assertEqual(sorted(per), list(range(shards)), what)
        for shard, seqs in per.items():
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)),
                             f"{what}: shard {shard}: seqs not contiguous from 1")

    def failure_lines(self, stderr):
        return [l for l in stderr.decode(errors="replace").splitlines()
                if "the sink failed" in l]

    def test_a_file_is_appended_to_across_runs(self):
        """Two runs into one file: the first run's bytes stay as they were,
        the second's follow, each run's lines whole, its seqs contiguous
        from 1 per shard (a new session each run), and each run's summary
        counts its own lines. Nothing is cut from a file that ends in a
        newline."""
        gw = self.gateway(2, "--rate", 300, "--events", 100)
        out = os.path.join(self.tmp, "out.ndjson")
        runs = []
        for _ in range(2):
            p = subprocess.run(self.engine_args(gw, 2, "ndjson:" + out, "--duration", 1.5),
                               capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
            self.assertNotIn(b"partial line", p.stderr)
            runs.append((p, read(out)))
        (p1, first), (p2, both) = runs
        self.assertTrue(both.startswith(first), "the first run's lines were not kept")
        self.assertGreater(len(both), len(first))
        for p, data in ((p1, first), (p2, both[len(first):])):
            events = parse_ndjson(data)
            self.assertContiguous(events, 2, "one run")
            self.assertEqual(summary_of(p.stderr)["events"], len(events))
            self.assertEqual(events[0]["t"], "READY")

    def test_a_partial_last_line_is_cut_and_nothing_else(self):
        """A file whose last line lacks its newline (a crash mid-write):
        exactly those bytes are cut (and the count logged), the whole lines
        before them are kept byte for byte, the run's lines follow. A file
        with no newline at all is one partial line."""
        gw = self.gateway(1, "--rate", 200, "--events", 50)
        whole = (b'{"shard":0,"seq":1,"t":"READY","d":{"v":10}}\n'
                 b'{"shard":0,"seq":2,"t":"MESSAGE_CREATE","d":{"content":"kept"}}\n')
        partial = b'{"shard":0,"seq":3,"t":"MESSAGE_CREA'
        for before in (whole, b""):
            with self.subTest(whole_lines=len(before)):
                out = os.path.join(self.tmp, f"partial-{len(before)}.ndjson")
                with open(out, "wb") as f:
                    f.write(before + partial)
                p = subprocess.run(self.engine_args(gw, 1, "ndjson:" + out, "--duration", 1),
                                   capture_output=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
                warn = [l for l in p.stderr.decode().splitlines() if "partial line" in l]
                self.assertEqual(len(warn), 1, p.stderr.decode()[-2000:])
                self.assertIn(f"bytes_cut={len(partial)}", warn[0])
                data = read(out)
                self.assertTrue(data.startswith(before))
                events = parse_ndjson(data[len(before):])
                self.assertNotIn(b"MESSAGE_CREA\n", data)
                self.assertContiguous(events, 1, "the run after the cut")
                self.assertEqual(summary_of(p.stderr)["events"], len(events))

    def test_a_full_disk_stops_the_run_with_exit_4_and_loses_nothing_before(self):
        """RLIMIT_FSIZE as a full disk (write returns EFBIG): the run stops
        by itself with exit 4, logs the failure once naming the sink and the
        error, prints its summary (events = the lines written); the file
        holds only whole lines, none past the limit, and per shard every seq
        from 1 up to where it stopped. With one consumer, with the sink on
        the I/O threads (--consumers 0), and with two consumers sharing the
        file."""
        limit = 300_000 + 17  # not on a line boundary: a write is cut short
        gw = self.gateway(2, "--rate", 3000)
        variants = ((), ("--consumers", 0, "--threads", 2), ("--consumers", 2, "--threads", 2))
        for i, flags in enumerate(variants):
            with self.subTest(flags=flags):
                out = os.path.join(self.tmp, f"full-{i}.ndjson")

                def limit_fsize():
                    no_xfsz()
                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

                t0 = time.time()
                p = subprocess.run(self.engine_args(gw, 2, "ndjson:" + out, "--duration", 60,
                                                    *flags),
                                   capture_output=True, timeout=60, preexec_fn=limit_fsize)
                elapsed = time.time() - t0
                err = p.stderr.decode(errors="replace")
                self.assertEqual(p.returncode, 4, err[-2000:])
                self.assertLess(elapsed, 30, "the run did not stop on the failure")
                failed = self.failure_lines(p.stderr)
                self.assertEqual(len(failed), 1, err[-2000:])
                self.assertIn("ndjson:" + out, failed[0])
                self.assertIn("EFBIG", failed[0])
                # A write cut short by the limit leaves no partial line: it
                # is cut off, unless the limit fell on a line's end.
                self.assertTrue("were cut off" in failed[0] or os.path.getsize(out) == limit,
                                failed[0])
                self.assertRegex(err.splitlines()[-1], r"^summary \{")
                data = read(out)
                self.assertLessEqual(len(data), limit)
                self.assertGreater(len(data), limit // 2)
                events = parse_ndjson(data)
                self.assertContiguous(events, 2, "before the failure")
                self.assertEqual(summary_of(p.stderr)["events"], len(events))
        # A disk already full (the limit at the file's size): the first
        # write fails; the file is left as it was.
        def full_now():
            no_xfsz()
            resource.setrlimit(resource.RLIMIT_FSIZE, (len(data), len(data)))

        p = subprocess.run(self.engine_args(gw, 2, "ndjson:" + out, "--duration", 60),
                           capture_output=True, timeout=60, preexec_fn=full_now)
        self.assertEqual(p.returncode, 4, p.stderr.decode(errors="replace")[-2000:])
        self.assertEqual(summary_of(p.stderr)["events"], 0)
        self.assertEqual(read(out), data)

    def test_a_closed_pipe_stops_the_run_with_exit_4(self):
        """`shardring run --sink ndjson | head -c 100`: the reader goes away;
        SIGPIPE is ignored, so the write fails with EPIPE, the run stops with
        exit 4 (not 141, death by SIGPIPE) and prints its summary."""
        gw = self.gateway(2, "--rate", 300)
        err_path = os.path.join(self.tmp, "pipe.err")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(self.engine_args(gw, 2, "ndjson"),
                                    stdout=subprocess.PIPE, stderr=err)
            try:
                head = proc.stdout.read(100)
                proc.stdout.close()
                rc = proc.wait(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        stderr = read(err_path)
        self.assertEqual(len(head), 100)
        self.assertTrue(head.startswith(b'{"shard":'), head)
        self.assertEqual(rc, 4, stderr.decode(errors="replace")[-2000:])
        failed = self.failure_lines(stderr)
        self.assertEqual(len(failed), 1, stderr.decode(errors="replace")[-2000:])
        self.assertIn("EPIPE", failed[0])
        self.assertIn("ndjson (stdout)", failed[0])
        self.assertIn("summary {", stderr.decode().splitlines()[-1])
        summary_of(stderr)

    def test_sighup_reopens_the_file_for_log_rotation(self):
        """Rename the file while the run writes to it, send SIGHUP: a new
        file is opened at the path; SIGTERM stops the run with exit 0. The
        two files together hold every seq of every shard exactly once, the
        renamed one a prefix of each shard's seqs, both whole lines."""
        for i, flags in enumerate(((), ("--consumers", 2, "--threads", 2))):
            with self.subTest(flags=flags):
                gw = self.gateway(3, "--rate", 300)
                out = os.path.join(self.tmp, f"rot-{i}.ndjson")
                rotated = out + ".1"
                err_path = out + ".err"
                with open(err_path, "wb") as err:
                    proc = subprocess.Popen(self.engine_args(gw, 3, "ndjson:" + out, *flags),
                                            stdout=subprocess.DEVNULL, stderr=err)
                    try:
                        self.wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 20000,
                                      proc, err_path)
                        os.rename(out, rotated)
                        size_at_rename = os.path.getsize(rotated)
                        time.sleep(0.3)  # still written to after the rename
                        proc.send_signal(signal.SIGHUP)
                        self.wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 20000,
                                      proc, err_path)
                        proc.send_signal(signal.SIGTERM)
                        rc = proc.wait(timeout=10)
                    finally:
                        if proc.poll() is None:
                            proc.kill()
                            proc.wait()
                gw.stop()
                stderr = read(err_path)
                self.assertEqual(rc, 0, stderr.decode(errors="replace")[-2000:])
                self.assertIn(b"sink file reopened", stderr)
                old, new = parse_ndjson(read(rotated)), parse_ndjson(read(out))
                self.assertGreater(len(read(rotated)), size_at_rename)
                self.assertTrue(old and new)
                self.assertContiguous(old + new, 3, "the two files together")
                old_seqs, new_seqs = seqs_by_shard(old), seqs_by_shard(new)
                for shard in range(3):
                    self.assertIn(shard, new_seqs, f"shard {shard} never reached the new file")
                    if shard in old_seqs:
                        self.assertLess(old_seqs[shard][-1], new_seqs[shard][0])
                self.assertEqual(summary_of(stderr)["events"], len(old) + len(new))

    def wait_for(self, cond, proc, err_path, timeout=15):
        deadline = time.time() + timeout
        while not cond():
            if proc.poll() is not None or time.time() > deadline:
                self.fail("gave up waiting; stderr:\n" + read(err_path).decode(errors="replace")[-2000:])
            time.sleep(0.05)


if __name__ == "__main__":
    unittest.main(verbosity=2)
