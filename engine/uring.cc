#include "engine/uring.h"

#include <sys/mman.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstring>

#include "engine/text.h"
#include "engine/uring_ext.h"

namespace shardring::engine {

BufferRing::~BufferRing() {
  if (ring_ != nullptr && br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_, group_);
  }
  if (br_ != nullptr) munmap(br_, br_bytes_);
  if (base_ != nullptr) munmap(base_, base_bytes_);
}

absl::Status BufferRing::init(io_uring* ring, uint16_t group, uint16_t count, uint32_t size,
                              uint32_t slack) {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
    return absl::InvalidArgumentError("buffer ring size must be a power of two <= 32768");
  }
  ring_ = ring;
  group_ = group;
  count_ = count;
  size_ = size;
  stride_ = (size + slack + 63) & ~63u;
  mask_ = io_uring_buf_ring_mask(count);
  br_bytes_ = sizeof(io_uring_buf) * count;
  void* br = mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (br == MAP_FAILED) return absl::ResourceExhaustedError("mmap buffer ring");
  br_ = static_cast<io_uring_buf_ring*>(br);
  base_bytes_ = size_t{stride_} * count;
  void* base =
      mmap(nullptr, base_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (base == MAP_FAILED) return absl::ResourceExhaustedError("mmap receive buffers");
  base_ = static_cast<std::byte*>(base);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group;
  if (int r = io_uring_register_buf_ring(ring, &reg, 0); r != 0) {
    br_ = (munmap(br_, br_bytes_), nullptr);
    return absl::FailedPreconditionError(
        cat("io_uring provided buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19) "
            "unavailable: ",
            std::strerror(-r)));
  }
  io_uring_buf_ring_init(br_);
  for (uint16_t i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, data(i), size_, i, mask_, i);
  }
  io_uring_buf_ring_advance(br_, count);
  available_ = count;
  next_.resize(count);
  for (uint16_t i = 0; i < count; ++i) next_[i] = static_cast<uint16_t>((i + 1) & mask_);
  last_added_ = static_cast<uint16_t>(count - 1);
  return absl::OkStatus();
}

void BufferRing::recycle(uint16_t id) noexcept {
  io_uring_buf_ring_add(br_, data(id), size_, id, mask_, pending_);
  ++pending_;
  next_[last_added_] = id;
  last_added_ = id;
}

void BufferRing::flush() noexcept {
  if (pending_ == 0) return;
  io_uring_buf_ring_advance(br_, pending_);
  available_ += static_cast<uint32_t>(pending_);
  pending_ = 0;
}

absl::StatusOr<std::unique_ptr<Uring>> Uring::create(unsigned entries, UringFallbacks fallbacks) {
  std::unique_ptr<Uring> u(new Uring());
  utsname un{};
  uname(&un);
  u->features_.kernel = un.release;
  // The set-ups to try, best first; each kernel refusal (-EINVAL: a flag it
  // does not know) moves to the next. DEFER_TASKRUN needs SINGLE_ISSUER.
  struct Try {
    unsigned flags;
    bool single_issuer, defer_taskrun, coop_taskrun;
  };
  constexpr unsigned kCoop = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  const Try tries[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, true, true, false},
      {IORING_SETUP_SINGLE_ISSUER | kCoop, true, false, true},
      {IORING_SETUP_SINGLE_ISSUER, true, false, false},
      {kCoop, false, false, true},
      {0, false, false, false},
  };
  io_uring_params p{};
  int r = -EINVAL;
  for (const Try& t : tries) {
    if ((t.single_issuer && fallbacks.single_issuer) ||
        (t.defer_taskrun && fallbacks.defer_taskrun) ||
        (t.coop_taskrun && fallbacks.coop_taskrun)) {
      continue;
    }
    p = io_uring_params{};
    p.flags = t.flags | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    r = io_uring_queue_init_params(entries, &u->ring_, &p);
    if (r == 0) {
      u->features_.single_issuer = t.single_issuer;
      u->features_.defer_taskrun = t.defer_taskrun;
      u->features_.coop_taskrun = t.coop_taskrun;
      break;
    }
    if (r != -EINVAL) break;
  }
  if (r != 0) {
    return absl::FailedPreconditionError(
        cat("io_uring_setup failed: ", std::strerror(-r), " (kernel ", u->features_.kernel,
            "; shardring needs io_uring enabled, Linux 6.0 or newer: check "
            "/proc/sys/kernel/io_uring_disabled and seccomp/container policy)"));
  }
  u->inited_ = true;
  if (!(p.features & IORING_FEAT_FAST_POLL) || !(p.features & IORING_FEAT_NODROP)) {
    return absl::FailedPreconditionError(
        cat("io_uring lacks FAST_POLL/NODROP (Linux 5.7/5.5); kernel ", u->features_.kernel));
  }
  u->features_.registered_fd =
      !fallbacks.registered_fd && io_uring_register_ring_fd(&u->ring_) == 1;
  u->features_.min_wait = !fallbacks.min_wait && (p.features & uring_ext::kFeatMinTimeout) != 0;
  u->features_.recv_bundle =
      !fallbacks.recv_bundle && (p.features & uring_ext::kFeatRecvSendBundle) != 0;
  return u;
}

Uring::~Uring() {
  if (inited_) io_uring_queue_exit(&ring_);
}

io_uring_sqe* Uring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

int Uring::submit() { return io_uring_submit(&ring_); }

int Uring::submit_and_wait(std::chrono::microseconds timeout, unsigned wait_nr,
                           std::chrono::microseconds min_wait) {
  if (min_wait.count() > 0 && features_.min_wait) {
    return uring_ext::submit_and_wait_min(ring_, features_.registered_fd, timeout, wait_nr,
                                          min_wait);
  }
  __kernel_timespec ts{};
  ts.tv_sec = timeout.count() / 1'000'000;
  ts.tv_nsec = (timeout.count() % 1'000'000) * 1000;
  io_uring_cqe* cqe = nullptr;
  return io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, &ts, nullptr);
}

}  // namespace shardring::engine
