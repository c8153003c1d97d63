// gateway/opcodes.h: Discord gateway opcodes. Stage: gateway; pure
// constants, any thread.
//
// Source: Discord docs, "Opcodes and Status Codes", Gateway Opcodes
// (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
#ifndef SHARDRING_GATEWAY_OPCODES_H_
#define SHARDRING_GATEWAY_OPCODES_H_

#include <cstdint>

namespace shardring::gateway {

enum class Op : int32_t {
  kDispatch = 0,                  // receive: an event (t, s, d)
  kHeartbeat = 1,                 // both: keep alive / "heartbeat now"
  kIdentify = 2,                  // send: start a session
  kPresenceUpdate = 3,            // send
  kVoiceStateUpdate = 4,          // send
  kResume = 6,                    // send: resume a session
  kReconnect = 7,                 // receive: reconnect and resume
  kRequestGuildMembers = 8,       // send
  kInvalidSession = 9,            // receive: d says whether it can be resumed
  kHello = 10,                    // receive: heartbeat_interval
  kHeartbeatAck = 11,             // receive
  kRequestSoundboardSounds = 31,  // send
};

constexpr int32_t to_int(Op op) noexcept { return static_cast<int32_t>(op); }

}  // namespace shardring::gateway

#endif  // SHARDRING_GATEWAY_OPCODES_H_
