// bench/engine_ring_bench.cc: engine::SpscRing between two threads pinned to
// CPUs 0 and 1 (when the process may run there): throughput with single and
// batched operations, and round-trip latency through a pair of rings.
//
//   build/bin/engine_ring_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one line)
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <thread>

#include "engine/spsc_ring.h"

namespace shardring::engine {
namespace {

constexpr uint64_t kStop = UINT64_MAX;
constexpr size_t kCapacity = 4096;
constexpr uint64_t kItemsPerIteration = 1 << 16;

// Pins the calling thread to `cpu` if the process may run there; restores
// the thread's previous CPU set when it goes out of scope.
class PinnedTo {
 public:
  explicit PinnedTo(int cpu) {
    pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_);
    if (!CPU_ISSET(cpu, &saved_)) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_ = pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0;
  }
  ~PinnedTo() {
    if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
  }
  PinnedTo(const PinnedTo&) = delete;
  PinnedTo& operator=(const PinnedTo&) = delete;

 private:
  cpu_set_t saved_;
  bool pinned_ = false;
};

// The consumer: pops until kStop, checking order so the work is not elided.
void ConsumeSingles(SpscRing<uint64_t>& ring) {
  PinnedTo pin(1);
  uint64_t expect = 0;
  for (;;) {
    uint64_t v;
    if (!ring.try_pop(v)) continue;
    if (v == kStop) return;
    if (v != expect++) std::abort();
  }
}

void ConsumeBatches(SpscRing<uint64_t>& ring, size_t max) {
  PinnedTo pin(1);
  uint64_t expect = 0;
  bool stop = false;
  while (!stop) {
    ring.consume(
        [&](uint64_t v) {
          if (v == kStop) {
            stop = true;
          } else if (v != expect++) {
            std::abort();
          }
        },
        max);
  }
}

// Waits until the consumer has taken everything pushed so far, so each
// iteration's time covers delivery, not just the pushes.
void Drain(const SpscRing<uint64_t>& ring) {
  while (!ring.empty()) {
  }
}

void BM_SpscRingThroughputSingle(benchmark::State& state) {
  SpscRing<uint64_t> ring(kCapacity);
  std::thread consumer(ConsumeSingles, std::ref(ring));
  PinnedTo pin(0);
  uint64_t next = 0;
  for (auto _ : state) {
    for (uint64_t i = 0; i < kItemsPerIteration; ++i) {
      while (!ring.try_push(next)) {
      }
      ++next;
    }
    Drain(ring);
  }
  while (!ring.try_push(kStop)) {
  }
  consumer.join();
  state.SetItemsProcessed(state.iterations() * kItemsPerIteration);
}
BENCHMARK(BM_SpscRingThroughputSingle)->UseRealTime();

// Producer pushes batches of state.range(0); consumer takes up to that many
// per consume() (one tail store each).
void BM_SpscRingThroughputBatch(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  SpscRing<uint64_t> ring(kCapacity);
  std::thread consumer(ConsumeBatches, std::ref(ring), batch);
  PinnedTo pin(0);
  std::array<uint64_t, 256> items;
  uint64_t next = 0;
  for (auto _ : state) {
    for (uint64_t sent = 0; sent < kItemsPerIteration;) {
      const size_t n = std::min<uint64_t>(batch, kItemsPerIteration - sent);
      for (size_t i = 0; i < n; ++i) items[i] = next + i;
      size_t done = 0;
      while (done < n) {
        done += ring.push_batch(std::span<uint64_t>(items.data() + done, n - done));
      }
      next += n;
      sent += n;
    }
    Drain(ring);
  }
  while (!ring.try_push(kStop)) {
  }
  consumer.join();
  state.SetItemsProcessed(state.iterations() * kItemsPerIteration);
}
BENCHMARK(BM_SpscRingThroughputBatch)->Arg(16)->Arg(64)->Arg(256)->UseRealTime();

// One iteration: a value goes to the echo thread through one ring and comes
// back through the other. Time per iteration is the round trip.
void BM_SpscRingRoundTrip(benchmark::State& state) {
  SpscRing<uint64_t> there(64), back(64);
  std::thread echo([&] {
    PinnedTo pin(1);
    for (;;) {
      uint64_t v;
      if (!there.try_pop(v)) continue;
      if (v == kStop) return;
      while (!back.try_push(v)) {
      }
    }
  });
  PinnedTo pin(0);
  uint64_t next = 0;
  for (auto _ : state) {
    while (!there.try_push(next)) {
    }
    uint64_t v;
    while (!back.try_pop(v)) {
    }
    if (v != next++) std::abort();
  }
  while (!there.try_push(kStop)) {
  }
  echo.join();
  state.SetItemsProcessed(state.iterations());  // round trips
}
BENCHMARK(BM_SpscRingRoundTrip)->UseRealTime();

}  // namespace
}  // namespace shardring::engine

BENCHMARK_MAIN();
