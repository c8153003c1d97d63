// tools/load_reset.h: `shardring load --gateway-reset-at S`: at S seconds the
// spawned gateway resets every connection at once (SIGUSR1: a gateway node
// failing; the sessions outlive it), and the run measures how the shards
// come back: how many RESUME, how many IDENTIFY again, and the time from the
// reset until each shard is RESUMED (p50, p99, max).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace shardring::tools {

class GatewayReset {
 public:
  GatewayReset(uint32_t shards, double at_s);

  // Chains Config::on_shard_change to watch the shards come back.
  void attach(Config& cfg);
  // On a tick: whether the reset is due now (true once).
  bool due(double elapsed_s);
  // The moment the gateway was told (its SIGUSR1 was sent).
  void fired();

  struct Summary {
    double at_s = 0;
    bool fired = false;
    uint32_t shards = 0;
    uint32_t resumed = 0;                       // RESUMED after the reset
    uint32_t identified = 0;                    // READY again (a new session) after the reset
    double p50_ms = 0, p99_ms = 0, max_ms = 0;  // reset to RESUMED (or READY)
  };
  Summary summary() const;
  // One line of the load table, and the JSON object "gateway_reset".
  static std::string text(const Summary& s);
  static std::string json(const Summary& s);

 private:
  using Clock = std::chrono::steady_clock;
  static int64_t now_ns();

  uint32_t shards_;
  double at_s_;
  bool due_done_ = false;
  std::atomic<int64_t> fired_ns_{0};
  // By shard: when it was back (RESUMED or READY) after the reset; 0: not yet.
  std::unique_ptr<std::atomic<int64_t>[]> back_ns_;
  std::unique_ptr<std::atomic<uint8_t>[]> how_;  // 1 resumed, 2 identified
};

}  // namespace shardring::tools
