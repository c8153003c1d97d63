// tests/gateway/identify_buckets_test.cc: the identify rule's bucket
// arithmetic (gateway/identify_buckets.h), and how it judges an IDENTIFY
// read later than it arrived.
#include "gateway/identify_buckets.h"

#include <gtest/gtest.h>

namespace shardring::gateway {
namespace {

using std::chrono::milliseconds;
using Clock = IdentifyBuckets::Clock;

const Clock::time_point T0 = Clock::time_point(std::chrono::seconds(1000));

TEST(IdentifyBuckets, ShardsFallIntoBucketsByModulo) {
  IdentifyBuckets b(16, milliseconds(5000));
  EXPECT_EQ(b.size(), 16u);
  EXPECT_EQ(b.bucket_of(0), 0u);
  EXPECT_EQ(b.bucket_of(17), 1u);
  EXPECT_EQ(IdentifyBuckets(0, milliseconds(5000)).size(), 1u);  // at least one
}

TEST(IdentifyBuckets, OnePerBucketPerWindowReadOnTime) {
  IdentifyBuckets b(2, milliseconds(40));
  EXPECT_TRUE(b.try_take_for(0, T0, T0));
  EXPECT_TRUE(b.try_take_for(1, T0, T0));  // another bucket
  EXPECT_FALSE(b.try_take_for(2, T0 + milliseconds(39), T0 + milliseconds(39)));
  EXPECT_EQ(b.next_allowed(0), T0 + milliseconds(40));  // a refusal spends nothing
  EXPECT_TRUE(b.try_take_for(2, T0 + milliseconds(40), T0 + milliseconds(40)));
}

// Two IDENTIFYs of one bucket sent 45 ms apart with a 40 ms window, both
// read in one pass after the reader was held up 60 ms: the second is read
// 0.01 ms after the first, yet it kept the window and is admitted.
TEST(IdentifyBuckets, TwoReadTogetherAfterAStallAreJudgedByWhenTheyCouldHaveArrived) {
  IdentifyBuckets b(1, milliseconds(40));
  const Clock::time_point read = T0 + milliseconds(60);
  EXPECT_TRUE(b.try_take_for(0, read, T0));
  EXPECT_EQ(b.next_allowed(0), T0 + milliseconds(40));  // spent from the earliest arrival
  EXPECT_TRUE(b.try_take_for(1, read + std::chrono::microseconds(10), T0));
  // Read on time, the same pair is refused: 0.01 ms apart is too fast.
  IdentifyBuckets on_time(1, milliseconds(40));
  EXPECT_TRUE(on_time.try_take_for(0, read, read));
  const Clock::time_point next = read + std::chrono::microseconds(10);
  EXPECT_FALSE(on_time.try_take_for(1, next, next));
}

// An identify that did not keep the window is refused however late it was
// read, unless the read is late by more than it was early.
TEST(IdentifyBuckets, TooFastIsRefusedUnlessTheReadCouldHideIt) {
  IdentifyBuckets b(1, milliseconds(40));
  EXPECT_TRUE(b.try_take_for(0, T0, T0));
  // Sent 20 ms after, read 5 ms after it came: refused (15 ms early).
  EXPECT_FALSE(b.try_take_for(1, T0 + milliseconds(25), T0 + milliseconds(20)));
  // A bound later than the read itself is taken as the read.
  EXPECT_TRUE(b.try_take_for(1, T0 + milliseconds(40), T0 + milliseconds(90)));
  EXPECT_EQ(b.next_allowed(0), T0 + milliseconds(80));
}

}  // namespace
}  // namespace shardring::gateway
