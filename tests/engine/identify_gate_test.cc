#include "engine/identify_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace shardring::engine {
namespace {
using Clock = IdentifyGate::Clock;
using std::chrono::milliseconds;

TEST(IdentifyGate, AdmitsOnePerBucketPerWindow) {
  LocalIdentifyGate gate(/*max_concurrency=*/1, milliseconds(5000));
  const Clock::time_point t0{};
  Clock::time_point retry;
  EXPECT_TRUE(gate.try_acquire(0, t0 + milliseconds(1), &retry));
  EXPECT_FALSE(gate.try_acquire(1, t0 + milliseconds(2), &retry));
  EXPECT_EQ(retry, t0 + milliseconds(5126));  // 1 ms + the window + 125 ms of margin
  EXPECT_FALSE(gate.try_acquire(1, t0 + milliseconds(5125), &retry));
  EXPECT_TRUE(gate.try_acquire(1, t0 + milliseconds(5126), &retry));
}

TEST(IdentifyMargin, IsAFortiethOfTheWindowButNeverBelowTheMinimum) {
  EXPECT_EQ(identify_margin(milliseconds(5000)), milliseconds(125));
  EXPECT_EQ(identify_margin(milliseconds(240)), milliseconds(6));
  // 200 / 40 is the minimum itself; below it the minimum holds.
  EXPECT_EQ(identify_margin(milliseconds(40 * kMinIdentifyMargin.count())), kMinIdentifyMargin);
  EXPECT_EQ(identify_margin(milliseconds(40 * kMinIdentifyMargin.count() - 40)),
            kMinIdentifyMargin);
  EXPECT_EQ(identify_margin(milliseconds(20)), kMinIdentifyMargin);
  EXPECT_EQ(identify_margin(milliseconds(1)), kMinIdentifyMargin);
}

// The gate leaves window + margin between two grants of one bucket: one
// millisecond short of it is refused.
TEST(IdentifyGate, LeavesTheMarginAfterTheWindow) {
  for (const milliseconds window : {milliseconds(5000), milliseconds(20)}) {
    LocalIdentifyGate gate(1, window);
    const milliseconds spacing = window + identify_margin(window);
    EXPECT_EQ(gate.spacing(), spacing);
    const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
    Clock::time_point retry;
    ASSERT_TRUE(gate.try_acquire(0, t0, &retry));
    EXPECT_FALSE(gate.try_acquire(1, t0 + window, &retry)) << window.count();
    EXPECT_FALSE(gate.try_acquire(1, t0 + spacing - milliseconds(1), &retry)) << window.count();
    EXPECT_EQ(retry, t0 + spacing);
    EXPECT_TRUE(gate.try_acquire(1, t0 + spacing, &retry)) << window.count();
  }
}

TEST(IdentifyGate, BucketsAreShardIdModuloMaxConcurrency) {
  LocalIdentifyGate gate(/*max_concurrency=*/4, milliseconds(5000));
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  for (uint32_t shard = 0; shard < 4; ++shard) {
    EXPECT_TRUE(gate.try_acquire(shard, t0, &retry)) << shard;
  }
  EXPECT_FALSE(gate.try_acquire(4, t0, &retry));  // bucket 0 again
  EXPECT_FALSE(gate.try_acquire(7, t0, &retry));  // bucket 3 again
  EXPECT_EQ(gate.granted(), 4u);
}

TEST(IdentifyGate, GrantsTheLowestWaitingShardFirst) {
  LocalIdentifyGate gate(1, milliseconds(100));
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  ASSERT_TRUE(gate.try_acquire(0, t0, &retry));
  EXPECT_FALSE(gate.try_acquire(5, t0, &retry));
  EXPECT_FALSE(gate.try_acquire(2, t0, &retry));
  const auto open = t0 + gate.spacing();
  EXPECT_FALSE(gate.try_acquire(5, open, &retry));  // 2 is first in line
  EXPECT_TRUE(gate.try_acquire(2, open, &retry));
  EXPECT_TRUE(gate.try_acquire(5, open + gate.spacing(), &retry));
}

TEST(IdentifyGate, AWithdrawnShardNoLongerBlocksTheLine) {
  LocalIdentifyGate gate(1, milliseconds(100));
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  ASSERT_TRUE(gate.try_acquire(0, t0, &retry));
  EXPECT_FALSE(gate.try_acquire(1, t0, &retry));
  gate.withdraw(1);
  EXPECT_TRUE(gate.try_acquire(3, t0 + gate.spacing(), &retry));
}

TEST(IdentifyGate, NeverAdmitsTwoInOneWindowAcrossThreads) {
  LocalIdentifyGate gate(2, milliseconds(1000));
  std::atomic<int> granted{0};
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Clock::time_point retry;
      for (uint32_t shard = static_cast<uint32_t>(t); shard < 64; shard += 4) {
        if (gate.try_acquire(shard, t0, &retry)) ++granted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(granted.load(), 2);  // one per bucket at t0
}

}  // namespace
}  // namespace shardring::engine
