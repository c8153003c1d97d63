#include "engine/identify_gate.h"

#include <algorithm>

namespace shardring::engine {

IdentifyGate::IdentifyGate(uint32_t max_concurrency,
                           std::chrono::milliseconds window)
    : buckets_(std::max<uint32_t>(1, max_concurrency)), window_(window) {}

bool IdentifyGate::try_acquire(uint32_t shard, Clock::time_point now,
                               Clock::time_point* retry_at) {
  std::lock_guard lock(mu_);
  Bucket& b = buckets_[shard % buckets_.size()];
  b.waiting.insert(shard);
  if (now >= b.next_allowed && *b.waiting.begin() == shard) {
    b.waiting.erase(b.waiting.begin());
    b.next_allowed = now + window_;
    ++granted_;
    return true;
  }
  // A lower shard is first in line, or the window is closed: ask again when
  // it opens. If the lower shard was lost without withdraw() it is still
  // first; its owner re-asks at the same time, so the line keeps moving.
  *retry_at = std::max(b.next_allowed, now + std::chrono::milliseconds(1));
  return false;
}

void IdentifyGate::withdraw(uint32_t shard) {
  std::lock_guard lock(mu_);
  buckets_[shard % buckets_.size()].waiting.erase(shard);
}

uint64_t IdentifyGate::granted() const {
  std::lock_guard lock(mu_);
  return granted_;
}

}  // namespace shardring::engine
