// tools/gateway/gateway_options.h: the flags of `shardring gateway`
// (docs/interface.md "shardring gateway"), parsed and checked. Start-up only:
// every error is an absl::Status whose message names the flag; the CLI
// prints it and exits 2.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shardring::gatewaysrv {

struct GatewayOptions {
  std::string listen_host = "127.0.0.1";  // as given (no brackets for IPv6)
  uint16_t listen_port = 8080;            // 0: any free port
  std::string tls_cert, tls_key;          // both or neither
  uint32_t shards = 1;                    // reported by /gateway/bot
  uint32_t max_concurrency = 1;           // identify buckets
  int64_t identify_window_ms = 5000;
  // How long a session stays resumable after its connection ended
  // (Discord keeps sessions for a few minutes); 0: forgotten at once.
  int64_t resume_window_s = 180;
  int64_t heartbeat_ms = 41250;
  double rate = 100;                 // events/s per shard; 0: drain
  std::optional<uint64_t> events;    // per shard session
  std::string mix_file;              // empty: built-in mix
  std::optional<std::string> token;  // unset: any token
  uint32_t threads = 0;              // 0: online cores
  std::string stats_json;            // empty: none
  uint32_t guilds_per_shard = 3;     // guilds in READY, GUILD_CREATEs

  // Fault injection (0 / unset: off).
  uint64_t close_every = 0;            // abrupt TCP close every N events
  uint64_t no_ack_after = 0;           // stop ACKing after N heartbeats
  double reconnect_every_s = 0;        // op 7
  double invalid_session_every_s = 0;  // op 9 d=true
  uint16_t close_code = 0;             // with close_after
  uint64_t close_after = 0;            // close with close_code after N events
  uint32_t fragment = 0;               // frame payload bytes per fragment
  uint32_t segment = 0;                // bytes per send call
  int64_t delay_ms = 0;                // delay before each send batch

  bool tls() const { return !tls_cert.empty(); }
};

// Parses `args` (without the program and subcommand names). Sets *help for
// --help/-h and fills *usage with the flag list either way.
absl::StatusOr<GatewayOptions> parse_gateway_options(std::span<const std::string_view> args,
                                                     bool* help, std::string* usage);

}  // namespace shardring::gatewaysrv
