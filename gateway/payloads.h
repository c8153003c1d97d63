// gateway/payloads.h: the JSON the shard itself sends (HEARTBEAT, IDENTIFY,
// RESUME; Discord gateway v10) and the string escaper they share. Stage:
// gateway, building text for ws::Encoder. Pure functions; any thread.
//
// The IDENTIFY and RESUME texts contain the bot token: never log them.
#ifndef SHARDRING_GATEWAY_PAYLOADS_H_
#define SHARDRING_GATEWAY_PAYLOADS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardring::gateway {

// Discord's limit on any payload a client sends ("Sending Events").
inline constexpr size_t kMaxPayloadBytes = 4096;

// What a shard says about itself when it identifies.
// Defaults the whole stack takes from here (flags, engine::Config, IDENTIFY):
// GUILDS | GUILD_MESSAGES, and the largest large_threshold Discord accepts
// (fewer offline members in GUILD_CREATE).
inline constexpr uint64_t kDefaultIntents = 513;
inline constexpr uint16_t kDefaultLargeThreshold = 250;

struct Config {
  std::string token;  // the bot token; never logged, never echoed
  uint64_t intents = kDefaultIntents;
  uint32_t shard_id = 0;  // IDENTIFY "shard": [shard_id, shard_count]
  uint32_t shard_count = 1;
  // Where identify connections go, as the engine dials it (it adds
  // ?v=10&encoding=json and compress= itself when absent).
  std::string gateway_url;
  // IDENTIFY "large_threshold", 50-250; 0 leaves it out (Discord: 50).
  uint16_t large_threshold = 0;
  // IDENTIFY "presence": a JSON object inserted verbatim; empty: none. It is
  // operator configuration, not peer input; config_error() bounds its size.
  std::string presence_json;

  bool operator==(const Config&) const = default;
};

// Why `config` cannot identify, or empty when it can: a shard id not below
// the count, a large_threshold outside 50-250, or an IDENTIFY over
// kMaxPayloadBytes. Never quotes the token.
std::string config_error(const Config& config);

// Appends `s` as a JSON string literal, quotes included: `"` and `\` are
// escaped, control characters (U+0000-U+001F) become \b \f \n \r \t or
// \u00XX, every other byte is copied unchanged (UTF-8 passes through).
void append_json_string(std::string& out, std::string_view s);

// {"op":1,"d":N}, or {"op":1,"d":null} when seq is 0 (no dispatch yet;
// Discord numbers dispatches from 1).
std::string heartbeat_payload(uint64_t seq);

// {"op":2,"d":{"token":..,"intents":N,"properties":{"os":"linux",
// "browser":"shardring","device":"shardring"},"shard":[id,count]
// [,"large_threshold":N][,"presence":{..}]}}
std::string identify_payload(const Config& config);
// The same for shard `shard_id` of `config` (config.shard_id not read).
std::string identify_payload(const Config& config, uint32_t shard_id);

// {"op":6,"d":{"token":..,"session_id":..,"seq":N}}
std::string resume_payload(std::string_view token, std::string_view session_id, uint64_t seq);

}  // namespace shardring::gateway

#endif  // SHARDRING_GATEWAY_PAYLOADS_H_
