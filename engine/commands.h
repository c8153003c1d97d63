// engine/commands.h: what the engine sends on a bot's behalf, checked before
// it is queued (Engine::send, the typed helpers, `run --commands`). Sans-I/O
// and thread-safe: the caller's thread checks; only a command that passes
// reaches a core thread.
//
// The rules (Discord docs, "Gateway" > "Sending Events", "Rate Limiting",
// "Request Guild Members"):
// - A payload is a JSON object with a numeric "op" and a "d", at most
//   gateway::kMaxPayloadBytes (4096) bytes.
// - Only the opcodes a bot sends on its own: 3 (presence update), 4 (voice
//   state update), 8 (request guild members), 31 (request soundboard sounds).
//   Never 1 (heartbeat), 2 (identify) or 6 (resume): those are the session's,
//   and a second one would break it; the rest are not client commands.
// - Op 8 asking for every member of a guild (query "" with limit 0) at most
//   once per guild per kAllMembersWindow (30 s); Discord answers a violation
//   with a RATE_LIMITED dispatch.
// Each shard's 120 payloads per 60 s are kept by its session (gateway/).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace shardring::engine {

inline constexpr std::chrono::seconds kAllMembersWindow{30};

// Opcodes a bot may send.
constexpr bool is_allowed_command_op(int64_t op) noexcept {
  return op == 3 || op == 4 || op == 8 || op == 31;
}

// The answer to a command. `reason` is static text (empty when queued).
struct CommandOutcome {
  bool queued = false;
  std::string_view reason;
};

class CommandChecker {
 public:
  using Clock = std::chrono::steady_clock;
  // Checks `payload` (a whole gateway payload, {"op":N,"d":...}). Not
  // queued: `reason` says why. An op 8 for all of a guild's members takes
  // that guild's window when it passes.
  CommandOutcome check(std::string_view payload, Clock::time_point now);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> all_members_;  // guild id -> last
};

// A `--commands` line, {"shard":3,"op":3,"d":{...}}: the shard and the
// gateway payload to send ({"op":3,"d":{...}}, d byte for byte). False with
// *reason when the line is not such an object.
bool parse_command_line(std::string_view line, uint32_t* shard, std::string* payload,
                        std::string_view* reason);

}  // namespace shardring::engine
