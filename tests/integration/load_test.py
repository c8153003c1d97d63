#!/usr/bin/python3
"""End-to-end: `shardring load`, real processes on loopback. Checks what a
user relies on: it spawns its gateway and stops it (nothing left running, on
a clean end or on SIGINT), the summary's figures agree with what the gateway
sent, --json writes the same summary, TLS works with its throwaway CA,
--gateway uses a running gateway, and bad flags exit 2 naming the flag.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SHARDRING = os.path.join(BIN, "shardring")
SANITIZED = bool(os.environ.get("SHARDRING_SANITIZED"))

LATENCY_KEYS = {"count", "p50", "p99", "max"}


def run_load(*flags, timeout=120):
    p = subprocess.run([SHARDRING, "load", *map(str, flags)], capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def gateway_port(stderr):
    m = re.search(r"against wss?://127\.0\.0\.1:(\d+)/", stderr)
    return int(m.group(1)) if m else None


def port_closed(port, within=3.0):
    """Whether nothing accepts on the port, within `within` seconds: an
    exited process's io_uring (its multishot accept) is torn down by the
    kernel asynchronously, so the listener can outlive the process briefly."""
    deadline = time.time() + within
    while True:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return True
        if time.time() > deadline:
            return False
        time.sleep(0.05)


class LoadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-load-test.")

    def check_summary(self, summary, shards, heartbeats=True):
        self.assertEqual(summary["shards"], shards)
        self.assertGreater(summary["events"], 0)
        self.assertEqual(summary["shards_ready"], shards)
        self.assertGreater(summary["storm_s"], 0)
        self.assertEqual(summary["identifies"], shards)
        self.assertEqual(summary["reconnects"], 0)
        self.assertEqual(summary["protocol_errors"], 0)
        self.assertGreater(summary["cpu_s"], 0)
        self.assertGreater(summary["peak_rss_kib"], summary["baseline_rss_kib"])
        for key in ("heartbeat_lateness_ms", "delivery_latency_ms"):
            lat = summary[key]
            self.assertEqual(set(lat), LATENCY_KEYS)
            if lat["count"]:
                self.assertLessEqual(lat["p50"], lat["p99"])
                self.assertLessEqual(lat["p99"], lat["max"])
        if heartbeats:
            self.assertGreater(summary["heartbeat_lateness_ms"]["count"], 0)
        # Every dispatch of the mix carries the gateway's stamp (READY does not).
        self.assertGreater(summary["delivery_latency_ms"]["count"], summary["events"] - 2 * shards)
        # Each shard's seqs arrived once and in order.
        self.assertEqual((summary["seq_gaps"], summary["seq_lost"], summary["seq_repeats"]),
                         (0, 0, 0))

    def test_spawned_plain_gateway_summary_agrees_with_the_gateway(self):
        out = os.path.join(self.tmp, "summary.json")
        rc, stdout, stderr = run_load("--shards", 6, "--rate", 50, "--duration", 3,
                                      "--heartbeat-ms", 300, "--json", out)
        self.assertEqual(rc, 0, stderr)
        with open(out) as f:
            summary = json.load(f)
        self.check_summary(summary, 6)
        self.assertFalse(summary["tls"])
        self.assertEqual(summary["consumers"], 1)
        # Nothing lost: every event the engine read was one the gateway sent,
        # and it read nearly all of them (the last few may be in flight at the stop).
        sent = summary["gateway_events_sent"]
        self.assertLessEqual(summary["events"], sent)
        self.assertGreaterEqual(summary["events"], sent * 0.9)
        self.assertGreater(summary["gateway_cpu_s"], 0)
        # The human table on stdout, the same JSON as the last stderr line.
        for label in ("events", "engine cpu", "peak rss", "identify storm",
                      "heartbeat lateness", "delivery latency"):
            self.assertIn(label, stdout)
        last = stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("summary {"), last)
        self.assertEqual(json.loads(last[len("summary "):]), summary)
        self.assertIn("live", stderr)
        # The spawned gateway is gone.
        port = gateway_port(stderr)
        self.assertIsNotNone(port, stderr)
        self.assertTrue(port_closed(port))

    def test_report_writes_a_row_per_second_and_charts(self):
        report = os.path.join(self.tmp, "report", "run1")
        rc, _, stderr = run_load("--shards", 4, "--rate", 100, "--duration", 4,
                                 "--heartbeat-ms", 200, "--report", report)
        self.assertEqual(rc, 0, stderr)
        with open(os.path.join(report, "report.csv")) as f:
            lines = f.read().splitlines()
        columns = lines[0].split(",")
        self.assertEqual(columns[:6], ["second", "events_per_s", "cpu_cores", "rss_mib",
                                       "shards_ready", "shards_connected"])
        rows = [dict(zip(columns, map(float, line.split(",")))) for line in lines[1:]]
        # A row per second of the 4 s run (the last may fall in the close).
        self.assertIn(len(rows), (4, 5), lines)
        self.assertEqual([r["second"] for r in rows], list(range(1, len(rows) + 1)))
        steady = rows[1:3]  # every shard ready, the gateway at its rate
        for r in steady:
            self.assertGreater(r["events_per_s"], 4 * 100 * 0.7, r)
            self.assertLess(r["events_per_s"], 4 * 100 * 1.3, r)
            self.assertEqual(r["shards_ready"], 4, r)
            self.assertGreater(r["rss_mib"], 1, r)
            self.assertGreater(r["delivery_p99_ms"], 0, r)
            self.assertLessEqual(r["delivery_p50_ms"], r["delivery_p99_ms"], r)
            self.assertLessEqual(r["delivery_p99_ms"], r["delivery_max_ms"], r)
        for r in rows:
            self.assertGreaterEqual(r["cpu_cores"], 0, r)
            self.assertLess(r["cpu_cores"], os.cpu_count() + 1, r)
            self.assertLessEqual(r["heartbeat_p50_ms"], r["heartbeat_max_ms"], r)
        # Heartbeats every 200 ms: the per-second lateness is there.
        self.assertTrue(any(r["heartbeat_max_ms"] > 0 for r in rows), lines)
        self.assertIn("report: " + report + "/report.csv", stderr)
        charts = ("events.png", "cpu.png", "memory.png", "latency.png")
        if shutil.which("gnuplot"):
            for name in charts:
                with open(os.path.join(report, name), "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
        else:
            self.assertIn("no charts: gnuplot is not installed", stderr)
        # Without gnuplot: the CSV and the script, no charts, and a line saying so.
        bare = os.path.join(self.tmp, "report", "bare")
        p = subprocess.run([SHARDRING, "load", "--shards", "1", "--duration", "1.5", "--report",
                            bare], capture_output=True, timeout=120,
                           env=dict(os.environ, PATH="/nonexistent"))
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn("no charts: gnuplot is not installed (Debian: gnuplot-nox)",
                      p.stderr.decode())
        self.assertEqual(sorted(os.listdir(bare)), ["report.csv", "report.gp"])
        # A DIR that cannot be made: exit 1, nothing run.
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        rc, _, stderr = run_load("--shards", 1, "--duration", 1, "--report", blocker + "/x")
        self.assertEqual(rc, 1)
        self.assertIn("--report: cannot make", stderr)

    def test_each_io_uring_fallback_path_delivers(self):
        """--uring-fallback forces each set-up the engine falls back to on an
        older kernel (tests/engine/uring_test.cc checks which features each
        one leaves on): every path delivers what the gateway sends."""
        for fallback in ("defer_taskrun", "defer_taskrun,coop_taskrun", "min_wait,recv_bundle",
                         "all"):
            with self.subTest(fallback=fallback):
                rc, _, stderr = run_load("--shards", 3, "--rate", 100, "--duration", 1.5,
                                         "--uring-fallback", fallback)
                self.assertEqual(rc, 0, stderr)
                summary = json.loads(stderr.strip().splitlines()[-1][len("summary "):])
                self.assertGreaterEqual(summary["events"], summary["gateway_events_sent"] * 0.9)
                self.assertGreater(summary["events"], 3 * 100)
                self.assertEqual((summary["seq_gaps"], summary["seq_lost"],
                                  summary["seq_repeats"]), (0, 0, 0))
        # At full speed a receive fills many buffers at once: with bundles
        # (where the kernel has them) and without, over TLS, every event
        # arrives once and in order.
        for fallback in ("", "recv_bundle"):
            with self.subTest(full_speed=fallback or "bundles"):
                rc, _, stderr = run_load("--shards", 4, "--rate", 0, "--duration", 1.5, "--tls",
                                         "--uring-fallback", fallback)
                self.assertEqual(rc, 0, stderr)
                summary = json.loads(stderr.strip().splitlines()[-1][len("summary "):])
                self.assertGreater(summary["events"], 10_000)
                self.assertEqual(summary["protocol_errors"], 0)
                self.assertEqual((summary["seq_gaps"], summary["seq_lost"],
                                  summary["seq_repeats"]), (0, 0, 0))
        rc, _, stderr = run_load("--uring-fallback", "sqpoll")
        self.assertEqual(rc, 2)
        self.assertIn("--uring-fallback: unknown io_uring feature 'sqpoll'", stderr)

    def test_gateway_reset_every_shard_resumes(self):
        """--gateway-reset-at: the spawned gateway resets every connection at
        once (TCP RST, sessions kept): every shard RESUMEs, none identifies
        again, nothing delivered twice."""
        shards = 20
        rc, stdout, stderr = run_load("--shards", shards, "--rate", 20, "--duration", 4.5,
                                      "--identify-window-ms", 20, "--gateway-reset-at", 2)
        self.assertEqual(rc, 0, stderr)
        summary = json.loads(stderr.strip().splitlines()[-1][len("summary "):])
        reset = summary["gateway_reset"]
        self.assertTrue(reset["fired"], reset)
        self.assertEqual(reset["resumed"], shards, reset)
        self.assertEqual(reset["identified"], 0, reset)
        self.assertEqual(summary["identifies"], shards)
        self.assertGreaterEqual(summary["resumes"], shards)
        # The cold start follows the bucket schedule: never faster, not much slower.
        self.assertGreater(summary["storm_schedule_s"], 0)
        self.assertGreaterEqual(summary["storm_s"], summary["storm_schedule_s"])
        self.assertLess(summary["storm_s"], summary["storm_schedule_s"] + 1.0)
        self.assertLessEqual(reset["p50_ms"], reset["p99_ms"])
        self.assertLessEqual(reset["p99_ms"], reset["max_ms"])
        self.assertLess(reset["max_ms"], 2500, reset)  # the reconnect backoff's jitter, and some
        # Replays are not delivered twice: never more events than were sent,
        # and every shard's seqs arrived once and in order across the reset.
        self.assertLessEqual(summary["events"], summary["gateway_events_sent"])
        self.assertEqual((summary["seq_gaps"], summary["seq_lost"], summary["seq_repeats"]),
                         (0, 0, 0))
        self.assertIn("seq check            every shard's seqs in order", stdout)
        self.assertGreaterEqual(summary["events"], summary["gateway_events_sent"] * 0.9)
        self.assertIn(f"{shards} of {shards} shards resumed, 0 identified again", stdout)
        rc, _, stderr = run_load("--gateway", "ws://127.0.0.1:1/", "--gateway-reset-at", 1)
        self.assertEqual(rc, 2)
        self.assertIn("--gateway-reset-at: needs the spawned gateway", stderr)

    def test_tls_with_a_throwaway_ca(self):
        out = os.path.join(self.tmp, "summary.json")
        rc, _, stderr = run_load("--shards", 3, "--rate", 50, "--duration", 3, "--tls",
                                 "--heartbeat-ms", 300, "--json", out)
        self.assertEqual(rc, 0, stderr)
        with open(out) as f:
            summary = json.load(f)
        self.assertTrue(summary["tls"])
        self.check_summary(summary, 3)
        self.assertIn("wss://127.0.0.1:", stderr)

    def test_idle_shards_get_only_ready(self):
        out = os.path.join(self.tmp, "summary.json")
        rc, stdout, stderr = run_load("--shards", 20, "--idle", "--duration", 2, "--json", out)
        self.assertEqual(rc, 0, stderr)
        with open(out) as f:
            summary = json.load(f)
        self.assertTrue(summary["idle"])
        self.assertEqual(summary["events"], 20)  # one READY each, nothing else
        self.assertEqual(summary["gateway_events_sent"], 20)
        self.assertEqual(summary["shards_ready"], 20)
        self.assertGreater(summary["rss_per_shard_kib"], 0)
        self.assertIn("idle", stdout)

    def test_compressed(self):
        for mode in ("zlib-stream", "zstd-stream"):
            with self.subTest(mode):
                out = os.path.join(self.tmp, "summary.json")
                rc, _, stderr = run_load("--shards", 3, "--rate", 50, "--duration", 2.5,
                                         "--compress", mode, "--heartbeat-ms", 300, "--json", out)
                self.assertEqual(rc, 0, stderr)
                with open(out) as f:
                    summary = json.load(f)
                self.assertEqual(summary["compress"], mode)
                self.check_summary(summary, 3)
                self.assertGreaterEqual(summary["events"], summary["gateway_events_sent"] * 0.9)

    def test_sigint_stops_cleanly_and_stops_the_gateway(self):
        p = subprocess.Popen([SHARDRING, "load", "--shards", "2", "--duration", "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2.5)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=30)
        stderr = stderr.decode()
        self.assertEqual(p.returncode, 0, stderr)
        self.assertIn(b"delivery latency", stdout)
        port = gateway_port(stderr)
        self.assertIsNotNone(port, stderr)
        self.assertTrue(port_closed(port))

    def test_uses_a_running_gateway(self):
        log = open(os.path.join(self.tmp, "gateway.log"), "wb")
        gw = subprocess.Popen([SHARDRING, "gateway", "--listen", "127.0.0.1:0", "--threads", "1",
                               "--identify-window-ms", "1", "--rate", "50"],
                              stdout=subprocess.DEVNULL, stderr=log)
        try:
            port = None
            for _ in range(200):
                with open(log.name, "rb") as f:
                    m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", f.read())
                if m:
                    port = int(m.group(1))
                    break
                time.sleep(0.05)
            self.assertIsNotNone(port)
            out = os.path.join(self.tmp, "summary.json")
            # With the handler inline on the I/O thread (--consumers 0).
            rc, _, stderr = run_load("--gateway", f"ws://127.0.0.1:{port}", "--shards", 2,
                                     "--max-concurrency", 1, "--consumers", 0,
                                     "--duration", 2, "--json", out)
            self.assertEqual(rc, 0, stderr)
            with open(out) as f:
                summary = json.load(f)
            self.check_summary(summary, 2, heartbeats=False)
            self.assertEqual(summary["consumers"], 0)
            self.assertNotIn("gateway_events_sent", summary)
            self.assertEqual(gw.poll(), None)  # not ours to stop
        finally:
            gw.terminate()
            gw.wait(timeout=10)
            log.close()

    def test_bad_flags_exit_2_naming_the_flag(self):
        for flags, name in [
            (["--shards", "0"], "--shards"),
            (["--rate", "-1"], "--rate"),
            (["--duration", "abc"], "--duration"),
            (["--tls", "--gateway", "ws://127.0.0.1:1"], "--tls"),
            (["--gateway", "ws://gateway.example.com"], "--gateway"),
            (["--gateway", "http://127.0.0.1:1"], "--gateway"),
            (["--ca-file", "/x.pem"], "--ca-file"),
            (["--identify-window-ms", "1"], "--identify-window-ms"),
            (["--compress", "gzip"], "--compress"),
            (["--idle", "--gateway", "ws://127.0.0.1:1"], "--idle"),
            (["--bogus"], "--bogus"),
        ]:
            rc, _, stderr = run_load(*flags)
            self.assertEqual(rc, 2, (flags, stderr))
            self.assertIn(name, stderr, flags)

    def test_help_lists_the_flags(self):
        rc, stdout, _ = run_load("--help")
        self.assertEqual(rc, 0)
        for flag in ("--shards", "--rate", "--duration", "--tls", "--gateway", "--json"):
            self.assertIn(flag, stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
