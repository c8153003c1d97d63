// bench/gateway_session_bench.cc: what gateway::Session costs per input.
// The unit is dispatches (or heartbeat cycles) per second: on_dispatch() is
// the per-event hot path and must stay a handful of instructions.
#include <chrono>
#include <cstdint>

#include "benchmark/benchmark.h"
#include "gateway/session.h"

namespace shardring::gateway {
namespace {

using namespace std::chrono_literals;

Session ReadySession() {
  Config c;
  c.token = "bench-token";
  c.gateway_url = "wss://gateway.discord.gg";
  Session s(c, 0.5);
  const Clock::time_point t0{};
  (void)s.on_connected(t0);
  (void)s.on_hello(41'250ms, t0);
  (void)s.on_identify_granted(t0);
  (void)s.on_ready(1, "session", "wss://resume.discord.gg", t0);
  return s;
}

// Fresh events in order: every one delivered.
void BM_GatewaySessionDispatch(benchmark::State& state) {
  Session s = ReadySession();
  uint64_t seq = 1;
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) {
      benchmark::DoNotOptimize(s.on_dispatch(++seq));
    }
  }
  state.SetItemsProcessed(state.iterations() * 1000);  // dispatches
}
BENCHMARK(BM_GatewaySessionDispatch);

// A replay after a resume: every one skipped.
void BM_GatewaySessionDispatchReplayed(benchmark::State& state) {
  Session s = ReadySession();
  (void)s.on_dispatch(1'000'000);
  for (auto _ : state) {
    for (uint64_t seq = 1; seq <= 1000; ++seq) {
      benchmark::DoNotOptimize(s.on_dispatch(seq));
    }
  }
  state.SetItemsProcessed(state.iterations() * 1000);  // dispatches
}
BENCHMARK(BM_GatewaySessionDispatchReplayed);

// Heartbeat timer, send, ACK: the per-interval work of an idle shard.
void BM_GatewaySessionHeartbeatCycle(benchmark::State& state) {
  Session s = ReadySession();
  Clock::time_point now{20'625ms};
  for (auto _ : state) {
    Actions out = s.on_timer(TimerId::kHeartbeat, now);
    benchmark::DoNotOptimize(out.data());
    (void)s.on_heartbeat_ack(now + 50ms);
    now += 41'250ms;
  }
  state.SetItemsProcessed(state.iterations());  // heartbeat cycles
}
BENCHMARK(BM_GatewaySessionHeartbeatCycle);

}  // namespace
}  // namespace shardring::gateway

BENCHMARK_MAIN();
