// engine/uring.h: one io_uring per core thread, its provided-buffer ring, and
// the user_data tags completions carry. Only the owning core thread may touch
// a Uring (IORING_SETUP_SINGLE_ISSUER where the kernel has it).
//
// Kernel features are probed once, in Uring::create(): a missing one fails
// start-up with a message naming it and the kernel version that brings it.
#pragma once

#include <liburing.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/uring_options.h"

namespace shardring::engine {

// What each submission is for; travels in the top byte of user_data.
enum class Op : uint8_t {
  kNone = 0,
  kConnect,
  kRecv,  // multishot recv from the provided-buffer ring
  kSend,
  kClose,
  kCancel,  // cancellation requests: their completions carry nothing
  kWake,    // eventfd read: another thread asked this one to look up
  kAccept,  // multishot accept (server role)
  kTimer,   // not an io_uring request: a timer wheel cookie (generation
            // holds the timer's kind)
};

// bits 56-63 op | 32-55 slot generation | 0-31 connection slot. The
// generation lets a late completion for a slot that was closed and reused be
// recognised and dropped.
struct OpTag {
  Op op;
  uint32_t slot, generation;  // generation: low 24 bits used
  constexpr uint64_t pack() const noexcept {
    return uint64_t{static_cast<uint8_t>(op)} << 56 | uint64_t{generation & 0xFF'FFFF} << 32 | slot;
  }
  static constexpr OpTag unpack(uint64_t v) noexcept {
    return {static_cast<Op>(v >> 56), static_cast<uint32_t>(v),
            static_cast<uint32_t>(v >> 32) & 0xFF'FFFF};
  }
};
static_assert(OpTag::unpack(OpTag{Op::kSend, 7, 3}.pack()).slot == 7);
static_assert(OpTag::unpack(OpTag{Op::kSend, 7, 3}.pack()).generation == 3);
static_assert(OpTag::unpack(OpTag{Op::kRecv, 7, 3}.pack()).op == Op::kRecv);

// Kernel buffers for multishot recv: `count` buffers of `size` bytes, each
// followed by `slack` private bytes so a message that ends inside a buffer
// can be parsed in place with simdjson's padding requirement. Set up by hand:
// liburing 2.3 has no io_uring_setup_buf_ring.
class BufferRing {
 public:
  BufferRing() = default;
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  ~BufferRing();

  absl::Status init(io_uring* ring, uint16_t group, uint16_t count, uint32_t size, uint32_t slack);
  uint16_t group() const { return group_; }
  uint32_t size() const { return size_; }
  // The bytes of buffer `id`; valid until recycle(id).
  std::byte* data(uint16_t id) const { return base_ + size_t{id} * stride_; }
  // Hands buffer `id` back to the kernel (published by flush()).
  void recycle(uint16_t id) noexcept;
  // The buffer the kernel takes after `id`: the ring's order, kept as the
  // buffers are added. A receive bundle names only its first buffer and
  // fills the next ones in this order (UringFeatures::recv_bundle). Read
  // it before `id` is recycled.
  uint16_t next(uint16_t id) const { return next_[id]; }
  void flush() noexcept;
  // Buffers currently owned by the kernel, for -ENOBUFS accounting.
  uint32_t available() const { return available_; }

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  size_t br_bytes_ = 0;
  std::byte* base_ = nullptr;
  size_t base_bytes_ = 0;
  uint32_t size_ = 0, stride_ = 0;
  uint16_t group_ = 0, count_ = 0;
  int mask_ = 0, pending_ = 0;
  uint32_t available_ = 0;
  std::vector<uint16_t> next_;  // next_[id]: the buffer added after id
  uint16_t last_added_ = 0;
};

class Uring {
 public:
  // Sets up a ring with `entries` submission slots (completion queue 4x),
  // probing SINGLE_ISSUER/DEFER_TASKRUN. Must be called on the thread that
  // will use the ring.
  static absl::StatusOr<std::unique_ptr<Uring>> create(unsigned entries,
                                                       UringFallbacks fallbacks = {});
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  const UringFeatures& features() const { return features_; }
  io_uring* raw() { return &ring_; }

  // A submission slot; submits what is queued when the queue is full, so it
  // never returns null.
  io_uring_sqe* sqe();
  // Submits and waits for at least `wait_nr` completions or the timeout.
  // With `min_wait` (only where features().min_wait): once it has passed,
  // any completion ends the wait; `timeout` should then be no shorter than
  // `min_wait` (the kernel waits min_wait at least). Returns the number
  // submitted or -errno (-ETIME on time-out is normal).
  int submit_and_wait(std::chrono::microseconds timeout, unsigned wait_nr = 1,
                      std::chrono::microseconds min_wait = std::chrono::microseconds(0));
  int submit();

  // Calls f(const io_uring_cqe&) for every ready completion, then marks them
  // seen in one step. Returns how many.
  template <class F>
  unsigned reap(F&& f) {
    unsigned head, n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      f(*cqe);
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
    return n;
  }

 private:
  Uring() = default;
  io_uring ring_{};
  bool inited_ = false;
  UringFeatures features_;
};

}  // namespace shardring::engine
