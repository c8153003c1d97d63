#!/usr/bin/python3
"""Runs the synthetic gateway and talks to it with Python's `websockets`, an
independent WebSocket implementation: HELLO, IDENTIFY -> READY, GUILD_CREATE,
events with consecutive seqs, heartbeat -> ACK, close handshake, then
SIGTERM -> exit 0 with --stats-json written.

usage: python_client_check.py PATH/TO/shardring
"""
import asyncio
import json
import signal
import sys
import time

import websockets

from gateway_proc import fail, start_gateway


async def session(port):
    uri = f"ws://127.0.0.1:{port}/?v=10&encoding=json"
    async with websockets.connect(uri, max_size=None) as ws:
        hello = json.loads(await ws.recv())
        if hello["op"] != 10 or hello["d"]["heartbeat_interval"] != 45000:
            fail(f"bad HELLO {hello}")
        await ws.send(json.dumps({
            "op": 2,
            "d": {"token": "py-token", "intents": 513,
                  "properties": {"os": "linux", "browser": "py", "device": "py"},
                  "shard": [1, 2]}}))
        ready = json.loads(await ws.recv())
        if ready["t"] != "READY" or ready["s"] != 1 or ready["d"]["shard"] != [1, 2]:
            fail(f"bad READY {str(ready)[:200]}")
        if len(ready["d"]["session_id"]) != 32:
            fail("session_id is not 32 characters")
        seq = 1
        for _ in range(20):
            ev = json.loads(await ws.recv())
            if ev["op"] != 0 or ev["s"] != seq + 1:
                fail(f"expected seq {seq + 1}, got {str(ev)[:200]}")
            seq = ev["s"]
        await ws.send(json.dumps({"op": 1, "d": seq}))
        while True:
            msg = json.loads(await ws.recv())
            if msg["op"] == 11:
                break
            if msg["op"] != 0:
                fail(f"unexpected {msg}")
        pong = await ws.ping(b"hi")
        await asyncio.wait_for(pong, 5)
    # The context manager ran the close handshake (client 1000).
    return seq


def main():
    binary = sys.argv[1]
    proc, port, stats = start_gateway(
        binary, "--threads", 2, "--rate", 500, "--heartbeat-ms", 45000, "--token", "py-token",
        "--shards", 2)
    try:
        asyncio.run(asyncio.wait_for(session(port), 20))
    finally:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        took = time.monotonic() - t0
    if rc != 0:
        fail(f"exit code {rc}")
    if took > 2.0:
        fail(f"took {took:.2f} s to stop")
    with open(stats) as f:
        s = json.load(f)
    if s["identifies"] != 1 or s["shards"]["1"]["identifies"] != 1:
        fail(f"bad stats {s}")
    print("ok: python websockets client passed")


if __name__ == "__main__":
    main()
