#include "engine/identify_gate.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/identify_gate_file.h"

namespace shardring::engine {

LocalIdentifyGate::LocalIdentifyGate(uint32_t max_concurrency, std::chrono::milliseconds window)
    : windows_(max_concurrency, window + identify_margin(window)),
      waiting_(windows_.size()),
      window_(window) {}

bool LocalIdentifyGate::try_acquire(uint32_t shard, Clock::time_point now,
                                    Clock::time_point* retry_at) {
  std::lock_guard lock(mu_);
  const uint32_t b = windows_.bucket_of(shard);
  std::set<uint32_t>& waiting = waiting_[b];
  waiting.insert(shard);
  if (windows_.is_open(b, now) && *waiting.begin() == shard) {
    waiting.erase(waiting.begin());
    windows_.take(b, now);
    ++granted_;
    return true;
  }
  // A lower shard is first in line, or the window is closed: ask again when
  // it opens. If the lower shard was lost without withdraw() it is still
  // first; its owner re-asks at the same time, so the line keeps moving.
  *retry_at = std::max(windows_.next_allowed(b), now + std::chrono::milliseconds(1));
  return false;
}

void LocalIdentifyGate::withdraw(uint32_t shard) {
  std::lock_guard lock(mu_);
  waiting_[windows_.bucket_of(shard)].erase(shard);
}

uint64_t LocalIdentifyGate::granted() const {
  std::lock_guard lock(mu_);
  return granted_;
}

absl::StatusOr<std::unique_ptr<IdentifyGate>> make_identify_gate(std::string_view spec,
                                                                 uint32_t max_concurrency,
                                                                 std::chrono::milliseconds window) {
  if (spec == "local") return std::make_unique<LocalIdentifyGate>(max_concurrency, window);
  constexpr std::string_view kFile = "file:";
  if (spec.starts_with(kFile)) {
    std::string_view dir = spec.substr(kFile.size());
    if (dir.empty()) {
      return absl::InvalidArgumentError(
          "--identify-gate: 'file:' names no directory (expected local or file:DIR)");
    }
    auto gate = FileIdentifyGate::open(std::string(dir), max_concurrency, window);
    if (!gate.ok()) return gate.status();
    return std::unique_ptr<IdentifyGate>(std::move(*gate));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--identify-gate: '", std::string(spec), "' is not local or file:DIR"));
}

}  // namespace shardring::engine
