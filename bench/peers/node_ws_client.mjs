// bench/peers/node_ws_client.mjs: a plain Node.js gateway client on the `ws`
// package with JSON.parse: Node's ceiling (no library on top). SHARDS shards
// against a `shardring gateway` on PORT: on HELLO (op 10) it starts
// heartbeats (op 1 with the last seq, every heartbeat_interval) and sends
// IDENTIFY (op 2; paced: one per bucket shard % 16 every 5 ms, as
// compare.sh runs shardring); every message is JSON.parse'd in full and each
// op 0 dispatch counted (its seq kept). Op 1 from the gateway gets a
// heartbeat at once; op 9 (INVALID_SESSION) an IDENTIFY again after 1 s. It runs SECONDS
// after the first connection opens, then prints one JSON line:
// {"client":"node-ws","events":N,"cpu_s":S,"seconds":T,"peak_rss_kib":K}
//   node node_ws_client.mjs PORT SHARDS SECONDS [ws|wss]
// Run from a folder whose node_modules holds `ws` (bench/peers/compare.sh
// copies it next to .cache/npm). For wss:// give the CA with
// NODE_EXTRA_CA_CERTS=ca.pem.
import WebSocket from 'ws';

const port = Number(process.argv[2]);
const shards = Number(process.argv[3] ?? 1);
const seconds = Number(process.argv[4] ?? 10);
const scheme = process.argv[5] === 'wss' ? 'wss' : 'ws';
const url = `${scheme}://127.0.0.1:${port}/?v=10&encoding=json`;

let events = 0;
let firstOpen = null;
let errors = 0;
const sockets = [];
const cpu0 = process.cpuUsage();

// Identify pacing as compare.sh gives shardring (--max-concurrency 16
// --identify-window-ms 5): one identify per bucket (shard % 16) every 5 ms.
const nextIdentify = new Map();
function paced(id, fn) {
  const bucket = id % 16;
  const now = Date.now();
  const at = Math.max(now, nextIdentify.get(bucket) ?? 0);
  nextIdentify.set(bucket, at + 5);
  if (at > now) setTimeout(fn, at - now);
  else fn();
}

function identify(ws, id) {
  ws.send(JSON.stringify({
    op: 2,
    d: {
      token: 'x',
      intents: 513,
      shard: [id, shards],
      properties: { os: 'linux', browser: 'node-ws-bench', device: 'node-ws-bench' },
    },
  }));
}

function startShard(id) {
  // Discord does not negotiate permessage-deflate: offer none.
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const shard = { ws, seq: null, heartbeat: null };
  sockets.push(shard);
  const beat = () => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ op: 1, d: shard.seq }));
  };
  ws.on('open', () => {
    if (firstOpen === null) {
      firstOpen = process.hrtime.bigint();
      setTimeout(finish, seconds * 1000);
    }
  });
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    switch (msg.op) {
      case 0:
        events += 1;
        shard.seq = msg.s;
        break;
      case 10:
        clearInterval(shard.heartbeat);
        shard.heartbeat = setInterval(beat, msg.d.heartbeat_interval);
        paced(id, () => { if (ws.readyState === WebSocket.OPEN) identify(ws, id); });
        break;
      case 1:
        beat();
        break;
      case 9:
        setTimeout(() => paced(id, () => { if (ws.readyState === WebSocket.OPEN) identify(ws, id); }), 1000);
        break;
      default:
        break; // 11: heartbeat ACK
    }
  });
  ws.on('error', (e) => {
    if (errors++ < 3) console.error(`node-ws: shard ${id}: ${e.message}`);
  });
  ws.on('close', () => clearInterval(shard.heartbeat));
}

function finish() {
  const cpu = process.cpuUsage(cpu0);
  const elapsed = Number(process.hrtime.bigint() - firstOpen) / 1e9;
  const out = {
    client: 'node-ws',
    events,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    seconds: elapsed,
    peak_rss_kib: process.resourceUsage().maxRSS,
  };
  console.log(JSON.stringify(out));
  for (const s of sockets) {
    clearInterval(s.heartbeat);
    s.ws.terminate();
  }
  process.exit(0);
}

for (let i = 0; i < shards; i++) startShard(i);
setTimeout(() => {
  if (firstOpen === null) {
    console.error('node-ws: no connection opened in 60 s');
    process.exit(1);
  }
}, 60000).unref();
