// tests/gateway/send_window_test.cc: gateway::SendWindow keeps its times
// oldest first across the move from the object to the heap and back, and
// holds no heap while a connection sends no more than kInlineSendTimes in
// a window (what an idle shard sends).
#include "gateway/send_window.h"

#include <gtest/gtest.h>

#include <deque>

#include "gateway/session.h"

namespace shardring::gateway {
namespace {

TEST(SendWindow, KeepsTimesOldestFirstThroughSpillAndWrap) {
  SendWindow<120, 6> w;
  std::deque<uint32_t> model;
  uint32_t next = 1000;
  auto check = [&] {
    ASSERT_EQ(w.size(), static_cast<int>(model.size()));
    for (int k = 0; k < w.size(); ++k) ASSERT_EQ(w.at(k), model[k]) << k;
  };
  // Wrap the inline ring first, so the spill copies from a head not at 0.
  for (int i = 0; i < 4; ++i) w.push(next), model.push_back(next++);
  for (int i = 0; i < 3; ++i) w.pop(), model.pop_front();
  for (int i = 0; i < 5; ++i) w.push(next), model.push_back(next++);
  EXPECT_FALSE(w.spilled());  // 6 times: still in the object
  check();
  w.push(next), model.push_back(next++);  // the 7th spills
  EXPECT_TRUE(w.spilled());
  check();
  // Fill to the limit, then wrap the heap ring.
  while (w.size() < 120) w.push(next), model.push_back(next++);
  check();
  for (int round = 0; round < 300; ++round) {
    w.pop(), model.pop_front();
    w.push(next), model.push_back(next++);
  }
  check();
  // Empty again: the heap goes back.
  while (w.size() > 0) w.pop(), model.pop_front();
  EXPECT_FALSE(w.spilled());
  w.push(7);
  EXPECT_EQ(w.at(0), 7u);
  // Copies are deep and moves leave an empty window behind, spilled or not.
  for (int i = 0; i < 10; ++i) w.push(8 + i);
  SendWindow<120, 6> copy = w;
  EXPECT_TRUE(copy.spilled());
  EXPECT_EQ(copy.size(), 11);
  EXPECT_EQ(copy.at(10), 17u);
  SendWindow<120, 6> moved = std::move(w);
  EXPECT_EQ(moved.size(), 11);
  EXPECT_EQ(moved.at(0), 7u);
  EXPECT_EQ(w.size(), 0);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_FALSE(w.spilled());
  w = copy;
  EXPECT_EQ(w.at(5), 12u);
  w.clear();
  EXPECT_EQ(w.size(), 0);
}

// An idle shard's session (IDENTIFY, then heartbeats) never spills, and the
// window costs the session tens of bytes, not the 480 of a full array.
TEST(SendWindow, IsSmallInsideTheSession) {
  EXPECT_LE(sizeof(SendWindow<kMaxSendsPerWindow, kInlineSendTimes>), 40u);
  // In 60 s an idle shard sends its IDENTIFY and at most two heartbeats at
  // Discord's 41.25 s interval, however the first one is jittered.
  EXPECT_GE(kInlineSendTimes, 3);
}

}  // namespace
}  // namespace shardring::gateway
