// engine/identify_gate.h: Discord's identify rate limit across all core
// threads. Shards fall into buckets `shard_id % max_concurrency`; each bucket
// admits one IDENTIFY per window (5 s on Discord), lowest waiting shard first.
//
// Thread-safe: any core thread calls it. Not on the hot path (a shard asks
// once per session), so one mutex guards it. Time comes in as an argument.
// The windows themselves are gateway::IdentifyBuckets, the type the
// synthetic gateway enforces them with; this adds the line of waiting shards.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <vector>

#include "gateway/identify_buckets.h"

namespace shardring::engine {

// Where shards of a process ask before they IDENTIFY. Any core thread
// calls it; implementations are thread-safe and never block for long (a
// core thread's loop waits on them).
class IdentifyGate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDiscordWindow{5000};

  virtual ~IdentifyGate() = default;
  // Shard `shard` wants to identify. Returns true when it may send IDENTIFY
  // now (its bucket's window is open and no lower shard of the bucket is
  // waiting): the window is then taken. Otherwise the shard is queued and
  // *retry_at says when to ask again (never earlier than needed).
  [[nodiscard]] virtual bool try_acquire(uint32_t shard, Clock::time_point now,
                                         Clock::time_point* retry_at) = 0;
  // The shard no longer wants to identify (its connection dropped).
  virtual void withdraw(uint32_t shard) = 0;
};

// The gate of one process (the default): buckets kept in memory.
class LocalIdentifyGate final : public IdentifyGate {
 public:
  LocalIdentifyGate(uint32_t max_concurrency, std::chrono::milliseconds window);

  [[nodiscard]] bool try_acquire(uint32_t shard, Clock::time_point now,
                                 Clock::time_point* retry_at) override;
  void withdraw(uint32_t shard) override;

  uint32_t buckets() const { return windows_.size(); }
  std::chrono::milliseconds window() const { return window_; }
  uint64_t granted() const;

 private:
  mutable std::mutex mu_;
  gateway::IdentifyBuckets windows_;
  std::vector<std::set<uint32_t>> waiting_;  // per bucket, lowest shard first
  std::chrono::milliseconds window_;
  uint64_t granted_ = 0;
};

}  // namespace shardring::engine
