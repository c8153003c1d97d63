// bench/peers/discordjs_client.mjs: discord.js's gateway client
// (@discordjs/ws) as a load-test peer: SHARDS shards against a
// `shardring gateway` on PORT for SECONDS, counting every dispatch
// (discord.js parses each payload itself). Prints one JSON line:
// {"client":"discordjs","events":N,"cpu_s":S,"seconds":T,"peak_rss_kib":K}.
//   node discordjs_client.mjs PORT SHARDS SECONDS [none|zlib-stream] [ws|wss]
// For wss:// give the CA with NODE_EXTRA_CA_CERTS=ca.pem.
// Run from a folder whose node_modules holds @discordjs/ws (and zlib-sync
// for zlib-stream): bench/peers/compare.sh copies it, with
// discordjs_manager.mjs, into .cache/npm.
import { WebSocketShardEvents } from '@discordjs/ws';
import { benchManager } from './discordjs_manager.mjs';

const port = Number(process.argv[2]);
const shards = Number(process.argv[3] ?? 1);
const seconds = Number(process.argv[4] ?? 10);
const zlibStream = process.argv[5] === 'zlib-stream';
const scheme = process.argv[6] === 'wss' ? 'wss' : 'ws';
const manager = benchManager({ port, shards, scheme, zlibStream });
let events = 0;
manager.on(WebSocketShardEvents.Dispatch, () => { events += 1; });
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await manager.connect();
await new Promise((r) => setTimeout(r, seconds * 1000));
const cpu = process.cpuUsage(cpu0);
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
const out = {
  client: 'discordjs',
  events,
  cpu_s: (cpu.user + cpu.system) / 1e6,
  seconds: elapsed,
  peak_rss_kib: process.resourceUsage().maxRSS,
};
await manager.destroy({ code: 1000 });
console.log(JSON.stringify(out));
process.exit(0);
