// bench/engine_timer_bench.cc: engine::TimerWheel. Schedule+cancel pairs
// (the common case: a heartbeat ACK deadline cancelled by the ACK) with and
// without 100k other live timers, and schedule+fire with 100k live timers
// re-armed from the expiry callback as the engine re-arms heartbeats.
//
//   build/bin/engine_timer_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one line)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/timer_wheel.h"

namespace shardring::engine {
namespace {

using std::chrono::milliseconds;
using Deadline = TimerWheel::Deadline;

const Deadline t0 = Deadline{} + std::chrono::hours(1);

// Distances in [1 ms, max_ms], fixed seed, so runs compare.
std::vector<int64_t> Distances(size_t n, int64_t max_ms) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(1, max_ms);
  std::vector<int64_t> d(n);
  for (auto& x : d) x = pick(rng);
  return d;
}

// range(0): other live timers, spread over a minute.
void BM_TimerWheelScheduleCancel(benchmark::State& state) {
  const auto live = static_cast<size_t>(state.range(0));
  TimerWheel wheel(t0, live + 1);
  const std::vector<int64_t> background = Distances(live + 1, 60'000);
  for (size_t i = 0; i < live; ++i) {
    wheel.schedule(t0 + milliseconds(background[i]), i);
  }
  // Distances like a heartbeat ACK deadline or a backoff: 0.1 s to 60 s.
  const std::vector<int64_t> d = Distances(4096, 60'000);
  size_t i = 0;
  for (auto _ : state) {
    const TimerId id = wheel.schedule(t0 + milliseconds(d[i & 4095]), i);
    benchmark::DoNotOptimize(wheel.cancel(id));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());  // schedule+cancel pairs
}
BENCHMARK(BM_TimerWheelScheduleCancel)->Arg(0)->Arg(100'000);

// 100k live timers due within range(0) ms; each iteration advances the clock
// by 1 ms and fires the timers due, each of which re-arms itself 1 to
// range(0) ms ahead (so timers pass through the upper levels and cascade,
// like real heartbeats): about 2 * 100'000 / range(0) fires a tick. Items are
// fired timers (each also a schedule).
void BM_TimerWheelScheduleFire(benchmark::State& state) {
  constexpr size_t kLive = 100'000;
  const int64_t spread = state.range(0);
  TimerWheel wheel(t0, kLive);
  const std::vector<int64_t> d = Distances(kLive, spread);
  for (size_t i = 0; i < kLive; ++i) {
    wheel.schedule(t0 + milliseconds(d[i]), i);
  }
  int64_t now = 0;
  size_t fired = 0, k = 0;
  for (auto _ : state) {
    ++now;
    const Deadline at = t0 + milliseconds(now);
    fired += wheel.advance(
        at, [&](uint64_t cookie) { wheel.schedule(at + milliseconds(d[k++ % kLive]), cookie); });
  }
  if (wheel.size() != kLive) state.SkipWithError("lost a timer");
  state.SetItemsProcessed(static_cast<int64_t>(fired));
  state.counters["fired_per_ms"] =
      benchmark::Counter(static_cast<double>(fired) / static_cast<double>(state.iterations()));
}
// 41.25 s is Discord's usual heartbeat interval.
BENCHMARK(BM_TimerWheelScheduleFire)->Arg(1'000)->Arg(10'000)->Arg(41'250);

}  // namespace
}  // namespace shardring::engine

BENCHMARK_MAIN();
