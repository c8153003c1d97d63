#include "tools/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shardring::tools {
namespace {
using ::testing::HasSubstr;

absl::StatusOr<RunOptions> Parse(std::vector<std::string_view> args, const char* env = nullptr) {
  bool help = false;
  std::string usage;
  return parse_run_options(args, env, &help, &usage);
}

std::string Error(std::vector<std::string_view> args) {
  auto r = Parse(std::move(args));
  return r.ok() ? "ok" : std::string(r.status().message());
}

TEST(RunOptions, DefaultsMatchTheInterface) {
  auto o = Parse({"--gateway", "ws://127.0.0.1:8080", "--total-shards", "4"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->intents, 513);
  EXPECT_EQ(o->consumers, 1);
  EXPECT_EQ(o->compress, Compression::kNone);
  EXPECT_EQ(o->sink, SinkKind::kNdjsonStdout);
  EXPECT_EQ(o->api, "https://discord.com/api/v10");
  EXPECT_FALSE(o->duration_s.has_value());
  EXPECT_EQ(o->coalesce_us, 1000);
  EXPECT_TRUE(o->token.empty());  // fine on loopback
}

TEST(RunOptions, ConnectTimeoutIsBounded) {
  auto d = Parse({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->connect_timeout_ms, 15000);
  const std::string lo = std::to_string(kMinConnectTimeout.count());
  const std::string hi = std::to_string(kMaxConnectTimeout.count());
  EXPECT_EQ(
      Error({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1", "--connect-timeout-ms", lo}),
      "ok");
  EXPECT_EQ(
      Error({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1", "--connect-timeout-ms", hi}),
      "ok");
  EXPECT_THAT(Error({"--connect-timeout-ms", std::to_string(kMinConnectTimeout.count() - 1)}),
              HasSubstr("--connect-timeout-ms"));
  EXPECT_THAT(Error({"--connect-timeout-ms", std::to_string(kMaxConnectTimeout.count() + 1)}),
              HasSubstr("--connect-timeout-ms"));
}

TEST(RunOptions, CoalesceIsBoundedByTheEnginesCeiling) {
  auto off = Parse({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1", "--coalesce-us", "0"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->coalesce_us, 0);
  const std::string max = std::to_string(kMaxCoalesce.count());
  const std::string over = std::to_string(kMaxCoalesce.count() + 1);
  auto top = Parse({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1", "--coalesce-us", max});
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->coalesce_us, kMaxCoalesce.count());
  EXPECT_THAT(Error({"--coalesce-us", over}), HasSubstr("--coalesce-us"));
  EXPECT_THAT(Error({"--coalesce-us", "-1"}), HasSubstr("--coalesce-us"));
}

TEST(RunOptions, EveryFlagIsRead) {
  auto o = Parse({"--token=abc.def",
                  "--gateway",
                  "wss://gateway.discord.gg",
                  "--total-shards",
                  "16",
                  "--shard-ids",
                  "4-7",
                  "--max-concurrency",
                  "2",
                  "--intents",
                  "33281",
                  "--threads",
                  "2",
                  "--consumers",
                  "3",
                  "--compress",
                  "zstd-stream",
                  "--sink",
                  "ndjson:/tmp/x.ndjson",
                  "--events",
                  "MESSAGE_CREATE,GUILD_CREATE",
                  "--duration",
                  "2.5",
                  "--ca-file",
                  "/etc/x.pem",
                  "--log-format",
                  "json"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->token, "abc.def");
  EXPECT_EQ(o->shard_ids, (std::pair<uint32_t, uint32_t>(4, 7)));
  EXPECT_EQ(*o->max_concurrency, 2);
  EXPECT_EQ(o->intents, 33281);
  EXPECT_EQ(o->threads, 2);
  EXPECT_EQ(o->consumers, 3);
  EXPECT_EQ(o->compress, Compression::kZstdStream);
  EXPECT_EQ(o->sink, SinkKind::kNdjsonFile);
  EXPECT_EQ(o->sink_path, "/tmp/x.ndjson");
  EXPECT_EQ(o->events, (std::vector<std::string>{"MESSAGE_CREATE", "GUILD_CREATE"}));
  EXPECT_DOUBLE_EQ(*o->duration_s, 2.5);
  EXPECT_EQ(o->log_format, LogFormat::kJson);
}

TEST(RunOptions, ZeroConsumersRunsHandlersInlineAndTheCountIsBounded) {
  auto o = Parse({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1", "--consumers", "0"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->consumers, 0);
  EXPECT_THAT(Error({"--consumers", "257"}), HasSubstr("--consumers"));
  EXPECT_THAT(Error({"--consumers", "-1"}), HasSubstr("--consumers"));
}

TEST(RunOptions, TokenComesFromTheEnvironmentWhenNotGiven) {
  auto o = Parse({"--gateway", "wss://gateway.discord.gg", "--total-shards", "1"}, "env.token");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->token, "env.token");
}

TEST(RunOptions, BadFlagsNameTheFlag) {
  EXPECT_THAT(Error({"--threads", "zero"}), HasSubstr("--threads"));
  EXPECT_THAT(Error({"--threads", "0"}), HasSubstr("--threads"));
  EXPECT_THAT(Error({"--nope"}), HasSubstr("unknown flag --nope"));
  EXPECT_THAT(Error({"--compress", "gzip"}), HasSubstr("--compress"));
  EXPECT_THAT(Error({"--sink", "kafka"}), HasSubstr("--sink"));
  EXPECT_THAT(Error({"--shard-ids", "7-4"}), HasSubstr("--shard-ids"));
  EXPECT_THAT(Error({"--total-shards", "4", "--shard-ids", "0-4", "--gateway", "ws://127.0.0.1:1"}),
              HasSubstr("--shard-ids"));
  EXPECT_THAT(Error({"--duration"}), HasSubstr("--duration: needs a value"));
  EXPECT_THAT(Error({"--events", "message_create"}), HasSubstr("--events"));
  EXPECT_THAT(Error({"--insecure=yes"}), HasSubstr("takes no value"));
  EXPECT_THAT(Error({"stray"}), HasSubstr("unexpected argument"));
}

TEST(RunOptions, PlainWebSocketsOnlyOnLoopback) {
  EXPECT_EQ(Error({"--gateway", "ws://127.0.0.1:8080", "--total-shards", "1"}), "ok");
  EXPECT_EQ(Error({"--gateway", "ws://[::1]:8080", "--total-shards", "1"}), "ok");
  EXPECT_THAT(
      Error({"--token", "t", "--gateway", "ws://gateway.discord.gg", "--total-shards", "1"}),
      HasSubstr("loopback"));
  EXPECT_THAT(Error({"--token", "t", "--api", "http://discord.com/api/v10"}),
              HasSubstr("loopback"));
}

TEST(RunOptions, InsecureIsRefusedForRemoteHostsUnlessInsisted) {
  EXPECT_THAT(Error({"--token", "t", "--insecure", "--gateway", "wss://gateway.discord.gg",
                     "--total-shards", "1"}),
              HasSubstr("--i-know"));
  EXPECT_EQ(Error({"--token", "t", "--insecure", "--i-know", "--gateway",
                   "wss://gateway.discord.gg", "--total-shards", "1"}),
            "ok");
  EXPECT_EQ(Error({"--insecure", "--gateway", "wss://127.0.0.1:8443", "--total-shards", "1"}),
            "ok");
}

TEST(RunOptions, ARemoteGatewayNeedsAToken) {
  EXPECT_THAT(Error({"--gateway", "wss://gateway.discord.gg", "--total-shards", "1"}),
              HasSubstr("--token"));
  EXPECT_THAT(Error({}), HasSubstr("--token"));  // the REST call goes to discord.com
}

TEST(RunOptions, ErrorsNeverQuoteTheToken) {
  const std::string token = "MTIzNDU2Nzg5.secret-token-value";
  auto r = Parse({"--token", token, "--gateway", "ws://gateway.discord.gg", "--total-shards", "1"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(std::string(r.status().message()).find(token), std::string::npos);
}

TEST(RunOptions, RedisFlags) {
  auto o = Parse({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1", "--redis",
                  "redis://127.0.0.1:7001/2", "--redis-prefix", "bot1", "--sink", "redis",
                  "--state", "redis", "--redis-maxlen", "100000"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->sink, SinkKind::kRedis);
  EXPECT_TRUE(o->state_redis);
  EXPECT_FALSE(o->state_path.has_value());
  ASSERT_TRUE(o->redis.has_value());
  EXPECT_EQ(o->redis->port, 7001);
  EXPECT_EQ(o->redis->db, 2);
  EXPECT_EQ(o->redis_prefix, "bot1");
  EXPECT_EQ(o->redis_maxlen, 100000);
  EXPECT_EQ(o->redis_buffer_mib, engine::kDefaultRedisBufferMiB);
  auto max = Parse({"--gateway", "ws://127.0.0.1:1", "--total-shards", "1", "--redis-buffer-mib",
                    std::to_string(engine::kMaxRedisBufferMiB)});
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(max->redis_buffer_mib, engine::kMaxRedisBufferMiB);
  // Each refusal names its flag.
  EXPECT_THAT(Error({"--sink", "redis"}), HasSubstr("--sink redis needs --redis URL"));
  EXPECT_THAT(Error({"--state", "redis"}), HasSubstr("--state redis needs --redis URL"));
  EXPECT_THAT(Error({"--redis", "http://x"}), HasSubstr("--redis: not a redis:// URL"));
  EXPECT_THAT(Error({"--redis", "redis://h:99999"}), HasSubstr("--redis: bad port"));
  EXPECT_THAT(Error({"--redis", "redis://h", "--redis-prefix", "a b"}),
              HasSubstr("--redis-prefix"));
  EXPECT_THAT(Error({"--redis", "redis://h", "--redis-prefix", ""}), HasSubstr("--redis-prefix"));
  EXPECT_THAT(Error({"--redis", "redis://h", "--sink", "redis", "--consumers", "0"}),
              HasSubstr("--consumers"));
  EXPECT_THAT(Error({"--redis-maxlen", "-1"}), HasSubstr("--redis-maxlen"));
  EXPECT_THAT(Error({"--redis-buffer-mib", std::to_string(engine::kMaxRedisBufferMiB + 1)}),
              HasSubstr("--redis-buffer-mib"));
}

}  // namespace
}  // namespace shardring::tools
