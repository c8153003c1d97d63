// discord.js's gateway client (@discordjs/ws) against `shardring gateway`:
// no real Discord; a `rest` object answers /gateway/bot with the synthetic
// gateway's address and the identify throttler lets every shard through
// (the gateway enforces its own buckets). Checks that every shard
// identifies, gets READY, heartbeats (ACKed) and receives dispatches with
// consecutive seqs. With `zlib-stream`, the shards connect with
// compress=zlib-stream (inflated by zlib-sync) and the check also requires
// that discord.js reported that mode. Exit 0 on success; prints what failed.
//   node discordjs_client_check.mjs PORT SHARDS [zlib-stream]
import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';

const port = Number(process.argv[2]);
const shards = Number(process.argv[3] ?? 2);
const zlibStream = process.argv[4] === 'zlib-stream';
const rest = {
  async get(route) {
    if (!route.startsWith('/gateway/bot')) throw new Error(`unexpected REST call ${route}`);
    return {
      url: `ws://127.0.0.1:${port}`,
      shards,
      session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: shards },
    };
  },
};
const manager = new WebSocketManager({
  token: 'discordjs-check-token',
  intents: 513,
  rest,
  shardCount: shards,
  buildIdentifyThrottler: async () => ({ async waitForIdentify() {} }),
  ...(zlibStream ? { compression: CompressionMethod.ZlibStream } : {}),
});
let sawZlibStream = false;
manager.on(WebSocketShardEvents.Debug, ({ message }) => {
  if (/compression: zlib-stream/.test(message)) sawZlibStream = true;
});

const ready = new Set();
const heartbeats = new Map();
const lastSeq = new Map();
const dispatches = new Map();
let failure = null;
let destroying = false;
manager.on(WebSocketShardEvents.Ready, ({ shardId }) => ready.add(shardId));
manager.on(WebSocketShardEvents.HeartbeatComplete, ({ shardId }) =>
  heartbeats.set(shardId, (heartbeats.get(shardId) ?? 0) + 1));
manager.on(WebSocketShardEvents.Dispatch, ({ data, shardId }) => {
  const prev = lastSeq.get(shardId) ?? 0;
  if (data.s !== prev + 1 && !failure) failure = `shard ${shardId}: seq ${data.s} after ${prev}`;
  lastSeq.set(shardId, data.s);
  dispatches.set(shardId, (dispatches.get(shardId) ?? 0) + 1);
});
manager.on(WebSocketShardEvents.Closed, ({ shardId, code }) => {
  if (!failure && !destroying) failure = `shard ${shardId} closed with ${code}`;
});

const deadline = Date.now() + 20000;
await manager.connect();
while (Date.now() < deadline && !failure) {
  const done = [...Array(shards).keys()].every(
    (id) => ready.has(id) && (heartbeats.get(id) ?? 0) >= 2 && (dispatches.get(id) ?? 0) >= 50);
  if (done) break;
  await new Promise((r) => setTimeout(r, 100));
}
destroying = true;
await manager.destroy({ code: 1000, reason: 'check done' });
const summary = [...Array(shards).keys()].map(
  (id) => `shard ${id}: ready=${ready.has(id)} heartbeats=${heartbeats.get(id) ?? 0} dispatches=${dispatches.get(id) ?? 0}`);
console.log(summary.join('\n'));
if (zlibStream && !sawZlibStream && !failure) failure = 'discord.js did not connect with zlib-stream';
const ok = !failure && [...Array(shards).keys()].every(
  (id) => ready.has(id) && (heartbeats.get(id) ?? 0) >= 2 && (dispatches.get(id) ?? 0) >= 50);
if (!ok) {
  console.error(`FAILED: ${failure ?? 'not every shard got READY, 2 heartbeat ACKs and 50 dispatches in 20 s'}`);
  process.exit(1);
}
process.exit(0);
