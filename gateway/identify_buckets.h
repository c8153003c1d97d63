// gateway/identify_buckets.h: Discord's identify rate limit as plain data.
// Shards fall into buckets `shard_id % max_concurrency`; each bucket admits
// one IDENTIFY per window (5 s on Discord). Stage: gateway; sans-I/O: no
// clock, no lock, no thread. The time comes in as an argument.
//
// Both sides keep the rule with this one type: the engine's IdentifyGate
// (engine/identify_gate.h, which adds the line of waiting shards and a
// mutex) and the synthetic gateway (tools/gateway/registry.h, which refuses
// an identify that comes too early, timed by an ArrivalBound kept by each
// of its loops). Not thread-safe: the owner locks.
#ifndef SHARDRING_GATEWAY_IDENTIFY_BUCKETS_H_
#define SHARDRING_GATEWAY_IDENTIFY_BUCKETS_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace shardring::gateway {

class IdentifyBuckets {
 public:
  using Clock = std::chrono::steady_clock;

  // `max_concurrency` buckets (at least 1), each open at first.
  IdentifyBuckets(uint32_t max_concurrency, Clock::duration window)
      : next_allowed_(std::max<uint32_t>(1, max_concurrency)), window_(window) {}

  [[nodiscard]] uint32_t size() const noexcept {
    return static_cast<uint32_t>(next_allowed_.size());
  }
  [[nodiscard]] uint32_t bucket_of(uint32_t shard) const noexcept { return shard % size(); }
  [[nodiscard]] Clock::duration window() const noexcept { return window_; }

  // The first moment bucket `bucket` admits an identify (the epoch when it
  // never admitted one).
  [[nodiscard]] Clock::time_point next_allowed(uint32_t bucket) const noexcept {
    return next_allowed_[bucket];
  }
  [[nodiscard]] bool is_open(uint32_t bucket, Clock::time_point now) const noexcept {
    return now >= next_allowed_[bucket];
  }
  // Spends the bucket's window at `now`: its next identify waits until
  // now + window.
  void take(uint32_t bucket, Clock::time_point now) noexcept {
    next_allowed_[bucket] = now + window_;
  }
  // is_open() then take() for an identify read at `now` that arrived no
  // earlier than `arrived_after` (a reader learns of bytes late: a busy
  // pass, a descheduled thread). It is refused only when even `now` is
  // before the bucket opens, and the window it spends runs from
  // `arrived_after`, so a late read never makes the next identify look
  // early. The rule then errs towards admitting, by now - arrived_after at
  // most; it never refuses an identify that kept the window.
  [[nodiscard]] bool try_take_for(uint32_t shard, Clock::time_point now,
                                  Clock::time_point arrived_after) noexcept {
    const uint32_t b = bucket_of(shard);
    if (!is_open(b, now)) return false;
    take(b, std::min(arrived_after, now));
    return true;
  }

 private:
  std::vector<Clock::time_point> next_allowed_;
  Clock::duration window_;
};

// The `arrived_after` for try_take_for, kept by a loop that learns of bytes
// only in its waits (io_uring with DEFER_TASKRUN posts completions only
// while a thread waits). A wait that ran its course posted all that had
// arrived by its last look, and it looked after it began. So what the pass
// after a wait reaps arrived after the beginning of the last full wait
// before it. The beginning, not the return: the thread can be stopped or
// descheduled between the kernel's return and its next clock read, and
// bytes that come then are posted only by the next wait. A wait cut short
// (a signal) or a bare submit may not have looked: it leaves the bound.
class ArrivalBound {
 public:
  using Clock = IdentifyBuckets::Clock;

  // `start`: before the loop's first wait (nothing can have come earlier).
  explicit ArrivalBound(Clock::time_point start) noexcept : last_full_(start), bound_(start) {}

  // After each wait (or bare submit): `began` was read before entering it,
  // `full` is whether it ran its course (returned completions or timed out).
  void on_wait(Clock::time_point began, bool full) noexcept {
    bound_ = last_full_;
    if (full) last_full_ = began;
  }
  // No payload reaped since the last on_wait() arrived before this.
  [[nodiscard]] Clock::time_point bound() const noexcept { return bound_; }

 private:
  Clock::time_point last_full_;  // the beginning of the last full wait
  Clock::time_point bound_;
};

}  // namespace shardring::gateway

#endif  // SHARDRING_GATEWAY_IDENTIFY_BUCKETS_H_
