#!/usr/bin/python3
"""The floor client of bench/peers/compare.sh (build/bin/floor_client) counts
exactly the dispatches `shardring gateway` sent: every ratio to the floor
divides by that count, so a floor that missed or doubled frames would make
every client look better or worse than it is.

Each case runs one floor against a fresh gateway with --events (a fixed
number of dispatches per shard, then the stream stops) and compares the
floor's `events` with the gateway's --stats-json `events_sent` (READY and
the GUILD_CREATEs included, as the floor counts every text frame starting
{"t":"). Both variants (wake, batch), ws:// and wss://, the io_uring features
on and forced off (FLOOR_URING=none), and the wire cut badly: frame headers
split across reads (--segment) and messages split into continuation frames
(--fragment, counted once each). Skipped when floor_client is not built.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_gateway_test import BIN, Gateway, make_pki  # noqa: E402

FLOOR = os.path.join(BIN, "floor_client")
SHARDS = 3
# The floor reads for this long after its first connection opens: every
# case's events arrive well within it, so the count is the whole stream.
SECONDS = 2


@unittest.skipUnless(os.access(FLOOR, os.X_OK), "floor_client not built")
class FloorCounts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-floor-")

    def count(self, *gateway_flags, variant=("wake",), tls=False, env=None):
        """(the floor's JSON line, its stderr, the gateway's stats)."""
        tls_flags, floor_tls = (), ()
        if tls:
            ca, cert, key = make_pki(self.tmp)
            tls_flags, floor_tls = ("--tls-cert", cert, "--tls-key", key), ("tls", ca)
        gw = Gateway("--shards", SHARDS, "--rate", 0, "--max-concurrency", 16,
                     "--identify-window-ms", 1, *tls_flags, *gateway_flags, tmp=self.tmp)
        try:
            p = subprocess.run([FLOOR, "127.0.0.1", str(gw.port), str(SHARDS), str(SECONDS),
                                *variant, *floor_tls],
                               capture_output=True, text=True, timeout=60,
                               env={**os.environ, **(env or {})})
        finally:
            stats = gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        return out, p.stderr, stats

    def assertCountsEverything(self, out, stats, client):
        self.assertEqual(out["client"], client)
        self.assertEqual(stats["sessions"], SHARDS, stats)
        self.assertGreater(stats["events_sent"], 0, stats)
        self.assertEqual(out["events"], stats["events_sent"], (out, stats))
        self.assertGreater(out["cpu_s"], 0, out)
        self.assertGreaterEqual(out["seconds"], SECONDS, out)
        self.assertGreater(out["peak_rss_kib"], 0, out)

    def test_wake_counts_every_dispatch(self):
        out, _, stats = self.count("--events", 2000)
        self.assertCountsEverything(out, stats, "floor")
        # 2,000 events a shard, plus READY and its three GUILD_CREATEs.
        self.assertEqual(out["events"], SHARDS * 2004)

    def test_batch_counts_every_dispatch(self):
        out, _, stats = self.count("--events", 2000, variant=("batch", "1000"))
        self.assertCountsEverything(out, stats, "floor-batch")

    def test_batch_without_the_newer_io_uring_features_counts_the_same(self):
        out, err, stats = self.count("--events", 2000, variant=("batch", "1000"),
                                     env={"FLOOR_URING": "none"})
        self.assertIn("floor: io_uring min_wait off, bundle off", err)
        self.assertCountsEverything(out, stats, "floor-batch")

    def test_headers_cut_across_reads_are_walked(self):
        # At most 7 bytes a send: every frame header and payload arrives in
        # pieces, many reads apart.
        out, _, stats = self.count("--events", 30, "--segment", 7)
        self.assertCountsEverything(out, stats, "floor")

    def test_a_fragmented_message_is_one_dispatch(self):
        # Frames of 100 payload bytes: a text frame and its continuations.
        out, _, stats = self.count("--events", 300, "--fragment", 100)
        self.assertCountsEverything(out, stats, "floor")

    def test_tls_wake_and_batch_count_every_dispatch(self):
        for variant, client in ((("wake",), "floor"), (("batch", "1000"), "floor-batch")):
            with self.subTest(client=client):
                out, _, stats = self.count("--events", 1000, variant=variant, tls=True)
                self.assertCountsEverything(out, stats, client)
                self.assertEqual(stats["tls_handshakes"], SHARDS, stats)

    def test_bad_arguments_exit_2(self):
        for args in ([], ["127.0.0.1", "1", "1"], ["localhost", "1", "1", "1"],
                     ["127.0.0.1", "1", "0", "1"], ["127.0.0.1", "1", "1", "1", "fast"]):
            with self.subTest(args=args):
                p = subprocess.run([FLOOR, *args], capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("floor", p.stderr)


if __name__ == "__main__":
    unittest.main()
