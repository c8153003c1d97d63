// engine/per_thread.h: what the sinks share between a handler and the
// engine: one object per consumer thread (a sink's writer, a histogram),
// made on first use and kept for a last pass after run() returned, and the
// handler's Event as the sink writers take it.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/event_channel.h"

namespace shardring::engine {

inline ChannelEvent ToChannelEvent(const Event& e) {
  ChannelEvent ce{};
  ce.shard = e.shard;
  ce.type = e.type_id;
  ce.seq = e.seq;
  ce.guild_id = e.guild_id;
  ce.channel_id = e.channel_id;
  ce.t = e.type;
  ce.d = e.d;
  ce.recv_ns = e.received_ns;
  ce.sent_ns = e.sent_ns;
  ce.session = e.session;
  return ce;
}

// One T per thread that asks, made by `make` on the thread's first call of
// mine(). Each PerThread has an id of its own, so a thread never takes an
// object of another (or of a destroyed one at the same address); a thread
// that alternates between two of the same T gets a new object each time.
template <class T>
class PerThread {
 public:
  explicit PerThread(std::function<std::unique_ptr<T>()> make)
      : make_(std::move(make)), id_(next_id_.fetch_add(1, std::memory_order_relaxed) + 1) {}
  PerThread(const PerThread&) = delete;
  PerThread& operator=(const PerThread&) = delete;

  T& mine() {
    Slot& s = slot();
    if (s.owner != id_) {
      std::lock_guard lock(mu_);
      all_.push_back(make_());
      s.obj = all_.back().get();
      s.owner = id_;
    }
    return *s.obj;
  }
  // This thread's, or null before its first mine().
  T* existing() const {
    const Slot& s = slot();
    return s.owner == id_ ? s.obj : nullptr;
  }
  // Every object made so far (after run() returned: the last flush).
  template <class F>
  void for_each(F&& f) {
    std::lock_guard lock(mu_);
    for (auto& p : all_) f(*p);
  }

 private:
  struct Slot {
    uint64_t owner = 0;
    T* obj = nullptr;
  };
  static Slot& slot() {
    thread_local Slot s;
    return s;
  }

  std::function<std::unique_ptr<T>()> make_;
  const uint64_t id_;
  std::mutex mu_;
  std::vector<std::unique_ptr<T>> all_;
  static inline std::atomic<uint64_t> next_id_{0};
};

}  // namespace shardring::engine
