// A scripted Discord-like gateway written with Node's `ws` (a WebSocket
// server nobody here wrote), for `shardring run` to connect to. Driven by
// peers_test.py:
//   node node_ws_server.mjs NODE_MODULES [TIMEOUT_MS]
// It listens on 127.0.0.1 (a free port), prints {"port":N} on stdout, then
// reads the plan (one JSON line) from stdin. Connection i follows plan.conns[i]:
// send HELLO; wait for the client's first non-heartbeat message; send the
// planned payloads (those with `splits` as one fragmented text message cut at
// those byte offsets, with a ping in the middle when `ping_mid` is set); ping
// and wait for the pong; close with `close_code` if set, else wait for the
// client to close. Heartbeats (op 1) are ACKed (op 11) throughout. When the
// last planned connection has closed (or on timeout) it prints one JSON line
// with what each connection received and how it closed, and exits.
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

const modules = process.argv[2];
const timeoutMs = Number(process.argv[3] ?? 25000);
const require = createRequire(import.meta.url);
const { WebSocketServer } = require(path.join(modules, 'ws'));

const result = { conns: [], errors: [] };
let plan = null;
let finished = false;
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 16 << 20 });

function finish() {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + '\n', () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    process.exit(0);
  });
}

setTimeout(() => {
  result.errors.push(`timed out after ${timeoutMs} ms`);
  finish();
}, timeoutMs).unref();
process.on('SIGTERM', () => {
  result.errors.push('stopped by SIGTERM before the plan completed');
  finish();
});

function within(ms, what, promise) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]);
}

function sendFragmented(ws, bytes, splits, pingMid) {
  // Cut points are byte offsets: some fall inside a UTF-8 sequence, one
  // fragment may be empty; RFC 6455 5.4 allows both.
  const cuts = [0, ...splits, bytes.length];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const fin = i + 2 === cuts.length;
    ws.send(bytes.subarray(cuts[i], cuts[i + 1]), { binary: false, fin });
    if (i === 0 && pingMid) ws.ping(Buffer.from(pingMid)); // a control frame between fragments
  }
}

async function runPlan(ws, rec, step) {
  for (const p of step.payloads) {
    const bytes = Buffer.from(p.text, 'utf8');
    if (p.splits) sendFragmented(ws, bytes, p.splits, step.ping_mid);
    else ws.send(bytes, { binary: false });
  }
  if (step.ping) {
    ws.ping(Buffer.from(step.ping));
    await within(5000, `pong for ${step.ping}`, rec.pongFor(step.ping));
    rec.ping_ok = true;
  }
  if (step.close_code) {
    rec.server_closed = true;
    rec.close_started = Date.now();
    ws.close(step.close_code, step.close_reason ?? '');
    // `close` fires when the peer's close frame came back (or 1006 without one).
    setTimeout(() => {
      if (!rec.close) {
        rec.errors.push('no close frame back within 5 s of ours');
        ws.terminate();
      }
    }, 5000).unref();
  }
}

wss.on('connection', (ws, req) => {
  const idx = result.conns.length;
  const rec = { path: req.url, first: null, later: [], heartbeats: 0, pongs: [], errors: [],
                server_closed: false, close: null };
  result.conns.push(rec);
  const waiters = new Map();
  rec.pongFor = (payload) => new Promise((resolve) => {
    if (rec.pongs.includes(payload)) resolve();
    else waiters.set(payload, resolve);
  });
  Object.defineProperty(rec, 'pongFor', { enumerable: false });
  const step = plan?.conns[idx];

  ws.on('message', (data, isBinary) => {
    let msg;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch (e) {
      rec.errors.push(`not JSON (binary=${isBinary}): ${data.toString('utf8').slice(0, 200)}`);
      return;
    }
    if (msg.op === 1) {
      rec.heartbeats++;
      ws.send(plan.heartbeat_ack);
      return;
    }
    if (rec.first !== null) {
      rec.later.push(msg);
      return;
    }
    rec.first = msg;
    if (!step) {
      rec.errors.push('a connection the plan did not expect');
      return;
    }
    runPlan(ws, rec, step).catch((e) => rec.errors.push(String(e)));
  });
  ws.on('pong', (data) => {
    const s = data.toString('utf8');
    rec.pongs.push(s);
    waiters.get(s)?.();
  });
  ws.on('error', (e) => rec.errors.push(String(e)));
  ws.on('close', (code, reason) => {
    rec.close = { code, reason: reason.toString('utf8'),
                  ms: rec.close_started ? Date.now() - rec.close_started : null };
    if (plan && idx + 1 >= plan.conns.length) finish();
  });
  ws.send(plan.hello);
});

wss.on('listening', () => {
  process.stdout.write(JSON.stringify({ port: wss.address().port }) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  rl.once('line', (line) => {
    plan = JSON.parse(line);
    process.stdout.write(JSON.stringify({ plan: 'loaded' }) + '\n');
  });
});
wss.on('error', (e) => {
  result.errors.push(String(e));
  finish();
});
