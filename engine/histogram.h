// engine/histogram.h: a log-linear latency histogram with one writer thread
// and any number of readers. Values are nanoseconds (any uint64). Buckets:
// exact below 32, then 32 per power of two, so a reported quantile is within
// 1/32 (3.1 %) above the true value and never below it. 1920 buckets, 15 KiB.
//
// Threads: record() from one thread only (a core thread: heartbeat lateness;
// a consumer: delivery latency); merge_from(), count(), quantile() and max()
// from any thread, while the writer runs. Every counter is a relaxed atomic,
// so a read taken during writes is a consistent-enough snapshot for a live
// view: each bucket is exact, the set of buckets may be a few records apart.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace shardring::engine {

class Histogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;       // 32
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;  // 1920

  // The bucket of `v`: v itself below kSub, then kSub per power of two.
  static constexpr size_t index_of(uint64_t v) noexcept {
    if (v < kSub) return static_cast<size_t>(v);
    const int shift = std::bit_width(v) - 1 - kSubBits;  // >= 0
    return static_cast<size_t>(shift + 1) * kSub + ((v >> shift) & (kSub - 1));
  }
  // The largest value that falls in bucket `i`.
  static constexpr uint64_t upper_of(size_t i) noexcept {
    if (i < kSub) return i;
    const int shift = static_cast<int>(i / kSub) - 1;
    const uint64_t lower = (kSub + (i % kSub)) << shift;
    return lower + ((uint64_t{1} << shift) - 1);
  }

  // One writer thread.
  void record(uint64_t v) noexcept {
    bump(buckets_[index_of(v)], 1);
    bump(count_, 1);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
  }
  // Adds `other`'s counts into this one. `this` must have no concurrent
  // writer (a reader's scratch histogram); `other` may be written meanwhile.
  void merge_from(const Histogram& other) noexcept {
    for (size_t i = 0; i < kBuckets; ++i) {
      const uint64_t n = other.buckets_[i].load(std::memory_order_relaxed);
      if (n != 0) bump(buckets_[i], n);
    }
    bump(count_, other.count_.load(std::memory_order_relaxed));
    const uint64_t m = other.max_.load(std::memory_order_relaxed);
    if (m > max_.load(std::memory_order_relaxed)) max_.store(m, std::memory_order_relaxed);
  }

  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  // Bucket i's count (index_of() places a value in its bucket).
  uint64_t bucket(size_t i) const noexcept { return buckets_[i].load(std::memory_order_relaxed); }
  uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
  // The smallest bucket bound at or below which at least q (0..1) of the
  // records lie, capped at max(). 0 when empty.
  uint64_t quantile(double q) const noexcept {
    uint64_t total = 0;
    for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
    if (total == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    // Nearest rank: the ceil(q * total)-th smallest record, 1-based.
    const double want = q * static_cast<double>(total);
    uint64_t rank = static_cast<uint64_t>(want);
    if (static_cast<double>(rank) < want || rank == 0) ++rank;
    if (rank > total) rank = total;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load(std::memory_order_relaxed);
      if (seen >= rank) {
        const uint64_t m = max();
        const uint64_t u = upper_of(i);
        return u < m ? u : m;
      }
    }
    return max();
  }

 private:
  static void bump(std::atomic<uint64_t>& a, uint64_t n) noexcept {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> buckets_[kBuckets] = {};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
};

// What a cumulative Histogram recorded since the previous call of next():
// the figures of one interval (a second of a load test's report). One
// reader thread; the histogram may be written meanwhile.
class HistogramWindow {
 public:
  struct Figures {
    uint64_t count = 0;
    uint64_t p50 = 0, p99 = 0, max = 0;  // bucket bounds (within 3.1 %), 0 when empty
  };
  Figures next(const Histogram& h) {
    Figures f;
    uint64_t now[Histogram::kBuckets];
    for (size_t i = 0; i < Histogram::kBuckets; ++i) {
      now[i] = h.bucket(i);
      f.count += now[i] - prev_[i];
    }
    if (f.count > 0) {
      const uint64_t r50 = Rank(0.50, f.count), r99 = Rank(0.99, f.count);
      uint64_t seen = 0;
      for (size_t i = 0; i < Histogram::kBuckets; ++i) {
        const uint64_t n = now[i] - prev_[i];
        if (n == 0) continue;
        if (seen < r50 && seen + n >= r50) f.p50 = Histogram::upper_of(i);
        if (seen < r99 && seen + n >= r99) f.p99 = Histogram::upper_of(i);
        seen += n;
        f.max = Histogram::upper_of(i);
      }
      // The all-time max is exact: use it when it falls in this window.
      const uint64_t m = h.max();
      if (m < f.max) f.max = m;
      if (m < f.p99) f.p99 = m;
      if (m < f.p50) f.p50 = m;
    }
    for (size_t i = 0; i < Histogram::kBuckets; ++i) prev_[i] = now[i];
    return f;
  }

 private:
  // Nearest rank: the ceil(q * total)-th smallest record, 1-based.
  static uint64_t Rank(double q, uint64_t total) {
    const double want = q * static_cast<double>(total);
    uint64_t rank = static_cast<uint64_t>(want);
    if (static_cast<double>(rank) < want || rank == 0) ++rank;
    return rank > total ? total : rank;
  }
  uint64_t prev_[Histogram::kBuckets] = {};
};

}  // namespace shardring::engine
