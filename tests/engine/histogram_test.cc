// tests/engine/histogram_test.cc: engine::Histogram: bucket bounds, the
// promised precision, nearest-rank quantiles, merging, and one writer with a
// concurrent reader (meant to run under ThreadSanitizer too).
#include "engine/histogram.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <thread>

namespace shardring::engine {
namespace {

TEST(HistogramTest, SmallValuesAreExact) {
  for (uint64_t v = 0; v < Histogram::kSub; ++v) {
    EXPECT_EQ(Histogram::index_of(v), v);
    EXPECT_EQ(Histogram::upper_of(Histogram::index_of(v)), v);
  }
}

TEST(HistogramTest, BucketsAreContiguousAndCoverEveryValue) {
  // Bucket i+1 starts right after bucket i ends, up to UINT64_MAX.
  for (size_t i = 0; i + 1 < Histogram::kBuckets; ++i) {
    const uint64_t u = Histogram::upper_of(i);
    EXPECT_EQ(Histogram::index_of(u), i) << i;
    EXPECT_EQ(Histogram::index_of(u + 1), i + 1) << i;
  }
  EXPECT_EQ(Histogram::index_of(std::numeric_limits<uint64_t>::max()), Histogram::kBuckets - 1);
  EXPECT_EQ(Histogram::upper_of(Histogram::kBuckets - 1), std::numeric_limits<uint64_t>::max());
}

TEST(HistogramTest, ReportedValueIsNeverBelowAndAtMostOneThirtySecondAbove) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const uint64_t u = Histogram::upper_of(Histogram::index_of(v));
    ASSERT_GE(u, v);
    ASSERT_LE(static_cast<double>(u - v), static_cast<double>(v) / 32.0 + 1) << v;
  }
}

TEST(HistogramTest, EmptyReportsZero) {
  auto h = std::make_unique<Histogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->quantile(0.5), 0u);
  EXPECT_EQ(h->quantile(0.99), 0u);
}

TEST(HistogramTest, NearestRankQuantiles) {
  auto h = std::make_unique<Histogram>();
  for (uint64_t v = 1; v <= 100; ++v) h->record(v * 1000);  // 1..100 us
  EXPECT_EQ(h->count(), 100u);
  EXPECT_EQ(h->max(), 100000u);
  // The 50th value is 50 us, the 99th is 99 us: reported within 1/32 above.
  EXPECT_GE(h->quantile(0.5), 50000u);
  EXPECT_LE(h->quantile(0.5), 50000u + 50000u / 32);
  EXPECT_GE(h->quantile(0.99), 99000u);
  EXPECT_LE(h->quantile(0.99), 99000u + 99000u / 32);
  EXPECT_EQ(h->quantile(1.0), 100000u);  // capped at the exact max
  EXPECT_GE(h->quantile(0.0), 1000u);
  EXPECT_LE(h->quantile(0.0), 1000u + 1000u / 32);
}

TEST(HistogramTest, OneOutlierShowsInMaxNotInP99) {
  auto h = std::make_unique<Histogram>();
  for (int i = 0; i < 1000; ++i) h->record(2000);
  h->record(5'000'000'000);  // a 5 s stall
  EXPECT_LE(h->quantile(0.99), 2000u + 2000u / 32);
  EXPECT_EQ(h->max(), 5'000'000'000u);
}

TEST(HistogramTest, MergeAddsCountsAndKeepsTheLargerMax) {
  auto a = std::make_unique<Histogram>();
  auto b = std::make_unique<Histogram>();
  for (int i = 0; i < 10; ++i) a->record(10);
  for (int i = 0; i < 30; ++i) b->record(1'000'000);
  auto sum = std::make_unique<Histogram>();
  sum->merge_from(*a);
  sum->merge_from(*b);
  EXPECT_EQ(sum->count(), 40u);
  EXPECT_EQ(sum->max(), 1'000'000u);
  EXPECT_EQ(sum->quantile(0.25), 10u);
  EXPECT_GE(sum->quantile(0.5), 1'000'000u);
}

TEST(HistogramTest, ReaderDuringWritesSeesAMonotonicCount) {
  auto h = std::make_unique<Histogram>();
  constexpr uint64_t kN = 200000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kN; ++i) h->record(i % 5000);
    done.store(true);
  });
  uint64_t last = 0;
  while (!done.load()) {
    auto snap = std::make_unique<Histogram>();
    snap->merge_from(*h);
    EXPECT_GE(snap->count(), last);
    last = snap->count();
    EXPECT_LE(snap->quantile(0.5), 5000u);
  }
  writer.join();
  EXPECT_EQ(h->count(), kN);
  EXPECT_EQ(h->max(), 4999u);
}

TEST(HistogramTest, WindowSeesOnlyWhatCameSinceTheLastCall) {
  auto h = std::make_unique<Histogram>();
  auto w = std::make_unique<HistogramWindow>();
  EXPECT_EQ(w->next(*h).count, 0u);
  for (uint64_t v = 1; v <= 10; ++v) h->record(v);  // the first second: small
  auto f = w->next(*h);
  EXPECT_EQ(f.count, 10u);
  EXPECT_EQ(f.p50, 5u);
  EXPECT_EQ(f.p99, 10u);
  EXPECT_EQ(f.max, 10u);
  // Nothing new: an empty window, whatever came before.
  f = w->next(*h);
  EXPECT_EQ(f.count, 0u);
  EXPECT_EQ(f.max, 0u);
  // The next second: 100 values around 1 ms and one of 20 ms.
  for (int i = 0; i < 99; ++i) h->record(1'000'000);
  h->record(20'000'000);
  f = w->next(*h);
  EXPECT_EQ(f.count, 100u);
  EXPECT_GE(f.p50, 1'000'000u);
  EXPECT_LE(f.p50, 1'000'000u + 1'000'000u / 32);
  EXPECT_LE(f.p99, 1'000'000u + 1'000'000u / 32);  // the 99th of 100 is still 1 ms
  EXPECT_EQ(f.max, 20'000'000u);                   // the all-time max is exact
  // Then small ones again: the window's max is theirs, not the old 20 ms.
  h->record(3);
  f = w->next(*h);
  EXPECT_EQ(f.count, 1u);
  EXPECT_EQ(f.max, 3u);
}

}  // namespace
}  // namespace shardring::engine
