#!/usr/bin/python3
"""`shardring run` against scripted hostile gateways written here with raw
sockets. HostileFrames: after READY the server sends one bad frame; the
engine must answer with a close frame carrying the right RFC 6455 code, drop
that connection, come back and RESUME the session (a resumable close), and
not crash. ConnectionFaults: the connection ends mid-frame (FIN or RST) or
mid-upgrade, the upgrade answer is garbage, pings flood in (read or never
read). SetUpLimit: connections set up a bounded number at a time.
NoNetwork: DNS failure in a network namespace with nothing in it."""
import base64
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SHARDRING = os.path.join(BIN, "shardring")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload, fin=True, rsv=0, mask=False):
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if mask:
        key = b"\x01\x02\x03\x04"
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        head += key
    return head + payload


def text(obj):
    return frame(1, json.dumps(obj).encode())


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def handshake(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")

    def read_frame(self):
        b0, b1 = self.read_exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8))[0]
        key = self.read_exact(4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ key[i % 4] for i, c in enumerate(self.read_exact(n)))
        return b0 & 0x0F, data


class HostileGateway(threading.Thread):
    """Connection 1: HELLO, IDENTIFY -> READY + 3 events, then `bad` bytes;
    records the client's close code. Connection 2: expects RESUME."""

    def __init__(self, bad, compress=False):
        super().__init__(daemon=True)
        self.bad = bad
        self.compress = compress  # zlib-stream: every payload on one deflate stream
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.lsock.settimeout(15)
        self.port = self.lsock.getsockname()[1]
        self.close_code = None
        self.second = None
        self.error = None

    def payload(self, stream, obj):
        if stream is None:
            return text(obj)
        return frame(2, stream.compress(json.dumps(obj).encode()) + stream.flush(zlib.Z_SYNC_FLUSH))

    def run(self):
        try:
            s, _ = self.lsock.accept()
            c = Conn(s)
            c.handshake()
            z = zlib.compressobj() if self.compress else None
            s.sendall(self.payload(z, {"op": 10, "d": {"heartbeat_interval": 30000}, "s": None, "t": None}))
            op, data = c.read_frame()
            assert json.loads(data)["op"] == 2, data
            s.sendall(self.payload(z, {"op": 0, "s": 1, "t": "READY", "d": {
                "v": 10, "session_id": "abc123", "resume_gateway_url": f"ws://127.0.0.1:{self.port}",
                "user": {"id": "1"}, "guilds": []}}))
            for seq in (2, 3, 4):
                s.sendall(self.payload(z, {"op": 0, "s": seq, "t": "MESSAGE_CREATE", "d": {"n": seq}}))
            s.sendall(self.bad(z) if callable(self.bad) else self.bad)
            s.settimeout(5)
            while True:
                op, data = c.read_frame()
                if op == 8:
                    self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    break
            s.close()
            s2, _ = self.lsock.accept()
            c2 = Conn(s2)
            c2.handshake()
            z2 = zlib.compressobj() if self.compress else None  # a new connection, a new stream
            s2.sendall(self.payload(z2, {"op": 10, "d": {"heartbeat_interval": 30000}}))
            s2.settimeout(5)
            op, data = c2.read_frame()
            self.second = json.loads(data)
            s2.sendall(self.payload(z2, {"op": 0, "s": 5, "t": "RESUMED", "d": {}}))
            time.sleep(0.5)
            s2.close()
        except Exception as e:  # reported by the test
            self.error = repr(e)


class HostileFrames(unittest.TestCase):
    CASES = [
        ("a masked frame from the server", frame(1, b'{"op":11}', mask=True), 1002),
        ("RSV1 without an extension", frame(1, b'{"op":11}', rsv=0x40), 1002),
        ("a reserved opcode", frame(3, b"x"), 1002),
        ("a fragmented ping", frame(9, b"x", fin=False), 1002),
        ("a ping over 125 bytes", frame(9, b"x" * 126), 1002),
        ("a continuation with no message", frame(0, b"x"), 1002),
        ("invalid UTF-8 in a text frame", frame(1, b'{"op":0,"d":"\xff\xfe"}'), 1007),
        ("a close code that may not be sent", frame(8, struct.pack("!H", 1005)), 1002),
        ("invalid JSON", frame(1, b'{"op":0,"s":5,"t":"X","d":{]}'), 1007),
        # Only the header and a little of a 9 MiB frame: the limit is 8 MiB.
        ("a message over the size limit", frame(1, b"[" + b"1," * (9 << 19))[:4096], 1009),
    ]

    # zlib-stream (`run --compress zlib-stream`): a broken stream closes and
    # the next connection resumes on a new stream.
    COMPRESSED_CASES = [
        ("garbage inside the deflate stream",
         lambda z: frame(2, b"\xde\xad\xbe\xef not deflate \x00\x00\xff\xff"), 1007),
        ("a decompression bomb (64 MiB of one byte)",
         lambda z: frame(2, z.compress(b'{"op":0,"s":5,"t":"X","d":"' + b"a" * (64 << 20) + b'"}')
                         + z.flush(zlib.Z_SYNC_FLUSH)), 1009),
        ("a payload that is not JSON, well compressed",
         lambda z: frame(2, z.compress(b'{"op":0,"s":5,"d":{]}') + z.flush(zlib.Z_SYNC_FLUSH)), 1007),
    ]

    def run_case(self, bad, want, compress, flags=(), duration=2.5):
        gw = HostileGateway(bad, compress=compress)
        gw.start()
        out = os.path.join(tempfile.mkdtemp(), "events.ndjson")
        p = subprocess.run(
            [SHARDRING, "run", "--gateway", f"ws://127.0.0.1:{gw.port}", "--total-shards", "1",
             "--duration", str(duration), "--sink", "ndjson:" + out,
             "--compress", "zlib-stream" if compress else "none", *flags],
            capture_output=True, timeout=30)
        gw.join(10)
        self.assertIsNone(gw.error, gw.error)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        self.assertEqual(gw.close_code, want, p.stderr.decode()[-1500:])
        self.assertIsNotNone(gw.second, "the shard did not come back")
        self.assertEqual(gw.second["op"], 6, gw.second)  # RESUME, not IDENTIFY
        self.assertEqual(gw.second["d"]["session_id"], "abc123")
        self.assertEqual(gw.second["d"]["seq"], 4)
        with open(out, "rb") as f:
            seqs = [json.loads(l)["seq"] for l in f.read().splitlines()]
        self.assertEqual(seqs, [1, 2, 3, 4, 5])

    def test_a_broken_compressed_stream_closes_with_the_right_code_and_the_shard_resumes(self):
        for name, bad, want in self.COMPRESSED_CASES:
            with self.subTest(name):
                # A bomb takes a while to detect under sanitizers.
                self.run_case(bad, want, compress=True, duration=4)

    def test_invalid_json_deep_in_d_is_refused_with_validate_d(self):
        # Without --validate-d only d's top level is checked; with it, all of d.
        bad = frame(1, b'{"op":0,"s":5,"t":"X","d":{"a":{"b":[1 2]}}}')
        self.run_case(bad, 1007, compress=False, flags=("--validate-d",))

    def test_each_hostile_frame_closes_with_the_right_code_and_the_shard_resumes(self):
        for name, bad, want in self.CASES:
            with self.subTest(name):
                self.run_case(bad, want, compress=False)


HELLO = {"op": 10, "d": {"heartbeat_interval": 30000}, "s": None, "t": None}


def rst(sock):
    """Close with a TCP reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class ScriptedGateway(threading.Thread):
    """Runs one script per accepted connection, in order: script(conn, gw).
    What the client sent first on each connection is kept in `first`."""

    def __init__(self, *scripts):
        super().__init__(daemon=True)
        self.scripts = scripts
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.lsock.settimeout(15)
        self.port = self.lsock.getsockname()[1]
        self.first = []
        self.notes = {}
        self.error = None

    def run(self):
        try:
            for script in self.scripts:
                s, _ = self.lsock.accept()
                s.settimeout(10)
                script(Conn(s), self)
        except Exception as e:  # reported by the test
            self.error = repr(e)
        finally:
            self.lsock.close()

    # Building blocks of a connection's script.
    def open(self, c):
        c.handshake()
        c.sock.sendall(text(HELLO))
        op, data = c.read_frame()
        self.first.append(json.loads(data))

    def ready_and_events(self, c, last=4):
        c.sock.sendall(text({"op": 0, "s": 1, "t": "READY", "d": {
            "v": 10, "session_id": "abc123", "resume_gateway_url": f"ws://127.0.0.1:{self.port}",
            "user": {"id": "1"}, "guilds": []}}))
        for seq in range(2, last + 1):
            c.sock.sendall(text({"op": 0, "s": seq, "t": "MESSAGE_CREATE", "d": {"n": seq}}))

    def resumed(self, c, seq=5):
        c.sock.sendall(text({"op": 0, "s": seq, "t": "RESUMED", "d": {}}))
        time.sleep(0.5)
        c.sock.close()

    # Whole scripts for the connection after a fault.
    @staticmethod
    def resumes(seq=5):
        """HELLO, take what the client sends (a RESUME), RESUMED as `seq`."""
        def script(c, gw):
            gw.open(c)
            gw.resumed(c, seq)
        return script

    @staticmethod
    def identifies():
        """HELLO, take what the client sends (an IDENTIFY), READY and 2-4."""
        def script(c, gw):
            gw.open(c)
            gw.ready_and_events(c)
            time.sleep(0.5)
            c.sock.close()
        return script


class ConnectionFaults(unittest.TestCase):
    """Faults of the transport rather than of a frame: the connection ends in
    the middle of a frame or of the upgrade, the upgrade answer is garbage, the
    gateway floods pings. The shard comes back each time (RESUME when it had a
    session, IDENTIFY when it never got one) and every event arrives once."""

    def run_engine(self, gw, duration=3, flags=()):
        out = os.path.join(tempfile.mkdtemp(), "events.ndjson")
        p = subprocess.run(
            [SHARDRING, "run", "--gateway", f"ws://127.0.0.1:{gw.port}", "--total-shards", "1",
             "--duration", str(duration), "--sink", "ndjson:" + out, *flags],
            capture_output=True, timeout=60)
        gw.join(15)
        self.assertIsNone(gw.error, gw.error)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        with open(out, "rb") as f:
            seqs = [json.loads(l)["seq"] for l in f.read().splitlines()]
        return p.stderr.decode(errors="replace"), seqs

    def check_resumed(self, gw, seqs, last=4):
        self.assertEqual([f["op"] for f in gw.first], [2, 6], gw.first)  # IDENTIFY, then RESUME
        self.assertEqual(gw.first[1]["d"]["seq"], last)
        self.assertEqual(seqs, list(range(1, last + 2)))

    def ends_mid_frame(self, end):
        def first(c, gw):
            gw.open(c)
            gw.ready_and_events(c)
            whole = text({"op": 0, "s": 5, "t": "MESSAGE_CREATE", "d": {"n": "x" * 300}})
            c.sock.sendall(whole[:40])  # header and part of the payload
            time.sleep(0.2)
            end(c.sock)

        gw = ScriptedGateway(first, ScriptedGateway.resumes())
        gw.start()
        _, seqs = self.run_engine(gw, duration=5)
        self.check_resumed(gw, seqs)

    def test_a_fin_in_the_middle_of_a_frame_resumes(self):
        self.ends_mid_frame(lambda s: s.close())

    def test_a_reset_in_the_middle_of_a_frame_resumes(self):
        self.ends_mid_frame(rst)

    def fails_upgrade_then_identifies(self, answer):
        def first(c, gw):
            while b"\r\n\r\n" not in c.buf:
                c.buf += c.sock.recv(4096)
            answer(c.sock)

        gw = ScriptedGateway(first, ScriptedGateway.identifies())
        gw.start()
        err, seqs = self.run_engine(gw, duration=6)
        self.assertEqual([f["op"] for f in gw.first], [2], gw.first)  # no session yet: IDENTIFY
        self.assertEqual(seqs[:4], [1, 2, 3, 4])
        return err

    def test_a_reset_in_the_middle_of_the_upgrade_answer_retries(self):
        def answer(sock):
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgr")
            time.sleep(0.1)
            rst(sock)
        self.fails_upgrade_then_identifies(answer)

    def test_garbage_before_the_upgrade_answer_retries(self):
        def answer(sock):
            sock.sendall(b"\x00\xff\x16\x03\x01 not http at all\r\n\r\n")
            time.sleep(0.3)
            sock.close()
        err = self.fails_upgrade_then_identifies(answer)
        self.assertIn("upgrade", err.lower())

    def test_garbage_inside_the_upgrade_answer_retries(self):
        def answer(sock):
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: \x00\x01garbage\xff\r\n\r\n")
            time.sleep(0.3)
            sock.close()
        self.fails_upgrade_then_identifies(answer)

    def test_the_engine_waits_for_the_servers_close_before_closing_tcp(self):
        # RFC 6455 7.1.1: the client that sent a close waits for the server's
        # close (the server closes TCP first), up to kCloseLinger.
        def first(c, gw):
            gw.open(c)
            gw.ready_and_events(c)
            c.sock.settimeout(15)
            while True:
                op, data = c.read_frame()
                if op == 8:
                    gw.notes["code"] = struct.unpack("!H", data[:2])[0]
                    break
            time.sleep(0.3)
            c.sock.setblocking(False)
            try:
                gw.notes["closed_early"] = c.sock.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                gw.notes["closed_early"] = False
            c.sock.setblocking(True)
            c.sock.sendall(frame(8, struct.pack("!H", 1000)))
            c.sock.settimeout(5)
            gw.notes["then"] = c.sock.recv(1)  # EOF once the engine has it
            c.sock.close()

        gw = ScriptedGateway(first)
        gw.start()
        _, seqs = self.run_engine(gw, duration=2)
        self.assertEqual(seqs, [1, 2, 3, 4])
        self.assertIn(gw.notes.get("code"), (1000, 1001), gw.notes)
        self.assertFalse(gw.notes["closed_early"], "the engine closed TCP before the server's close")
        self.assertEqual(gw.notes["then"], b"")

    def test_a_gateway_that_never_answers_the_upgrade_times_out_and_is_retried(self):
        def silent(c, gw):
            while b"\r\n\r\n" not in c.buf:
                c.buf += c.sock.recv(4096)
            try:
                c.sock.settimeout(5)
                gw.notes["silent_end"] = c.sock.recv(1)  # b"" once the engine gives up
            except OSError as e:
                gw.notes["silent_end"] = repr(e)
            c.sock.close()

        gw = ScriptedGateway(silent, ScriptedGateway.identifies())
        gw.start()
        err, seqs = self.run_engine(gw, duration=5, flags=("--connect-timeout-ms", "700"))
        self.assertIn("connect timed out", err)
        self.assertIn('after_ms=700', err)
        self.assertIn('phase="upgrade"', err)
        self.assertEqual(gw.notes.get("silent_end"), b"")  # the engine closed it
        self.assertEqual([f["op"] for f in gw.first], [2])  # then identified on a new one
        self.assertEqual(seqs[:4], [1, 2, 3, 4])

    def test_a_ping_flood_that_reads_its_pongs_changes_nothing(self):
        pings = 20000

        def first(c, gw):
            gw.open(c)
            gw.ready_and_events(c)
            pongs = []

            def read_pongs():
                try:
                    while len(pongs) < pings:
                        op, data = c.read_frame()
                        if op == 10:
                            pongs.append(data)
                except Exception:
                    pass
            reader = threading.Thread(target=read_pongs, daemon=True)
            reader.start()
            c.sock.sendall(b"".join(frame(9, b"%d" % i) for i in range(pings)))
            c.sock.sendall(text({"op": 0, "s": 5, "t": "MESSAGE_CREATE", "d": {"n": 5}}))
            reader.join(10)
            gw.notes["pongs"] = pongs
            time.sleep(0.3)
            c.sock.close()

        gw = ScriptedGateway(first, ScriptedGateway.resumes(seq=6))
        gw.start()
        _, seqs = self.run_engine(gw, duration=5)
        pongs = gw.notes["pongs"]
        # Every ping answered with its own payload, in order (RFC 6455 5.5.3).
        self.assertEqual(len(pongs), pings)
        self.assertEqual(pongs[0], b"0")
        self.assertEqual(pongs[-1], b"%d" % (pings - 1))
        self.assertEqual([f["op"] for f in gw.first], [2, 6])
        self.assertEqual(gw.first[1]["d"]["seq"], 5)
        self.assertEqual(seqs, [1, 2, 3, 4, 5, 6])

    def test_a_ping_flood_that_never_reads_its_pongs_is_dropped_and_resumed(self):
        # 125-byte pings the gateway never reads the answers to: the pongs
        # fill the socket buffers, then kMaxQueuedOutBytes (1 MiB) of our own
        # queue, and the engine drops the connection instead of growing.
        def first(c, gw):
            gw.open(c)
            gw.ready_and_events(c)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            ping = frame(9, b"p" * 125)
            try:
                for _ in range(200):
                    c.sock.sendall(ping * 1000)
                gw.notes["survived"] = True
            except OSError:
                pass
            c.sock.close()

        gw = ScriptedGateway(first, ScriptedGateway.resumes())
        gw.start()
        err, seqs = self.run_engine(gw, duration=6)
        self.assertNotIn("survived", gw.notes, "the engine kept answering a peer that never reads")
        self.assertIn("not reading", err)
        self.check_resumed(gw, seqs)


class SetUpLimit(unittest.TestCase):
    """A core thread sets up at most kMaxDialsInFlight connections at once
    (engine/core.h): thousands of shards starting, or coming back after the
    gateway went away, must not all hold a TLS handshake's memory together.
    The rest wait their turn, oldest first. Here a gateway accepts TCP and
    never answers the upgrade: it sees exactly the limit, and the next ones
    only when the first time out."""

    def limit(self):
        with open(os.path.join(os.path.dirname(__file__), "../../engine/core.h")) as f:
            m = re.search(r"kMaxDialsInFlight = (\d+);", f.read())
        self.assertIsNotNone(m)
        return int(m.group(1))

    def test_shards_wait_for_a_set_up_to_end_before_dialling(self):
        limit, shards, timeout_s = self.limit(), 3 * self.limit() + 5, 1.0
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4096)
        srv.settimeout(0.05)
        accepted, stop = [], threading.Event()

        def serve():  # accept and hold; read nothing, answer nothing
            while not stop.is_set():
                try:
                    c, _ = srv.accept()
                except socket.timeout:
                    continue
                accepted.append((time.monotonic(), c))

        t = threading.Thread(target=serve)
        t.start()
        start = time.monotonic()
        p = subprocess.Popen(
            [SHARDRING, "run", "--gateway", f"ws://127.0.0.1:{srv.getsockname()[1]}",
             "--total-shards", str(shards), "--threads", "1", "--duration", "1.7",
             "--connect-timeout-ms", str(int(timeout_s * 1000)), "--sink", "null"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(0.8)  # every first dial made; none timed out yet
            first = len(accepted)
            _, err = p.communicate(timeout=60)
        finally:
            stop.set()
            t.join()
            for _, c in accepted:
                c.close()
            srv.close()
        self.assertEqual(p.returncode, 0, err.decode(errors="replace")[-2000:])
        self.assertEqual(first, limit)
        # When the first ones timed out, as many waiting shards took their
        # places, and no more (the second ones time out after the run ends).
        self.assertEqual(len(accepted), 2 * limit)
        self.assertGreaterEqual(accepted[limit][0] - start, timeout_s)


class NoNetwork(unittest.TestCase):
    """DNS failure: the engine in a network namespace of its own (no
    interface up, nothing leaves the machine), told to use a remote gateway
    name. Every shard logs the failure, retries with backoff, and the process
    stays up and stops cleanly; the token appears nowhere."""

    TOKEN = "MTA5OTUxMjIxMTA0MjgyODI4OA.Gx1x2x.dns-test-secret"

    def isolated(self):
        for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
            try:
                if subprocess.run(prefix + ["true"], capture_output=True, timeout=10).returncode == 0:
                    return prefix
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.skipTest("no network namespace available (unshare -n / -rn)")

    def test_a_name_that_does_not_resolve_is_logged_and_retried(self):
        prefix = self.isolated()
        p = subprocess.run(
            prefix + [SHARDRING, "run", "--gateway", "wss://gateway.shardring-test.invalid",
                      "--total-shards", "2", "--duration", "4", "--sink", "null",
                      "--token", self.TOKEN],
            capture_output=True, timeout=60)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 0, err[-2000:])
        for shard in (0, 1):
            fails = [l for l in err.splitlines() if f"shard={shard} resolve failed" in l]
            self.assertGreaterEqual(len(fails), 2, err[-2000:])  # the first try and a retry
            self.assertIn("gateway.shardring-test.invalid", fails[0])
        summary = json.loads(err.splitlines()[-1][len("summary "):])
        self.assertEqual(summary["identifies"], 0)
        self.assertGreaterEqual(summary["reconnects"], 4)
        self.assertNotIn(self.TOKEN.encode(), p.stdout + p.stderr)
        self.assertNotIn(b"dns-test-secret", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
