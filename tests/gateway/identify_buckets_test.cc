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

TEST(ArrivalBound, TrailsTheLoopByOneFullWait) {
  ArrivalBound a(T0);
  EXPECT_EQ(a.bound(), T0);
  a.on_wait(T0 + milliseconds(1), true);
  EXPECT_EQ(a.bound(), T0);  // posted in the first wait: came after the start
  a.on_wait(T0 + milliseconds(2), true);
  EXPECT_EQ(a.bound(), T0 + milliseconds(1));
  a.on_wait(T0 + milliseconds(3), true);
  EXPECT_EQ(a.bound(), T0 + milliseconds(2));
}

// A wait a signal cut short, or a bare submit, may not have looked for what
// came: what the next wait posts may have come before it began.
TEST(ArrivalBound, AWaitCutShortOrABareSubmitLeavesIt) {
  ArrivalBound a(T0);
  a.on_wait(T0 + milliseconds(1), true);
  a.on_wait(T0 + milliseconds(2), false);
  EXPECT_EQ(a.bound(), T0 + milliseconds(1));
  a.on_wait(T0 + milliseconds(3), true);
  EXPECT_EQ(a.bound(), T0 + milliseconds(1));
  a.on_wait(T0 + milliseconds(4), true);
  EXPECT_EQ(a.bound(), T0 + milliseconds(3));
}

// One bucket, a 300 ms window. A wait that began at T0 posts shard 0's
// IDENTIFY, and the thread is stopped after the kernel's return, before it
// reads the clock, until T0 + 1100 ms. Shards 1 and 2 sent theirs at
// T0 + 345 and T0 + 690; the next wait posts both at once. All three kept the
// window and are admitted. Timed from the first wait's return as the thread
// saw it (T0 + 1100), shard 2 would look 0.01 ms after shard 1 and be refused.
TEST(ArrivalBound, IdentifiesPostedAcrossAStopAfterAWaitAreAdmitted) {
  IdentifyBuckets b(1, milliseconds(300));
  ArrivalBound a(T0 - milliseconds(5));
  a.on_wait(T0, true);  // returned at T0 + 0.1 ms; the clock read says T0 + 1100
  const Clock::time_point resumed = T0 + milliseconds(1100);
  EXPECT_TRUE(b.try_take_for(0, resumed, a.bound()));
  a.on_wait(resumed, true);
  EXPECT_LE(a.bound(), T0 + milliseconds(345));
  EXPECT_TRUE(b.try_take_for(1, resumed, a.bound()));
  EXPECT_TRUE(b.try_take_for(2, resumed + std::chrono::microseconds(10), a.bound()));

  IdentifyBuckets from_return(1, milliseconds(300));
  EXPECT_TRUE(from_return.try_take_for(0, resumed, T0 - milliseconds(5)));
  EXPECT_TRUE(from_return.try_take_for(1, resumed, resumed));
  EXPECT_FALSE(from_return.try_take_for(2, resumed + std::chrono::microseconds(10), resumed));
}

// On a running loop whose waits last 7 ms the bound trails by two waits at
// most: an IDENTIFY early by more than that is still refused.
TEST(ArrivalBound, TooFastByMoreThanTwoWaitsIsStillRefused) {
  IdentifyBuckets b(1, milliseconds(300));
  ArrivalBound a(T0);
  Clock::time_point began = T0;
  auto wait = [&] {
    a.on_wait(began, true);
    began += milliseconds(7);
    return began;  // when it returned, and the next one begins
  };
  // Shard 0's arrives at T0 + 10 ms: posted by the wait that began at T0 + 7.
  wait();
  Clock::time_point read = wait();
  EXPECT_TRUE(b.try_take_for(0, read, a.bound()));
  // Shard 1's arrives 280 ms after it (20 ms early), at T0 + 290: posted by
  // the wait that began at T0 + 287.
  while (began < T0 + milliseconds(287)) read = wait();
  read = wait();
  EXPECT_GE(read, T0 + milliseconds(290));
  EXPECT_FALSE(b.try_take_for(1, read, a.bound()));
}

}  // namespace
}  // namespace shardring::gateway
