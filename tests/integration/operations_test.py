#!/usr/bin/python3
"""End-to-end: what an operator runs shardring with, over loopback.

- `--metrics`: a real Prometheus (Debian's `prometheus`, its own instance on
  a free port with its own data folder, stopped by pid) scrapes `shardring
  run` and answers queries for the per-shard state and a rate of events.
  Where the server cannot be had, python3-prometheus-client's parser checks
  the exposition instead (the test says which it used).
- A zombie shard shows as not ready in /shards within two heartbeat
  intervals; /healthz turns 503 once the grace has passed without recovery
  and 200 again after it.
- The service manager's protocol over a datagram socket of the test's own
  ($NOTIFY_SOCKET): READY=1, STATUS=, WATCHDOG=1, STOPPING=1; a stalled core
  loop stops the watchdog pings.
- `--token-file` and $CREDENTIALS_DIRECTORY/token; `--log-level`.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_gateway_test import SHARDRING, Gateway, summary_of  # noqa: E402
from sink_test import read  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# What `run --metrics 127.0.0.1:0` logs once it listens; group 1 is the port.
METRICS_LISTENING = r"metrics listening address=\"127\.0\.0\.1:(\d+)\""


def log_text(log_path):
    return read(log_path).decode(errors="replace")


def wait_for_line(log_path, pattern, proc=None, timeout=30):
    """The first match of `pattern` in the log at log_path, polled until it
    shows, `proc` (if given) exits, or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, log_text(log_path))
        if m:
            return m
        if proc is not None and proc.poll() is not None:
            raise AssertionError("run exited: " + log_text(log_path)[-3000:])
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} within {timeout} s: " + log_text(log_path)[-3000:])


class Run:
    """`shardring run` in the background, its stderr in a file."""

    def __init__(self, tmp, *args, env=None, stdout=subprocess.DEVNULL):
        self.log_path = os.path.join(tmp, f"run-{time.monotonic_ns()}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([SHARDRING, "run", *map(str, args)], stdout=stdout,
                                     stderr=self.log, env=env)

    def text(self):
        return log_text(self.log_path)

    def wait_for(self, pattern, timeout=30):
        return wait_for_line(self.log_path, pattern, self.proc, timeout)

    def metrics_port(self):
        return int(self.wait_for(METRICS_LISTENING).group(1))

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.log.close()
        return self.proc.returncode


class Metrics(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-ops-")
        self.gw = Gateway("--shards", 4, "--rate", 50, "--max-concurrency", 4,
                          "--identify-window-ms", 20, "--heartbeat-ms", 500, tmp=self.tmp)
        self.runs = []

    def tearDown(self):
        for r in self.runs:
            r.stop(signal.SIGKILL)
        if self.gw.proc.poll() is None:
            self.gw.stop()

    def run_engine(self, *flags):
        r = Run(self.tmp, "--gateway", f"ws://127.0.0.1:{self.gw.port}", "--total-shards", 4,
                "--max-concurrency", 4, "--identify-window-ms", 30, "--sink", "null",
                "--metrics", "127.0.0.1:0", *flags)
        self.runs.append(r)
        return r

    def test_prometheus_scrapes_the_shards_and_their_events(self):
        r = self.run_engine()
        port = r.metrics_port()
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        self.assertEqual(status, 200)
        self.assertIn('shardring_shard_state{shard="3"}', text)
        if not os.path.exists(PROMETHEUS):
            from prometheus_client.parser import text_string_to_metric_families
            families = {f.name: f for f in text_string_to_metric_families(text)}
            self.assertIn("shardring_shard_state", families)
            print("exposition checked with python3-prometheus-client (no prometheus server)",
                  file=sys.stderr)
            return
        print("exposition scraped by " + PROMETHEUS, file=sys.stderr)
        data = os.path.join(self.tmp, "prometheus-data")
        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: shardring\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{port}']\n")
        prom = None
        for _ in range(5):  # a free port can be taken between the pick and the bind
            prom_port = free_port()
            log = open(os.path.join(self.tmp, "prometheus.log"), "wb")
            prom = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=log)
            deadline = time.time() + 20
            up = False
            while time.time() < deadline and prom.poll() is None:
                try:
                    up = http_get(f"http://127.0.0.1:{prom_port}/-/ready", timeout=1)[0] == 200
                except OSError:
                    up = False
                if up:
                    break
                time.sleep(0.2)
            if up:
                break
            prom.kill()
            prom.wait()
            log.close()
            prom = None
        self.assertIsNotNone(prom, "prometheus did not start")
        try:
            def query(q):
                url = (f"http://127.0.0.1:{prom_port}/api/v1/query?" +
                       urllib.parse.urlencode({"query": q}))
                status, body = http_get(url)
                self.assertEqual(status, 200, body)
                return json.loads(body)["data"]["result"]

            deadline = time.time() + 40
            states = rate = []
            while time.time() < deadline:
                states = query("shardring_shard_state")
                rate = query("sum(rate(shardring_events_total[5s]))")
                if (len(states) == 4 and all(s["value"][1] == "4" for s in states) and rate and
                        float(rate[0]["value"][1]) > 50):
                    break
                time.sleep(0.5)
            self.assertEqual(sorted(s["metric"]["shard"] for s in states), ["0", "1", "2", "3"])
            self.assertTrue(all(s["value"][1] == "4" for s in states), states)  # 4: ready
            self.assertGreater(float(rate[0]["value"][1]), 50, rate)  # 4 shards x 50/s
        finally:
            prom.send_signal(signal.SIGTERM)
            prom.wait(timeout=30)
            log.close()

    def test_a_zombie_shows_in_shards_and_healthz_fails_after_the_grace(self):
        """The gateway stops ACKing after 2 heartbeats of a connection (1 s
        apart, the engine's shortest interval): the shard is closed as a
        zombie two intervals after the last ACK and resumes, so /shards
        shows it not ready then, or its reconnect count up. Then the gateway is frozen
        (SIGSTOP): the shard cannot recover, and /healthz turns 503 after
        the 2 s grace, naming it; after SIGCONT it is 200 again."""
        self.gw.stop()
        self.gw = Gateway("--shards", 1, "--rate", 20, "--heartbeat-ms", 1000, "--no-ack-after", 2,
                          tmp=self.tmp, name="gateway-noack")
        r = Run(self.tmp, "--gateway", f"ws://127.0.0.1:{self.gw.port}", "--total-shards", 1,
                "--sink", "null", "--metrics", "127.0.0.1:0", "--health-grace-s", 2,
                "--connect-timeout-ms", 1000)
        self.runs.append(r)
        port = r.metrics_port()
        base = f"http://127.0.0.1:{port}"
        r.wait_for(r"ready seq=")
        ready_at = time.time()
        seen = set()
        # The resume after the close can take only a few milliseconds, less
        # than a poll: the shard's reconnect count shows it all the same.
        reconnects = json.loads(http_get(base + "/shards")[1])["shards"][0]["reconnects"]
        while time.time() < ready_at + 6:
            shard = json.loads(http_get(base + "/shards")[1])["shards"][0]
            seen.add(shard["state"])
            if shard["reconnects"] > reconnects:
                seen.add("reconnected")
            if seen - {"ready"}:
                break
            time.sleep(0.05)
        not_ready_after = time.time() - ready_at
        self.assertTrue(seen - {"ready"}, f"never seen not ready: {seen}")
        # The first beat within an interval of HELLO, the second ACKed one an
        # interval later, then two intervals to notice the missing ACK.
        self.assertLess(not_ready_after, 1 + 1 + 2 + 0.5)
        self.assertIn("no heartbeat ACK", r.wait_for(r"no heartbeat ACK").group(0))
        self.assertEqual(http_get(base + "/healthz")[0], 200)  # within the grace
        os.kill(self.gw.proc.pid, signal.SIGSTOP)
        try:
            deadline = time.time() + 15
            status, body = 200, ""
            while time.time() < deadline:
                status, body = http_get(base + "/healthz")
                if status == 503:
                    break
                time.sleep(0.1)
            self.assertEqual(status, 503, body)
            verdict = json.loads(body)
            self.assertEqual(verdict["status"], "unhealthy")
            self.assertEqual(verdict["shards"][0]["shard"], 0)
            metrics = http_get(base + "/metrics")[1]
            self.assertRegex(metrics, r'shardring_shard_state\{shard="0"\} [0-35-7]\n')
        finally:
            os.kill(self.gw.proc.pid, signal.SIGCONT)
        deadline = time.time() + 30
        while time.time() < deadline and http_get(base + "/healthz")[0] != 200:
            time.sleep(0.2)
        self.assertEqual(http_get(base + "/healthz")[0], 200)
        self.assertEqual(http_get(base + "/nothing")[0], 404)


class ServiceManager(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-notify-")
        self.sock_path = os.path.join(self.tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(0.05)
        self.gw = Gateway("--shards", 2, "--rate", 50, "--max-concurrency", 2,
                          "--identify-window-ms", 20, tmp=self.tmp)

    def tearDown(self):
        self.sock.close()
        if self.gw.proc.poll() is None:
            self.gw.stop()

    def messages(self, seconds):
        """(time, message) datagrams received for `seconds`."""
        out = []
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                out.append((time.time(), self.sock.recv(4096).decode()))
            except socket.timeout:
                pass
        return out

    def env(self, watchdog_us):
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path, WATCHDOG_USEC=str(watchdog_us))
        env.pop("WATCHDOG_PID", None)
        return env

    def test_ready_status_watchdog_and_stopping_in_order(self):
        r = Run(self.tmp, "--gateway", f"ws://127.0.0.1:{self.gw.port}", "--total-shards", 2,
                "--max-concurrency", 2, "--identify-window-ms", 30, "--sink", "null",
                env=self.env(400_000))
        got = self.messages(3)
        r.stop()
        got += self.messages(0.5)
        kinds = [m.split("=", 1)[0] for _, m in got]
        self.assertIn("READY", kinds, got)
        self.assertEqual(kinds.count("READY"), 1)
        self.assertEqual(kinds[-1], "STOPPING", got[-3:])
        ready = kinds.index("READY")
        self.assertIn("STATUS", kinds[ready:])
        self.assertIn("WATCHDOG", kinds[ready:])
        status = [m for _, m in got if m.startswith("STATUS=")][-1]
        self.assertRegex(status, r"^STATUS=2/2 shards ready, \d+ events/s$")
        pings = [t for t, m in got if m == "WATCHDOG=1"]
        self.assertGreaterEqual(len(pings), 8)  # every 200 ms for 3 s
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 0.4, gaps)  # never a whole interval without one

    def test_a_stalled_core_loop_stops_the_watchdog_pings(self):
        """Handlers on the I/O thread (--consumers 0) writing to a pipe that
        nobody reads: once the pipe is full the core thread blocks in
        write(2), its loop stops turning, and the pings stop while the
        process lives on."""
        r_fd, w_fd = os.pipe()
        r = Run(self.tmp, "--gateway", f"ws://127.0.0.1:{self.gw.port}", "--total-shards", 2,
                "--max-concurrency", 2, "--identify-window-ms", 30, "--threads", 1,
                "--consumers", 0, "--sink", "ndjson", env=self.env(400_000), stdout=w_fd)
        os.close(w_fd)
        try:
            got = self.messages(5)
            pings = [t for t, m in got if m == "WATCHDOG=1"]
            self.assertTrue(pings, got)
            self.assertIsNone(r.proc.poll(), "the process should live on, stalled")
            self.assertGreater(time.time() - pings[-1], 1.5,
                               f"pings went on: last {time.time() - pings[-1]:.2f} s ago")
        finally:
            r.stop(signal.SIGKILL)
            os.close(r_fd)


class Commands(unittest.TestCase):
    def test_commands_from_a_fifo_reach_the_gateway_or_are_refused_with_the_reason(self):
        tmp = tempfile.mkdtemp(prefix="shardring-commands-")
        gw = Gateway("--shards", 2, "--rate", 10, "--max-concurrency", 2,
                     "--identify-window-ms", 20, tmp=tmp)
        fifo = os.path.join(tmp, "commands")
        os.mkfifo(fifo)
        r = Run(tmp, "--gateway", f"ws://127.0.0.1:{gw.port}", "--total-shards", 2,
                "--max-concurrency", 2, "--identify-window-ms", 30, "--sink", "null",
                "--commands", fifo,
                "--presence", '{"since":null,"activities":[],"status":"dnd","afk":false}')
        try:
            r.wait_for(r"shard=1 ready seq=")
            r.wait_for(r"shard=0 ready seq=")
            presence = '{"since":null,"activities":[],"status":"idle","afk":false}'
            members = '{"guild_id":"81384788765712384","query":"ab","limit":5,"nonce":"n1"}'
            lines = [
                '{"shard":1,"op":3,"d":%s}' % presence,
                '{"shard":0,"op":8,"d":%s}' % members,
                '{"shard":0,"op":2,"d":{"token":"x"}}',
                '{"shard":0,"op":3,"d":"%s"}' % ("x" * 5000),
                '{"shard":9,"op":3,"d":{}}',
                'not json',
            ]
            with open(fifo, "w") as f:
                f.write("\n".join(lines) + "\n")
            r.wait_for(r"(?s)(command refused.*){4}")
            deadline = time.time() + 10
            while time.time() < deadline and "received op 8" not in read(gw.log_path).decode():
                time.sleep(0.1)
            gw_log = read(gw.log_path).decode()
            self.assertIn("received op 3 " + presence.replace('"', '\\"'), gw_log)
            self.assertIn("received op 8 " + members.replace('"', '\\"'), gw_log)
            self.assertNotIn("received op 2", gw_log)
            text = r.text()
            self.assertEqual(text.count("command queued"), 2, text[-3000:])
            self.assertIn("heartbeat, identify and resume are the session's own", text)
            self.assertIn("over 4096 bytes", text)
            self.assertIn("not a shard of this process", text)
            self.assertIn("not a JSON object", text)
        finally:
            r.stop()
            gw.stop()


class Token(unittest.TestCase):
    def test_token_file_and_credentials_directory(self):
        tmp = tempfile.mkdtemp(prefix="shardring-token-")
        token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDe.token-file-secret"
        gw = Gateway("--shards", 1, "--rate", 10, "--token", token, tmp=tmp)
        try:
            path = os.path.join(tmp, "token")
            with open(path, "w") as f:
                f.write(token + "\n")
            base = [SHARDRING, "run", "--gateway", f"ws://127.0.0.1:{gw.port}",
                    "--total-shards", "1", "--sink", "null", "--duration", "1"]
            env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
            p = subprocess.run(base + ["--token-file", path], capture_output=True, timeout=30,
                               env=env)
            self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
            self.assertEqual(summary_of(p.stderr)["identifies"], 1)
            self.assertNotIn(token.encode(), p.stderr)
            p = subprocess.run(base, capture_output=True, timeout=30,
                               env=dict(env, CREDENTIALS_DIRECTORY=tmp))
            self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
            self.assertEqual(summary_of(p.stderr)["identifies"], 1)
            p = subprocess.run(base + ["--token-file", os.path.join(tmp, "missing")],
                               capture_output=True, timeout=30, env=env)
            self.assertEqual(p.returncode, 2)
            self.assertIn(b"--token-file: cannot read", p.stderr)
            # --log-level warn: no info lines, the summary still comes.
            p = subprocess.run(base + ["--token-file", path, "--log-level", "warn"],
                               capture_output=True, timeout=30, env=env)
            self.assertEqual(p.returncode, 0)
            self.assertNotIn(b" info ", p.stderr)
            summary_of(p.stderr)
        finally:
            gw.stop()


if __name__ == "__main__":
    unittest.main()
