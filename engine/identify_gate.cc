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
  std::vector<uint32_t>& line = waiting_[b];
  auto it = std::lower_bound(line.begin(), line.end(), shard);
  if (it == line.end() || *it != shard) it = line.insert(it, shard);
  const auto ahead = static_cast<int64_t>(it - line.begin());
  if (ahead == 0 && windows_.is_open(b, now)) {
    line.erase(line.begin());
    windows_.take(b, now);
    ++granted_;
    return true;
  }
  // Among the first three in line: when the window opens (a lower shard
  // lost without withdraw() is still first; its owner asks then too, so
  // the line keeps moving). Further back: when it would be third, or
  // kIdentifyLookahead windows ahead if that is sooner.
  const int64_t turns = std::clamp<int64_t>(ahead - 2, 0, kIdentifyLookahead);
  *retry_at = std::max(windows_.next_allowed(b) + windows_.window() * turns,
                       now + std::chrono::milliseconds(1));
  return false;
}

void LocalIdentifyGate::withdraw(uint32_t shard) {
  std::lock_guard lock(mu_);
  std::vector<uint32_t>& line = waiting_[windows_.bucket_of(shard)];
  auto it = std::lower_bound(line.begin(), line.end(), shard);
  if (it != line.end() && *it == shard) line.erase(it);
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
