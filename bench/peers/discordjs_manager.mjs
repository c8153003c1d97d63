// bench/peers/discordjs_manager.mjs: the @discordjs/ws WebSocketManager the
// discord.js peers share (discordjs_client.mjs, discordjs_broker_client.mjs):
// SHARDS shards against a `shardring gateway` on 127.0.0.1:PORT, /gateway/bot
// answered locally, and identify pacing as the bench scripts give shardring
// (--max-concurrency 16 --identify-window-ms 5): one identify per bucket
// (shard % 16) every 5 ms. Copied next to them into the folder whose
// node_modules holds @discordjs/ws.
import { CompressionMethod, WebSocketManager } from '@discordjs/ws';

export function benchManager({ port, shards, scheme = 'ws', zlibStream = false }) {
  const nextIdentify = new Map();
  return new WebSocketManager({
    token: 'peer-bench-token',
    intents: 513,
    rest: {
      async get() {
        return {
          url: `${scheme}://127.0.0.1:${port}`,
          shards,
          session_start_limit: { total: 1e6, remaining: 1e6, reset_after: 0, max_concurrency: 16 },
        };
      },
    },
    shardCount: shards,
    buildIdentifyThrottler: async () => ({
      async waitForIdentify(shardId) {
        const bucket = shardId % 16;
        const now = Date.now();
        const at = Math.max(now, nextIdentify.get(bucket) ?? 0);
        nextIdentify.set(bucket, at + 5);
        if (at > now) await new Promise((r) => setTimeout(r, at - now));
      },
    }),
    ...(zlibStream ? { compression: CompressionMethod.ZlibStream } : {}),
  });
}
