// tools/load_seq.h: `shardring load`'s check that every shard's events
// arrived once and in order: per shard and Discord session, each seq must be
// the last one + 1. A seq past that is a gap (events lost), one at or below
// it a repeat (an event delivered twice). A new session (IDENTIFY, after an
// invalid session) starts its own count. The run's last events may still be
// in flight when it ends: they are neither, since nothing comes after them.
// Called from the consumer threads: a shard's events come from one thread
// (Engine routes each shard to one consumer), so per-shard state needs no
// lock; the totals are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace shardring::tools {

class SeqCheck {
 public:
  explicit SeqCheck(uint32_t shards) : last_(shards) {}

  void on_event(const Event& e) noexcept;

  uint64_t gaps() const noexcept { return gaps_.load(std::memory_order_relaxed); }
  uint64_t lost() const noexcept { return lost_.load(std::memory_order_relaxed); }
  uint64_t repeats() const noexcept { return repeats_.load(std::memory_order_relaxed); }
  // `"seq_gaps":N,"seq_lost":N,"seq_repeats":N` for the summary JSON, and
  // the table's line.
  std::string json() const;
  std::string text() const;

 private:
  struct Last {
    uint64_t session = 0;
    uint64_t seq = 0;  // 0: nothing seen in this session
  };
  std::vector<Last> last_;
  std::atomic<uint64_t> gaps_{0}, lost_{0}, repeats_{0};
};

}  // namespace shardring::tools
