// engine/uring_ext.h: the io_uring interfaces newer than Debian 12's kernel
// headers and liburing 2.3, defined here from the kernel's ABI: receive
// bundles (Linux 6.10) and the wait's minimum time (Linux 6.12). Both are
// probed at set-up (io_uring_params::features) and used only where the
// kernel reports them. Header-only: bench/peers/floor_client uses it too.
#pragma once

#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>

namespace shardring::engine::uring_ext {

// io_uring_params::features bits.
inline constexpr unsigned kFeatRecvSendBundle = 1U << 14;  // IORING_FEAT_RECVSEND_BUNDLE, 6.10
inline constexpr unsigned kFeatMinTimeout = 1U << 15;      // IORING_FEAT_MIN_TIMEOUT, 6.12
// sqe->ioprio flag of a recv: one completion carries as many consecutive
// provided buffers as the socket has data for (IORING_RECVSEND_BUNDLE).
inline constexpr uint16_t kRecvSendBundle = 1U << 4;

#ifdef IORING_FEAT_MIN_TIMEOUT
static_assert(IORING_FEAT_MIN_TIMEOUT == kFeatMinTimeout);
#endif
#ifdef IORING_FEAT_RECVSEND_BUNDLE
static_assert(IORING_FEAT_RECVSEND_BUNDLE == kFeatRecvSendBundle);
#endif
#ifdef IORING_RECVSEND_BUNDLE
static_assert(IORING_RECVSEND_BUNDLE == kRecvSendBundle);
#endif

// struct io_uring_getevents_arg as of 6.12: `pad` became min_wait_usec.
struct GeteventsArg {
  uint64_t sigmask = 0;
  uint32_t sigmask_sz = 0;
  uint32_t min_wait_usec = 0;
  uint64_t ts = 0;
};
static_assert(sizeof(GeteventsArg) == sizeof(io_uring_getevents_arg));

// Publishes the queued submissions to the kernel's submission queue (what
// liburing does before it enters) and returns how many are pending there.
inline unsigned flush_sq(io_uring& ring) {
  io_uring_sq& sq = ring.sq;
  const unsigned tail = sq.sqe_tail;
  if (sq.sqe_head != tail) {
    sq.sqe_head = tail;
    io_uring_smp_store_release(sq.ktail, tail);
  }
  return tail - io_uring_smp_load_acquire(sq.khead);
}

// Submits what is queued and waits for `wait_nr` completions, `timeout`
// at most; once `min_wait` has passed, any completion at all ends the wait
// (io_uring_submit_and_wait_min_timeout of liburing 2.8). The kernel must
// have kFeatMinTimeout. `registered` when io_uring_register_ring_fd
// succeeded. Returns what io_uring_enter returns, or -errno.
inline int submit_and_wait_min(io_uring& ring, bool registered, std::chrono::microseconds timeout,
                               unsigned wait_nr, std::chrono::microseconds min_wait) {
  __kernel_timespec ts{};
  ts.tv_sec = timeout.count() / 1'000'000;
  ts.tv_nsec = (timeout.count() % 1'000'000) * 1000;
  GeteventsArg arg;
  arg.min_wait_usec = static_cast<uint32_t>(min_wait.count());
  arg.ts = reinterpret_cast<uint64_t>(&ts);
  const unsigned submit = flush_sq(ring);
  unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
  if (registered) flags |= IORING_ENTER_REGISTERED_RING;
  const long r = syscall(__NR_io_uring_enter, registered ? ring.enter_ring_fd : ring.ring_fd,
                         submit, wait_nr, flags, &arg, sizeof(arg));
  return r < 0 ? -errno : static_cast<int>(r);
}

}  // namespace shardring::engine::uring_ext
