#!/usr/bin/python3
"""End-to-end: `shardring run` against `shardring gateway`, real processes on
loopback. Checks what a user relies on: every dispatch the gateway sent is
written exactly once, in seq order per shard, `d` byte for byte; faults
(dropped connections, op 7, op 9, zombies, a TLS stream reset in the middle
of a record or of the handshake) end in resumes with nothing lost;
fatal close codes exit 3; bad flags exit 2; the token never appears in output.
"""
import collections
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SHARDRING = os.path.join(BIN, "shardring")
TOKEN = "MTA5OTUxMjIxMTA0MjgyODI4OA.Gx1x2x.secret-test-token_value"


class Gateway:
    def __init__(self, *flags, tmp, port=0, name="gateway"):
        self.stats_path = os.path.join(tmp, name + "-stats.json")
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [SHARDRING, "gateway", "--listen", f"127.0.0.1:{port}", "--threads", "1",
             "--stats-json", self.stats_path, *map(str, flags)],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        self.port = None
        while time.time() < deadline and self.port is None:
            with open(self.log_path, "rb") as f:
                m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.port is None:
            raise RuntimeError("gateway did not start: " + open(self.log_path).read())

    @property
    def api(self):
        return f"http://127.0.0.1:{self.port}/api/v10"

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        self.log.close()
        with open(self.stats_path) as f:
            return json.load(f)


def run_engine(gw, *flags, tmp, timeout=60, env_token=None):
    out_path = os.path.join(tmp, "events.ndjson")
    if os.path.exists(out_path):
        os.remove(out_path)  # the sink appends: each run starts from an empty file
    env = dict(os.environ)
    env.pop("DISCORD_TOKEN", None)
    if env_token:
        env["DISCORD_TOKEN"] = env_token
    args = [SHARDRING, "run", *map(str, flags)]
    if gw is not None:
        args += ["--api", gw.api]
    p = subprocess.run(args + ["--sink", "ndjson:" + out_path], capture_output=True,
                       timeout=timeout, env=env)
    lines = []
    if os.path.exists(out_path):
        with open(out_path, "rb") as f:
            lines = f.read().splitlines()
    return p, lines


def summary_of(stderr):
    for line in reversed(stderr.decode(errors="replace").splitlines()):
        if line.startswith("summary {"):
            return json.loads(line[len("summary "):])
    raise AssertionError("no summary line in stderr:\n" + stderr.decode(errors="replace")[-3000:])


class RunAgainstGateway(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-it-")

    def check_complete(self, lines, stats, shards, in_flight=0):
        """Every shard's delivered seqs are 1..last_seq of its latest session,
        each once, in order. `in_flight`: how many of the gateway's last events
        may still have been on the wire when the engine stopped reading."""
        per_shard = {}
        for raw in lines:
            ev = json.loads(raw)
            self.assertEqual(set(ev), {"shard", "seq", "t", "d"})
            per_shard.setdefault(ev["shard"], []).append(ev["seq"])
        self.assertEqual(sorted(per_shard), list(range(shards)))
        for shard, seqs in per_shard.items():
            # A new session (re-identify) restarts at 1; split on those.
            sessions, cur = [], []
            for s in seqs:
                if s == 1 and cur:
                    sessions.append(cur)
                    cur = []
                cur.append(s)
            sessions.append(cur)
            for sess in sessions:
                self.assertEqual(sess, list(range(1, len(sess) + 1)),
                                 f"shard {shard}: seqs not contiguous/unique")
            sent = stats["shards"][str(shard)]["last_seq"]
            self.assertLessEqual(sessions[-1][-1], sent)
            self.assertGreaterEqual(sessions[-1][-1], sent - in_flight,
                                    f"shard {shard}: delivered up to {sessions[-1][-1]}, gateway sent {sent}")

    def test_every_event_is_delivered_once_in_order(self):
        self.every_event_once()

    def test_inline_handlers_deliver_every_event_once_in_order_and_d_exact(self):
        # --consumers 0: the sink runs on the two I/O threads.
        self.every_event_once("--consumers", 0)
        self.check_d_exact("--consumers", 0)

    def every_event_once(self, *flags):
        gw = Gateway("--shards", 3, "--rate", 300, "--events", 400,
                     "--identify-window-ms", 50, tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 3, "--identify-window-ms", 60, "--threads", 2,
                              *flags, tmp=self.tmp)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        s = summary_of(p.stderr)
        self.assertEqual(s["events"], len(lines))
        self.assertEqual(s["shards"], 3)
        self.assertEqual(s["identifies"], 3)
        self.check_complete(lines, stats, 3)
        # 1 READY + guild creates + 400 events per shard
        self.assertEqual(len(lines), sum(v["last_seq"] for v in stats["shards"].values()))
        self.assertIn(b'"t":"READY"', lines[0])

    def check_d_exact(self, *engine_flags):
        """d as written by the sink is the mix's d byte for byte."""
        mix = os.path.join(self.tmp, "mix.jsonl")
        d = '{"content":"caf\\u00e9 \\ud83d\\ude00 😀  spaced  ","n":1.50E+3,"nested":[{"a":null}],"t":true}'
        with open(mix, "w") as f:
            f.write('{"op":0,"t":"MESSAGE_CREATE","d":' + d + '}\n')
        gw = Gateway("--shards", 1, "--rate", 100, "--events", 20, "--guilds-per-shard", 0,
                     "--mix", mix, tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 1.5, *engine_flags, tmp=self.tmp)
        gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        msgs = [l for l in lines if b'"t":"MESSAGE_CREATE"' in l]
        self.assertEqual(len(msgs), 20)
        for l in msgs:
            self.assertTrue(l.endswith(b',"d":' + d.encode() + b'}'), l)

    def test_d_is_written_byte_for_byte(self):
        self.check_d_exact()

    def test_dropped_connections_resume_without_loss_or_duplicates(self):
        gw = Gateway("--shards", 2, "--rate", 400, "--events", 600, "--close-every", 150,
                     "--identify-window-ms", 50, tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 5, "--identify-window-ms", 60, tmp=self.tmp)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        s = summary_of(p.stderr)
        self.assertGreaterEqual(s["resumes"], 2)
        self.assertEqual(s["identifies"], 2)
        self.check_complete(lines, stats, 2)

    def test_events_filter_delivers_only_what_was_asked_and_counts_every_seq(self):
        # --events drops unwanted dispatches after their envelope is read; their
        # seqs still count, so resumes replay nothing twice and skip nothing.
        for extra in ([], ["--validate-d"]):
            with self.subTest(extra=extra):
                gw = Gateway("--shards", 2, "--rate", 400, "--events", 400, "--close-every", 150,
                             "--identify-window-ms", 50, tmp=self.tmp)
                p, lines = run_engine(gw, "--duration", 4, "--identify-window-ms", 60,
                                      "--events", "MESSAGE_CREATE,TYPING_START", *extra,
                                      tmp=self.tmp)
                stats = gw.stop()
                self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
                s = summary_of(p.stderr)
                kinds = collections.Counter(json.loads(l)["t"] for l in lines)
                # READY and RESUMED are types like any other: not listed, not
                # delivered (the session still reads them).
                self.assertLessEqual(set(kinds), {"MESSAGE_CREATE", "TYPING_START"})
                self.assertGreater(kinds["MESSAGE_CREATE"], 0)
                self.assertGreaterEqual(s["resumes"], 2)
                self.assertEqual(s["identifies"], 2)
                self.assertEqual(s["events"], len(lines))
                self.assertGreater(s["filtered"], 0)
                # Each seq either delivered or dropped, once.
                per_shard = collections.defaultdict(list)
                for l in lines:
                    ev = json.loads(l)
                    per_shard[ev["shard"]].append(ev["seq"])
                for shard, seqs in per_shard.items():
                    self.assertEqual(seqs, sorted(set(seqs)), f"shard {shard}")
                self.assertEqual(len(lines) + s["filtered"],
                                 sum(v["last_seq"] for v in stats["shards"].values()))

    def test_op7_reconnect_resumes(self):
        # Each op 7 cycle is 0.7 s plus a jittered wait of up to kBackoffBase
        # (1 s) before reconnecting: 5 s leaves room for two even when slow.
        gw = Gateway("--shards", 1, "--rate", 200, "--events", 600, "--reconnect-every", 0.7,
                     "--identify-window-ms", 50, tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 5, tmp=self.tmp)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0)
        s = summary_of(p.stderr)
        self.assertGreaterEqual(s["resumes"], 2)
        self.check_complete(lines, stats, 1)

    def test_zombie_connection_is_closed_and_resumed(self):
        gw = Gateway("--shards", 1, "--rate", 50, "--events", 150, "--heartbeat-ms", 1000,
                     "--no-ack-after", 1, tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 4.5, tmp=self.tmp)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0)
        s = summary_of(p.stderr)
        self.assertGreaterEqual(s["zombies"], 1)
        self.assertGreaterEqual(s["resumes"], 1)
        self.check_complete(lines, stats, 1)

    def test_fragmented_messages_and_one_byte_segments_change_nothing(self):
        for flags in (["--fragment", 37], ["--segment", 1, "--rate", 40, "--events", 30]):
            with self.subTest(flags=flags):
                args = ["--shards", 1, "--rate", 200, "--events", 150, "--guilds-per-shard", 1]
                gw = Gateway(*args, *flags, tmp=self.tmp)
                p, lines = run_engine(gw, "--duration", 2.5, tmp=self.tmp)
                stats = gw.stop()
                self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
                self.assertEqual(summary_of(p.stderr)["protocol_errors"], 0)
                self.check_complete(lines, stats, 1)

    def test_a_2_mib_event_arrives_whole(self):
        mix = os.path.join(self.tmp, "big.jsonl")
        big = '{"members":[' + ",".join('{"user":{"id":"%d","username":"member-%d"}}' % (i, i)
                                        for i in range(50000)) + ']}'
        self.assertGreater(len(big), 2 << 20)
        with open(mix, "w") as f:
            f.write('{"op":0,"t":"GUILD_MEMBERS_CHUNK","d":' + big + '}\n')
        gw = Gateway("--shards", 1, "--rate", 4, "--events", 3, "--guilds-per-shard", 0,
                     "--mix", mix, tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 2.5, tmp=self.tmp)
        gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        chunks = [l for l in lines if b'"t":"GUILD_MEMBERS_CHUNK"' in l]
        self.assertEqual(len(chunks), 3)
        for l in chunks:
            self.assertTrue(l.endswith(b',"d":' + big.encode() + b'}'))

    def test_invalid_session_true_resumes(self):
        gw = Gateway("--shards", 1, "--rate", 200, "--events", 400, "--invalid-session-every", 0.6,
                     tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 3, tmp=self.tmp)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0)
        self.assertGreaterEqual(summary_of(p.stderr)["resumes"], 1)
        self.check_complete(lines, stats, 1)

    def test_close_codes_decide_resume_identify_or_exit(self):
        # (code, expected: resume / identify / fatal)
        cases = [(4000, "resume"), (4001, "resume"), (4002, "resume"), (4008, "resume"),
                 (4007, "identify"), (4009, "identify"),
                 (4010, "fatal"), (4011, "fatal"), (4012, "fatal"), (4013, "fatal"), (4014, "fatal")]
        for code, want in cases:
            with self.subTest(code=code):
                gw = Gateway("--shards", 1, "--rate", 100, "--events", 120, "--close-code", code,
                             "--close-after", 40, "--identify-window-ms", 10, tmp=self.tmp)
                p, lines = run_engine(gw, "--duration", 2.5 if want != "fatal" else 10,
                                      "--identify-window-ms", 20, tmp=self.tmp)
                stats = gw.stop()
                s = summary_of(p.stderr)
                if want == "fatal":
                    self.assertEqual(p.returncode, 3)
                    self.assertIn(str(code).encode(), p.stderr)
                    continue
                self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
                if want == "resume":
                    self.assertGreaterEqual(s["resumes"], 1)
                    self.assertEqual(s["identifies"], 1)
                    self.check_complete(lines, stats, 1)
                else:
                    self.assertGreaterEqual(s["identifies"], 2)

    def test_authentication_failure_exits_3_and_names_the_code(self):
        gw = Gateway("--shards", 1, "--token", "right-token", tmp=self.tmp)
        p, _ = run_engine(gw, "--gateway", f"ws://127.0.0.1:{gw.port}", "--total-shards", 1,
                          "--duration", 10, tmp=self.tmp, env_token=TOKEN)
        gw.stop()
        self.assertEqual(p.returncode, 3, p.stderr.decode()[-2000:])
        self.assertIn(b"4004", p.stderr)
        self.assertTrue(p.stderr.splitlines()[-1].startswith(b"summary {"))

    def test_rest_401_exits_3(self):
        gw = Gateway("--shards", 1, "--token", "right-token", tmp=self.tmp)
        p, _ = run_engine(gw, "--duration", 5, tmp=self.tmp, env_token=TOKEN)
        gw.stop()
        self.assertEqual(p.returncode, 3, p.stderr.decode()[-2000:])
        self.assertIn(b"401", p.stderr)

    def test_the_token_never_appears_in_any_output(self):
        # Under each fault the gateway can make: dropped connections, op 7,
        # op 9, zombies (no ACK after the first beat of 500 ms), split frames; the
        # token goes out in every IDENTIFY and RESUME.
        faults = [("--close-every", 40), ("--reconnect-every", 0.5),
                  ("--invalid-session-every", 0.5), ("--no-ack-after", 1, "--heartbeat-ms", 500),
                  ("--fragment", 16, "--segment", 7)]
        for fault in faults:
            with self.subTest(fault[0]):
                gw = Gateway("--shards", 2, "--token", TOKEN, "--rate", 100,
                             "--identify-window-ms", 50, *fault, tmp=self.tmp)
                p, lines = run_engine(gw, "--duration", 3, "--identify-window-ms", 60,
                                      "--log-format", "json", tmp=self.tmp, env_token=TOKEN)
                gw.stop()
                self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
                self.assertTrue(lines)
                for stream in (p.stdout, p.stderr, b"\n".join(lines)):
                    self.assertNotIn(TOKEN.encode(), stream)
                    self.assertNotIn(TOKEN.split(".")[-1].encode(), stream)
                for line in p.stderr.splitlines():
                    json.loads(line)  # --log-format json: every stderr line is JSON
                summary = json.loads(p.stderr.splitlines()[-1])
                self.assertEqual(summary["msg"], "summary")
                if fault[0] == "--no-ack-after":
                    self.assertGreater(summary["zombies"], 0)
                elif fault[0] != "--fragment":
                    self.assertGreater(summary["resumes"], 0)

    def test_bad_flags_exit_2_naming_the_flag(self):
        for flags, name in ((["--threads", "0"], b"--threads"), (["--bogus"], b"--bogus"),
                            (["--sink", "kafka"], b"--sink")):
            p = subprocess.run([SHARDRING, "run", *flags], capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2)
            self.assertIn(name, p.stderr)

    def test_sigterm_stops_cleanly_within_two_seconds(self):
        gw = Gateway("--shards", 4, "--rate", 100, "--identify-window-ms", 10, tmp=self.tmp)
        out_path = os.path.join(self.tmp, "events.ndjson")
        proc = subprocess.Popen([SHARDRING, "run", "--api", gw.api, "--identify-window-ms", "20",
                                 "--sink", "ndjson:" + out_path], stderr=subprocess.PIPE)
        time.sleep(1.5)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        elapsed = time.time() - t0
        stats = gw.stop()
        self.assertEqual(proc.returncode, 0)
        self.assertLess(elapsed, 2.0)
        s = summary_of(err)
        with open(out_path, "rb") as f:
            lines = f.read().splitlines()
        self.assertEqual(s["events"], len(lines))
        self.check_complete(lines, stats, 4, in_flight=50)


def make_pki(tmp):
    """A CA and a server certificate for 127.0.0.1 and localhost, made now
    (no checked-in certificate can expire under the tests)."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=shardring test CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(tmp, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "other.key", "-out", "other.csr", "-subj", "/CN=other.invalid")
    with open(os.path.join(tmp, "other.ext"), "w") as f:
        f.write("subjectAltName=DNS:other.invalid\n")
    ossl("x509", "-req", "-in", "other.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "other.pem", "-days", "2", "-extfile", "other.ext")
    return (os.path.join(tmp, "ca.pem"), os.path.join(tmp, "server.pem"),
            os.path.join(tmp, "server.key"))


class GatewayKilled(unittest.TestCase):
    def test_the_gateway_killed_and_restarted_costs_a_reidentify_and_nothing_else(self):
        """SIGKILL the gateway mid-stream, start a new one on the same port: the
        engine stays up, its resumes are refused by the new gateway (op 9: it
        knows no sessions), every shard identifies anew and receives again;
        each session's seqs are contiguous, none twice."""
        tmp = tempfile.mkdtemp(prefix="shardring-killed-")
        flags = ("--shards", 3, "--rate", 200, "--identify-window-ms", 50)
        gw = Gateway(*flags, tmp=tmp)
        out_path = os.path.join(tmp, "events.ndjson")
        p = subprocess.Popen([SHARDRING, "run", "--api", gw.api, "--identify-window-ms", "60",
                              "--duration", "12", "--sink", "ndjson:" + out_path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(2)
        gw.proc.kill()
        gw.proc.wait(timeout=10)
        gw.log.close()
        time.sleep(1)
        gw2 = Gateway(*flags, tmp=tmp, port=gw.port, name="gateway2")
        _, stderr = p.communicate(timeout=60)
        stats = gw2.stop()
        self.assertEqual(p.returncode, 0, stderr.decode()[-2000:])
        s = summary_of(stderr)
        self.assertEqual(s["identifies"], 6, stderr.decode()[-2000:])
        self.assertGreaterEqual(s["reconnects"], 3)
        with open(out_path, "rb") as f:
            lines = f.read().splitlines()
        per_shard = {}
        for raw in lines:
            ev = json.loads(raw)
            per_shard.setdefault(ev["shard"], []).append(ev["seq"])
        self.assertEqual(sorted(per_shard), [0, 1, 2])
        for shard, seqs in per_shard.items():
            cut = seqs.index(1, 1)  # the second session starts again at 1
            first, second = seqs[:cut], seqs[cut:]
            self.assertEqual(first, list(range(1, len(first) + 1)))
            self.assertEqual(second, list(range(1, len(second) + 1)))
            self.assertGreater(len(first), 100)
            self.assertGreater(len(second), 50)
            self.assertLessEqual(second[-1], stats["shards"][str(shard)]["last_seq"])


class RunWithCompression(unittest.TestCase):
    """`run --compress zlib-stream|zstd-stream` against the gateway's own
    deflate/zstd streams: every event once, in order, d byte for byte, across
    dropped connections (each a new stream) and with payloads split across
    messages (zlib) or WebSocket fragments (zstd)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-compress-")

    def check(self, mode, *gateway_flags):
        gw = Gateway("--shards", 2, "--rate", 300, "--events", 500, "--close-every", 200,
                     "--identify-window-ms", 50, *gateway_flags, tmp=self.tmp)
        p, lines = run_engine(gw, "--duration", 4, "--identify-window-ms", 60, "--compress", mode,
                              tmp=self.tmp)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        s = summary_of(p.stderr)
        self.assertEqual(s["protocol_errors"], 0, p.stderr.decode()[-2000:])
        self.assertGreaterEqual(s["resumes"], 2)
        RunAgainstGateway.check_complete(self, lines, stats, 2)
        # The large GUILD_CREATE (several hundred KB) came through whole.
        self.assertTrue(any(b'"large":true' in l for l in lines))
        return lines

    def test_zlib_stream(self):
        self.check("zlib-stream")

    def test_zstd_stream(self):
        self.check("zstd-stream")

    def test_zlib_stream_payloads_split_across_messages(self):
        self.check("zlib-stream", "--fragment", 7)

    def test_zstd_stream_payloads_in_fragments(self):
        self.check("zstd-stream", "--fragment", 7)

    def test_the_same_bytes_as_without_compression(self):
        for mode in ("zlib-stream", "zstd-stream"):
            with self.subTest(mode):
                RunAgainstGateway.check_d_exact(self, "--compress", mode)


class RunOverTls(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-tls-")
        self.ca, self.cert, self.key = make_pki(self.tmp)

    def test_wss_end_to_end_with_a_private_ca(self):
        gw = Gateway("--shards", 2, "--rate", 200, "--events", 300, "--identify-window-ms", 50,
                     "--close-every", 120, "--tls-cert", self.cert, "--tls-key", self.key,
                     tmp=self.tmp)
        p, lines = run_engine(None, "--api", f"https://127.0.0.1:{gw.port}/api/v10",
                              "--ca-file", self.ca, "--duration", 4, "--identify-window-ms", 60,
                              tmp=self.tmp)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        s = summary_of(p.stderr)
        self.assertGreaterEqual(s["resumes"], 2)
        RunAgainstGateway.check_complete(self, lines, stats, 2)
        # Reconnects resume TLS from the ticket of the last connection (the
        # first handshake of each shard is full), and both ends agree.
        self.assertGreaterEqual(s["tls_handshakes"], 2 + s["resumes"])
        self.assertGreaterEqual(s["tls_resumed"], s["resumes"])
        self.assertGreaterEqual(stats["tls_resumed"], s["tls_resumed"])

    def test_an_unknown_ca_is_refused_with_a_clear_log_and_no_crash(self):
        gw = Gateway("--shards", 1, "--tls-cert", self.cert, "--tls-key", self.key, tmp=self.tmp)
        p, lines = run_engine(None, "--gateway", f"wss://127.0.0.1:{gw.port}", "--total-shards", 1,
                              "--duration", 2.5, tmp=self.tmp)
        gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        self.assertEqual(lines, [])
        self.assertIn(b"TLS handshake failed", p.stderr)
        self.assertEqual(summary_of(p.stderr)["events"], 0)

    def test_a_wrong_hostname_is_refused(self):
        gw = Gateway("--shards", 1, "--tls-cert", os.path.join(self.tmp, "other.pem"),
                     "--tls-key", os.path.join(self.tmp, "other.key"), tmp=self.tmp)
        p, lines = run_engine(None, "--gateway", f"wss://127.0.0.1:{gw.port}", "--total-shards", 1,
                              "--ca-file", self.ca, "--duration", 2, tmp=self.tmp)
        gw.stop()
        self.assertEqual(lines, [])
        self.assertIn(b"TLS handshake failed", p.stderr)


class CuttingProxy(threading.Thread):
    """TCP proxy in front of a TLS gateway. Connection k (from 0) is cut as
    cuts[k] says: ("record", n) forwards the gateway's bytes until n
    application-data records went through, then half of the next record,
    then resets both sides; ("handshake", _) forwards the client's hello and
    half of the gateway's first record, then resets. Later connections pass
    everything."""

    def __init__(self, upstream_port, cuts):
        super().__init__(daemon=True)
        self.upstream = upstream_port
        self.cuts = list(cuts)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.cut_at = []  # (kind, bytes of the record forwarded, its length)

    @staticmethod
    def reset(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def pump(self, src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        finally:
            self.reset(dst)
            self.reset(src)

    def run(self):
        k = 0
        while True:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            cut = self.cuts[k] if k < len(self.cuts) else None
            k += 1
            threading.Thread(target=self.pump, args=(client, server), daemon=True).start()
            if cut is None:
                threading.Thread(target=self.pump, args=(server, client), daemon=True).start()
            else:
                threading.Thread(target=self.cut, args=(server, client, cut), daemon=True).start()

    def cut(self, server, client, cut):
        kind, n = cut
        buf, seen = b"", 0
        try:
            while True:
                while len(buf) < 5 or len(buf) < 5 + struct.unpack("!H", buf[3:5])[0]:
                    b = server.recv(65536)
                    if not b:
                        raise EOFError
                    buf += b
                size = 5 + struct.unpack("!H", buf[3:5])[0]
                app = buf[0] == 23
                if kind == "handshake" or (app and seen >= n):
                    client.sendall(buf[:size // 2])  # header and half the record
                    self.cut_at.append((kind, size // 2, size))
                    time.sleep(0.2)
                    break
                client.sendall(buf[:size])
                buf = buf[size:]
                seen += app
        except (OSError, EOFError):
            pass
        # The other pump thread is blocked reading `client`: a close would not
        # reach the wire until that read returns. SHUT_RD wakes it without
        # sending anything; with linger 0 its close then sends the reset.
        for sock in (client, server):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass


class TlsConnectionCut(unittest.TestCase):
    """The TLS stream cut by a reset in the middle of a record (after READY
    and some events) and in the middle of the handshake: the engine logs it,
    reconnects, resumes (or identifies when it never had a session), and
    every event arrives once, in order."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shardring-tlscut-")
        self.ca, self.cert, self.key = make_pki(self.tmp)

    def run_through(self, cuts):
        gw = Gateway("--shards", 1, "--rate", 200, "--events", 400, "--identify-window-ms", 20,
                     "--tls-cert", self.cert, "--tls-key", self.key, tmp=self.tmp)
        proxy = CuttingProxy(gw.port, cuts)
        proxy.start()
        p, lines = run_engine(None, "--gateway", f"wss://127.0.0.1:{proxy.port}",
                              "--total-shards", 1, "--ca-file", self.ca, "--duration", 5,
                              "--identify-window-ms", 30, tmp=self.tmp)
        stats = gw.stop()
        proxy.lsock.close()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        self.assertEqual(len(proxy.cut_at), len(cuts), proxy.cut_at)
        RunAgainstGateway.check_complete(self, lines, stats, 1)
        return summary_of(p.stderr), p.stderr.decode(errors="replace")

    def test_a_reset_in_the_middle_of_a_tls_record_resumes_without_loss(self):
        # (The resume goes to READY's resume_gateway_url, the gateway itself.)
        s, err = self.run_through([("record", 20)])
        self.assertGreaterEqual(s["resumes"], 1, err[-2000:])
        self.assertIn("reset by peer", err)
        self.assertEqual(s["identifies"], 1)

    def test_a_reset_in_the_middle_of_the_tls_handshake_retries(self):
        s, err = self.run_through([("handshake", 0)])
        self.assertEqual(s["identifies"], 1, err[-2000:])
        self.assertIn("shard=0", err)


class ManyShards(unittest.TestCase):
    def test_2000_shards_in_one_process_identify_heartbeat_and_receive(self):
        # Sanitizer builds run 5-20x slower: the same test at a tenth the size.
        n = 200 if os.environ.get("SHARDRING_SANITIZED") else 2000
        tmp = tempfile.mkdtemp(prefix="shardring-2k-")
        gw = Gateway("--shards", n, "--rate", 1, "--guilds-per-shard", 1, "--heartbeat-ms", 2000,
                     "--max-concurrency", 100, "--identify-window-ms", 100, tmp=tmp)
        p, lines = run_engine(None, "--gateway", f"ws://127.0.0.1:{gw.port}", "--total-shards", n,
                              "--max-concurrency", 100, "--identify-window-ms", 110,
                              "--duration", 9, "--threads", 2, tmp=tmp, timeout=120)
        stats = gw.stop()
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        s = summary_of(p.stderr)
        # Identifies that reach the gateway inside another's window (timing
        # under load) get op 9 and are retried; each shard ends with one session.
        self.assertGreaterEqual(s["identifies"], n)
        self.assertEqual(s["zombies"], 0)
        ready = {json.loads(l)["shard"] for l in lines if b'"t":"READY"' in l}
        self.assertEqual(len(ready), n)
        got_events = {json.loads(l)["shard"] for l in lines if b'"t":"GUILD_CREATE"' not in l
                      and b'"t":"READY"' not in l}
        self.assertGreater(len(got_events), n * 95 // 100)
        self.assertEqual(stats["identifies"], n)


if __name__ == "__main__":
    unittest.main(verbosity=2)
