// engine/redis_lease.h: who runs which shards, across processes and
// machines (docs/interface.md "Redis", --standby). A process running shards
// holds a lease per shard, `P:lease:N` (its owner id, expiring after the
// lease time), renewed every third of it while its fence (P:session:N
// `fence`, engine/redis_store.h claim_shards) is still its own. A clean
// stop releases them. A process that dies leaves them to expire: a
// standby process (`--standby`) that sees a run of shards with saved
// sessions and no lease claims them (a higher fence, so the old owner can
// no longer write, even if it was only paused) and resumes their sessions.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/redis_link.h"

namespace shardring::engine {

inline constexpr std::chrono::milliseconds kLeaseTime{10'000};
inline constexpr std::chrono::milliseconds kMinLeaseTime{500};
inline constexpr std::chrono::milliseconds kMaxLeaseTime{600'000};

// A process's owner id: host, pid and start time (unique across restarts).
std::string lease_owner_id();

class RedisLeases {
 public:
  // Holds the leases of shards [first, last] with `fences` (by shard id).
  RedisLeases(RedisUrl url, std::string prefix, uint32_t first, uint32_t last,
              std::vector<std::string> fences, std::chrono::milliseconds lease);
  ~RedisLeases();  // stop(): releases the leases it holds
  RedisLeases(const RedisLeases&) = delete;
  RedisLeases& operator=(const RedisLeases&) = delete;

  // Takes the leases now (false with *error when Redis cannot be reached),
  // then renews them on a thread of its own.
  bool start(std::string* error);
  void stop();
  // One renewal now; the shards whose fence another process holds now.
  uint32_t renew(std::string* error);

 private:
  void run();
  RedisLink link_;
  std::string prefix_, owner_;
  uint32_t first_, last_;
  std::vector<std::string> fences_;
  std::chrono::milliseconds lease_;
  RedisScript renew_, release_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// For a standby: the first run of consecutive shards in [first, last]
// with a saved session (P:session:N session_id) and no lease, or nullopt.
absl::StatusOr<std::optional<std::pair<uint32_t, uint32_t>>> find_orphans(RedisLink& link,
                                                                          std::string_view prefix,
                                                                          uint32_t first,
                                                                          uint32_t last);

}  // namespace shardring::engine
