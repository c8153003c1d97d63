// engine/control.cc: run()'s own loop while the shards run: signals, the
// duration, the once-a-second tick and the checkpoints. No I/O of the
// shards happens here; the core threads carry that.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>

#include "engine/engine_impl.h"

namespace shardring {

using engine::Level;
using engine::Log;

void Engine::Impl::control(const sigset_t& sigs) {
  const auto deadline = config.duration ? started + *config.duration : Clock::time_point::max();
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  // Checkpoints: each one saves what the core threads snapshot and the
  // consumers publish after the previous one asked them.
  auto next_checkpoint =
      keeper ? Clock::now() + config.checkpoint_interval : Clock::time_point::max();
  while (!stop_requested.load()) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    if (now >= next_tick) {
      next_tick += std::chrono::seconds(1);
      if (config.on_tick) config.on_tick(stats());
    }
    if (now >= next_checkpoint) {
      next_checkpoint = now + config.checkpoint_interval;
      request_snapshots();
      checkpoint();
    }
    const auto until =
        std::min({deadline, next_tick, next_checkpoint, now + std::chrono::milliseconds(200)});
    const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(until - now);
    if (config.handle_signals) {
      timespec ts{static_cast<time_t>(wait.count() / 1'000'000'000),
                  static_cast<long>(wait.count() % 1'000'000'000)};
      siginfo_t info;
      const int sig = sigtimedwait(&sigs, &info, &ts);
      if (sig == SIGINT || sig == SIGTERM) {
        Log::write(Level::kInfo, -1, sig == SIGINT ? "SIGINT: stopping" : "SIGTERM: stopping");
        break;
      }
      if (sig == SIGHUP) {
        Log::write(Level::kInfo, -1, "SIGHUP: reopening");
        config.on_hangup();
      }
    } else {
      std::unique_lock lock(mu);
      cv.wait_for(lock, wait, [this] { return stop_requested.load(); });
    }
  }
}

}  // namespace shardring
