// engine/redis_commands.h: gateway commands from a worker fleet, through
// Redis (docs/interface.md "Redis"). Workers append entries to the stream
// `P:commands` (fields id, shard, op, d); this process reads the stream in
// a consumer group of its own (`gateway-A-B`, its shard slice: every slice
// sees every command and takes those of its shards), hands each command of
// its shards to `send` (Engine::send: checked, then sent behind the
// 120/60 s limit), appends the outcome to `P:command-results` (fields id,
// shard, status `sent` or `refused`, reason) and acknowledges the entry, in
// one MULTI/EXEC per batch.
//
// At most once across crashes: a command delivered to the group and not
// acknowledged when the process stopped (its own pending entries, found at
// the next start) may or may not have reached the gateway; it is not sent
// again, and its result says `refused` with the reason kInterrupted. The
// window is one batch: between reading it and its MULTI/EXEC, a few
// milliseconds. A clean stop finishes the batch first.
//
// A thread of its own with its own connection: the reads block (XREADGROUP
// BLOCK), never on a core thread. While Redis is unreachable it retries
// with backoff (commands wait in the stream; nothing is lost).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "engine/redis_link.h"

namespace shardring::engine {

inline constexpr std::string_view kInterrupted =
    "interrupted: the process stopped between reading and confirming it; not sent again";
// Entries read per XREADGROUP, and how long one waits for new entries (a
// stop is noticed within this).
inline constexpr int kCommandBatch = 100;
inline constexpr std::chrono::milliseconds kCommandBlock{500};
// P:command-results is capped near this many entries (MAXLEN ~).
inline constexpr uint64_t kCommandResultsMaxLen = 100'000;

class RedisCommands {
 public:
  struct Outcome {
    bool sent = false;
    std::string reason;
  };
  struct Options {
    RedisUrl url;
    std::string prefix = "shardring";
    // Queues `payload` ({"op":N,"d":...}) for `shard` (Engine::send).
    std::function<Outcome(uint32_t shard, std::string payload)> send;
    // The slice of shards this process runs (inclusive); nullopt until the
    // shards are running (commands wait in the stream meanwhile). Commands
    // for other shards are left to their slice's group.
    std::function<std::optional<std::pair<uint32_t, uint32_t>>()> slice;
  };

  explicit RedisCommands(Options opts);
  ~RedisCommands();  // stop()
  RedisCommands(const RedisCommands&) = delete;
  RedisCommands& operator=(const RedisCommands&) = delete;

  void start();
  // Finishes the batch in hand, then returns (within kCommandBlock).
  void stop();
  uint64_t sent() const { return sent_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  void run();
  // One batch: false on an I/O error (reconnect and try again).
  bool step(bool pending_only, bool* got_any, std::string* error);

  Options opts_;
  std::string stream_, results_, group_;
  uint32_t first_ = 0, last_ = 0;
  RedisLink link_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0}, refused_{0};
};

}  // namespace shardring::engine
