#include "engine/identify_gate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <queue>
#include <thread>
#include <tuple>
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

TEST(IdentifyGate, ShardsFurtherBackInLineComeBackAtTheirTurn) {
  LocalIdentifyGate gate(1, milliseconds(100));
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  const auto open = t0 + gate.spacing();
  Clock::time_point retry;
  ASSERT_TRUE(gate.try_acquire(0, t0, &retry));
  for (uint32_t shard = 1; shard <= 30; ++shard) {
    ASSERT_FALSE(gate.try_acquire(shard, t0, &retry));
    // The first three in line when the window opens, then a window each
    // up to the lookahead.
    const int64_t turns = std::clamp<int64_t>(int64_t{shard} - 3, 0, kIdentifyLookahead);
    EXPECT_EQ(retry, open + gate.spacing() * turns) << shard;
  }
  // Second in line at an open window: back in a millisecond, as the first
  // is about to take it.
  EXPECT_FALSE(gate.try_acquire(2, open, &retry));
  EXPECT_EQ(retry, open + milliseconds(1));
}

// Shards asking as the core threads do: each asks, and asks again at the
// time it is told, until granted; `withdraw_at` takes shards out of line
// (their connection dropped). Events at one instant run in the order they
// were scheduled.
struct ColdStart {
  std::map<uint32_t, Clock::time_point> granted_at;
  std::vector<uint32_t> grant_order;
  size_t asks = 0;
};

ColdStart RunColdStart(LocalIdentifyGate& gate, uint32_t shards, Clock::time_point t0,
                       const std::map<uint32_t, Clock::time_point>& withdraw_at = {}) {
  ColdStart out;
  using Ask =
      std::tuple<Clock::time_point, uint64_t, uint32_t, bool>;  // when, order, shard, withdraw
  std::priority_queue<Ask, std::vector<Ask>, std::greater<>> q;
  uint64_t order = 0;
  for (uint32_t s = 0; s < shards; ++s) q.emplace(t0, order++, s, false);
  for (auto [s, t] : withdraw_at) q.emplace(t, order++, s, true);
  std::map<uint32_t, bool> gone;
  while (!q.empty()) {
    auto [t, o, shard, withdraw] = q.top();
    q.pop();
    if (withdraw) {
      if (!out.granted_at.contains(shard)) gate.withdraw(shard);
      gone[shard] = true;
      continue;
    }
    if (gone[shard] || out.granted_at.contains(shard)) continue;
    ++out.asks;
    Clock::time_point retry;
    if (gate.try_acquire(shard, t, &retry)) {
      out.granted_at[shard] = t;
      out.grant_order.push_back(shard);
    } else {
      EXPECT_GT(retry, t);
      q.emplace(retry, order++, shard, false);
    }
  }
  return out;
}

// Windows of the bucket left unused between t0 and the last grant.
int64_t UnusedWindows(const ColdStart& run, Clock::time_point t0, Clock::duration spacing) {
  Clock::time_point last = t0;
  for (const auto& [shard, t] : run.granted_at) last = std::max(last, t);
  return (last - t0) / spacing + 1 - static_cast<int64_t>(run.granted_at.size());
}

TEST(IdentifyGate, AColdStartUsesEveryWindowWithAFewAsksPerShard) {
  constexpr uint32_t kShards = 400;
  constexpr uint32_t kBuckets = 4;
  LocalIdentifyGate gate(kBuckets, milliseconds(100));
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  const ColdStart run = RunColdStart(gate, kShards, t0);
  ASSERT_EQ(run.granted_at.size(), kShards);
  for (uint32_t s = 0; s < kShards; ++s) {
    // Shard s is the (s / kBuckets)-th of its bucket: granted at that opening.
    EXPECT_EQ(run.granted_at.at(s), t0 + gate.spacing() * (s / kBuckets)) << s;
  }
  // Five asks per shard, and one per kIdentifyLookahead windows waited
  // (a bucket's shards wait per_bucket^2 / 2 windows in all): every
  // waiting shard asking at every opening would be 20,000 asks.
  const uint32_t per_bucket = kShards / kBuckets;
  EXPECT_LE(run.asks, 5 * kShards + kBuckets * per_bucket * per_bucket / (2 * kIdentifyLookahead));
}

TEST(IdentifyGate, ShardsThatWithdrawCostTheLineNoWindow) {
  constexpr uint32_t kShards = 100;
  LocalIdentifyGate gate(1, milliseconds(100));
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  const auto sp = gate.spacing();
  // Withdrawn long before the turn, just before it (shard 20 would be the
  // 20th granted, at t0 + 19 spacings), and two at once while second and
  // third in line (60 and 61 would be the 59th and 60th, at t0 + 58 and 59
  // spacings).
  const std::map<uint32_t, Clock::time_point> withdraw_at = {{5, t0 + milliseconds(2)},
                                                             {20, t0 + sp * 19 - milliseconds(2)},
                                                             {60, t0 + sp * 57 - milliseconds(2)},
                                                             {61, t0 + sp * 57 - milliseconds(1)}};
  const ColdStart run = RunColdStart(gate, kShards, t0, withdraw_at);
  ASSERT_EQ(run.grant_order.size(), kShards - withdraw_at.size());
  for (size_t i = 0; i < run.grant_order.size(); ++i) {
    const uint32_t shard = run.grant_order[i];
    EXPECT_FALSE(withdraw_at.contains(shard));
    if (i > 0) {
      EXPECT_LT(run.grant_order[i - 1], shard);
    }
    // One grant at each opening: no window left unused.
    EXPECT_EQ(run.granted_at.at(shard), t0 + sp * static_cast<int64_t>(i)) << shard;
  }
  EXPECT_EQ(UnusedWindows(run, t0, sp), 0);
}

TEST(IdentifyGate, KShardsWithdrawnAtOnceCostKMinusTwoWindowsAtMost) {
  constexpr uint32_t kShards = 100;
  LocalIdentifyGate gate(1, milliseconds(100));
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  const auto sp = gate.spacing();
  // The whole head of the line just before the turn of its first (shard
  // 30's is at t0 + 30 spacings), and four at once further on (70's turn
  // would be at t0 + 67 spacings).
  std::map<uint32_t, Clock::time_point> withdraw_at;
  for (uint32_t s : {30u, 31u, 32u}) withdraw_at[s] = t0 + sp * 30 - milliseconds(1);
  for (uint32_t s : {70u, 71u, 72u, 73u}) withdraw_at[s] = t0 + sp * 67 - milliseconds(1);
  const ColdStart run = RunColdStart(gate, kShards, t0, withdraw_at);
  ASSERT_EQ(run.grant_order.size(), kShards - withdraw_at.size());
  EXPECT_TRUE(std::is_sorted(run.grant_order.begin(), run.grant_order.end()));
  EXPECT_LE(UnusedWindows(run, t0, sp), (3 - 2) + (4 - 2));
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
