// tests/engine/timer_wheel_test.cc: engine::TimerWheel against a fake clock.
// Times are offsets in milliseconds from a made-up t0; nothing reads a clock.
#include "engine/timer_wheel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace shardring::engine {
namespace {

using std::chrono::milliseconds;
using Deadline = TimerWheel::Deadline;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

#ifdef SHARDRING_SANITIZED
constexpr int kScale = 8;  // sanitizer builds run a fraction of the work
#else
constexpr int kScale = 1;
#endif

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// A time we choose, far from the clock's epoch so negative offsets work.
const Deadline t0 = Deadline{} + std::chrono::hours(1000);

Deadline At(int64_t ms) { return t0 + milliseconds(ms); }

// Advances and returns the fired cookies in firing order.
std::vector<uint64_t> Advance(TimerWheel& wheel, int64_t now_ms) {
  std::vector<uint64_t> fired;
  const size_t n = wheel.advance(At(now_ms), [&](uint64_t cookie) { fired.push_back(cookie); });
  EXPECT_EQ(n, fired.size());
  return fired;
}

// Reference model: what must fire at each advance(now) is exactly the set of
// pending timers whose deadline is <= now.
class Model {
 public:
  void add(uint64_t cookie, int64_t deadline, TimerId id) {
    pending_.emplace(deadline, cookie);
    by_cookie_[cookie] = {deadline, id};
  }
  bool remove(uint64_t cookie) {
    auto it = by_cookie_.find(cookie);
    if (it == by_cookie_.end()) return false;
    pending_.erase({it->second.first, cookie});
    by_cookie_.erase(it);
    return true;
  }
  std::vector<uint64_t> take_due(int64_t now) {
    std::vector<uint64_t> due;
    while (!pending_.empty() && pending_.begin()->first <= now) {
      due.push_back(pending_.begin()->second);
      by_cookie_.erase(pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
    std::sort(due.begin(), due.end());
    return due;
  }
  size_t size() const { return pending_.size(); }
  bool empty() const { return pending_.empty(); }
  int64_t earliest() const { return pending_.begin()->first; }
  int64_t deadline(uint64_t cookie) const { return by_cookie_.at(cookie).first; }
  // A random pending timer, or none.
  template <class Rng>
  std::pair<uint64_t, TimerId> any(Rng& rng) const {
    auto it = by_cookie_.begin();
    std::advance(it, std::uniform_int_distribution<size_t>(0, by_cookie_.size() - 1)(rng));
    return {it->first, it->second.second};
  }

 private:
  std::set<std::pair<int64_t, uint64_t>> pending_;
  std::map<uint64_t, std::pair<int64_t, TimerId>> by_cookie_;
};

// Distances that land in every level, on and around every level boundary,
// beyond the top level's span, and in the past.
template <class Rng>
int64_t RandomDistance(Rng& rng) {
  const auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  static constexpr int64_t kBoundaries[] = {0,
                                            1,
                                            255,
                                            256,
                                            257,
                                            16'383,
                                            16'384,
                                            16'385,
                                            1 << 20,
                                            (1 << 20) - 1,
                                            (1 << 20) + 1,
                                            1 << 26,
                                            (int64_t{1} << 26) + 1,
                                            (int64_t{1} << 32) - 1,
                                            int64_t{1} << 32,
                                            (int64_t{1} << 32) + 1};
  switch (pick(0, 19)) {
    case 0:
      return pick(-5 * kSecond, 0);  // in the past or now
    case 1:
    case 2:
    case 3:
    case 4:
      return pick(0, 300);
    case 5:
    case 6:
    case 7:
      return pick(0, 20 * kSecond);
    case 8:
    case 9:
      return pick(0, 20 * kMinute);
    case 10:
    case 11:
      return pick(0, 2 * kDay);
    case 12:
      return pick(0, 120 * kDay);  // past the 49.7-day span
    case 13:
    case 14:
      return 41'250;  // a heartbeat interval
    default:
      return kBoundaries[pick(0, std::size(kBoundaries) - 1)];
  }
}

template <class Rng>
int64_t RandomStep(Rng& rng) {
  const auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  switch (pick(0, 19)) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      return 0;  // same now again
    case 5:
    case 6:
    case 7:
    case 8:
    case 9:
    case 10:
      return pick(1, 10);
    case 11:
    case 12:
    case 13:
      return pick(1, 5 * kSecond);
    case 14:
    case 15:
      return pick(1, kHour);
    case 16:
      return pick(1, 3 * kDay);
    case 17:
      return pick(1, 60 * kDay);
    default:
      return pick(250, 260);
  }
}

// The property the engine relies on: a timer fires in the first advance(now)
// with now >= its deadline, never before, never later, whatever the mix of
// distances, cancels and steps between calls.
TEST(TimerWheel, FiresEachTimerAtTheFirstAdvancePastItsDeadline) {
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE(testing::Message() << "seed=" << seed);
    std::mt19937_64 rng(seed);
    TimerWheel wheel(t0);
    Model model;
    int64_t now = 0;
    uint64_t next_cookie = 1;
    std::vector<TimerId> dead_ids;  // fired or cancelled
    const int steps = 20'000 / kScale;
    for (int step = 0; step < steps; ++step) {
      const int schedules = std::uniform_int_distribution<int>(0, 6)(rng);
      for (int i = 0; i < schedules; ++i) {
        const int64_t deadline = now + RandomDistance(rng);
        const uint64_t cookie = next_cookie++;
        // Before the wheel's start counts as its start.
        model.add(cookie, std::max<int64_t>(deadline, 0), wheel.schedule(At(deadline), cookie));
      }
      if (!model.empty() && rng() % 3 == 0) {
        const auto [cookie, id] = model.any(rng);
        ASSERT_TRUE(wheel.cancel(id));
        model.remove(cookie);
        dead_ids.push_back(id);
      }
      if (!dead_ids.empty() && rng() % 4 == 0) {
        ASSERT_FALSE(wheel.cancel(dead_ids[rng() % dead_ids.size()]));
      }
      ASSERT_EQ(wheel.size(), model.size());
      const std::optional<Deadline> next = wheel.next_deadline();
      if (model.empty()) {
        ASSERT_FALSE(next.has_value());
      } else {
        // Overdue timers (deadline <= now) need only a bound <= now.
        ASSERT_TRUE(next.has_value());
        ASSERT_LE(*next, At(std::max(model.earliest(), now)));
      }

      now += RandomStep(rng);
      std::vector<uint64_t> fired = Advance(wheel, now);
      std::sort(fired.begin(), fired.end());
      ASSERT_EQ(fired, model.take_due(now)) << "now=" << now;
    }
    // Everything left fires once its time comes, and only then.
    while (!model.empty()) {
      const int64_t deadline = model.earliest();
      ASSERT_THAT(Advance(wheel, deadline - 1), IsEmpty());
      std::vector<uint64_t> fired = Advance(wheel, deadline);
      std::sort(fired.begin(), fired.end());
      ASSERT_EQ(fired, model.take_due(deadline));
    }
    EXPECT_EQ(wheel.size(), 0u);
    EXPECT_FALSE(wheel.next_deadline().has_value());
  }
}

TEST(TimerWheel, FiresAtTheDeadlineOfEveryLevelAndBeyondTheTopOne) {
  const int64_t distances[] = {0,
                               1,
                               255,
                               256,
                               257,
                               16'383,
                               16'384,
                               16'385,
                               41'250,
                               1 << 20,
                               (1 << 20) + 1,
                               (1 << 26) - 1,
                               1 << 26,
                               (1 << 26) + 1,
                               (int64_t{1} << 32) - 1,
                               int64_t{1} << 32,
                               (int64_t{1} << 32) + 1,
                               100 * kDay,
                               365 * kDay,
                               10 * 365 * kDay};
  // The wheel's position matters for where a timer lands: try slot
  // boundaries of every level and a position on none.
  for (int64_t base :
       {int64_t{0}, int64_t{777}, int64_t{1} << 14, (int64_t{1} << 26) - 3, int64_t{1} << 32}) {
    for (int64_t d : distances) {
      SCOPED_TRACE(testing::Message() << "base=" << base << " d=" << d);
      TimerWheel wheel(t0);
      ASSERT_THAT(Advance(wheel, base), IsEmpty());
      const TimerId id = wheel.schedule(At(base + d), 42);
      if (d > 0) {
        // Walk up to the deadline in uneven steps; nothing fires early.
        int64_t now = base;
        for (int64_t step = 1; now + step < base + d; step = step * 3 + 1) {
          now += step;
          ASSERT_THAT(Advance(wheel, now), IsEmpty()) << "now=" << now;
          ASSERT_LE(*wheel.next_deadline(), At(base + d));
        }
        ASSERT_THAT(Advance(wheel, base + d - 1), IsEmpty());
      }
      EXPECT_THAT(Advance(wheel, base + d), ElementsAre(42u));
      EXPECT_FALSE(wheel.cancel(id));
      EXPECT_EQ(wheel.size(), 0u);
    }
  }
}

TEST(TimerWheel, KeepsADeadlineAtTheEndOfTimePendingAndCancellable) {
  TimerWheel wheel(t0);
  const TimerId id = wheel.schedule(Deadline::max(), 7);
  EXPECT_THAT(Advance(wheel, 200 * 365 * kDay), IsEmpty());
  ASSERT_TRUE(wheel.next_deadline().has_value());
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_TRUE(wheel.cancel(id));
  EXPECT_FALSE(wheel.next_deadline().has_value());
}

TEST(TimerWheel, FiresTimersInThePastOrAtNowOnTheNextAdvance) {
  TimerWheel wheel(t0);
  wheel.schedule(At(0), 1);  // at the start, before any advance
  EXPECT_THAT(Advance(wheel, 0), ElementsAre(1u));
  EXPECT_THAT(Advance(wheel, 100), IsEmpty());
  wheel.schedule(At(100), 2);                  // exactly now
  wheel.schedule(At(50), 3);                   // earlier than now
  wheel.schedule(At(-kHour), 4);               // before the wheel's start
  wheel.schedule(At(101), 5);                  // not yet
  EXPECT_LE(*wheel.next_deadline(), At(100));  // do not wait at all
  // The same `now` again: the overdue ones fire, the future one does not.
  EXPECT_THAT(Advance(wheel, 100), UnorderedElementsAre(2u, 3u, 4u));
  EXPECT_THAT(Advance(wheel, 101), ElementsAre(5u));
}

TEST(TimerWheel, FiresABeforeStartDeadlineAtTheFirstAdvance) {
  TimerWheel wheel(t0);
  wheel.schedule(At(-5), 1);
  EXPECT_THAT(Advance(wheel, -1), IsEmpty());  // still before the start
  EXPECT_THAT(Advance(wheel, 0), ElementsAre(1u));
}

// Deadlines are rounded up to whole milliseconds and `now` down: a
// sub-millisecond deadline fires less than 1 ms late, never early.
TEST(TimerWheel, RoundsSubMillisecondDeadlinesLateNeverEarly) {
  using std::chrono::microseconds;
  TimerWheel wheel(t0);
  wheel.schedule(t0 + microseconds(1500), 1);
  wheel.schedule(t0 + microseconds(2000), 2);
  EXPECT_THAT(Advance(wheel, 1), IsEmpty());
  EXPECT_EQ(wheel.advance(t0 + microseconds(1499), [](uint64_t) {}), 0u);
  EXPECT_EQ(wheel.advance(t0 + microseconds(1999), [](uint64_t) {}), 0u);
  EXPECT_THAT(Advance(wheel, 2), UnorderedElementsAre(1u, 2u));
  // A wheel whose start is not on a whole millisecond of the clock.
  TimerWheel offset(t0 + microseconds(300));
  offset.schedule(t0 + microseconds(1300), 3);  // 1 ms after its start
  EXPECT_EQ(offset.advance(t0 + microseconds(1299), [](uint64_t) {}), 0u);
  EXPECT_EQ(offset.advance(t0 + microseconds(1300), [](uint64_t) {}), 1u);
}

TEST(TimerWheel, CancelStopsAPendingTimerAndReportsFalseForAnyOtherId) {
  TimerWheel wheel(t0);
  const TimerId a = wheel.schedule(At(10), 1);
  const TimerId b = wheel.schedule(At(10), 2);
  const TimerId far = wheel.schedule(At(3 * kDay), 3);
  EXPECT_EQ(wheel.size(), 3u);
  EXPECT_TRUE(wheel.cancel(a));
  EXPECT_FALSE(wheel.cancel(a));  // twice
  EXPECT_TRUE(wheel.cancel(far));
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_THAT(Advance(wheel, 10), ElementsAre(2u));
  EXPECT_FALSE(wheel.cancel(b));  // already fired
  EXPECT_FALSE(wheel.cancel(TimerId{}));
  EXPECT_FALSE(wheel.cancel(TimerId::from_value(0)));
  EXPECT_FALSE(wheel.cancel(TimerId::from_value(uint64_t{1} << 32 | 5)));
  EXPECT_FALSE(wheel.cancel(TimerId::from_value(~uint64_t{0})));
  EXPECT_FALSE(TimerId{}.is_valid());
  EXPECT_TRUE(b.is_valid());
  EXPECT_EQ(TimerId::from_value(b.value()), b);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, StaleIdDoesNotCancelTheTimerThatReusedItsNode) {
  TimerWheel wheel(t0);
  const TimerId old_id = wheel.schedule(At(5), 1);
  ASSERT_TRUE(wheel.cancel(old_id));
  const TimerId new_id = wheel.schedule(At(5), 2);  // reuses the freed node
  EXPECT_NE(new_id, old_id);
  EXPECT_FALSE(wheel.cancel(old_id));
  EXPECT_THAT(Advance(wheel, 5), ElementsAre(2u));
  // And after firing: the fired id is stale for the node's next user too.
  const TimerId third = wheel.schedule(At(9), 3);
  EXPECT_FALSE(wheel.cancel(new_id));
  EXPECT_TRUE(wheel.cancel(third));
}

TEST(TimerWheel, CancelsManyTimersInAnyOrderAndReusesTheirNodes) {
  const int n = 100'000 / kScale;
  std::mt19937_64 rng(9);
  TimerWheel wheel(t0);
  std::vector<TimerId> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(wheel.schedule(At(RandomDistance(rng) + 1000), i));
  }
  std::shuffle(ids.begin(), ids.end(), rng);
  for (size_t i = 0; i < ids.size(); i += 2) ASSERT_TRUE(wheel.cancel(ids[i]));
  EXPECT_EQ(wheel.size(), ids.size() / 2);
  for (size_t i = 1; i < ids.size(); i += 2) ASSERT_TRUE(wheel.cancel(ids[i]));
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_FALSE(wheel.next_deadline().has_value());
  EXPECT_THAT(Advance(wheel, 400 * kDay), IsEmpty());
  for (const TimerId id : ids) ASSERT_FALSE(wheel.cancel(id));
}

TEST(TimerWheel, FiresTwoHundredThousandTimersEachAtItsMillisecond) {
  const int n = 200'000 / kScale;
  std::mt19937_64 rng(5);
  TimerWheel wheel(t0, /*reserve=*/n);
  std::vector<int64_t> deadline(n);
  for (int i = 0; i < n; ++i) {
    deadline[i] = std::uniform_int_distribution<int64_t>(0, 10 * kMinute)(rng);
    wheel.schedule(At(deadline[i]), i);
  }
  EXPECT_EQ(wheel.size(), size_t(n));
  std::vector<int64_t> fired_at(n, -1);
  int64_t now = 0;
  size_t fired = 0;
  while (fired < size_t(n)) {
    now += std::uniform_int_distribution<int64_t>(0, 40)(rng);
    fired += wheel.advance(At(now), [&](uint64_t i) {
      ASSERT_EQ(fired_at[i], -1) << "fired twice";
      fired_at[i] = now;
    });
    ASSERT_LE(now, 11 * kMinute);
  }
  int64_t worst_late = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_GE(fired_at[i], deadline[i]) << "early";
    worst_late = std::max(worst_late, fired_at[i] - deadline[i]);
  }
  EXPECT_LE(worst_late, 40);  // never later than the step between calls
  EXPECT_EQ(wheel.size(), 0u);
}

// Within one advance() that covers many milliseconds, earlier deadlines fire
// first (timers due in the same millisecond in no particular order).
TEST(TimerWheel, FiresInDeadlineOrderWithinOneAdvance) {
  std::mt19937_64 rng(11);
  TimerWheel wheel(t0);
  for (int i = 0; i < 20'000 / kScale; ++i) {
    const int64_t d = std::uniform_int_distribution<int64_t>(1, kDay)(rng);
    wheel.schedule(At(d), d);
  }
  const std::vector<uint64_t> fired = Advance(wheel, kDay);
  EXPECT_EQ(fired.size(), size_t(20'000 / kScale));
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
}

// The engine re-arms a shard's heartbeat from inside the expiry callback.
TEST(TimerWheel, RearmsAHeartbeatFromInsideTheCallbackWithoutDrift) {
  constexpr int64_t kInterval = 41'250;
  std::mt19937_64 rng(3);
  TimerWheel wheel(t0);
  std::map<uint64_t, int64_t> due;  // shard -> its next beat
  std::map<uint64_t, std::vector<int64_t>> beats;
  for (uint64_t shard = 0; shard < 8; ++shard) {
    due[shard] = static_cast<int64_t>(shard * 5'000 + 17);  // jittered first
    wheel.schedule(At(due[shard]), shard);
  }
  int64_t now = 0, prev = -1;
  while (now < 6 * kHour) {
    prev = now;
    now += std::uniform_int_distribution<int64_t>(0, 700)(rng);
    wheel.advance(At(now), [&](uint64_t shard) {
      ASSERT_LE(due[shard], now) << "early";
      ASSERT_GT(due[shard], prev) << "late: an earlier advance missed it";
      beats[shard].push_back(due[shard]);
      due[shard] += kInterval;
      wheel.schedule(At(due[shard]), shard);
    });
  }
  for (auto& [shard, times] : beats) {
    ASSERT_GE(times.size(), 6 * kHour / kInterval - 1);
    for (size_t i = 1; i < times.size(); ++i) {
      ASSERT_EQ(times[i] - times[i - 1], kInterval);
    }
  }
  EXPECT_EQ(wheel.size(), 8u);
}

TEST(TimerWheel, CallbackReschedulingAtNowFiresOnTheNextAdvanceNotInALoop) {
  TimerWheel wheel(t0);
  wheel.schedule(At(10), 1);
  int calls = 0;
  const auto rearm_at_now = [&](uint64_t cookie) {
    ++calls;
    wheel.schedule(At(10), cookie + 1);  // already due
  };
  EXPECT_EQ(wheel.advance(At(10), rearm_at_now), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_THAT(Advance(wheel, 10), ElementsAre(2u));
}

TEST(TimerWheel, CallbackSchedulingLaterButBeforeNowFiresInTheSameAdvance) {
  TimerWheel wheel(t0);
  wheel.schedule(At(10), 1);
  std::vector<uint64_t> fired;
  wheel.advance(At(500), [&](uint64_t cookie) {
    fired.push_back(cookie);
    if (cookie == 1) wheel.schedule(At(300), 2);  // later, still <= now
    if (cookie == 2) wheel.schedule(At(501), 3);  // after now
  });
  EXPECT_THAT(fired, ElementsAre(1u, 2u));
  EXPECT_THAT(Advance(wheel, 500), IsEmpty());
  EXPECT_THAT(Advance(wheel, 501), ElementsAre(3u));
}

TEST(TimerWheel, CallbackCanCancelATimerDueInTheSameAdvance) {
  TimerWheel wheel(t0);
  TimerId ids[4];
  for (uint64_t i = 0; i < 4; ++i) ids[i] = wheel.schedule(At(20), i);
  std::vector<uint64_t> fired;
  std::vector<bool> results;
  wheel.advance(At(20), [&](uint64_t cookie) {
    fired.push_back(cookie);
    if (fired.size() == 1) {
      results.push_back(wheel.cancel(ids[cookie]));  // itself: already gone
      for (uint64_t other = 0; other < 4; ++other) {
        if (other != cookie) {
          results.push_back(wheel.cancel(ids[other]));
          break;
        }
      }
    }
  });
  EXPECT_EQ(fired.size(), 3u);
  EXPECT_THAT(results, ElementsAre(false, true));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, TimersStillToFireWhenACallbackThrowsFireOnTheNextAdvance) {
  TimerWheel wheel(t0);
  for (uint64_t i = 0; i < 3; ++i) wheel.schedule(At(5), i);
  int calls = 0;
  EXPECT_THROW(wheel.advance(At(5),
                             [&](uint64_t) {
                               if (++calls == 1) throw 1;
                             }),
               int);
  EXPECT_EQ(wheel.size(), 2u);
  EXPECT_EQ(Advance(wheel, 5).size(), 2u);
}

TEST(TimerWheel, NextDeadlineIsNeverLaterThanTheEarliestTimer) {
  TimerWheel wheel(t0);
  EXPECT_FALSE(wheel.next_deadline().has_value());
  wheel.schedule(At(100), 1);  // within level 0: exact
  EXPECT_EQ(wheel.next_deadline(), At(100));
  wheel.schedule(At(41'250), 2);
  EXPECT_EQ(wheel.next_deadline(), At(100));
  EXPECT_THAT(Advance(wheel, 100), ElementsAre(1u));
  // A deadline in a higher level: waking at each bound only cascades, and
  // the bound becomes exact before the deadline, so a loop that sleeps until
  // next_deadline() fires it on time with a handful of wake-ups.
  int wakeups = 0;
  std::vector<uint64_t> fired;
  while (fired.empty()) {
    const Deadline next = *wheel.next_deadline();
    ASSERT_LE(next, At(41'250));
    ASSERT_GT(next, At(100));
    wheel.advance(next, [&](uint64_t c) { fired.push_back(c); });
    if (fired.empty()) {
      ASSERT_LT(next, At(41'250));
    } else {
      EXPECT_EQ(next, At(41'250));
    }
    ++wakeups;
  }
  EXPECT_THAT(fired, ElementsAre(2u));
  EXPECT_LE(wakeups, 4);
}

// An event loop that sleeps exactly until next_deadline() each time never
// misses a deadline and wakes up little more than once per firing.
TEST(TimerWheel, SleepingUntilNextDeadlineFiresEveryTimerOnTime) {
  std::mt19937_64 rng(21);
  TimerWheel wheel(t0);
  const int n = 5'000 / kScale;
  std::vector<int64_t> deadline(n);
  for (int i = 0; i < n; ++i) {
    deadline[i] = std::max<int64_t>(1, RandomDistance(rng));
    wheel.schedule(At(deadline[i]), i);
  }
  size_t wakeups = 0, fired = 0;
  while (std::optional<Deadline> next = wheel.next_deadline()) {
    ++wakeups;
    fired += wheel.advance(*next, [&](uint64_t i) {
      ASSERT_EQ(At(deadline[i]), *next) << "fired at a bound, not on time";
    });
  }
  EXPECT_EQ(fired, size_t(n));
  // Distinct deadlines plus cascade-only wake-ups (bounded by the number of
  // occupied higher-level slots reached).
  EXPECT_LE(wakeups, 2 * size_t(n));
}

}  // namespace
}  // namespace shardring::engine
