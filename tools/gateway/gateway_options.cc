#include "tools/gateway/gateway_options.h"

#include "tools/flags.h"
#include "tools/gateway/text.h"

namespace shardring::gatewaysrv {
namespace {

absl::Status Bad(std::string_view flag, std::string_view why) {
  return absl::InvalidArgumentError(cat("--", flag, ": ", why));
}

// "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces).
absl::Status parse_listen(std::string_view s, GatewayOptions& o) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) {
    return Bad("listen", cat("expected HOST:PORT, got '", s, "'"));
  }
  std::string_view host = s.substr(0, colon);
  const std::string_view port = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Bad("listen", "put an IPv6 address in brackets: [::1]:8080");
  }
  const auto p = tools::parse_int(port, 0, 65535);
  if (!p) {
    return Bad("listen", cat("port must be 0-65535, got '", port, "'"));
  }
  o.listen_host = host.empty() ? "0.0.0.0" : std::string(host);
  o.listen_port = static_cast<uint16_t>(*p);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GatewayOptions> parse_gateway_options(std::span<const std::string_view> args,
                                                     bool* help, std::string* usage) {
  GatewayOptions o;
  std::string listen = "127.0.0.1:8080";
  int64_t shards = 1, max_concurrency = 1, threads = 0, guilds = 3;
  std::optional<int64_t> events, close_code, close_after;
  int64_t close_every = 0, no_ack_after = 0, fragment = 0, segment = 0;
  std::optional<std::string> token;

  tools::FlagSet f("gateway");
  f.add_string("listen", &listen,
               "HOST:PORT for both HTTP (GET /api/v10/gateway/bot) and the "
               "WebSocket upgrade on / (default 127.0.0.1:8080; port 0 picks "
               "a free port, printed on the 'listening on' line)");
  f.add_string("tls-cert", &o.tls_cert,
               "PEM certificate chain: serve https:// and wss:// (with "
               "--tls-key)");
  f.add_string("tls-key", &o.tls_key, "PEM private key for --tls-cert");
  f.add_int("shards", &shards, 1, 1 << 20,
            "recommended shard count reported by /gateway/bot (default 1)");
  f.add_int("max-concurrency", &max_concurrency, 1, 1 << 16,
            "identify buckets (shard_id % K), reported in "
            "session_start_limit and enforced (default 1)");
  f.add_int("identify-window-ms", &o.identify_window_ms, 0, 3'600'000,
            "one identify per bucket per this window; faster ones get op 9 "
            "(default 5000)");
  f.add_int("resume-window-s", &o.resume_window_s, 0, 86'400,
            "how long a session stays resumable after its connection ends; "
            "0 = forgotten at once (default 180)");
  f.add_int("heartbeat-ms", &o.heartbeat_ms, 1, 3'600'000,
            "heartbeat_interval sent in HELLO (default 41250)");
  f.add_double("rate", &o.rate, 0, 1e9,
               "dispatch events per second per shard; 0 = as fast as the "
               "connection takes them (default 100)");
  f.add_int("events", &events, 0, INT64_MAX,
            "stop generating after E events per shard session (READY, "
            "GUILD_CREATE, RESUMED and replays not counted); heartbeats go "
            "on (default unlimited)");
  f.add_string("mix", &o.mix_file,
               "file of JSON lines {\"op\":0,\"t\":..,\"d\":..} to draw "
               "events from (default: built-in realistic mix)");
  f.add_string("token", &token,
               "the only token accepted in IDENTIFY/RESUME (else close "
               "4004) and as 'Authorization: Bot T' on /gateway/bot (else "
               "401) (default: any)");
  f.add_int("threads", &threads, 0, 1024, "I/O threads (default: number of online cores)");
  f.add_string("stats-json", &o.stats_json,
               "write counters (sessions, identifies and resumes accepted and "
               "refused, events, per shard too, last seq) to PATH on exit");
  f.add_int("guilds-per-shard", &guilds, 0, 10000,
            "guilds in each READY, each sent as a GUILD_CREATE (the first "
            "one large) (default 3)");
  f.add_int("close-every", &close_every, 0, INT64_MAX,
            "fault: close the TCP connection without a close frame every N "
            "events of a connection");
  f.add_int("no-ack-after", &no_ack_after, 0, INT64_MAX,
            "fault: stop ACKing heartbeats after N ACKs on a connection");
  f.add_double("reconnect-every", &o.reconnect_every_s, 0, 1e7,
               "fault: send op 7 RECONNECT every SECS on each connection");
  f.add_double("invalid-session-every", &o.invalid_session_every_s, 0, 1e7,
               "fault: send op 9 INVALID_SESSION d=true every SECS");
  f.add_int("close-code", &close_code, 1000, 4999,
            "fault: with --close-after, the close code to send");
  f.add_int("close-after", &close_after, 1, INT64_MAX,
            "fault: close with --close-code (default 4000) after N events "
            "of a connection");
  f.add_int("fragment", &fragment, 0, 1 << 30,
            "fault: split every message into frames of N payload bytes");
  f.add_int("segment", &segment, 0, 1 << 30, "fault: write at most N bytes per send call");
  f.add_int("delay-ms", &o.delay_ms, 0, 600'000, "fault: delay each send batch by MS");
  *usage =
      cat("usage: shardring gateway [flags]\n"
          "A synthetic Discord gateway (v10, JSON): HTTP GET /api/v10/gateway/bot "
          "and WebSocket on /, generating dispatch events.\n",
          f.usage());

  if (absl::Status s = f.parse(args, help); !s.ok()) return s;
  if (*help) return o;
  if (absl::Status s = parse_listen(listen, o); !s.ok()) return s;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return Bad(o.tls_cert.empty() ? "tls-key" : "tls-cert", "--tls-cert and --tls-key go together");
  }
  if (close_code && !close_after) {
    return Bad("close-code", "needs --close-after N");
  }
  if (close_code && (*close_code == 1004 || *close_code == 1005 || *close_code == 1006 ||
                     *close_code == 1015 || (*close_code > 1011 && *close_code < 3000))) {
    return Bad("close-code", "not a code that may be sent (RFC 6455 7.4)");
  }
  o.shards = static_cast<uint32_t>(shards);
  o.max_concurrency = static_cast<uint32_t>(max_concurrency);
  o.threads = static_cast<uint32_t>(threads);
  o.guilds_per_shard = static_cast<uint32_t>(guilds);
  if (events) o.events = static_cast<uint64_t>(*events);
  o.token = token;
  o.close_every = static_cast<uint64_t>(close_every);
  o.no_ack_after = static_cast<uint64_t>(no_ack_after);
  o.close_after = close_after ? static_cast<uint64_t>(*close_after) : 0;
  o.close_code = close_after ? static_cast<uint16_t>(close_code.value_or(4000)) : 0;
  o.fragment = static_cast<uint32_t>(fragment);
  o.segment = static_cast<uint32_t>(segment);
  return o;
}

}  // namespace shardring::gatewaysrv
