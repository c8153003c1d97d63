// tools/redis_handoff.h: what `shardring run` adds with --redis
// (docs/interface.md "Redis"): the Redis identify gate and session store,
// and with --sink redis the stream writers (one per consumer thread), the
// commands read back from P:commands, the stream trimmer and their series
// on /metrics. run_cmd.cc calls configure() before the engine is made,
// attach() after, start() before run() and finish() after.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/per_thread.h"
#include "engine/redis_commands.h"
#include "engine/redis_lease.h"
#include "engine/redis_sink.h"
#include "engine/redis_trim.h"
#include "tools/options.h"

namespace shardring::tools {

// A standby gives up when Redis stays unreachable this long (exit 1).
inline constexpr std::chrono::seconds kStandbyGiveUp{60};

class RedisHandOff {
 public:
  explicit RedisHandOff(const RunOptions& o) : o_(o) {}
  RedisHandOff(const RedisHandOff&) = delete;
  RedisHandOff& operator=(const RedisHandOff&) = delete;

  // Fills the parts of `cfg` Redis serves. False with *error (exit 2) when
  // the shards cannot be claimed.
  bool configure(Config& cfg, std::string* error);
  // With --sink redis: the handlers that write the streams.
  void attach(Engine& eng);
  void start();
  // After run(): stops the threads, flushes the writers; the run's exit
  // code (4 when the sink failed) and the summary's event count.
  int finish(int rc, Stats* s);
  bool sink() const { return out_ != nullptr; }
  // The Redis server's own CPU seconds (INFO cpu: used_cpu_sys +
  // used_cpu_user); nullopt when it cannot be asked.
  static std::optional<double> server_cpu_s(const engine::RedisUrl& url);
  // The writers' lag histograms, merged into `into` (no writer of its own).
  void merge_lag(engine::Histogram& into);

  // --standby: waits (logging once) until a run of shards of
  // --total-shards has a saved session and no lease, takes their leases
  // and returns their range. nullopt when SIGINT/SIGTERM came first; an
  // error when Redis cannot be reached for kStandbyGiveUp.
  static absl::StatusOr<std::optional<std::pair<uint32_t, uint32_t>>> wait_for_orphans(
      const RunOptions& o);

 private:
  void metrics(std::string& m);
  const RunOptions& o_;
  Engine* eng_ = nullptr;
  std::shared_ptr<engine::RedisOutput> out_;
  // One per consumer thread, made on its first event.
  std::unique_ptr<engine::PerThread<engine::RedisWriter>> writers_;
  std::unique_ptr<engine::RedisCommands> commands_;
  std::unique_ptr<engine::RedisTrimmer> trimmer_;
  std::unique_ptr<engine::RedisLeases> leases_;
  uint32_t first_ = 0, last_ = 0;  // the claimed slice (with fences)
  // IDENTIFYs reserved in P:budget at start (the gate's prepaid).
  std::shared_ptr<std::atomic<uint32_t>> prepaid_ = std::make_shared<std::atomic<uint32_t>>(0);
};

}  // namespace shardring::tools
