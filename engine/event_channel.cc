#include "engine/event_channel.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <ctime>
#include <new>

namespace shardring::engine {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
              std::atomic<uint32_t>::is_always_lock_free);

void ConsumerWaker::futex_wait(uint32_t seen, int64_t timeout_ms) noexcept {
  timespec ts{};
  if (timeout_ms > 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (timeout_ms % 1000) * 1'000'000;
  }
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&seq_), FUTEX_WAIT_PRIVATE, seen,
            timeout_ms > 0 ? &ts : nullptr, nullptr, 0);
}

void ConsumerWaker::futex_wake() noexcept {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&seq_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
            0);
}

EventChannel::EventChannel(size_t records, size_t arena_bytes)
    : records_(records),
      arena_(new char[std::bit_ceil(arena_bytes)]),
      arena_mask_(std::bit_ceil(arena_bytes) - 1) {}

EventChannel::~EventChannel() {
  Record r;
  while (records_.try_pop(r)) delete[] r.heap;
}

bool EventChannel::try_push(const ChannelEvent& e) noexcept {
  Record r;
  r.shard = e.shard;
  r.type = e.type;
  r.seq = e.seq;
  r.guild_id = e.guild_id;
  r.channel_id = e.channel_id;
  r.recv_ns = e.recv_ns;
  r.sent_ns = e.sent_ns;
  r.session = e.session;
  r.t_len = static_cast<uint16_t>(e.t.size() > 0xFFFF ? 0xFFFF : e.t.size());
  r.d_len = static_cast<uint32_t>(e.d.size());
  const size_t need = size_t{r.t_len} + e.d.size();
  const size_t cap = arena_mask_ + 1;
  char* dst;
  if (need > cap / 4) {
    // Too big to share the arena fairly: one block of its own.
    r.heap = new (std::nothrow) char[need];
    if (r.heap == nullptr) return false;
    dst = r.heap;
  } else {
    size_t off = produce_ & arena_mask_;
    size_t total = need;
    if (off + need > cap) total += cap - off;  // skip the tail, wrap to 0
    const size_t used = produce_ - release_.load(std::memory_order_acquire);
    if (used + total > cap) return false;
    if (off + need > cap) off = 0;
    r.offset = static_cast<uint32_t>(off);
    r.arena_bytes = static_cast<uint32_t>(total);
    dst = arena_.get() + off;
    produce_ += total;
  }
  std::memcpy(dst, e.t.data(), r.t_len);
  std::memcpy(dst + r.t_len, e.d.data(), e.d.size());
  if (!records_.try_push(Record(r))) {  // a copy: r is still read below
    // Undo: the record ring is full (bytes were reserved but not published).
    if (r.heap != nullptr) {
      delete[] r.heap;
    } else {
      produce_ -= r.arena_bytes;
    }
    return false;
  }
  if (r.heap != nullptr) ++heap_events_;
  return true;
}

}  // namespace shardring::engine
