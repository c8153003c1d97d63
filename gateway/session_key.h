// gateway/session_key.h: a Discord session id as 64 bits. Stage: gateway;
// pure constexpr. The engine tags every event with its session's key
// (Event::session), and the NDJSON sink matches READY lines to saved
// sessions with it.
#ifndef SHARDRING_GATEWAY_SESSION_KEY_H_
#define SHARDRING_GATEWAY_SESSION_KEY_H_

#include <cstdint>
#include <string_view>

namespace shardring::gateway {

// FNV-1a (64 bit) of the session id; 0 for none (never the key of a
// non-empty id).
constexpr uint64_t session_key_of(std::string_view session_id) noexcept {
  if (session_id.empty()) return 0;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : session_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h == 0 ? 1 : h;
}

}  // namespace shardring::gateway

#endif  // SHARDRING_GATEWAY_SESSION_KEY_H_
