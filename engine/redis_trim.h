// engine/redis_trim.h: keeps the event streams from growing without end,
// without losing what a worker has not handled (docs/interface.md
// "Redis"). Every kTrimInterval a thread of its own trims each stream of
// the process's shards below what every consumer group has acknowledged
// (redis/scripts.h kTrimScript): the oldest entry pending in a group, or
// the first not yet delivered to it. A stream no group reads is kept whole.
// With a cap (--redis-maxlen N), each stream is then cut to N entries
// whatever was read; entries cut before every group had acknowledged them
// are counted (cut_unread(), shardring_redis_cut_unread_total) and logged.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "engine/redis_link.h"

namespace shardring::engine {

inline constexpr std::chrono::milliseconds kTrimInterval{2000};
// Streams trimmed per round trip.
inline constexpr uint32_t kTrimBatch = 1000;

class RedisTrimmer {
 public:
  struct Options {
    RedisUrl url;
    std::string prefix = "shardring";
    uint64_t maxlen = 0;  // 0: no cap
    std::chrono::milliseconds interval = kTrimInterval;
    // The shards whose streams to trim (inclusive); nullopt until known.
    std::function<std::optional<std::pair<uint32_t, uint32_t>>()> slice;
  };
  explicit RedisTrimmer(Options opts);
  ~RedisTrimmer();  // stop()
  RedisTrimmer(const RedisTrimmer&) = delete;
  RedisTrimmer& operator=(const RedisTrimmer&) = delete;

  void start();
  void stop();
  // One pass over every stream now (tests); false on a Redis error.
  bool trim_once(std::string* error);
  uint64_t trimmed() const { return trimmed_.load(); }
  uint64_t cut_unread() const { return cut_unread_.load(); }

 private:
  void run();
  Options opts_;
  RedisLink link_;
  RedisScript script_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::atomic<uint64_t> trimmed_{0}, cut_unread_{0};
};

}  // namespace shardring::engine
