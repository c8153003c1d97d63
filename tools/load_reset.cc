// tools/load_reset.cc: see load_reset.h.
#include "tools/load_reset.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace shardring::tools {

GatewayReset::GatewayReset(uint32_t shards, double at_s)
    : shards_(shards),
      at_s_(at_s),
      back_ns_(new std::atomic<int64_t>[shards]),
      how_(new std::atomic<uint8_t>[shards]) {
  for (uint32_t i = 0; i < shards; ++i) {
    back_ns_[i].store(0, std::memory_order_relaxed);
    how_[i].store(0, std::memory_order_relaxed);
  }
}

int64_t GatewayReset::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void GatewayReset::attach(Config& cfg) {
  auto before = std::move(cfg.on_shard_change);
  cfg.on_shard_change = [this, before = std::move(before)](const ShardChange& c) {
    if (before) before(c);
    const int64_t fired = fired_ns_.load(std::memory_order_acquire);
    if (fired == 0 || c.shard >= shards_) return;
    if (c.kind != ShardChange::Kind::kResumed && c.kind != ShardChange::Kind::kReady) return;
    int64_t zero = 0;
    if (back_ns_[c.shard].compare_exchange_strong(zero, now_ns(), std::memory_order_relaxed)) {
      how_[c.shard].store(c.kind == ShardChange::Kind::kResumed ? 1 : 2, std::memory_order_release);
    }
  };
}

bool GatewayReset::due(double elapsed_s) {
  if (due_done_ || elapsed_s < at_s_) return false;
  due_done_ = true;
  return true;
}

void GatewayReset::fired() { fired_ns_.store(now_ns(), std::memory_order_release); }

GatewayReset::Summary GatewayReset::summary() const {
  Summary s;
  s.at_s = at_s_;
  s.shards = shards_;
  const int64_t fired = fired_ns_.load(std::memory_order_acquire);
  s.fired = fired != 0;
  if (!s.fired) return s;
  std::vector<double> ms;
  for (uint32_t i = 0; i < shards_; ++i) {
    const uint8_t how = how_[i].load(std::memory_order_acquire);
    if (how == 0) continue;
    (how == 1 ? s.resumed : s.identified) += 1;
    ms.push_back(static_cast<double>(back_ns_[i].load(std::memory_order_relaxed) - fired) / 1e6);
  }
  if (!ms.empty()) {
    std::sort(ms.begin(), ms.end());
    auto rank = [&](double q) {
      size_t r = static_cast<size_t>(q * static_cast<double>(ms.size()) + 0.999999);
      return ms[std::clamp<size_t>(r, 1, ms.size()) - 1];
    };
    s.p50_ms = rank(0.50);
    s.p99_ms = rank(0.99);
    s.max_ms = ms.back();
  }
  return s;
}

std::string GatewayReset::text(const Summary& s) {
  if (!s.fired)
    return absl::StrFormat("gateway reset     not reached (--gateway-reset-at %g)\n", s.at_s);
  return absl::StrFormat(
      "gateway reset     at %g s: %d of %d shards resumed, %d identified again, %d not back; "
      "reset to back p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      s.at_s, s.resumed, s.shards, s.identified, s.shards - s.resumed - s.identified, s.p50_ms,
      s.p99_ms, s.max_ms);
}

std::string GatewayReset::json(const Summary& s) {
  return absl::StrFormat(
      "{\"at_s\":%g,\"fired\":%s,\"shards\":%d,\"resumed\":%d,\"identified\":%d,\"p50_ms\":%.3f,"
      "\"p99_ms\":%.3f,\"max_ms\":%.3f}",
      s.at_s, s.fired ? "true" : "false", s.shards, s.resumed, s.identified, s.p50_ms, s.p99_ms,
      s.max_ms);
}

}  // namespace shardring::tools
