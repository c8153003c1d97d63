// Tests for base/fifo.h: order, storage given back, bounded under a backlog.
#include "base/fifo.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shardring::base {
namespace {

TEST(Fifo, AnEmptyQueueHoldsNoStorage) {
  Fifo<std::string> q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.capacity(), 0u);
}

TEST(Fifo, EntriesLeaveInTheOrderTheyCameThroughInterleavedPushesAndPops) {
  Fifo<std::unique_ptr<int>> q;  // move-only: pop() moves, never copies
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 500; ++round) {
    for (int k = 0; k < round % 7 + 1; ++k) q.push(std::make_unique<int>(next_in++));
    for (int k = 0; k < round % 5 + 1 && !q.empty(); ++k) {
      ASSERT_EQ(*q.front(), next_out);
      ASSERT_EQ(*q.pop(), next_out++);
    }
    ASSERT_EQ(q.size(), static_cast<size_t>(next_in - next_out));
  }
  while (!q.empty()) ASSERT_EQ(*q.pop(), next_out++);
  EXPECT_EQ(next_out, next_in);
}

TEST(Fifo, DrainingABurstGivesItsStorageBackAndASmallOneKeepsIt) {
  Fifo<int> q;
  for (size_t i = 0; i < Fifo<int>::kKeptCapacity + 1; ++i) q.push(static_cast<int>(i));
  ASSERT_GT(q.capacity(), Fifo<int>::kKeptCapacity);
  while (!q.empty()) q.pop();
  EXPECT_EQ(q.capacity(), 0u);

  for (int i = 0; i < 3; ++i) q.push(i);
  const size_t small = q.capacity();
  ASSERT_LE(small, Fifo<int>::kKeptCapacity);
  while (!q.empty()) q.pop();
  EXPECT_EQ(q.capacity(), small);  // no allocation on the next push
}

TEST(Fifo, AStandingBacklogKeepsStorageWithinTwiceWhatWaitsPlusTheCompactionStep) {
  Fifo<int> q;
  for (int i = 0; i < 100; ++i) q.push(i);
  int next_out = 0;
  for (int i = 100; i < 100'000; ++i) {  // one in, one out: never drains
    q.push(i);
    ASSERT_EQ(q.pop(), next_out++);
    ASSERT_EQ(q.size(), 100u);
    // Popped entries waiting to be erased are fewer than kCompactAfter or
    // than what waits; the vector's own growth at most doubles that.
    ASSERT_LE(q.capacity(), 2 * (2 * q.size() + Fifo<int>::kCompactAfter));
  }
}

TEST(Fifo, WaitingListsWhatIsLeftOldestFirstAndReleaseDropsIt) {
  Fifo<int> q;
  for (int i = 0; i < 5; ++i) q.push(i);
  q.pop();
  q.pop();
  std::vector<int> left(q.waiting().begin(), q.waiting().end());
  EXPECT_EQ(left, (std::vector<int>{2, 3, 4}));
  q.release();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 0u);
  q.push(7);
  EXPECT_EQ(q.pop(), 7);
}

}  // namespace
}  // namespace shardring::base
