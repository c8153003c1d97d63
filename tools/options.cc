#include "tools/options.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_split.h"
#include "engine/redis_lease.h"
#include "engine/text.h"
#include "parse/inflate.h"
#include "simdjson.h"
#include "tools/flags.h"

namespace shardring::tools {
namespace {
absl::Status Bad(std::string_view flag, std::string_view why) {
  return absl::InvalidArgumentError(cat("--", flag, ": ", why));
}

absl::Status ParseCompress(std::string_view name, Compression* out) {
  const auto c = parse::compression_from_name(name);
  if (!c) {
    return Bad("compress", cat("expected none, zlib-stream or zstd-stream, got '", name, "'"));
  }
  *out = *c;
  return absl::OkStatus();
}

constexpr char kValidateDHelp[] =
    "validate all of each dispatch's d as JSON before delivery (default: its extent, "
    "top level, UTF-8 and strings)";
constexpr char kUringFallbackHelp[] =
    "do without these io_uring features even where the kernel has them: single_issuer, "
    "defer_taskrun, coop_taskrun, registered_fd, min_wait, recv_bundle, all (to measure or "
    "test each fallback)";
absl::Status CheckUringFallbacks(const std::string& list) {
  auto f = engine::parse_uring_fallbacks(list);
  return f.ok() ? absl::OkStatus() : Bad("uring-fallback", sv(f.status().message()));
}
constexpr char kCoalesceHelp[] =
    "after a light wake-up, let completions gather this long before waiting again "
    "(0: off; default 1000)";
}  // namespace

const char* compress_name(Compression c) noexcept { return parse::to_string(c); }

absl::StatusOr<std::pair<uint32_t, uint32_t>> parse_shard_range(std::string_view s) {
  const size_t dash = s.find('-');
  auto a = parse_int(s.substr(0, dash), 0, UINT32_MAX - 1);
  auto b = dash == std::string_view::npos ? a : parse_int(s.substr(dash + 1), 0, UINT32_MAX - 1);
  if (!a || !b || *a > *b) {
    return Bad("shard-ids",
               cat("expected A-B with A <= B (inclusive), got '", std::string(s), "'"));
  }
  return std::pair<uint32_t, uint32_t>(static_cast<uint32_t>(*a), static_cast<uint32_t>(*b));
}

absl::StatusOr<RunOptions> parse_run_options(std::span<const std::string_view> args,
                                             const char* env_token, bool* help, std::string* usage,
                                             const char* credentials_dir) {
  RunOptions o;
  std::optional<std::string> token, token_file, gateway, shard_ids;
  std::string log_level = "info";
  std::string compress = "none", sink = "ndjson", events, log_format = "text";
  std::optional<int64_t> duration_ms;
  double duration = -1;
  FlagSet f("run");
  f.add_string("token", &token, "bot token (or env DISCORD_TOKEN); never printed");
  f.add_string("token-file", &token_file,
               "read the token from this file (also $CREDENTIALS_DIRECTORY/token), so it is "
               "never on a command line");
  f.add_string("api", &o.api, "REST base for GET /gateway/bot");
  f.add_string("gateway", &gateway, "ws:// or wss:// gateway URL");
  f.add_int("total-shards", &o.total_shards, 1, 1 << 20, "shard count");
  f.add_string("shard-ids", &shard_ids, "A-B: the shards this process runs (inclusive)");
  f.add_int("max-concurrency", &o.max_concurrency, 1, 1 << 16, "identify buckets");
  f.add_int("intents", &o.intents, 0, (int64_t{1} << 53) - 1, "gateway intents bitfield");
  f.add_int("threads", &o.threads, 1, 1024, "I/O threads (default: online cores)");
  f.add_int("consumers", &o.consumers, 0, 256,
            "consumer threads running sinks (0: on the I/O threads)");
  f.add_string("compress", &compress, "none | zlib-stream | zstd-stream");
  f.add_int("coalesce-us", &o.coalesce_us, 0, kMaxCoalesce.count(), kCoalesceHelp);
  f.add_string("uring-fallback", &o.uring_fallbacks, kUringFallbackHelp);
  f.add_bool("validate-d", &o.validate_d, kValidateDHelp);
  f.add_int("connect-timeout-ms", &o.connect_timeout_ms, kMinConnectTimeout.count(),
            kMaxConnectTimeout.count(),
            "TCP + TLS + WebSocket upgrade must finish within this (default 15000)");
  f.add_string("sink", &sink, "ndjson | ndjson:PATH | redis | null");
  f.add_string("events", &events, "comma-separated dispatch types to deliver");
  f.add_double("duration", &duration, 0, 1e9, "stop cleanly after SECS");
  f.add_string("ca-file", &o.ca_file, "extra CA bundle (PEM) for wss://");
  f.add_bool("insecure", &o.insecure, "skip certificate verification (loopback only)");
  f.add_bool("i-know", &o.i_know, "allow --insecure for non-loopback hosts");
  f.add_string("log-format", &log_format, "text | json");
  f.add_int("identify-window-ms", &o.identify_window_ms, 1, 3'600'000,
            "per-bucket identify window (Discord: 5000)");
  f.add_int("large-threshold", &o.large_threshold, 50, 250, "IDENTIFY large_threshold");
  f.add_bool("live", &o.live, "live view of shards and events on stderr");
  f.add_string("state", &o.state_path,
               "PATH | redis: where sessions are kept: a clean stop saves each shard's session, "
               "the next start RESUMEs it (a file: one per process)");
  std::optional<std::string> redis_url;
  f.add_string("redis", &redis_url,
               "redis://HOST[:PORT][/DB]: the Redis that --sink redis, --state redis and "
               "--identify-gate redis use");
  f.add_string("redis-prefix", &o.redis_prefix,
               "key prefix: P:shard:N streams, P:session:N, ... (default shardring)");
  f.add_int("redis-maxlen", &o.redis_maxlen, 0, int64_t{1} << 40,
            "cap each shard's stream at N entries, read or not (0: trim only what every consumer "
            "group acknowledged)");
  f.add_int("redis-buffer-mib", &o.redis_buffer_mib, 0, engine::kMaxRedisBufferMiB,
            "events buffered through a Redis outage before shards stop reading (default 64; 0: "
            "stop reading at once)");
  f.add_bool("standby", &o.standby,
             "run no shards until another process's leases expire, then take its shards over "
             "and resume them (needs --sink redis --state redis)");
  f.add_int("lease-ms", &o.lease_ms, engine::kMinLeaseTime.count(), engine::kMaxLeaseTime.count(),
            "shard leases expire this long after their process stops renewing (default 10000)");
  f.add_int("checkpoint-ms", &o.checkpoint_ms, kMinCheckpointInterval.count(),
            kMaxCheckpointInterval.count(), "how often --state is checkpointed (default 1000)");
  f.add_int("resume-max-age-s", &o.resume_max_age_s, 0, kMaxResumeMaxAge.count(),
            "a saved session older than this identifies instead (default 300)");
  f.add_bool("logout", &o.logout, "stop by ending every Discord session (close 1000)");
  f.add_string("metrics", &o.metrics_listen,
               "HOST:PORT: serve /metrics (Prometheus), /healthz and /shards (port 0: any)");
  f.add_int("health-grace-s", &o.health_grace_s, 0, 86'400,
            "/healthz fails when a shard is not ready for longer than this (default 30)");
  f.add_string("log-level", &log_level, "debug | info | warn | error");
  f.add_string("presence", &o.presence, "IDENTIFY's presence object (JSON)");
  f.add_string("commands", &o.commands,
               "PATH or -: NDJSON gateway commands {\"shard\":N,\"op\":3,\"d\":{...}} to send");
  f.add_string("identify-gate", &o.identify_gate,
               "local | file:DIR | redis: the processes of one machine (file) or of every machine "
               "(redis) share the identify buckets");
  f.add_int("start-reserve", &o.start_reserve, 0, 1 << 30,
            "session starts to keep: refuse to start (exit 3) below (default 5% of the total)");
  *usage = f.usage();
  if (absl::Status s = f.parse(args, help); !s.ok() || *help) {
    if (!s.ok()) return s;
    return o;
  }
  if (absl::Status s = CheckUringFallbacks(o.uring_fallbacks); !s.ok()) return s;
  if (o.identify_gate != "local" && o.identify_gate != "redis" &&
      !(o.identify_gate.rfind("file:", 0) == 0 && o.identify_gate.size() > 5)) {
    return Bad("identify-gate",
               cat("expected local, file:DIR or redis, got '", o.identify_gate, "'"));
  }
  if (o.state_path && o.state_path->empty()) return Bad("state", "expected a file path or redis");
  if (redis_url) {
    auto u = engine::parse_redis_url(*redis_url);
    if (!u.ok()) return u.status();
    o.redis = *u;
  }
  if (o.redis_prefix.empty() || o.redis_prefix.find_first_of(" \t\r\n*?[]") != std::string::npos) {
    return Bad("redis-prefix", "expected a non-empty prefix without spaces or * ? [ ]");
  }
  if (o.identify_gate == "redis" && !o.redis) {
    return Bad("identify-gate", "--identify-gate redis needs --redis URL");
  }
  if (o.standby && (sink != "redis" || !o.state_path || *o.state_path != "redis")) {
    return Bad("standby", "--standby needs --sink redis and --state redis");
  }
  if (o.standby && !o.total_shards) {
    return Bad("standby", "--standby needs --total-shards (the shards it may take over)");
  }
  if (o.state_path && *o.state_path == "redis") {
    if (!o.redis) return Bad("state", "--state redis needs --redis URL");
    o.state_redis = true;
    o.state_path.reset();
  }
  if (token && token_file) return Bad("token-file", "give --token or --token-file, not both");
  // The token: --token, --token-file, $DISCORD_TOKEN, then the service
  // manager's credential (systemd's LoadCredential=token:...).
  std::optional<std::string> file = token_file;
  if (!token && !file && env_token == nullptr && credentials_dir != nullptr &&
      *credentials_dir != '\0') {
    const std::string cred = cat(credentials_dir, "/token");
    if (access(cred.c_str(), F_OK) == 0) file = cred;
  }
  if (token) {
    o.token = *token;
  } else if (file) {
    std::ifstream in(*file);
    if (!in) {
      return Bad("token-file", cat("cannot read ", *file, ": ", std::strerror(errno)));
    }
    std::getline(in, o.token);
    while (!o.token.empty() && (o.token.back() == '\r' || o.token.back() == ' ')) {
      o.token.pop_back();
    }
    if (o.token.empty()) return Bad("token-file", cat(*file, " holds no token on its first line"));
  } else if (env_token != nullptr) {
    o.token = env_token;
  }
  if (!o.presence.empty()) {
    simdjson::dom::parser parser;
    simdjson::dom::object presence;
    if (parser.parse(o.presence).get(presence)) {
      return Bad("presence", "expected a JSON object, like {\"status\":\"online\",...}");
    }
    if (o.presence.size() > 4096 - 256) return Bad("presence", "over 3840 bytes");
  }
  if (log_level == "debug") {
    o.log_level = 0;
  } else if (log_level == "info") {
    o.log_level = 1;
  } else if (log_level == "warn") {
    o.log_level = 2;
  } else if (log_level == "error") {
    o.log_level = 3;
  } else {
    return Bad("log-level", cat("expected debug, info, warn or error, got '", log_level, "'"));
  }
  if (duration >= 0) o.duration_s = duration;
  if (shard_ids) {
    auto r = parse_shard_range(*shard_ids);
    if (!r.ok()) return r.status();
    o.shard_ids = *r;
    if (o.total_shards && r->second >= *o.total_shards) {
      return Bad("shard-ids", cat("shard ", r->second, " is outside --total-shards ",
                                  *o.total_shards, " (ids are 0..N-1)"));
    }
  }
  if (absl::Status s = ParseCompress(compress, &o.compress); !s.ok()) return s;
  if (sink == "ndjson") {
    o.sink = SinkKind::kNdjsonStdout;
  } else if (sink == "null") {
    o.sink = SinkKind::kNull;
  } else if (sink.rfind("ndjson:", 0) == 0 && sink.size() > 7) {
    o.sink = SinkKind::kNdjsonFile;
    o.sink_path = sink.substr(7);
  } else if (sink == "redis") {
    if (!o.redis) return Bad("sink", "--sink redis needs --redis URL");
    // The writers wait on Redis (backpressure): never on a core thread.
    if (o.consumers == 0) return Bad("consumers", "--sink redis needs at least 1 consumer");
    o.sink = SinkKind::kRedis;
  } else {
    return Bad("sink", cat("expected ndjson, ndjson:PATH, redis or null, got '", sink, "'"));
  }
  if (log_format == "text")
    o.log_format = LogFormat::kText;
  else if (log_format == "json")
    o.log_format = LogFormat::kJson;
  else
    return Bad("log-format", cat("expected text or json, got '", log_format, "'"));
  if (!events.empty()) {
    for (absl::string_view e : absl::StrSplit(events, ',', absl::SkipWhitespace())) {
      std::string name(e.data(), e.size());
      for (char c : name) {
        if (!((c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9'))) {
          return Bad("events", cat("'", name, "' is not a dispatch type (like MESSAGE_CREATE)"));
        }
      }
      o.events.push_back(std::move(name));
    }
  }
  auto check_host = [&](const engine::Url& u, std::string_view flag) -> absl::Status {
    const bool loopback = engine::is_loopback_host(u.host);
    if ((u.scheme == engine::Scheme::kWs || u.scheme == engine::Scheme::kHttp) && !loopback) {
      return Bad(flag, cat("plain ", u.scheme == engine::Scheme::kWs ? "ws://" : "http://",
                           " is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); "
                           "use wss:// or https:// for ",
                           u.host));
    }
    if (o.insecure && !loopback && !o.i_know) {
      return Bad("insecure",
                 cat("refused for non-loopback host ", u.host,
                     " (certificate checks protect your token); add --i-know to insist"));
    }
    return absl::OkStatus();
  };
  bool any_remote = false;
  if (gateway) {
    auto u = engine::parse_url(*gateway);
    if (!u.ok()) return Bad("gateway", sv(u.status().message()));
    if (u->scheme != engine::Scheme::kWs && u->scheme != engine::Scheme::kWss) {
      return Bad("gateway", "expected a ws:// or wss:// URL");
    }
    if (absl::Status s = check_host(*u, "gateway"); !s.ok()) return s;
    any_remote |= !engine::is_loopback_host(u->host);
    o.gateway = *u;
  }
  const bool needs_rest = !(o.gateway && o.total_shards);
  if (needs_rest) {
    auto u = engine::parse_url(o.api);
    if (!u.ok()) return Bad("api", sv(u.status().message()));
    if (u->scheme != engine::Scheme::kHttp && u->scheme != engine::Scheme::kHttps) {
      return Bad("api", "expected an http:// or https:// URL");
    }
    if (absl::Status s = check_host(*u, "api"); !s.ok()) return s;
    any_remote |= !engine::is_loopback_host(u->host);
  }
  if (o.token.empty() && any_remote) {
    return Bad(
        "token",
        "a bot token is required (--token or env DISCORD_TOKEN) except against a loopback gateway");
  }
  for (char c : o.token) {
    if (static_cast<unsigned char>(c) < 0x21 || c == '"' || c == '\\' || c == 0x7f) {
      return Bad("token", "the token has spaces, quotes or control characters");
    }
  }
  return o;
}

absl::StatusOr<LoadOptions> parse_load_options(std::span<const std::string_view> args, bool* help,
                                               std::string* usage) {
  LoadOptions o;
  std::optional<std::string> gateway;
  FlagSet f("load");
  f.add_int("shards", &o.shards, 1, 1 << 20, "shards to run (default 100)");
  f.add_double("rate", &o.rate, 0, 1e7,
               "events/s per shard the gateway sends; 0: unlimited (default 100)");
  f.add_double("duration", &o.duration_s, 0.1, 1e7, "seconds to run (default 30)");
  f.add_bool("tls", &o.tls, "the spawned gateway serves wss:// with a throwaway CA");
  f.add_bool("idle", &o.idle,
             "the spawned gateway sends READY and heartbeat ACKs only: memory per idle shard");
  f.add_string("gateway", &gateway,
               "ws:// or wss:// URL of a running gateway instead of spawning one");
  f.add_string("ca-file", &o.ca_file, "CA bundle (PEM) for --gateway wss://");
  f.add_bool("insecure", &o.insecure,
             "skip certificate checks for --gateway wss:// (loopback only)");
  f.add_int("threads", &o.threads, 1, 1024, "engine I/O threads (default: the cores left to it)");
  f.add_int("gateway-threads", &o.gateway_threads, 1, 1024,
            "cores (and threads) of the spawned gateway (default 1)");
  f.add_int("consumers", &o.consumers, 0, 256,
            "engine consumer threads (0: handlers on the I/O threads)");
  std::string compress = "none";
  f.add_string("compress", &compress, "transport compression: none | zlib-stream | zstd-stream");
  f.add_int("coalesce-us", &o.coalesce_us, 0, kMaxCoalesce.count(), kCoalesceHelp);
  f.add_string("uring-fallback", &o.uring_fallbacks, kUringFallbackHelp);
  f.add_bool("validate-d", &o.validate_d, kValidateDHelp);
  f.add_int("max-concurrency", &o.max_concurrency, 1, 1 << 16, "identify buckets (default 16)");
  f.add_int("identify-window-ms", &o.identify_window_ms, 2, 3'600'000,
            "per-bucket identify window the engine keeps; the spawned gateway enforces "
            "a quarter of it (default 100; Discord's is 5000)");
  f.add_int("heartbeat-ms", &o.heartbeat_ms, 100, 3'600'000,
            "heartbeat_interval the gateway sends (default 41250, Discord's)");
  f.add_string("mix", &o.mix_file, "event templates for the gateway (its --mix)");
  f.add_string("json", &o.json_path, "also write the summary as JSON to PATH");
  f.add_double("gateway-reset-at", &o.gateway_reset_at_s, 0, 1e7,
               "S: the spawned gateway resets every connection at S seconds (a node failing; "
               "the sessions kept): how the shards resume");
  f.add_string("report", &o.report_dir,
               "DIR: the run second by second, DIR/report.csv, and charts of it, DIR/*.png "
               "(gnuplot)");
  std::string sink = "null";
  std::optional<std::string> redis_url;
  f.add_string("sink", &sink, "null | redis (each event into its shard's Redis stream)");
  f.add_string("redis", &redis_url, "redis://HOST[:PORT][/DB] for --sink redis");
  f.add_string("redis-prefix", &o.redis_prefix, "key prefix (default shardring-load)");
  f.add_int("redis-maxlen", &o.redis_maxlen, 0, int64_t{1} << 40,
            "cap each stream at N entries (default 100000; 0: no cap)");
  *usage = f.usage();
  if (absl::Status s = f.parse(args, help); !s.ok() || *help) {
    if (!s.ok()) return s;
    return o;
  }
  if (absl::Status s = ParseCompress(compress, &o.compress); !s.ok()) return s;
  if (absl::Status s = CheckUringFallbacks(o.uring_fallbacks); !s.ok()) return s;
  if (gateway && o.gateway_reset_at_s > 0) {
    return Bad("gateway-reset-at", "needs the spawned gateway (not --gateway)");
  }
  if (gateway) {
    auto u = engine::parse_url(*gateway);
    if (!u.ok()) return Bad("gateway", sv(u.status().message()));
    if (u->scheme != engine::Scheme::kWs && u->scheme != engine::Scheme::kWss) {
      return Bad("gateway", "expected a ws:// or wss:// URL");
    }
    const bool loopback = engine::is_loopback_host(u->host);
    if (u->scheme == engine::Scheme::kWs && !loopback) {
      return Bad("gateway",
                 cat("plain ws:// is allowed only for loopback hosts; use wss:// for ", u->host));
    }
    if (o.insecure && !loopback) {
      return Bad("insecure", cat("refused for non-loopback host ", u->host));
    }
    if (o.tls)
      return Bad("tls", "applies to the spawned gateway; give --gateway a wss:// URL instead");
    if (!o.mix_file.empty()) return Bad("mix", "applies to the spawned gateway, not to --gateway");
    if (o.idle) return Bad("idle", "applies to the spawned gateway, not to --gateway");
    o.gateway = *u;
  } else if (!o.ca_file.empty() || o.insecure) {
    return Bad(o.insecure ? "insecure" : "ca-file", "applies to --gateway wss:// only");
  }
  if (redis_url) {
    auto u = engine::parse_redis_url(*redis_url);
    if (!u.ok()) return u.status();
    o.redis = *u;
  }
  if (sink == "redis") {
    if (!o.redis) return Bad("sink", "--sink redis needs --redis URL");
    if (o.consumers == 0) return Bad("consumers", "--sink redis needs at least 1 consumer");
    o.sink_redis = true;
  } else if (sink != "null") {
    return Bad("sink", cat("expected null or redis, got '", sink, "'"));
  }
  return o;
}

}  // namespace shardring::tools
