#!/usr/bin/python3
"""The synthetic gateway's identify gate, judged across a stall of its own:
IDENTIFYs that kept their bucket's window are admitted even when the gateway
reads them together, and one that did not is still refused.

The gateway (one bucket, a 300 ms window) is stopped with SIGSTOP just after
shard 0 sent IDENTIFY: it may have read it, or be stopped on its way back
from the wait that posted it, before reading its clock. Shards 1 and 2 send
theirs 345 ms apart while it is stopped; on SIGCONT it reads them in one
pass, microseconds apart. Each kept the window, so each gets READY (the gate
times an identify from the earliest it can have arrived, not from when it was
read: gateway::ArrivalBound). Then, the gateway running, two
more IDENTIFYs 50 ms apart: the second gets op 9 (d false).

usage: identify_stall_check.py PATH/TO/shardring
"""
import asyncio
import json
import signal
import sys

import websockets

from gateway_proc import fail, start_gateway

WINDOW_MS = 300
SHARDS = 5


def identify(shard):
    return json.dumps({"op": 2, "d": {
        "token": "py-token", "intents": 513,
        "properties": {"os": "linux", "browser": "py", "device": "py"},
        "shard": [shard, SHARDS]}})


async def answer(ws):
    """The first payload after an IDENTIFY: READY or op 9."""
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def scenario(port, proc):
    uri = f"ws://127.0.0.1:{port}/?v=10&encoding=json"
    conns = [await websockets.connect(uri, max_size=None) for _ in range(SHARDS)]
    try:
        for ws in conns:
            hello = json.loads(await ws.recv())
            if hello["op"] != 10:
                fail(f"bad HELLO {hello}")
        # Shard 0's IDENTIFY just before the stop: the gateway often wakes
        # for it and is stopped on its way back from the wait that posted it.
        await conns[0].send(identify(0))
        proc.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(WINDOW_MS * 1.15 / 1000)
            for shard in range(1, 3):
                await conns[shard].send(identify(shard))
                await asyncio.sleep(WINDOW_MS * 1.15 / 1000)
        finally:
            proc.send_signal(signal.SIGCONT)
        for shard in range(3):
            got = await answer(conns[shard])
            if got.get("t") != "READY":
                fail(f"shard {shard} kept the window but got {str(got)[:200]}")
        # Running again: the bucket is spent; 50 ms apart is too fast.
        await asyncio.sleep(WINDOW_MS * 1.5 / 1000)
        await conns[3].send(identify(3))
        got = await answer(conns[3])
        if got.get("t") != "READY":
            fail(f"shard 3 kept the window but got {str(got)[:200]}")
        await asyncio.sleep(0.05)
        await conns[4].send(identify(4))
        got = await answer(conns[4])
        if got.get("op") != 9 or got.get("d") is not False:
            fail(f"shard 4 came 50 ms after shard 3 but got {str(got)[:200]}")
    finally:
        for ws in conns:
            await ws.close()


def main():
    proc, port, stats = start_gateway(
        sys.argv[1], "--threads", 1, "--rate", 1, "--token", "py-token", "--shards", SHARDS,
        "--max-concurrency", 1, "--identify-window-ms", WINDOW_MS)
    try:
        asyncio.run(asyncio.wait_for(scenario(port, proc), 30))
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
    if rc != 0:
        fail(f"exit code {rc}")
    with open(stats) as f:
        s = json.load(f)
    if s["identifies"] != 4 or s["identify_rate_limited"] != 1:
        fail(f"expected 4 identifies and 1 refused as too fast: {s}")
    print("ok: identifies read together after a stall were judged by their arrival")


if __name__ == "__main__":
    main()
