// Node's `ws` as a Discord client of `shardring gateway`. Driven by
// peers_test.py:
//   node node_ws_client.mjs NODE_MODULES PORT DISPATCHES [TIMEOUT_MS]
// HELLO; IDENTIFY sent as a fragmented text message (three fragments, a ping
// between the first two); READY and dispatches until DISPATCHES have arrived;
// heartbeat (op 1, last seq) -> ACK (op 11); ping -> pong; close 1000 and
// wait for the server's close frame. Prints one JSON line with what it saw.
import { createRequire } from 'node:module';
import path from 'node:path';

const [modules, port, dispatchesWanted, timeoutArg] = process.argv.slice(2);
const wanted = Number(dispatchesWanted);
const timeoutMs = Number(timeoutArg ?? 15000);
const require = createRequire(import.meta.url);
const WebSocket = require(path.join(modules, 'ws'));

const PING_MID = 'ping-between-identify-fragments';
const PING = 'conformance-ping-\u00e9';
const r = {
  hello: null, dispatches: [], acks: 0, pongs: [], unexpected: [], errors: [],
  binary_messages: 0, extensions: null, close: null, close_ms: null,
};
let phase = 'hello';
let closeStarted = 0;

function finish() {
  process.stdout.write(JSON.stringify(r) + '\n', () => process.exit(0));
}
setTimeout(() => {
  r.errors.push(`timed out after ${timeoutMs} ms in phase ${phase}`);
  ws.terminate();
  finish();
}, timeoutMs).unref();

const ws = new WebSocket(`ws://127.0.0.1:${port}/?v=10&encoding=json`, {
  handshakeTimeout: 5000, maxPayload: 16 << 20,
});

function sendIdentify() {
  const identify = Buffer.from(JSON.stringify({
    op: 2,
    d: {
      token: 'node-ws-conformance', intents: 513,
      properties: { os: 'linux', browser: 'node-ws', device: 'node-ws' },
      shard: [0, 1],
    },
  }), 'utf8');
  const a = 7, b = Math.floor(identify.length / 2);
  ws.send(identify.subarray(0, a), { binary: false, fin: false });
  ws.ping(Buffer.from(PING_MID));
  ws.send(identify.subarray(a, b), { binary: false, fin: false });
  ws.send(identify.subarray(b), { binary: false, fin: true });
  phase = 'ready';
}

ws.on('open', () => { r.extensions = ws.extensions; });
ws.on('message', (data, isBinary) => {
  if (isBinary) r.binary_messages++;
  let msg;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch (e) {
    r.errors.push(`not JSON: ${data.toString('utf8').slice(0, 200)}`);
    return;
  }
  if (msg.op === 10 && r.hello === null) {
    r.hello = msg;
    sendIdentify();
  } else if (msg.op === 0) {
    r.dispatches.push({ s: msg.s, t: msg.t, bytes: data.length });
    if (r.dispatches.length === wanted) {
      phase = 'heartbeat';
      ws.send(JSON.stringify({ op: 1, d: msg.s }));
    }
  } else if (msg.op === 11) {
    r.acks++;
    if (phase === 'heartbeat') {
      phase = 'ping';
      ws.ping(Buffer.from(PING));
    }
  } else {
    r.unexpected.push(msg);
  }
});
ws.on('pong', (data) => {
  const s = data.toString('utf8');
  r.pongs.push(s);
  if (phase === 'ping' && s === PING) {
    phase = 'closing';
    closeStarted = Date.now();
    ws.close(1000, 'conformance done');
  }
});
ws.on('error', (e) => r.errors.push(String(e)));
ws.on('close', (code, reason) => {
  // After our close(1000): the code of the server's close frame (1006 if it
  // never sent one). Before it: the server closed on us.
  r.close = { code, reason: reason.toString('utf8'), phase };
  if (closeStarted) r.close_ms = Date.now() - closeStarted;
  finish();
});
