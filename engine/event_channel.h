// engine/event_channel.h: the hand-off of dispatch events from one core
// thread (producer) to one consumer thread. Each (core, consumer) pair has
// one channel: an SpscRing of fixed-size records plus a byte arena that holds
// each event's `t` and `d`. That arena copy is the one copy of `d` on the way
// to the consumer (docs/design.md "Memory and copies"); events too large for the
// arena take one heap block each (a rare, multi-megabyte GUILD_CREATE).
//
// Producer side: the owning core thread only. Consumer side: the consumer
// thread only. A full channel is backpressure: try_push returns false and
// the caller stops reading that shard's socket; nothing is dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "engine/spsc_ring.h"

namespace shardring::engine {

// One consumer thread sleeps on this when all of its channels are empty;
// producers wake it after a batch of pushes. A plain futex word: the consumer
// sleeps in the kernel at once (no spinning or yielding first, which costs
// more CPU than it saves when events come at a real bot's pace), and a
// producer makes a syscall only when the consumer is asleep.
class ConsumerWaker {
 public:
  // Producer: after pushing a batch.
  void notify() noexcept {
    if (sleeping_.load(std::memory_order_seq_cst)) force_wake();
  }
  // Consumer: announce, re-check with `is_empty`, then sleep until notified.
  // A positive `timeout_ms` bounds the sleep (a sink retrying a write).
  template <class IsEmpty>
  void wait(IsEmpty&& is_empty, int64_t timeout_ms = 0) noexcept {
    const uint32_t seen = seq_.load(std::memory_order_seq_cst);
    sleeping_.store(true, std::memory_order_seq_cst);
    if (is_empty()) futex_wait(seen, timeout_ms);
    sleeping_.store(false, std::memory_order_relaxed);
  }
  // Any thread: wake the consumer whatever it is doing (shutdown).
  void force_wake() noexcept {
    seq_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake();
  }

 private:
  // Returns when seq_ differs from `seen`, on a wake, after a positive
  // `timeout_ms`, or spuriously (the
  // caller re-checks its channels either way).
  void futex_wait(uint32_t seen, int64_t timeout_ms) noexcept;
  void futex_wake() noexcept;

  alignas(64) std::atomic<uint32_t> seq_{0};
  alignas(64) std::atomic<bool> sleeping_{false};
};

// What the consumer sees; views valid only during the callback.
struct ChannelEvent {
  uint32_t shard;
  uint16_t type;  // parse::EventType value
  uint64_t seq;
  uint64_t guild_id;  // 0 when absent or not extracted
  uint64_t channel_id;
  std::string_view t;
  std::string_view d;
  int64_t recv_ns;   // steady-clock stamp when the frame was read
  int64_t sent_ns;   // the gateway's "_ts_ns" send stamp; 0 when absent
  uint64_t session;  // gateway::Session::session_key() of the event's session
};

class EventChannel {
 public:
  static constexpr size_t kDefaultRecords = 1 << 14;
  static constexpr size_t kDefaultArenaBytes = size_t{4} << 20;

  explicit EventChannel(size_t records = kDefaultRecords, size_t arena_bytes = kDefaultArenaBytes);
  EventChannel(const EventChannel&) = delete;
  EventChannel& operator=(const EventChannel&) = delete;
  ~EventChannel();

  // Producer. Copies t and d; false when the ring or arena is full.
  [[nodiscard]] bool try_push(const ChannelEvent& e) noexcept;

  // Consumer. Calls f(const ChannelEvent&) for up to `max` events, releasing
  // their bytes after each call. Returns how many.
  template <class F>
  size_t drain(F&& f, size_t max) {
    size_t n = 0;
    Record r;
    while (n < max && records_.try_pop(r)) {
      ChannelEvent e{r.shard, r.type, r.seq,     r.guild_id, r.channel_id,
                     {},      {},     r.recv_ns, r.sent_ns,  r.session};
      const char* base = r.heap != nullptr ? r.heap : arena_.get() + r.offset;
      e.t = std::string_view(base, r.t_len);
      e.d = std::string_view(base + r.t_len, r.d_len);
      f(static_cast<const ChannelEvent&>(e));
      if (r.heap != nullptr) {
        delete[] r.heap;
      } else {
        release_.store(release_.load(std::memory_order_relaxed) + r.arena_bytes,
                       std::memory_order_release);
      }
      ++n;
    }
    return n;
  }
  bool empty() const noexcept { return records_.empty(); }
  // Any thread: events waiting (approximate while both sides run).
  size_t depth() const noexcept { return records_.size_approx(); }
  // Producer: whether at least half of the records and half of the arena
  // are free. The engine reads a socket only while this holds, so one read's
  // events always fit and a full channel pauses reading instead of stalling.
  [[nodiscard]] bool has_headroom() const noexcept {
    const size_t cap = arena_mask_ + 1;
    return records_.size_approx() <= records_.capacity() / 2 &&
           produce_ - release_.load(std::memory_order_acquire) <= cap / 2;
  }
  // Events pushed to the heap because they did not fit the arena at all.
  uint64_t heap_events() const noexcept { return heap_events_; }

 private:
  struct Record {
    uint32_t shard = 0;
    uint16_t type = 0;
    uint16_t t_len = 0;
    uint64_t seq = 0;
    uint64_t guild_id = 0, channel_id = 0;
    int64_t recv_ns = 0;
    int64_t sent_ns = 0;
    uint64_t session = 0;
    char* heap = nullptr;
    uint32_t offset = 0, d_len = 0;
    uint32_t arena_bytes = 0;
  };
  SpscRing<Record> records_;
  std::unique_ptr<char[]> arena_;
  size_t arena_mask_;
  alignas(64) size_t produce_ = 0;              // producer only
  uint64_t heap_events_ = 0;                    // producer only
  alignas(64) std::atomic<size_t> release_{0};  // consumer writes
};

}  // namespace shardring::engine
