// tests/engine/uring_test.cc: engine::Uring's set-up: each io_uring feature
// it probes is used where the kernel has it, and each forced fallback
// (Config::uring_fallbacks, --uring-fallback) sets up a ring without it that
// still carries requests.
#include "engine/uring.h"

#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <cstdio>

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
  ExpectCarriesRequests(**ring);
}

TEST(Uring, EachForcedFallbackSetsUpWithoutIt) {
  const int v = KernelVersion();
  struct Case {
    const char* list;
    bool single_issuer, defer_taskrun, coop_taskrun,
        registered_fd;  // expected where the kernel has all
  };
  const Case cases[] = {
      {"defer_taskrun", true, false, true, true},
      {"defer_taskrun,coop_taskrun", true, false, false, true},
      {"single_issuer", false, false, true, true},
      {"coop_taskrun", true, true, false, true},
      {"registered_fd", true, true, false, false},
      {"all", false, false, false, false},
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
    ExpectCarriesRequests(**ring);
  }
}

TEST(Uring, FallbackListsAreChecked) {
  auto none = parse_uring_fallbacks("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->single_issuer || none->defer_taskrun || none->coop_taskrun ||
               none->registered_fd);
  auto all = parse_uring_fallbacks("all");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->single_issuer && all->defer_taskrun && all->coop_taskrun && all->registered_fd);
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
