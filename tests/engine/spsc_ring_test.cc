// tests/engine/spsc_ring_test.cc: engine::SpscRing, single-threaded
// semantics, element lifetimes, and a two-thread stress test meant to run
// under ThreadSanitizer as well.
#include "engine/spsc_ring.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace shardring::engine {
namespace {

using ::testing::ElementsAre;

#ifdef SHARDRING_SANITIZED
// Sanitizer builds run a fraction of the work (TSan is the slowest: the
// plain stress test then takes about 2 s, the heap-owning one about 3 s).
constexpr uint64_t kScale = 8;
constexpr uint64_t kStressScale = 2;
#else
constexpr uint64_t kScale = 1;
constexpr uint64_t kStressScale = 1;
#endif

// Counts constructions and destructions and poisons itself when destroyed,
// so a double destroy, a use after destroy or a leak shows up.
struct Tracked {
  static constexpr uint64_t kAlive = 0x600d'600d'600d'600d;
  static constexpr uint64_t kDead = 0xdead'dead'dead'dead;
  static inline std::atomic<int64_t> constructed{0};
  static inline std::atomic<int64_t> destroyed{0};
  static int64_t live() { return constructed - destroyed; }

  explicit Tracked(uint64_t v = 0) : value(v) { ++constructed; }
  Tracked(const Tracked& o) : value(o.value) {
    EXPECT_EQ(o.magic, kAlive);
    ++constructed;
  }
  Tracked(Tracked&& o) noexcept : value(o.value) {
    EXPECT_EQ(o.magic, kAlive);
    ++constructed;
  }
  Tracked& operator=(const Tracked& o) {
    EXPECT_EQ(magic, kAlive);
    EXPECT_EQ(o.magic, kAlive);
    value = o.value;
    return *this;
  }
  Tracked& operator=(Tracked&& o) noexcept { return *this = o; }
  ~Tracked() {
    EXPECT_EQ(magic, kAlive) << "destroyed twice, or never constructed";
    magic = kDead;
    ++destroyed;
  }

  uint64_t magic = kAlive;
  uint64_t value;
};

class SpscRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Tracked::constructed = 0;
    Tracked::destroyed = 0;
  }
};

TEST(SpscRing, RoundsCapacityUpToAPowerOfTwo) {
  EXPECT_EQ(SpscRing<int>(0).capacity(), 1u);
  EXPECT_EQ(SpscRing<int>(1).capacity(), 1u);
  EXPECT_EQ(SpscRing<int>(3).capacity(), 4u);
  EXPECT_EQ(SpscRing<int>(1024).capacity(), 1024u);
  EXPECT_EQ(SpscRing<int>(1025).capacity(), 2048u);
}

TEST(SpscRing, KeepsEachIndexOnItsOwnCacheLine) {
  EXPECT_EQ(alignof(SpscRing<int>), kCacheLine);
  EXPECT_EQ(sizeof(SpscRing<int>) % kCacheLine, 0u);
  EXPECT_GE(sizeof(SpscRing<int>), 5 * kCacheLine);
}

TEST(SpscRing, RefusesAPushWhenFullAndAPopWhenEmpty) {
  SpscRing<int> ring(4);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.front(), nullptr);
  int out = -1;
  EXPECT_FALSE(ring.try_pop(out));
  EXPECT_EQ(out, -1);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ring.try_push(i));
  EXPECT_EQ(ring.size_approx(), 4u);
  EXPECT_FALSE(ring.try_push(99));
  EXPECT_FALSE(ring.try_emplace(99));
  ASSERT_TRUE(ring.try_pop(out));
  EXPECT_EQ(out, 0);
  EXPECT_TRUE(ring.try_push(4));  // one slot free again
  EXPECT_FALSE(ring.try_push(5));
  std::vector<int> got;
  while (ring.try_pop(out)) got.push_back(out);
  EXPECT_THAT(got, ElementsAre(1, 2, 3, 4));
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.size_approx(), 0u);
}

TEST(SpscRing, WorksWithCapacityOne) {
  SpscRing<int> ring(1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(ring.try_push(i));
    ASSERT_FALSE(ring.try_push(i));
    ASSERT_NE(ring.front(), nullptr);
    EXPECT_EQ(*ring.front(), i);
    ring.pop();
    ASSERT_EQ(ring.front(), nullptr);
  }
}

TEST(SpscRing, KeepsFifoOrderAcrossManyWraparounds) {
  SpscRing<uint64_t> ring(8);
  uint64_t pushed = 0, popped = 0;
  for (int round = 0; round < 1000; ++round) {
    const int burst = 1 + round % 8;
    for (int i = 0; i < burst; ++i) ASSERT_TRUE(ring.try_push(pushed++));
    for (int i = 0; i < burst; ++i) {
      uint64_t v = 0;
      ASSERT_TRUE(ring.try_pop(v));
      ASSERT_EQ(v, popped++);
    }
  }
  EXPECT_TRUE(ring.empty());
}

TEST(SpscRing, FrontStaysUntilPopAndEmplaceConstructsInPlace) {
  SpscRing<std::pair<int, std::string>> ring(2);
  ASSERT_TRUE(ring.try_emplace(7, "seven"));
  auto* first = ring.front();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(ring.front(), first);  // peeking does not consume
  EXPECT_EQ(first->second, "seven");
  ring.pop();
  EXPECT_EQ(ring.front(), nullptr);
}

TEST(SpscRing, PushBatchTakesWhatFitsAndReportsHowMany) {
  SpscRing<std::string> ring(4);
  ASSERT_TRUE(ring.try_push(std::string("a")));
  std::vector<std::string> items = {"b", "c", "d", "e", "f"};
  EXPECT_EQ(ring.push_batch(items), 3u);
  EXPECT_EQ(items[3], "e");  // the ones that did not fit are untouched
  EXPECT_EQ(items[4], "f");
  EXPECT_EQ(ring.push_batch(std::span<std::string>(items).subspan(3)), 0u);
  EXPECT_EQ(ring.push_batch({}), 0u);
  std::array<std::string, 3> out;
  EXPECT_EQ(ring.pop_batch(out), 3u);
  EXPECT_THAT(out, ElementsAre("a", "b", "c"));
  EXPECT_EQ(ring.push_batch(std::span<std::string>(items).subspan(3)), 2u);
  EXPECT_EQ(ring.pop_batch(out), 3u);
  EXPECT_THAT(out, ElementsAre("d", "e", "f"));
  EXPECT_EQ(ring.pop_batch(out), 0u);
}

TEST(SpscRing, ConsumeTakesAtMostMaxAndPublishesThemAll) {
  SpscRing<int> ring(8);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(ring.try_push(i));
  std::vector<int> got;
  EXPECT_EQ(ring.consume([&](int& v) { got.push_back(v); }, 3), 3u);
  EXPECT_THAT(got, ElementsAre(0, 1, 2));
  EXPECT_EQ(ring.size_approx(), 5u);
  // The producer sees the freed slots.
  for (int i = 8; i < 11; ++i) ASSERT_TRUE(ring.try_push(i));
  EXPECT_FALSE(ring.try_push(11));
  got.clear();
  EXPECT_EQ(ring.consume([&](int& v) { got.push_back(v); }), 8u);
  EXPECT_THAT(got, ElementsAre(3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_EQ(ring.consume([&](int&) { ADD_FAILURE(); }), 0u);
}

TEST(SpscRing, CarriesMoveOnlyElements) {
  SpscRing<std::unique_ptr<int>> ring(4);
  auto p = std::make_unique<int>(5);
  ASSERT_TRUE(ring.try_push(std::move(p)));
  EXPECT_EQ(p, nullptr);
  auto full = std::make_unique<int>(6);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ring.try_emplace(new int(i)));
  EXPECT_FALSE(ring.try_push(std::move(full)));
  ASSERT_NE(full, nullptr);  // a refused push leaves the value alone
  std::unique_ptr<int> out;
  ASSERT_TRUE(ring.try_pop(out));
  EXPECT_EQ(*out, 5);
}

TEST_F(SpscRingTest, ConstructsAndDestroysEveryElementExactlyOnce) {
  {
    SpscRing<Tracked> ring(16);
    for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(ring.try_emplace(i));
    Tracked t(100);
    ASSERT_TRUE(ring.try_push(t));             // copy
    ASSERT_TRUE(ring.try_push(Tracked(101)));  // move
    std::vector<Tracked> batch;
    batch.reserve(8);
    for (uint64_t i = 200; i < 208; ++i) batch.emplace_back(i);
    EXPECT_EQ(ring.push_batch(batch), 4u);  // 16 - 12 free
    EXPECT_EQ(Tracked::live(), 1 + 8 + 16);
    Tracked out;
    ASSERT_TRUE(ring.try_pop(out));
    EXPECT_EQ(out.value, 0u);
    ring.pop();
    std::array<Tracked, 3> many;
    EXPECT_EQ(ring.pop_batch(many), 3u);
    EXPECT_EQ(many[2].value, 4u);
    EXPECT_EQ(ring.consume([](Tracked& v) { EXPECT_EQ(v.value, 5u); }, 1), 1u);
    // 10 left in the ring; the destructor must destroy exactly those.
    EXPECT_EQ(ring.size_approx(), 10u);
  }
  EXPECT_EQ(Tracked::constructed.load(), Tracked::destroyed.load());
  EXPECT_GT(Tracked::constructed.load(), 0);
}

TEST_F(SpscRingTest, DestroysLeftoversAcrossTheWrapPoint) {
  {
    SpscRing<Tracked> ring(4);
    for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(ring.try_emplace(i));
    ring.pop();
    ring.pop();
    for (uint64_t i = 3; i < 6; ++i) ASSERT_TRUE(ring.try_emplace(i));
    EXPECT_EQ(ring.size_approx(), 4u);  // slots 2, 3, 0, 1
  }
  EXPECT_EQ(Tracked::constructed.load(), Tracked::destroyed.load());
}

// Copying throws on the third element: the first two stay in the ring,
// published; nothing leaks or is destroyed twice.
struct ThrowsOnCopy : Tracked {
  static inline int copies_left = 0;
  explicit ThrowsOnCopy(uint64_t v) : Tracked(v) {}
  ThrowsOnCopy(const ThrowsOnCopy& o) : Tracked(check(o)) {}
  ThrowsOnCopy(ThrowsOnCopy&& o) : Tracked(check(o)) {}  // may throw
  ThrowsOnCopy& operator=(const ThrowsOnCopy&) = default;
  static const Tracked& check(const ThrowsOnCopy& o) {
    if (copies_left-- == 0) throw std::runtime_error("copy");
    return o;
  }
};

TEST_F(SpscRingTest, KeepsWhatAPushBatchMovedBeforeAnElementThrew) {
  {
    SpscRing<ThrowsOnCopy> ring(8);
    std::vector<ThrowsOnCopy> items;
    items.reserve(5);  // no moves (which count as copies here) while filling
    for (uint64_t i = 0; i < 5; ++i) items.emplace_back(i);
    ThrowsOnCopy::copies_left = 2;
    EXPECT_THROW(ring.push_batch(items), std::runtime_error);
    EXPECT_EQ(ring.size_approx(), 2u);
    EXPECT_EQ(ring.front()->value, 0u);
    ThrowsOnCopy::copies_left = 0;
    EXPECT_THROW((void)ring.try_emplace(items[4]), std::runtime_error);
    EXPECT_EQ(ring.size_approx(), 2u);
  }
  EXPECT_EQ(Tracked::constructed.load(), Tracked::destroyed.load());
}

TEST_F(SpscRingTest, LeavesTheElementAConsumeCallbackThrewOnAtTheFront) {
  {
    SpscRing<Tracked> ring(8);
    for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(ring.try_emplace(i));
    EXPECT_THROW(ring.consume([](Tracked& v) {
      if (v.value == 2) throw std::runtime_error("handler");
    }),
                 std::runtime_error);
    ASSERT_NE(ring.front(), nullptr);
    EXPECT_EQ(ring.front()->value, 2u);
    EXPECT_EQ(ring.size_approx(), 2u);
  }
  EXPECT_EQ(Tracked::constructed.load(), Tracked::destroyed.load());
}

// A cheap per-thread generator for picking operations.
struct XorShift {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

// One producer and one consumer thread; every operation kind on both sides,
// in random mixes, through a small ring that is often full and often empty.
// The consumer checks that it sees 0, 1, 2, ... exactly once each.
template <class Make, class Value>
void StressTwoThreads(size_t capacity, uint64_t items, Make make, Value value) {
  using T = decltype(make(uint64_t{0}));
  SpscRing<T> ring(capacity);
  std::atomic<bool> consumer_failed{false};
  uint64_t consumed = 0;
  std::thread consumer([&] {
    XorShift rng{0x9e3779b97f4a7c15};
    std::array<T, 64> out;
    uint64_t expect = 0;
    const auto check = [&](const T& v) {
      if (value(v) != expect) consumer_failed = true;
      ++expect;
    };
    while (expect < items && !consumer_failed) {
      size_t got = 0;
      switch (rng.next() % 4) {
        case 0: {
          T v = make(0);
          if (ring.try_pop(v)) {
            check(v);
            got = 1;
          }
          break;
        }
        case 1:
          if (T* v = ring.front()) {
            check(*v);
            ring.pop();
            got = 1;
          }
          break;
        case 2: {
          const size_t n = 1 + rng.next() % out.size();
          got = ring.pop_batch(std::span<T>(out.data(), n));
          for (size_t i = 0; i < got; ++i) check(out[i]);
          break;
        }
        default:
          got = ring.consume(check, 1 + rng.next() % 100);
          break;
      }
      if (got == 0) std::this_thread::yield();
    }
    consumed = expect;
  });

  XorShift rng{0x2545f4914f6cdd1d};
  std::vector<T> batch;
  batch.reserve(64);
  uint64_t next = 0;
  while (next < items && !consumer_failed) {
    bool progress = false;
    switch (rng.next() % 3) {
      case 0:
        progress = ring.try_push(make(next));
        if (progress) ++next;
        break;
      case 1:
        progress = ring.try_emplace(make(next));
        if (progress) ++next;
        break;
      default: {
        batch.clear();
        const uint64_t n = std::min<uint64_t>(1 + rng.next() % 64, items - next);
        for (uint64_t i = 0; i < n; ++i) batch.push_back(make(next + i));
        const size_t pushed = ring.push_batch(batch);
        next += pushed;
        progress = pushed != 0;
        break;
      }
    }
    if (!progress) std::this_thread::yield();
  }
  consumer.join();
  EXPECT_FALSE(consumer_failed.load()) << "out of order, lost or duplicated";
  EXPECT_EQ(consumed, items);
  EXPECT_TRUE(ring.empty());
}

TEST(SpscRing, TwoThreadsPassTenMillionItemsInOrderWithoutLossOrDuplicates) {
  StressTwoThreads(
      1024, 10'000'000 / kStressScale, [](uint64_t v) { return v; }, [](uint64_t v) { return v; });
}

TEST(SpscRing, TwoThreadsThroughARingOfOneSlot) {
  StressTwoThreads(
      1, 50'000 / kScale, [](uint64_t v) { return v; }, [](uint64_t v) { return v; });
}

// Heap-owning elements across threads: the consumer destroys what the
// producer constructed (ASan sees leaks, TSan sees unsynchronised access).
TEST_F(SpscRingTest, TwoThreadsPassHeapOwningElementsAndDestroyEachOnce) {
  StressTwoThreads(
      64, 1'000'000 / kScale,
      [](uint64_t v) {
        return std::make_pair(Tracked(v), std::string(40, 'x') + std::to_string(v));
      },
      [](const std::pair<Tracked, std::string>& p) {
        EXPECT_EQ(p.second.substr(40), std::to_string(p.first.value));
        return p.first.value;
      });
  EXPECT_EQ(Tracked::constructed.load(), Tracked::destroyed.load());
}

}  // namespace
}  // namespace shardring::engine
