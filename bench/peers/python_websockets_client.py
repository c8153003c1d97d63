#!/usr/bin/python3
"""bench/peers/python_websockets_client.py: the stack Python gateway libraries
use, asyncio + `websockets` (Debian python3-websockets, 10.4) + json.loads, as
a load-test peer. SHARDS shards against a `shardring gateway` on PORT: on
HELLO (op 10) a heartbeat task (op 1 with the last seq, every
heartbeat_interval) and IDENTIFY (op 2; paced: one per bucket shard % 16
every 5 ms, as compare.sh runs shardring); every message json.loads'd in full
and each op 0 dispatch counted (its seq kept). Op 1 from the gateway gets a
heartbeat at once; op 9 an IDENTIFY again after 1 s. Connections are opened
at most CONNECT_CONCURRENCY (64) at a time (websockets is slow to connect:
2,000 at once time out). Dispatches are counted for SECONDS after the first
connection opens (while the others are still connecting, too); then one JSON
line: {"client":"python-websockets","events":N,"cpu_s":S,"seconds":T,
"peak_rss_kib":K} (CPU and peak RSS from getrusage(RUSAGE_SELF)).
  /usr/bin/python3 python_websockets_client.py PORT SHARDS SECONDS [CAFILE]
With CAFILE: wss:// verified against that CA (ssl.create_default_context).
"""
import asyncio
import json
import os
import resource
import ssl
import sys
import time

import websockets

CONNECT_CONCURRENCY = 64


class Bench:
    def __init__(self, port, shards, seconds, cafile):
        self.shards = shards
        self.seconds = seconds
        self.ssl = ssl.create_default_context(cafile=cafile) if cafile else None
        scheme = "wss" if cafile else "ws"
        self.url = f"{scheme}://127.0.0.1:{port}/?v=10&encoding=json"
        self.events = 0
        self.first_open = None
        self.opened = None  # asyncio.Event: set when the first connection is up
        self.errors = 0
        self.next_identify = {}

    async def paced_identify(self, ws, shard_id):
        # Identify pacing as compare.sh gives shardring (--max-concurrency 16
        # --identify-window-ms 5): one per bucket (shard % 16) every 5 ms.
        bucket = shard_id % 16
        now = time.monotonic()
        at = max(now, self.next_identify.get(bucket, 0.0))
        self.next_identify[bucket] = at + 0.005
        if at > now:
            await asyncio.sleep(at - now)
        await self.identify(ws, shard_id)

    def identify(self, ws, shard_id):
        return ws.send(json.dumps({
            "op": 2,
            "d": {
                "token": "x",
                "intents": 513,
                "shard": [shard_id, self.shards],
                "properties": {"os": "linux", "browser": "python-websockets-bench",
                               "device": "python-websockets-bench"},
            },
        }))

    async def heartbeat(self, ws, state, interval_s):
        while True:
            await asyncio.sleep(interval_s)
            await ws.send(json.dumps({"op": 1, "d": state["seq"]}))

    async def reidentify(self, ws, shard_id):
        await asyncio.sleep(1.0)
        await self.paced_identify(ws, shard_id)

    async def shard(self, shard_id, gate):
        state = {"seq": None}
        tasks = []
        try:
            async with gate:
                # compression=None: Discord does not negotiate permessage-deflate.
                ws = await websockets.connect(self.url, ssl=self.ssl, compression=None,
                                              max_size=None, open_timeout=120)
            if self.first_open is None:
                self.first_open = time.monotonic()
                self.opened.set()
            async for raw in ws:
                msg = json.loads(raw)
                op = msg["op"]
                if op == 0:
                    self.events += 1
                    state["seq"] = msg["s"]
                elif op == 10:
                    interval = msg["d"]["heartbeat_interval"] / 1000.0
                    tasks.append(asyncio.create_task(self.heartbeat(ws, state, interval)))
                    tasks.append(asyncio.create_task(self.paced_identify(ws, shard_id)))
                elif op == 1:
                    await ws.send(json.dumps({"op": 1, "d": state["seq"]}))
                elif op == 9:
                    tasks.append(asyncio.create_task(self.reidentify(ws, shard_id)))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001: a bench peer reports and goes on
            self.errors += 1
            if self.errors <= 3:
                print(f"python-websockets: shard {shard_id}: {e!r}", file=sys.stderr)
        finally:
            for t in tasks:
                t.cancel()

    async def run(self):
        self.opened = asyncio.Event()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        shards = [asyncio.create_task(self.shard(i, gate)) for i in range(self.shards)]
        try:
            await asyncio.wait_for(self.opened.wait(), 60)
        except asyncio.TimeoutError:
            print("python-websockets: no connection opened in 60 s", file=sys.stderr)
            os._exit(1)
        await asyncio.sleep(self.seconds - (time.monotonic() - self.first_open))
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out = {
            "client": "python-websockets",
            "events": self.events,
            "cpu_s": (ru.ru_utime - ru0.ru_utime) + (ru.ru_stime - ru0.ru_stime),
            "seconds": time.monotonic() - self.first_open,
            "peak_rss_kib": ru.ru_maxrss,
        }
        print(json.dumps(out), flush=True)
        # Tearing 2,000 connections down cleanly takes longer than the run.
        os._exit(0)


def main():
    port = int(sys.argv[1])
    shards = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    cafile = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    asyncio.run(Bench(port, shards, seconds, cafile).run())


if __name__ == "__main__":
    main()
