#!/usr/bin/python3
"""bench/peers/compare.sh end to end on a tiny cell (2 shards, 50 events/s,
2 s, plain and TLS, shardring and both floors, ROUNDS=2): a CSV row per run
with its round, each round starting one client later, the tables of medians
with each client's range and its ratios, and the chart. Not a benchmark: no
figure is judged, only that the harness measures what it says. Skipped when
floor_client is not built.
"""
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_gateway_test import BIN  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
COMPARE = os.path.join(ROOT, "bench/peers/compare.sh")
CLIENTS = ["shardring", "floor", "floor-batch"]


def compare(out_dir, *args, **env):
    return subprocess.run(
        ["bash", COMPARE, *map(str, args)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "BIN_DIR": os.path.abspath(BIN), "OUT_DIR": out_dir,
             "SHARD_LIST": "2", "CLIENTS": " ".join(CLIENTS), **env})


@unittest.skipUnless(os.access(os.path.join(BIN, "floor_client"), os.X_OK),
                     "floor_client not built")
class Compare(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="shardring-compare-")
        cls.proc = compare(cls.out, 0, 50, 2, MODES="plain tls", ROUNDS="2")
        with open(os.path.join(cls.out, "peers.csv")) as f:
            cls.rows = list(csv.DictReader(f))

    def test_it_exits_0(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stdout + self.proc.stderr)

    def test_a_row_per_run_with_its_round(self):
        self.assertEqual(len(self.rows), 2 * len(CLIENTS) * 2, self.rows)
        for r in self.rows:
            self.assertEqual((r["rate"], r["shards"]), ("50", "2"), r)
            self.assertGreater(int(r["events"]), 0, r)
            self.assertGreater(float(r["cpu_s_per_million"]), 0, r)
            self.assertGreater(int(r["peak_rss_kib"]), 0, r)

    def test_each_round_starts_one_client_later(self):
        for mode in ("plain", "tls"):
            order = [(r["round"], r["client"]) for r in self.rows if r["mode"] == mode]
            self.assertEqual(order, [("1", c) for c in CLIENTS] +
                             [("2", c) for c in CLIENTS[1:] + CLIENTS[:1]], mode)

    def test_the_tables_give_medians_ranges_and_ratios(self):
        for mode in ("plain", "tls"):
            m = re.search(rf"== {mode}, 2 shards, rate 50/s per shard, medians of 2 rounds\n"
                          r".*CPU s/M range.*\n((?:.+\n){3})", self.proc.stdout)
            self.assertIsNotNone(m, self.proc.stdout)
            table = {}
            for line in m.group(1).splitlines():
                name, events, per_s, cpu, lo_hi, x_ours, x_floor, rss, per_shard = line.split()
                lo, hi = map(float, lo_hi.split("-"))
                self.assertLessEqual(lo, float(cpu))
                self.assertLessEqual(float(cpu), hi)
                table[name] = (float(x_ours), float(x_floor))
            self.assertEqual(list(table), CLIENTS)
            self.assertEqual(table["shardring"][0], 1.0)
            # Within a round the better floor is 1 by definition; the
            # median over two rounds can only be 1 or above.
            self.assertGreaterEqual(min(table["floor"][1], table["floor-batch"][1]), 1.0)
            self.assertLess(min(table["floor"][1], table["floor-batch"][1]), 1.5)

    def test_the_chart_is_drawn_from_the_medians(self):
        if shutil.which("gnuplot") is None:
            self.skipTest("gnuplot not installed")
        self.assertGreater(os.path.getsize(os.path.join(self.out, "peers.png")), 1000)
        for mode in ("plain", "tls"):
            for c in CLIENTS:
                with open(os.path.join(self.out, "plot", f"{mode}_{c}.dat")) as f:
                    shards, value = f.read().split()
                runs = [float(r["cpu_s_per_million"]) for r in self.rows
                        if r["mode"] == mode and r["client"] == c]
                self.assertEqual(shards, "2")
                self.assertAlmostEqual(float(value), sum(runs) / 2, places=2)


class CompareFlags(unittest.TestCase):
    def test_a_bad_rounds_value_exits_2_and_says_which(self):
        for bad in ("0", "x", "-1"):
            with self.subTest(rounds=bad):
                p = compare(tempfile.mkdtemp(prefix="shardring-compare-"), 0, 50, 2,
                            MODES="plain", ROUNDS=bad)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertIn("ROUNDS", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
