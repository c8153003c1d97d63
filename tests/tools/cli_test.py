#!/usr/bin/python3
"""The command line's own outputs: `shardring --version`.
"""
import os
import subprocess
import unittest

BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SHARDRING = os.path.join(BIN, "shardring")
VERSION = os.environ.get("SHARDRING_VERSION", "")


def shardring(*args):
    p = subprocess.run([SHARDRING, *args], capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
