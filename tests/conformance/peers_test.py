#!/usr/bin/python3
"""shardring against WebSocket implementations nobody here wrote, in both roles.

Engine client (`shardring run`) against scripted Discord-like gateways built on
Python's `websockets` (asyncio `websockets.serve`) and on Node's `ws`
(node_ws_server.mjs). Each gateway: HELLO; expects IDENTIFY; sends READY and
MESSAGE_CREATE events, a large one as a fragmented text message with a ping
between its fragments (Node also cuts inside UTF-8 sequences and sends an
empty fragment); pings and expects the same payload back; closes with 4000 and
expects the engine's close frame back; on the second connection expects
RESUME with the session id and last seq, sends RESUMED and more events, then
expects the engine to close with a proper close frame when --duration ends.
The engine's NDJSON must hold every seq once, in order, `d` byte for byte.

Node's `ws` client (node_ws_client.mjs) against `shardring gateway --fragment
100`: HELLO; IDENTIFY as a fragmented message with a ping between fragments;
READY and dispatches with consecutive seqs; heartbeat -> ACK; ping -> pong
with the same payload; close 1000 answered with 1000; SIGINT -> exit 0.

Node cases skip when node or the `ws` module is missing; exit 77 when every
case would skip.
"""
import asyncio
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("SHARDRING_BIN_DIR", os.path.join(HERE, "../../build/bin"))
SHARDRING = os.path.join(BIN, "shardring")
NODE_MODULES = os.environ.get("SHARDRING_NODE_MODULES",
                              os.path.join(HERE, "../../.cache/npm/node_modules"))
NODE = shutil.which("node")
HAVE_NODE_WS = bool(NODE) and os.path.isfile(os.path.join(NODE_MODULES, "ws", "package.json"))
try:
    import websockets
    HAVE_WEBSOCKETS = True
except ImportError:
    HAVE_WEBSOCKETS = False

DURATION = 4  # seconds of `shardring run`: two connections and a reconnect fit easily
SESSION_ID = "c0nf0rmance0f0reign0peers0001"
HELLO = '{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}'
HEARTBEAT_ACK = '{"t":null,"s":null,"op":11,"d":null}'
# Close codes an endpoint may put in a close frame (RFC 6455 7.4, IANA registry).
SENDABLE_CLOSE_CODES = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def dispatch(seq, t, d):
    return '{"t":"%s","s":%d,"op":0,"d":%s}' % (t, seq, d)


def big_d(seq):
    """About 300 KB, with 2- and 4-byte UTF-8 sequences throughout."""
    members = ",".join(compact({"user": {"id": str(10**17 + i), "username": f"m\u00e9mber {i} 😀"},
                                "roles": ["1", "2"], "nick": None}) for i in range(3000))
    return ('{"id":"%d","content":"big \U0001F600 caf\u00e9 message","escaped":"caf\\u00e9 '
            '\\ud83d\\ude00","members":[%s]}' % (1100000000000000000 + seq, members))


def small_d(seq, kind):
    if kind == "unicode":
        return '{"content":"caf\\u00e9 \\ud83d\\ude00 😀  spaced  ","n":1.50E+3,"nested":[{"a":null}],"t":true}'
    if kind == "spaces":  # structural whitespace inside d is part of d
        return '{ "id" : "%d" , "list" : [ 1 , 2.0 , -0 ] , "flag" : false }' % seq
    return compact({"id": str(1100000000000000000 + seq), "channel_id": "42",
                    "content": f"event {seq} \u00e9\u4e2d", "author": {"id": "7", "bot": False}})


def make_plan(port):
    """What a scripted gateway sends on each connection, and what the engine
    must write: [(seq, t, d)]."""
    ready = compact({"v": 10, "user": {"id": "1", "username": "conformance", "bot": True},
                     "guilds": [], "session_id": SESSION_ID,
                     "resume_gateway_url": f"ws://127.0.0.1:{port}", "shard": [0, 1],
                     "application": {"id": "1", "flags": 0}})
    resumed = '{"_trace":["[\\"gateway-conformance\\",{\\"micros\\":1}]"]}'
    first = [(1, "READY", ready, False), (2, "MESSAGE_CREATE", small_d(2, "unicode"), False),
             (3, "MESSAGE_CREATE", small_d(3, "spaces"), False),
             (4, "MESSAGE_CREATE", big_d(4), True), (5, "MESSAGE_CREATE", small_d(5, ""), False),
             (6, "MESSAGE_CREATE", small_d(6, ""), False)]
    second = [(7, "RESUMED", resumed, False), (8, "MESSAGE_CREATE", small_d(8, ""), False),
              (9, "MESSAGE_CREATE", big_d(9), True), (10, "MESSAGE_CREATE", small_d(10, "unicode"), False),
              (11, "MESSAGE_CREATE", small_d(11, "spaces"), False),
              (12, "MESSAGE_CREATE", small_d(12, ""), False)]

    def payloads(events):
        out = []
        for seq, t, d, fragmented in events:
            text = dispatch(seq, t, d)
            p = {"seq": seq, "text": text}
            if fragmented:
                p["splits"] = byte_splits(text)
            out.append(p)
        return out

    plan = {
        "hello": HELLO,
        "heartbeat_ack": HEARTBEAT_ACK,
        "conns": [
            {"payloads": payloads(first), "ping_mid": "ping between fragments 1",
             "ping": "p\u00efng after events 1", "close_code": 4000,
             "close_reason": "conformance: please resume"},
            {"payloads": payloads(second), "ping_mid": "ping between fragments 2",
             "ping": "p\u00efng after events 2"},
        ],
    }
    expected = [(seq, t, d) for seq, t, d, _ in first + second]
    return plan, expected


def byte_splits(text):
    """Byte offsets for Node's fragments: the first cut inside a 4-byte UTF-8
    sequence, then an empty fragment, a cut inside a 2-byte sequence, then
    every 16381 bytes."""
    b = text.encode()
    i = b.index("\U0001F600".encode()) + 2
    j = b.index("\u00e9".encode(), i + 10) + 1
    return [i, i, j] + list(range(j + 16381, len(b), 16381))


def str_fragments(text, size=5000):
    return [text[i:i + size] for i in range(0, len(text), size)]


def engine_args(port, out_path):
    return [SHARDRING, "run", "--gateway", f"ws://127.0.0.1:{port}", "--total-shards", "1",
            "--threads", "1", "--duration", str(DURATION), "--sink", "ndjson:" + out_path]


def first_difference(got, want):
    n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return f"first difference at byte {n}: got {got[max(0, n - 40):n + 40]!r}, want {want[max(0, n - 40):n + 40]!r}"


# -- Python `websockets` as the gateway -------------------------------------

async def python_gateway_scenario(tmp):
    """Runs the plan on a websockets server while `shardring run` connects to
    it. Returns (plan, expected, server result, engine rc, engine stderr,
    NDJSON path), the same as node_gateway_scenario."""
    conns = []
    handlers_done = []
    state = {}

    async def fragments(ws, text, ping_mid, rec):
        parts = str_fragments(text)
        yield parts[0]
        # A control frame between the fragments of one message (RFC 6455 5.4).
        rec["mid_waiter"] = await ws.ping(ping_mid.encode())
        for part in parts[1:]:
            yield part

    async def handler(ws):
        plan = state["plan"]
        idx = len(conns)
        rec = {"path": ws.path, "first": None, "later": [], "heartbeats": 0, "errors": [],
               "pongs": [], "server_closed": False, "close": None}
        conns.append(rec)
        step = plan["conns"][idx] if idx < len(plan["conns"]) else None
        first_seen = asyncio.get_running_loop().create_future()
        done = asyncio.get_running_loop().create_future()
        handlers_done.append(done)

        async def reader():
            try:
                async for message in ws:
                    msg = json.loads(message)
                    if msg.get("op") == 1:
                        rec["heartbeats"] += 1
                        await ws.send(plan["heartbeat_ack"])
                    elif rec["first"] is None:
                        rec["first"] = msg
                        first_seen.set_result(None)
                    else:
                        rec["later"].append(msg)
            except websockets.ConnectionClosed:
                pass

        reading = None
        try:
            await ws.send(plan["hello"])
            reading = asyncio.create_task(reader())
            await asyncio.wait_for(asyncio.shield(first_seen), 10)
            if step is None:
                rec["errors"].append("a connection the plan did not expect")
                return
            for p in step["payloads"]:
                if "splits" in p:
                    await ws.send(fragments(ws, p["text"], step["ping_mid"], rec))
                else:
                    await ws.send(p["text"])
            # websockets resolves a pong waiter only for a pong carrying the
            # ping's payload: a wrong payload ends in the timeout here.
            await asyncio.wait_for(rec.pop("mid_waiter"), 5)
            rec["pongs"].append(step["ping_mid"])
            waiter = await ws.ping(step["ping"].encode())
            await asyncio.wait_for(waiter, 5)
            rec["pongs"].append(step["ping"])
            if step.get("close_code"):
                rec["server_closed"] = True
                t0 = time.monotonic()
                await ws.close(step["close_code"], step["close_reason"])  # close_timeout=5
                rec["close_ms"] = round((time.monotonic() - t0) * 1000)
            else:
                await asyncio.wait_for(ws.wait_closed(), DURATION + 10)
            await asyncio.wait_for(reading, 5)
        except Exception:
            rec["errors"].append(traceback.format_exc())
        finally:
            if reading is not None and not reading.done():
                reading.cancel()
            if ws.closed:
                rec["close"] = {"code": ws.close_code, "reason": ws.close_reason,
                                "ms": rec.pop("close_ms", None),
                                # True: the client's close frame came first and we echoed it.
                                "client_initiated": ws.close_rcvd_then_sent,
                                "echoed": ws.close_sent.code if ws.close_sent else None}
            done.set_result(None)

    out_path = os.path.join(tmp, "events.ndjson")
    err_path = os.path.join(tmp, "engine.stderr")
    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=None, close_timeout=5,
                                max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        plan, expected = make_plan(port)
        state["plan"] = plan
        with open(err_path, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *engine_args(port, out_path), stdout=subprocess.DEVNULL, stderr=err)
            try:
                rc = await asyncio.wait_for(proc.wait(), DURATION + 20)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        # The last handler ends once its connection has closed.
        await asyncio.wait_for(asyncio.gather(*handlers_done), 10)
    with open(err_path, "rb") as f:
        stderr = f.read().decode(errors="replace")
    return plan, expected, {"conns": conns, "errors": []}, rc, stderr, out_path


# -- Node `ws` as the gateway ----------------------------------------------

class LineReader:
    """Lines of a child's stdout, each awaited with a timeout."""

    def __init__(self, stream):
        self.q = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def line(self, timeout, what):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {what} within {timeout} s") from None
        if line is None:
            raise AssertionError(f"no {what}: the process ended")
        return line

    def json(self, timeout, what):
        return json.loads(self.line(timeout, what))

    def rest(self, timeout):
        """The lines left, up to the end of the stream (the process has ended)."""
        out, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            out.append(line)
        return "".join(out)


def node_gateway_scenario(tmp):
    out_path = os.path.join(tmp, "events.ndjson")
    node_err = open(os.path.join(tmp, "node.stderr"), "wb")
    node = subprocess.Popen([NODE, os.path.join(HERE, "node_ws_server.mjs"), NODE_MODULES, "30000"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=node_err, text=True)
    try:
        lines = LineReader(node.stdout)
        port = lines.json(10, "port line from node_ws_server.mjs")["port"]
        plan, expected = make_plan(port)
        node.stdin.write(json.dumps(plan) + "\n")
        node.stdin.flush()
        lines.json(10, "plan acknowledgement")
        p = subprocess.run(engine_args(port, out_path), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=DURATION + 20)
        try:
            result = lines.json(15, "result line from node_ws_server.mjs")
        except AssertionError:
            node.terminate()  # it prints what it has so far, with an error
            result = lines.json(5, "result line from node_ws_server.mjs after SIGTERM")
        return plan, expected, result, p.returncode, p.stderr.decode(errors="replace"), out_path
    finally:
        if node.poll() is None:
            node.kill()
        node.wait(10)
        node.stdin.close()
        node.stdout.close()
        node_err.close()


# -- Checks shared by both scripted gateways -------------------------------

class EngineClientChecks:
    """Mixin: `scenario` runs once per class; each test checks one aspect."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shardring-conformance-")
        (cls.plan, cls.expected, cls.result, cls.rc, cls.stderr,
         out_path) = cls.scenario(cls.tmp)
        cls.lines = []
        if os.path.exists(out_path):
            with open(out_path, "rb") as f:
                cls.lines = f.read().splitlines()
        print(f"\n[{cls.__name__}] engine close reply to 4000: {cls.close_of(0)}; "
              f"engine close when --duration ended: {cls.close_of(1)}", file=sys.stderr)

    @classmethod
    def close_of(cls, i):
        conns = cls.result["conns"]
        return conns[i]["close"] if i < len(conns) else None

    def context(self):
        return (f"server: {json.dumps(self.result)[:3000]}\nengine stderr:\n{self.stderr[-3000:]}")

    def conn(self, i):
        self.assertGreater(len(self.result["conns"]), i, self.context())
        return self.result["conns"][i]

    def test_the_engine_exits_0_after_exactly_two_connections_and_no_gateway_errors(self):
        self.assertEqual(self.rc, 0, self.context())
        self.assertEqual(self.result["errors"], [], self.context())
        self.assertEqual(len(self.result["conns"]), 2, self.context())
        for c in self.result["conns"]:
            self.assertEqual(c["errors"], [], self.context())
            self.assertEqual(c["later"], [], "the engine sent more than heartbeats after its first message")

    def test_the_first_connection_identifies(self):
        first = self.conn(0)["first"]
        self.assertIsNotNone(first, self.context())
        self.assertEqual(first["op"], 2, first)
        self.assertEqual(first["d"]["shard"], [0, 1])
        self.assertIsInstance(first["d"]["intents"], int)

    def test_pings_between_fragments_and_after_events_get_pongs_with_their_payloads(self):
        for i in (0, 1):
            step = self.plan["conns"][i]
            self.assertEqual(self.conn(i)["pongs"][:2], [step["ping_mid"], step["ping"]],
                             self.context())

    def test_the_engine_answers_close_4000_with_a_close_frame(self):
        c = self.conn(0)
        self.assertTrue(c["server_closed"])
        self.assertIsNotNone(c["close"], self.context())
        # 1006: the TCP connection ended (or our 5 s wait ran out) without a close frame back.
        self.assertNotEqual(c["close"]["code"], 1006, self.context())
        self.assertIn(c["close"]["code"], SENDABLE_CLOSE_CODES, self.context())

    def test_the_second_connection_resumes_with_the_session_id_and_last_seq(self):
        first = self.conn(1)["first"]
        self.assertIsNotNone(first, self.context())
        self.assertEqual(first["op"], 6, first)
        self.assertEqual(first["d"]["session_id"], SESSION_ID)
        self.assertEqual(first["d"]["seq"], 6)

    def test_the_engine_closes_with_a_close_frame_when_duration_ends(self):
        c = self.conn(1)
        self.assertFalse(c["server_closed"])
        self.assertIsNotNone(c["close"], self.context())
        self.assertNotEqual(c["close"]["code"], 1006, "the engine dropped TCP without a close frame")
        self.assertIn(c["close"]["code"], SENDABLE_CLOSE_CODES, self.context())

    def test_every_event_is_written_once_in_order_with_d_byte_for_byte(self):
        self.assertEqual([json.loads(l)["seq"] for l in self.lines],
                         [seq for seq, _, _ in self.expected], self.context())
        for line, (seq, t, d) in zip(self.lines, self.expected):
            ev = json.loads(line)
            self.assertEqual((ev["shard"], ev["seq"], ev["t"]), (0, seq, t))
            want = b',"d":' + d.encode() + b"}"
            self.assertTrue(line.endswith(want), f"seq {seq}: " + first_difference(
                line[-len(want):], want))


@unittest.skipUnless(HAVE_WEBSOCKETS, "python3-websockets is not installed")
class EngineAgainstPythonWebsocketsServer(EngineClientChecks, unittest.TestCase):
    @classmethod
    def scenario(cls, tmp):
        return asyncio.run(asyncio.wait_for(python_gateway_scenario(tmp), DURATION + 45))

    def test_the_engine_closes_first_and_websockets_echoes_its_code(self):
        close = self.conn(1)["close"]
        self.assertIsNotNone(close, self.context())
        self.assertTrue(close["client_initiated"], close)
        self.assertEqual(close["echoed"], close["code"])


@unittest.skipUnless(HAVE_NODE_WS, f"node or the ws module ({NODE_MODULES}/ws) is missing")
class EngineAgainstNodeWsServer(EngineClientChecks, unittest.TestCase):
    @classmethod
    def scenario(cls, tmp):
        return node_gateway_scenario(tmp)


# -- Node `ws` as the client of `shardring gateway` --------------------------

@unittest.skipUnless(HAVE_NODE_WS, f"node or the ws module ({NODE_MODULES}/ws) is missing")
class NodeWsClientAgainstGateway(unittest.TestCase):
    EVENTS = 50
    DISPATCHES = 1 + 1 + EVENTS  # READY, one GUILD_CREATE, the generated events

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shardring-conformance-gw-")
        stats_path = os.path.join(cls.tmp, "stats.json")
        gw = subprocess.Popen(
            [SHARDRING, "gateway", "--listen", "127.0.0.1:0", "--threads", "1", "--rate", "200",
             "--events", str(cls.EVENTS), "--fragment", "100", "--guilds-per-shard", "1",
             "--heartbeat-ms", "45000", "--stats-json", stats_path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
        log = LineReader(gw.stderr)  # drains stderr for as long as the gateway runs
        cls.gw_log = ""
        try:
            line = log.line(10, "'listening on' line from the gateway")
            cls.gw_log += line
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if not m:
                raise AssertionError(f"no 'listening on' line: {line!r}")
            port = int(m.group(1))
            p = subprocess.run([NODE, os.path.join(HERE, "node_ws_client.mjs"), NODE_MODULES,
                                str(port), str(cls.DISPATCHES), "15000"],
                               capture_output=True, timeout=30)
            cls.node_stderr = p.stderr.decode(errors="replace")
            out = p.stdout.decode().strip().splitlines()
            cls.r = json.loads(out[-1]) if out else None
            t0 = time.monotonic()
            gw.send_signal(signal.SIGINT)
            cls.gw_rc = gw.wait(timeout=10)
            cls.stop_s = time.monotonic() - t0
        finally:
            if gw.poll() is None:
                gw.kill()
                gw.wait(10)
            cls.gw_log += log.rest(5)
            gw.stderr.close()
        cls.stats = None
        if os.path.exists(stats_path):
            with open(stats_path) as f:
                cls.stats = json.load(f)
        print(f"\n[{cls.__name__}] gateway's answer to close 1000: "
              f"{cls.r and cls.r['close']}", file=sys.stderr)

    def context(self):
        return (f"node client: {json.dumps(self.r)[:3000]}\nnode stderr: {self.node_stderr[-1000:]}"
                f"\ngateway log:\n{self.gw_log[-2000:]}")

    def setUp(self):
        self.assertIsNotNone(self.r, "node_ws_client.mjs printed nothing: " + self.node_stderr[-2000:])

    def test_no_errors_on_the_client(self):
        self.assertEqual(self.r["errors"], [], self.context())
        self.assertEqual(self.r["unexpected"], [], self.context())
        self.assertEqual(self.r["binary_messages"], 0)

    def test_hello_then_a_fragmented_identify_with_a_ping_between_is_accepted(self):
        self.assertEqual(self.r["hello"]["op"], 10, self.context())
        self.assertEqual(self.r["hello"]["d"]["heartbeat_interval"], 45000)
        self.assertTrue(self.r["dispatches"], "no READY after a fragmented IDENTIFY\n" + self.context())
        self.assertEqual(self.r["dispatches"][0]["t"], "READY")
        self.assertIn("ping-between-identify-fragments", self.r["pongs"], self.context())

    def test_dispatches_arrive_with_consecutive_seqs(self):
        seqs = [d["s"] for d in self.r["dispatches"]]
        self.assertEqual(seqs, list(range(1, self.DISPATCHES + 1)), self.context())
        self.assertEqual(self.r["dispatches"][1]["t"], "GUILD_CREATE")
        # The large GUILD_CREATE came as many 100-byte frames and was reassembled.
        self.assertGreater(self.r["dispatches"][1]["bytes"], 1000)

    def test_a_heartbeat_is_acked(self):
        self.assertGreaterEqual(self.r["acks"], 1, self.context())

    def test_a_ping_gets_a_pong_with_the_same_payload(self):
        self.assertEqual(self.r["pongs"], ["ping-between-identify-fragments", "conformance-ping-\u00e9"],
                         self.context())

    def test_close_1000_is_answered_with_1000(self):
        close = self.r["close"]
        self.assertIsNotNone(close, self.context())
        self.assertEqual(close["phase"], "closing", "the gateway closed first\n" + self.context())
        self.assertEqual(close["code"], 1000, self.context())
        self.assertLess(self.r["close_ms"], 5000)  # ws itself would wait 30 s

    def test_sigint_stops_the_gateway_with_exit_0_and_its_counts_agree(self):
        self.assertEqual(self.gw_rc, 0, self.gw_log[-2000:])
        self.assertLess(self.stop_s, 5.0)
        self.assertIsNotNone(self.stats)
        self.assertEqual(self.stats["identifies"], 1, self.stats)
        self.assertEqual(self.stats["shards"]["0"]["last_seq"], self.DISPATCHES, self.stats)


if __name__ == "__main__":
    if not os.path.exists(SHARDRING):
        print(f"FAIL: {SHARDRING} does not exist (set SHARDRING_BIN_DIR)", file=sys.stderr)
        sys.exit(1)
    if not HAVE_WEBSOCKETS and not HAVE_NODE_WS:
        print("SKIPPED: neither python3-websockets nor node with the ws module is available")
        sys.exit(77)
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
