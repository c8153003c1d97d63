// tests/engine/uring_test.cc: engine::Uring's set-up: each io_uring feature
// it probes is used where the kernel has it, and each forced fallback
// (Config::uring_fallbacks, --uring-fallback) sets up a ring without it that
// still carries requests.
#include "engine/uring.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/uring_ext.h"

namespace shardring::engine {
namespace {

// The kernel's major.minor as one number: 6.1 -> 601.
int KernelVersion() {
  utsname u{};
  uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  return major * 100 + minor;
}

// A NOP through the ring: submitted, completed, reaped with its tag.
void ExpectCarriesRequests(Uring& ring) {
  io_uring_sqe* sqe = ring.sqe();
  io_uring_prep_nop(sqe);
  const uint64_t tag = OpTag{Op::kWake, 42, 7}.pack();
  io_uring_sqe_set_data64(sqe, tag);
  ASSERT_GE(ring.submit_and_wait(std::chrono::microseconds(100'000), 1), 0);
  uint64_t seen = 0;
  EXPECT_EQ(ring.reap([&](const io_uring_cqe& cqe) { seen = cqe.user_data; }), 1u);
  EXPECT_EQ(seen, tag);
}

TEST(Uring, UsesWhatTheKernelHas) {
  auto ring = Uring::create(64);
  ASSERT_TRUE(ring.ok()) << ring.status();
  const UringFeatures& f = (*ring)->features();
  const int v = KernelVersion();
  EXPECT_EQ(f.single_issuer, v >= 600) << f.kernel;
  EXPECT_EQ(f.defer_taskrun, v >= 601) << f.kernel;
  // COOP_TASKRUN only where DEFER_TASKRUN is not used.
  EXPECT_EQ(f.coop_taskrun, v >= 519 && !f.defer_taskrun) << f.kernel;
  EXPECT_EQ(f.registered_fd, v >= 518) << f.kernel;
  EXPECT_EQ(f.recv_bundle, v >= 610) << f.kernel;
  EXPECT_EQ(f.min_wait, v >= 612) << f.kernel;
  ExpectCarriesRequests(**ring);
}

TEST(Uring, EachForcedFallbackSetsUpWithoutIt) {
  const int v = KernelVersion();
  struct Case {
    const char* list;
    // expected where the kernel has all
    bool single_issuer, defer_taskrun, coop_taskrun, registered_fd, min_wait, recv_bundle;
  };
  const Case cases[] = {
      {"defer_taskrun", true, false, true, true, true, true},
      {"defer_taskrun,coop_taskrun", true, false, false, true, true, true},
      {"single_issuer", false, false, true, true, true, true},
      {"coop_taskrun", true, true, false, true, true, true},
      {"registered_fd", true, true, false, false, true, true},
      {"min_wait", true, true, false, true, false, true},
      {"recv_bundle", true, true, false, true, true, false},
      {"all", false, false, false, false, false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.list);
    auto fb = parse_uring_fallbacks(c.list);
    ASSERT_TRUE(fb.ok()) << fb.status();
    auto ring = Uring::create(64, *fb);
    ASSERT_TRUE(ring.ok()) << ring.status();
    const UringFeatures& f = (*ring)->features();
    // A feature forced off is off on any kernel; the rest as the kernel has them.
    EXPECT_EQ(f.single_issuer, c.single_issuer && v >= 600);
    EXPECT_EQ(f.defer_taskrun, c.defer_taskrun && v >= 601);
    if (v >= 601) {
      EXPECT_EQ(f.coop_taskrun, c.coop_taskrun);
    }
    EXPECT_EQ(f.registered_fd, c.registered_fd && v >= 518);
    EXPECT_EQ(f.min_wait, c.min_wait && v >= 612);
    EXPECT_EQ(f.recv_bundle, c.recv_bundle && v >= 610);
    ExpectCarriesRequests(**ring);
  }
}

// A coalescing wait (64 completions wanted) with the wait's minimum time:
// nothing comes within the minimum, so it sleeps on and ends at the first
// completion (a 20 ms timeout request), neither empty at the minimum nor at
// the 5 s limit. Without the feature the engine never passes a minimum.
TEST(Uring, MinWaitSleepsOnUntilTheFirstCompletion) {
  for (const bool registered_fd : {true, false}) {
    SCOPED_TRACE(registered_fd ? "registered ring fd" : "ring fd");
    UringFallbacks fb;
    fb.registered_fd = !registered_fd;
    auto ring = Uring::create(64, fb);
    ASSERT_TRUE(ring.ok()) << ring.status();
    if (!(*ring)->features().min_wait) GTEST_SKIP() << "kernel " << (*ring)->features().kernel;
    __kernel_timespec in{};
    in.tv_nsec = 20'000'000;
    io_uring_sqe* sqe = (*ring)->sqe();
    io_uring_prep_timeout(sqe, &in, 0, 0);
    io_uring_sqe_set_data64(sqe, OpTag{Op::kWake, 1, 1}.pack());
    const auto start = std::chrono::steady_clock::now();
    const int r =
        (*ring)->submit_and_wait(std::chrono::seconds(5), 64, std::chrono::milliseconds(1));
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r, 1);  // the timeout request, submitted
    EXPECT_EQ((*ring)->reap([](const io_uring_cqe& cqe) { EXPECT_EQ(cqe.res, -ETIME); }), 1u);
    EXPECT_GE(waited, std::chrono::milliseconds(15));
    EXPECT_LT(waited, std::chrono::seconds(2));
  }
}

// A loopback TCP connection: {client fd, server fd}.
std::pair<int, int> TcpPair() {
  const int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  EXPECT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(listen(l, 1), 0);
  EXPECT_EQ(getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const int c = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const int s = accept(l, nullptr, nullptr);
  close(l);
  return {c, s};
}

// Receives everything `fd` has (at least `want` bytes) with one multishot
// recv from `bufs`, each completion read as the engine reads it: whole
// buffers from the one it names, in the ring's order. Returns the bytes;
// `most` gets the most buffers one completion carried. Recycles as it goes.
std::string ReceiveAll(Uring& ring, BufferRing& bufs, int fd, size_t want, uint32_t& most) {
  io_uring_sqe* sqe = ring.sqe();
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  if (ring.features().recv_bundle) sqe->ioprio |= uring_ext::kRecvSendBundle;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bufs.group();
  io_uring_sqe_set_data64(sqe, OpTag{Op::kRecv, 0, 0}.pack());
  std::string got;
  while (got.size() < want) {
    if (ring.submit_and_wait(std::chrono::seconds(2), 1) < 0) break;
    unsigned n = ring.reap([&](const io_uring_cqe& cqe) {
      ASSERT_GT(cqe.res, 0);
      ASSERT_TRUE(cqe.flags & IORING_CQE_F_BUFFER);
      auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      uint32_t count = 0;
      for (auto left = static_cast<uint32_t>(cqe.res); left > 0; ++count) {
        const uint32_t len = std::min(left, bufs.size());
        got.append(reinterpret_cast<const char*>(bufs.data(bid)), len);
        left -= len;
        const uint16_t next = bufs.next(bid);
        bufs.recycle(bid);
        bid = next;
      }
      most = std::max(most, count);
    });
    bufs.flush();
    if (n == 0) break;
  }
  io_uring_sqe* cancel = ring.sqe();
  io_uring_prep_cancel64(cancel, OpTag{Op::kRecv, 0, 0}.pack(), 0);
  io_uring_sqe_set_data64(cancel, OpTag{Op::kCancel, 0, 0}.pack());
  ring.submit_and_wait(std::chrono::milliseconds(100), 2);
  ring.reap([&](const io_uring_cqe& cqe) {
    if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
      bufs.recycle(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
    }
  });
  bufs.flush();
  return got;
}

// Receive bundles: a completion names its first buffer only; the bytes run
// on through the next buffers in the ring's order, which BufferRing::next
// follows even after buffers came back out of order. With the fallback
// each completion carries one buffer and the same reading holds.
TEST(Uring, BundlesFillBuffersInTheRingsOrder) {
  for (const bool bundle : {true, false}) {
    SCOPED_TRACE(bundle ? "recv_bundle" : "fallback");
    UringFallbacks fb;
    fb.recv_bundle = !bundle;
    auto ring = Uring::create(64, fb);
    ASSERT_TRUE(ring.ok()) << ring.status();
    BufferRing bufs;
    ASSERT_TRUE(bufs.init((*ring)->raw(), 3, 8, 1024, 64).ok());
    auto [c, s] = TcpPair();
    // The first round takes buffers 0 to 2 and gives them back 2, 0, 1
    // (as a receive handed on and a held one would): the ring is now
    // 3 4 5 6 7 2 0 1, not in id order.
    std::string first(3000, 'a');
    ASSERT_EQ(write(c, first.data(), first.size()), 3000);
    uint32_t most = 0;
    ASSERT_EQ(ReceiveAll(**ring, bufs, s, first.size(), most), first);
    std::string pattern(7000, '\0');
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<char>('A' + i % 53);
    ASSERT_EQ(write(c, pattern.data(), pattern.size()), 7000);
    most = 0;
    EXPECT_EQ(ReceiveAll(**ring, bufs, s, pattern.size(), most), pattern);
    if ((*ring)->features().recv_bundle) {
      EXPECT_GT(most, 1u);
    } else {
      EXPECT_EQ(most, 1u);
    }
    close(c);
    close(s);
  }
}

TEST(Uring, FallbackListsAreChecked) {
  auto none = parse_uring_fallbacks("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->single_issuer || none->defer_taskrun || none->coop_taskrun ||
               none->registered_fd || none->min_wait || none->recv_bundle);
  auto all = parse_uring_fallbacks("all");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->single_issuer && all->defer_taskrun && all->coop_taskrun && all->registered_fd &&
              all->min_wait && all->recv_bundle);
  auto bad = parse_uring_fallbacks("defer_taskrun,sqpoll");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'sqpoll'"), std::string::npos);
  UringFeatures f;
  EXPECT_EQ(f.to_string(), "none");
  f.defer_taskrun = f.registered_fd = true;
  EXPECT_EQ(f.to_string(), "defer_taskrun,registered_fd");
}

}  // namespace
}  // namespace shardring::engine
