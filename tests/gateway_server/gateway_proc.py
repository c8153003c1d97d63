"""What the Python checks of the synthetic gateway share: starting it on a
free loopback port (it logs the port it bound) and failing with a message."""
import os
import re
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def start_gateway(binary, *flags):
    """`shardring gateway --listen 127.0.0.1:0 FLAGS --stats-json PATH`;
    returns (process, port, PATH). Its stderr stays a pipe."""
    stats = os.path.join(tempfile.mkdtemp(), "stats.json")
    proc = subprocess.Popen(
        [binary, "gateway", "--listen", "127.0.0.1:0", *map(str, flags), "--stats-json", stats],
        stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        fail(f"no 'listening on' line: {line!r}")
    return proc, int(m.group(1)), stats
