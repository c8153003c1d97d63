#!/usr/bin/python3
"""The command line's own outputs: `shardring --version`, each command's
--help (every flag with its default, the exit codes, examples) and the manual
page docs/shardring.1, which must be exactly what `shardring --help-man`
prints, so that it lists every flag --help does.
"""
import json
import os
import re
import subprocess
import tempfile
import unittest

BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SHARDRING = os.path.join(BIN, "shardring")
SOURCE = os.environ.get("SHARDRING_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
MAN_PAGE = os.path.join(SOURCE, "docs/shardring.1")
VERSION = os.environ.get("SHARDRING_VERSION", "")
COMMANDS = ("run", "gateway", "load", "bench-parse")


def shardring(*args):
    p = subprocess.run([SHARDRING, *args], capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def flags_of(help_text):
    return re.findall(r"^  --([a-z0-9-]+)", help_text, re.M)


class Version(unittest.TestCase):
    def test_four_lines(self):
        rc, out, err = shardring("--version")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 4, out)
        self.assertRegex(lines[0], r"^shardring \d+\.\d+\.\d+$")
        if VERSION:
            self.assertEqual(lines[0], "shardring " + VERSION)
        self.assertRegex(lines[1], r"^revision: ([0-9a-f]{12}(-dirty)?|unknown)$")
        self.assertRegex(lines[2], r"^simd: \S+ \(simdjson stage 1\), envelope fast path "
                                   r"(avx2|off \(no AVX2\))$")
        self.assertRegex(lines[3], r"^wolfssl: \d+\.\d+\.\d+, (the project's build with assembly|"
                                   r"the system library \(no assembly\))$")


class Help(unittest.TestCase):
    def test_each_command(self):
        for command in COMMANDS:
            rc, out, err = shardring(command, "--help")
            self.assertEqual(rc, 0, (command, err))
            self.assertGreater(len(flags_of(out)), 1, command)
            self.assertIn("\nexit codes:\n  0  ", out, command)
            self.assertIn("\n  2  bad flags", out, command)
            examples = out[out.index("\nexamples:\n"):]
            self.assertGreaterEqual(examples.count(f"shardring {command} --"), 2, command)
            # What FlagSet writes: flags, exit codes, examples (indented).
            for line in out.splitlines():
                if line.startswith("  "):
                    self.assertLessEqual(len(line), 100, (command, line))

    def test_defaults(self):
        _, out, _ = shardring("run", "--help")
        self.assertRegex(out, r"--sink S +ndjson \| ndjson:PATH \| redis \| null \(default ndjson\)")
        self.assertRegex(out, r"--compress S .*\(default none\)")
        _, out, _ = shardring("load", "--help")
        self.assertRegex(out, r"--shards N .*\(default 100\)")
        for line in out.splitlines():
            self.assertLessEqual(line.count("default"), 1, line)

    def test_top_level_usage_names_version(self):
        rc, out, _ = shardring("--help")
        self.assertEqual(rc, 0)
        self.assertIn("shardring --version", out)
        for command in COMMANDS:
            self.assertRegex(out, rf"\n  {command} +\S")


class BenchParse(unittest.TestCase):
    """`shardring bench-parse FILE...` on the corpus and on NDJSON as `run`
    writes it: every parser measured over the same payloads."""

    CORPUS = os.path.join(SOURCE, "tests/data/corpus")

    def bench(self, *args):
        return shardring("bench-parse", "--seconds", "0.01", "--repetitions", "1", *args)

    def rows_of(self, out):
        rows = {}
        for line in out.splitlines()[2:]:
            m = re.match(r"^(.+?)\s+([\d.]+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)$", line)
            self.assertIsNotNone(m, line)
            rows[m.group(1)] = [float(m.group(i).replace(",", "")) for i in range(2, 6)]
        return rows

    def test_corpus(self):
        files = sorted(os.path.join(self.CORPUS, f) for f in os.listdir(self.CORPUS)
                       if f.endswith(".json"))
        rc, out, err = self.bench(*files)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out.splitlines()[0],
                         rf"^bench-parse: {len(files)} payloads, [\d,]+ bytes from {len(files)} "
                         r"files \(0 left out\), simd \S+, median of 1 x 0.01 s$")
        rows = self.rows_of(out)
        self.assertEqual(list(rows), ["shardring (default check + routing keys)",
                                      "shardring --validate-d", "shardring t only (--events)",
                                      "simdjson DOM", "simdjson validate_utf8"])
        for name, (mbs, evs, x_dom, x_utf8) in rows.items():
            self.assertGreater(mbs, 0, name)
            self.assertGreater(evs, 0, name)
        self.assertEqual(rows["simdjson DOM"][2], 1.0)
        self.assertEqual(rows["simdjson validate_utf8"][3], 1.0)

    def test_run_ndjson_and_what_is_left_out(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "events.ndjson")
            with open(path, "w") as f:
                for seq in range(1, 4):
                    f.write(json.dumps({"shard": 0, "seq": seq, "t": "MESSAGE_CREATE",
                                        "d": {"guild_id": "1", "content": "hi"}}) + "\n")
                f.write("{not json\n")
            rc, out, err = self.bench(path)
            self.assertEqual(rc, 0, err)
            self.assertIn("3 payloads", out)
            self.assertIn("(1 left out)", out)
            self.assertIn(f"1 payloads are not JSON and were left out; the first: {path}:4:", err)
            self.assertEqual(len(self.rows_of(out)), 5)
            with open(path, "w") as f:
                f.write("nothing\nhere\n")
            rc, _, err = self.bench(path)
            self.assertEqual(rc, 1)
            self.assertIn("no JSON payload to measure", err)

    def test_bad_arguments_exit_2(self):
        rc, _, err = shardring("bench-parse")
        self.assertEqual(rc, 2)
        self.assertIn("no FILE given", err)
        rc, _, err = shardring("bench-parse", "/nonexistent/capture.ndjson")
        self.assertEqual(rc, 2)
        self.assertIn("cannot read /nonexistent/capture.ndjson", err)
        rc, _, err = shardring("bench-parse", "--seconds", "0", "x.json")
        self.assertEqual(rc, 2)
        self.assertIn("--seconds", err)


class ManPage(unittest.TestCase):
    def test_matches_help_man(self):
        rc, out, err = shardring("--help-man")
        self.assertEqual(rc, 0, err)
        with open(MAN_PAGE) as f:
            page = f.read()
        if page != out:
            self.fail("docs/shardring.1 is not what `shardring --help-man` prints; regenerate it:"
                      " build/bin/shardring --help-man > docs/shardring.1")

    def test_lists_every_flag_of_each_help(self):
        with open(MAN_PAGE) as f:
            page = f.read()
        sections = re.split(r'^\.SS "shardring ', page, flags=re.M)
        for command in COMMANDS:
            section = next((s for s in sections if s.startswith(command + " ")), None)
            self.assertIsNotNone(section, command)
            _, out, _ = shardring(command, "--help")
            missing = [flag for flag in flags_of(out)
                       if "\\-\\-" + flag.replace("-", "\\-") not in section]
            self.assertEqual(missing, [], f"flags of `shardring {command} --help` missing from "
                                          "docs/shardring.1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
