// engine/shard_status.h: each shard's status as the other threads see it
// (internal to engine/): Engine::shards(), /shards, /healthz and the
// per-shard metrics. The owning core thread writes a shard's slot (relaxed
// stores, one writer); any thread reads it. A core thread's slots are one
// array in shard order, so writers never share a cache line with another
// core's shards except at the array's ends.
#pragma once

#include <atomic>
#include <cstdint>

#include "conn/client.h"
#include "engine/engine.h"

namespace shardring::engine {

struct StatusSlot {
  std::atomic<uint8_t> state{static_cast<uint8_t>(ShardState::kIdle)};
  std::atomic<int32_t> rtt_ms{-1};
  std::atomic<int64_t> state_since_ns{0};  // steady clock
  std::atomic<int64_t> last_event_ns{0};   // steady clock; 0: none yet
  std::atomic<uint64_t> last_seq{0};
  std::atomic<uint32_t> resumes{0}, reconnects{0};
};

// The state a connection is in, in the terms operators see.
inline ShardState StateOf(const conn::ClientConnection& c) noexcept {
  const gateway::State s = c.session().state();
  switch (c.phase()) {
    case conn::Phase::kIdle:
      return s == gateway::State::kStopped || s == gateway::State::kFatal ? ShardState::kStopped
                                                                          : ShardState::kIdle;
    case conn::Phase::kDialing:
      return ShardState::kIdle;
    case conn::Phase::kTls:
    case conn::Phase::kUpgrade:
      return ShardState::kConnecting;
    case conn::Phase::kClosing:
      return ShardState::kClosing;
    case conn::Phase::kOpen:
      switch (s) {
        case gateway::State::kAwaitingHello:
          return ShardState::kConnecting;
        case gateway::State::kAwaitingGrant:
          return ShardState::kAwaitingIdentify;
        case gateway::State::kIdentifying:
          return ShardState::kIdentifying;
        case gateway::State::kResuming:
          return ShardState::kResuming;
        case gateway::State::kReady:
          return ShardState::kReady;
        default:
          return ShardState::kClosing;
      }
  }
  return ShardState::kIdle;
}

// Close codes counted one by one (shardring_closes_total{code}): the
// WebSocket ones 1000-1015 and Discord's 4000-4014; any other code is
// counted as kOtherCloseCode.
inline constexpr size_t kCloseCodeSlots = 16 + 15 + 1;
inline constexpr size_t kOtherCloseSlot = kCloseCodeSlots - 1;
constexpr size_t CloseSlot(int64_t code) noexcept {
  if (code >= 1000 && code <= 1015) return static_cast<size_t>(code - 1000);
  if (code >= 4000 && code <= 4014) return static_cast<size_t>(16 + code - 4000);
  return kOtherCloseSlot;
}
constexpr int CloseCodeOfSlot(size_t slot) noexcept {
  return slot < 16 ? 1000 + static_cast<int>(slot) : 4000 + static_cast<int>(slot - 16);
}

// One writer: a plain add without a locked instruction.
inline void Bump(std::atomic<uint64_t>& a, uint64_t n = 1) noexcept {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace shardring::engine
