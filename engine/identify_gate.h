// engine/identify_gate.h: Discord's identify rate limit across all core
// threads. Shards fall into buckets `shard_id % max_concurrency`; each bucket
// admits one IDENTIFY per window (5 s on Discord), lowest waiting shard first.
// IdentifyGate is the interface; LocalIdentifyGate (here) keeps the buckets
// of one process, FileIdentifyGate (identify_gate_file.h) those of the
// processes of one machine; make_identify_gate() builds the one
// --identify-gate names.
//
// Thread-safe: any core thread calls it. Not on the hot path (a shard asks
// once per session), so one mutex guards it. Time comes in as an argument.
// LocalIdentifyGate's windows are gateway::IdentifyBuckets, the type the
// synthetic gateway enforces them with; it adds the line of waiting shards
// and the margin below.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/identify_buckets.h"

namespace shardring::engine {

// Every gate leaves window + margin between two grants of one bucket. The
// gateway measures the interval on its own clock, at the moment it reads each
// IDENTIFY, so network and scheduling jitter between our send and its read
// can shrink the interval it sees below ours: a gateway refused an identify
// sent 501 ms after the previous one with a 500 ms window. The margin is
// 1/kIdentifyMarginDivisor of the window (125 ms on Discord's 5 s): a cold
// start that needs N windows per bucket then takes at most 2.5% longer than
// the schedule's minimum. Short windows (tests, synthetic gateways) still get
// kMinIdentifyMargin, so the margin never rounds down to nothing.
inline constexpr int64_t kIdentifyMarginDivisor = 40;
inline constexpr std::chrono::milliseconds kMinIdentifyMargin{5};

constexpr std::chrono::milliseconds identify_margin(std::chrono::milliseconds window) {
  return std::max(window / kIdentifyMarginDivisor, kMinIdentifyMargin);
}

// Where shards of a process ask before they IDENTIFY. Any core thread
// calls it; implementations are thread-safe and never block for long (a
// core thread's loop waits on them).
class IdentifyGate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDiscordWindow{5000};

  virtual ~IdentifyGate() = default;
  // Shard `shard` wants to identify. Returns true when it may send IDENTIFY
  // now (window + identify_margin(window) have passed since the bucket's last
  // grant and no lower shard of the bucket is waiting): the window is then
  // taken. Otherwise the shard is queued and *retry_at says when to ask
  // again (never earlier than needed).
  [[nodiscard]] virtual bool try_acquire(uint32_t shard, Clock::time_point now,
                                         Clock::time_point* retry_at) = 0;
  // The shard no longer wants to identify (its connection dropped).
  virtual void withdraw(uint32_t shard) = 0;
};

// How far ahead LocalIdentifyGate tells a waiting shard to come back, in
// windows of its bucket.
inline constexpr int64_t kIdentifyLookahead = 16;

// The gate of one process (the default): buckets kept in memory. The first
// three shards in a bucket's line ask when its window opens; a shard
// further back is told to come back when it would be third, or
// kIdentifyLookahead windows on if that is sooner, and is told again then.
// So a line is asked about a few times per shard plus once per
// kIdentifyLookahead windows waited, not once per window by every waiting
// shard (10,000 shards in 16 buckets at Discord's 5 s: about 2,000 asks a
// second). A shard that withdraws leaves those behind it a turn early, so
// the window still goes to a shard that asks: one or two withdrawals cost
// no window. k > 2 of them ahead of a shard while it waits out what it was
// told (kIdentifyLookahead windows at most) can leave k - 2 unused.
class LocalIdentifyGate final : public IdentifyGate {
 public:
  LocalIdentifyGate(uint32_t max_concurrency, std::chrono::milliseconds window);

  [[nodiscard]] bool try_acquire(uint32_t shard, Clock::time_point now,
                                 Clock::time_point* retry_at) override;
  void withdraw(uint32_t shard) override;

  uint32_t buckets() const { return windows_.size(); }
  std::chrono::milliseconds window() const { return window_; }
  // The least time between two grants of one bucket: window + margin.
  std::chrono::milliseconds spacing() const { return window_ + identify_margin(window_); }
  uint64_t granted() const;

 private:
  mutable std::mutex mu_;
  gateway::IdentifyBuckets windows_;
  std::vector<std::vector<uint32_t>> waiting_;  // per bucket, sorted: the line
  std::chrono::milliseconds window_;
  uint64_t granted_ = 0;
};

// The gate `spec` names (--identify-gate): "local" (LocalIdentifyGate) or
// "file:DIR" (FileIdentifyGate, engine/identify_gate_file.h). Errors start
// with "--identify-gate: ".
absl::StatusOr<std::unique_ptr<IdentifyGate>> make_identify_gate(std::string_view spec,
                                                                 uint32_t max_concurrency,
                                                                 std::chrono::milliseconds window);

}  // namespace shardring::engine
