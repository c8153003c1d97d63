// bench/peers/discordjs_broker_client.mjs: discord.js's gateway client
// (@discordjs/ws) handing every dispatch to Redis with @discordjs/brokers,
// as a load-test peer for bench/redis_handoff.sh. SHARDS shards against a
// `shardring gateway` on PORT for SECONDS, the same WebSocketManager options
// as discordjs_client.mjs; each dispatch is published with
// PubSubRedisBroker (@discordjs/brokers 1.x: one XADD per publish, the
// value msgpack-encoded, over ioredis with its default options), one event
// per publish, as discord.js's own Redis gateway examples do:
//   broker.publish(`${PREFIX}:${t}`, { shardId, payload: d })
// so the streams are keyed by event type (shardring keys them by shard).
// SECONDS after connect() was called (whether or not every shard is ready
// by then: a client that cannot keep up may still be connecting) the manager
// is destroyed, the publishes still in flight are awaited (at most 60 s),
// and one JSON line is printed:
// {"client":"discordjs-brokers","events":N,"published":P,"failed":F,
//  "in_flight":I,"connect_s":C,"drain_s":D,"cpu_s":S,"seconds":T,"peak_rss_kib":K}
// events: dispatches received; published: XADDs Redis confirmed; in_flight:
// publishes still unconfirmed when it gave up waiting; connect_s: when
// connect() resolved (every shard ready; null: not within SECONDS); drain_s:
// the wait for the last confirmations; cpu_s (process.cpuUsage, every
// thread of the process) and seconds: from before connect() until the last
// publish was confirmed.
//   node discordjs_broker_client.mjs PORT SHARDS SECONDS REDIS_URL [PREFIX] [ws|wss]
// Run from a folder whose node_modules holds @discordjs/ws and
// @discordjs/brokers (with ioredis): bench/redis_handoff.sh copies it into
// .cache/npm with discordjs_manager.mjs.
import { PubSubRedisBroker } from '@discordjs/brokers';
import { WebSocketShardEvents } from '@discordjs/ws';
import Redis from 'ioredis';
import { benchManager } from './discordjs_manager.mjs';

const port = Number(process.argv[2]);
const shards = Number(process.argv[3] ?? 1);
const seconds = Number(process.argv[4] ?? 10);
const redisUrl = process.argv[5] ?? 'redis://127.0.0.1:6379';
const prefix = process.argv[6] ?? 'djs';
const scheme = process.argv[7] === 'wss' ? 'wss' : 'ws';

const redis = new Redis(redisUrl);
redis.on('error', (e) => console.error(`redis: ${e.message}`));
await redis.ping();
const broker = new PubSubRedisBroker(redis, { group: 'bench' });

const manager = benchManager({ port, shards, scheme });

let events = 0;
let published = 0;
let failed = 0;
let inFlight = 0;
let lastError = '';
let drained = null;  // resolves when inFlight reaches 0 after the stop
manager.on(WebSocketShardEvents.Dispatch, ({ shardId, data }) => {
  events += 1;
  inFlight += 1;
  broker.publish(`${prefix}:${data.t}`, { shardId, payload: data.d }).then(
    () => { published += 1; },
    (e) => { failed += 1; lastError = e.message; },
  ).finally(() => {
    inFlight -= 1;
    if (inFlight === 0 && drained) drained();
  });
});

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const since = () => Number(process.hrtime.bigint() - t0) / 1e9;
let connectS = null;
manager.connect().then(
  () => { connectS = since(); },
  (e) => { console.error(`connect: ${e.message}`); },
);
await new Promise((r) => setTimeout(r, seconds * 1000));
try {
  await manager.destroy({ code: 1000 });
} catch (e) {
  console.error(`destroy: ${e.message}`);
}
const stopped = since();
if (inFlight > 0) {
  await Promise.race([
    new Promise((r) => { drained = r; }),
    new Promise((r) => setTimeout(r, 60000)),
  ]);
}
const cpu = process.cpuUsage(cpu0);
const elapsed = since();
const out = {
  client: 'discordjs-brokers',
  events,
  published,
  failed,
  in_flight: inFlight,
  connect_s: connectS,
  drain_s: elapsed - stopped,
  cpu_s: (cpu.user + cpu.system) / 1e6,
  seconds: elapsed,
  peak_rss_kib: process.resourceUsage().maxRSS,
};
if (lastError) console.error(`publish failed: ${lastError}`);
console.log(JSON.stringify(out));
redis.disconnect();
broker.streamReadClient?.disconnect();
process.exit(0);
