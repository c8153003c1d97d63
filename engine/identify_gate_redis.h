// engine/identify_gate_redis.h: `--identify-gate redis`: one IDENTIFY per
// bucket per window across every process and machine of the bot, kept in
// Redis: bucket B's key `P:gate:B` is set with `SET NX PX window+margin`,
// so it exists exactly as long as the bucket is closed, on Redis's clock
// (one clock for every machine). Whoever sets it may identify one shard.
//
// Core threads never wait on Redis: try_acquire() only looks at what the
// gate's own thread has won. That thread tries the buckets with waiting
// shards when they open (the key's PTTL says when) and hands each window
// won to the lowest waiting shard of this process, which asks every
// kRedisGatePoll and takes it at its next ask. The window is then
// restarted from the take (PEXPIRE, if the key is still ours), so the
// next IDENTIFY of the bucket, from any process, comes at least window +
// margin after this one is sent, however late the take was. A window not
// taken within half its length is dropped (its shard asks again). While Redis is unreachable no
// window is won (shards wait in kAwaitingIdentify, the log says why); sessions already up are
// untouched.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/identify_gate.h"
#include "engine/redis_link.h"

namespace shardring::engine {

// How soon a shard whose bucket is being tried asks again.
inline constexpr std::chrono::milliseconds kRedisGatePoll{2};

class RedisIdentifyGate final : public IdentifyGate {
 public:
  // `prepaid`: IDENTIFYs this process reserved in P:budget at start; each
  // window taken beyond them spends one more there (kSpendScript).
  RedisIdentifyGate(RedisUrl url, std::string prefix, uint32_t max_concurrency,
                    std::chrono::milliseconds window, uint64_t prepaid = 0);
  ~RedisIdentifyGate() override;
  RedisIdentifyGate(const RedisIdentifyGate&) = delete;
  RedisIdentifyGate& operator=(const RedisIdentifyGate&) = delete;

  [[nodiscard]] bool try_acquire(uint32_t shard, Clock::time_point now,
                                 Clock::time_point* retry_at) override;
  void withdraw(uint32_t shard) override;
  // Windows won from Redis, and of those handed to a shard.
  uint64_t won() const;

 private:
  void run();
  struct Bucket {
    std::set<uint32_t> waiting;  // lowest first
    int64_t granted = -1;        // shard holding a won window, not yet taken
    Clock::time_point granted_at{};
    bool restart = false;  // taken: restart the key's expiry from now
    Clock::time_point next_try{};
  };
  RedisLink link_;
  RedisScript restart_, spend_;
  uint64_t prepaid_;
  uint64_t taken_ = 0;    // windows taken (IDENTIFYs sent)
  uint64_t unspent_ = 0;  // taken beyond prepaid_, not yet counted in P:budget
  std::string prefix_;
  std::chrono::milliseconds spacing_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Bucket> buckets_;
  uint64_t won_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace shardring::engine
