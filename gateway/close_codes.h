// gateway/close_codes.h: what a WebSocket close code from the Discord gateway
// means for the shard: resume, identify anew, or stop the process. Stage:
// gateway (after ws::Decoder has read the close frame). Pure constexpr
// tables; any thread may use them.
//
// Source: Discord docs, "Opcodes and Status Codes", Gateway Close Event Codes
// (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
#ifndef SHARDRING_GATEWAY_CLOSE_CODES_H_
#define SHARDRING_GATEWAY_CLOSE_CODES_H_

#include <cstdint>
#include <string_view>

namespace shardring::gateway {

// What the shard does after the connection closed with a given code.
enum class CloseDecision : uint8_t {
  kResume,    // reconnect; resume if a session exists, else identify
  kIdentify,  // reconnect; the session is gone, identify anew
  kFatal,     // reconnecting cannot help: the process exits 3
};

// Codes we send. Discord invalidates the session when the client closes with
// 1000 or 1001; any other code keeps it resumable (docs, "Resuming").
inline constexpr uint16_t kCloseNormal = 1000;     // we end the session
inline constexpr uint16_t kCloseResumable = 4000;  // we will resume

// Discord's gateway close codes by name, for the side that sends them (the
// synthetic gateway, tools/gateway/discord.cc).
inline constexpr uint16_t kCloseGoingAway = 1001;  // server stopping
inline constexpr uint16_t kCloseUnknownError = 4000;
inline constexpr uint16_t kCloseUnknownOpcode = 4001;
inline constexpr uint16_t kCloseDecodeError = 4002;           // bad payload
inline constexpr uint16_t kCloseNotAuthenticated = 4003;      // before IDENTIFY
inline constexpr uint16_t kCloseAuthenticationFailed = 4004;  // bad token
inline constexpr uint16_t kCloseAlreadyAuthenticated = 4005;  // identify twice
inline constexpr uint16_t kCloseInvalidSeq = 4007;            // RESUME seq
inline constexpr uint16_t kCloseRateLimited = 4008;           // over 120 / 60 s
inline constexpr uint16_t kCloseSessionTimedOut = 4009;
inline constexpr uint16_t kCloseInvalidShard = 4010;
inline constexpr uint16_t kCloseShardingRequired = 4011;
inline constexpr uint16_t kCloseInvalidApiVersion = 4012;
inline constexpr uint16_t kCloseInvalidIntents = 4013;
inline constexpr uint16_t kCloseDisallowedIntents = 4014;

constexpr CloseDecision classify_close(uint16_t code) noexcept {
  switch (code) {
    case 4004:  // authentication failed
    case 4010:  // invalid shard
    case 4011:  // sharding required
    case 4012:  // invalid API version
    case 4013:  // invalid intent(s)
    case 4014:  // disallowed intent(s)
      return CloseDecision::kFatal;
    case 1000:  // normal closure from the server: the session is over
    case 1001:  // going away: same
    case 4007:  // invalid seq: "reconnect and start a new session"
    case 4009:  // session timed out: "reconnect and start a new session"
      return CloseDecision::kIdentify;
    default:  // 4000-4003, 4005, 4008, 1006 (no close frame) and unknown
      return CloseDecision::kResume;
  }
}

constexpr bool is_fatal_close(uint16_t code) noexcept {
  return classify_close(code) == CloseDecision::kFatal;
}

// Discord's name for a gateway close code; "unknown" for codes it does not
// document. Static storage.
constexpr std::string_view close_code_name(uint16_t code) noexcept {
  switch (code) {
    case 1000:
      return "normal closure";
    case 1001:
      return "going away";
    case 1006:
      return "connection lost";
    case 4000:
      return "unknown error";
    case 4001:
      return "unknown opcode";
    case 4002:
      return "decode error";
    case 4003:
      return "not authenticated";
    case 4004:
      return "authentication failed";
    case 4005:
      return "already authenticated";
    case 4007:
      return "invalid seq";
    case 4008:
      return "rate limited";
    case 4009:
      return "session timed out";
    case 4010:
      return "invalid shard";
    case 4011:
      return "sharding required";
    case 4012:
      return "invalid API version";
    case 4013:
      return "invalid intent(s)";
    case 4014:
      return "disallowed intent(s)";
    default:
      return "unknown";
  }
}

// For a fatal code: what the operator should do. Empty for other codes.
constexpr std::string_view fatal_close_advice(uint16_t code) noexcept {
  switch (code) {
    case 4004:
      return "the bot token was refused; check --token or DISCORD_TOKEN";
    case 4010:
      return "a shard id is not below the shard count; check --shard-ids and --total-shards";
    case 4011:
      return "the bot is in too many guilds for this shard count; raise --total-shards";
    case 4012:
      return "the gateway does not accept API version 10; check the --gateway URL";
    case 4013:
      return "the intents bitfield is invalid; check --intents";
    case 4014:
      return "privileged intents are not enabled for this bot; enable them in the Developer Portal "
             "or remove them from --intents";
    default:
      return {};
  }
}

}  // namespace shardring::gateway

#endif  // SHARDRING_GATEWAY_CLOSE_CODES_H_
