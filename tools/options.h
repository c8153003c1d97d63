// tools/options.h: the flags of `shardring run`, `gateway` and `load`
// (docs/interface.md), parsed and checked. Start-up only. Every error names the
// flag; the CLI prints it and exits 2.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/redis_link.h"
#include "engine/redis_sink.h"
#include "engine/uring_options.h"
#include "engine/url.h"

namespace shardring::tools {

enum class SinkKind : uint8_t { kNdjsonStdout, kNdjsonFile, kNull, kRedis };
enum class LogFormat : uint8_t { kText, kJson };

struct RunOptions {
  std::string token;  // --token or $DISCORD_TOKEN; never printed
  std::string api = "https://discord.com/api/v10";
  std::optional<engine::Url> gateway;
  std::optional<int64_t> total_shards;
  std::optional<std::pair<uint32_t, uint32_t>> shard_ids;  // inclusive
  std::optional<int64_t> max_concurrency;
  int64_t intents = static_cast<int64_t>(Config{}.intents);
  int64_t threads = 0;  // 0: online cores
  int64_t consumers = 1;
  Compression compress = Compression::kNone;
  int64_t coalesce_us = Config{}.coalesce.count();
  std::string uring_fallbacks;  // --uring-fallback: Config::uring_fallbacks
  bool validate_d = false;      // Config::validate_d
  int64_t connect_timeout_ms = Config{}.connect_timeout.count();
  SinkKind sink = SinkKind::kNdjsonStdout;
  std::string sink_path;
  std::vector<std::string> events;  // empty: all
  std::optional<double> duration_s;
  std::string ca_file;
  bool insecure = false;
  bool i_know = false;
  LogFormat log_format = LogFormat::kText;
  int64_t identify_window_ms = Config{}.identify_window.count();  // Discord's; tests shorten it
  int64_t large_threshold = Config{}.large_threshold;
  bool live = false;                      // live view of shards and events on stderr
  std::optional<std::string> state_path;  // --state PATH: the session store file
  bool state_redis = false;               // --state redis
  std::optional<engine::RedisUrl> redis;  // --redis URL
  std::string redis_prefix = "shardring";
  int64_t redis_maxlen = 0;  // --redis-maxlen: cap per stream; 0: none
  int64_t redis_buffer_mib = engine::kDefaultRedisBufferMiB;
  bool standby = false;  // --standby: wait for another process's shards
  int64_t lease_ms = 10'000;
  int64_t checkpoint_ms = kCheckpointInterval.count();
  int64_t resume_max_age_s = kResumeMaxAge.count();
  bool logout = false;
  std::string identify_gate = "local";
  std::optional<int64_t> start_reserve;
  std::string metrics_listen;  // --metrics HOST:PORT; empty: off
  int64_t health_grace_s = 30;
  int log_level = 1;     // engine::Level: 0 debug, 1 info, 2 warn, 3 error
  std::string presence;  // --presence: IDENTIFY's presence (JSON object)
  std::string commands;  // --commands PATH|-; empty: none
};

// `shardring load`: a synthetic gateway (spawned, pinned to its own cores,
// or --gateway) and the engine with a null sink, measured.
struct LoadOptions {
  int64_t shards = 100;
  double rate = 100;  // events/s per shard; 0: unlimited
  double duration_s = 30;
  bool tls = false;                    // spawned gateway serves wss:// (throwaway CA)
  bool idle = false;                   // spawned gateway sends no events (memory per idle shard)
  std::optional<engine::Url> gateway;  // an already running gateway instead
  std::string ca_file;                 // for --gateway wss://
  bool insecure = false;               // for --gateway wss:// (loopback only)
  int64_t threads = 0;                 // engine I/O threads; 0: its cores
  int64_t gateway_threads = 1;         // cores given to the spawned gateway
  int64_t consumers = 1;
  Compression compress = Compression::kNone;
  int64_t coalesce_us = Config{}.coalesce.count();
  std::string uring_fallbacks;  // --uring-fallback: Config::uring_fallbacks
  bool validate_d = false;
  int64_t max_concurrency = 16;
  // The engine paces identifies to this window; the spawned gateway enforces
  // a quarter of it: the slack absorbs its own lag in a connection storm
  // (measured up to ~65 ms at 2,000 shards on one gateway core).
  int64_t identify_window_ms = 100;  // compressed: Discord's is 5000
  int64_t heartbeat_ms = 41250;      // HELLO's interval (Discord's)
  std::string mix_file;              // gateway --mix
  std::string json_path;             // summary as JSON
  std::string report_dir;            // --report: per-second CSV and charts
  double gateway_reset_at_s = 0;     // --gateway-reset-at: 0 off
  // --sink redis: the events into Redis streams (the hand-off under load).
  bool sink_redis = false;
  std::optional<engine::RedisUrl> redis;
  std::string redis_prefix = "shardring-load";
  int64_t redis_maxlen = 100'000;  // per stream, so a long run fits in Redis's memory
};

absl::StatusOr<LoadOptions> parse_load_options(std::span<const std::string_view> args, bool* help,
                                               std::string* usage);

// `env_token` is $DISCORD_TOKEN (null when unset), `credentials_dir`
// $CREDENTIALS_DIRECTORY (null when unset: its `token` file is read when no
// other token is given). Sets *help for --help.
absl::StatusOr<RunOptions> parse_run_options(std::span<const std::string_view> args,
                                             const char* env_token, bool* help, std::string* usage,
                                             const char* credentials_dir = nullptr);

// "none", "zlib-stream" or "zstd-stream" (--compress's words).
[[nodiscard]] const char* compress_name(Compression c) noexcept;

// --shard-ids "A-B" (or "A"): inclusive, A <= B.
absl::StatusOr<std::pair<uint32_t, uint32_t>> parse_shard_range(std::string_view s);

}  // namespace shardring::tools
