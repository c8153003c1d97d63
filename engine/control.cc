// engine/control.cc: run()'s own loop while the shards run: signals (a
// signalfd), stop requests (an eventfd), the duration, the once-a-second
// tick, checkpoints, and the service manager's notifications (READY=1,
// STATUS=, WATCHDOG=1, STOPPING=1). One poll(2) waits for all of them. No
// I/O of the shards happens here; the core threads carry that.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/engine_impl.h"
#include "engine/text.h"

namespace shardring {

using engine::Level;
using engine::Log;

namespace {

int64_t SteadyNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

bool Engine::Impl::cores_alive(Clock::time_point now, std::chrono::microseconds within) const {
  const int64_t oldest =
      SteadyNs(now) - std::chrono::duration_cast<std::chrono::nanoseconds>(within).count();
  for (const auto& c : shared->counters) {
    if (c->loop_ns.load(std::memory_order_relaxed) < oldest) return false;
  }
  return true;
}

void Engine::Impl::notify_status(const Stats& s, double events_per_s) {
  if (!notifier.enabled()) return;
  if (!notified_ready && s.shards_ever_ready >= s.shards && s.shards > 0) {
    notified_ready = true;
    notifier.send("READY=1");
  }
  notifier.send(cat("STATUS=", s.shards_ready, "/", s.shards, " shards ready, ",
                    static_cast<uint64_t>(events_per_s), " events/s"));
}

void Engine::Impl::control(const sigset_t& sigs) {
  const auto deadline = config.duration ? started + *config.duration : Clock::time_point::max();
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  auto next_checkpoint =
      keeper ? Clock::now() + config.checkpoint_interval : Clock::time_point::max();
  // The watchdog is fed at twice its rate, and only while every core
  // thread's loop has turned within half its interval.
  const auto watchdog = notifier.watchdog();
  auto next_watchdog =
      watchdog.count() > 0 ? Clock::now() + watchdog / 2 : Clock::time_point::max();
  const int sigfd = config.handle_signals ? ::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK) : -1;
  uint64_t last_events = stats().events;
  // The heartbeats of each second, for on_tick's Stats.
  auto late_window = std::make_unique<engine::HistogramWindow>();
  std::vector<pollfd> fds;
  while (!stop_requested.load()) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    if (now >= next_tick) {
      next_tick += std::chrono::seconds(1);
      Stats s = stats();
      const auto w = late_window->next(*heartbeat_lateness());
      s.heartbeat_lateness_last_s =
          LatencySummary{w.count, static_cast<double>(w.p50) / 1e6,
                         static_cast<double>(w.p99) / 1e6, static_cast<double>(w.max) / 1e6};
      notify_status(s, static_cast<double>(s.events - last_events));
      last_events = s.events;
      if (config.on_tick) config.on_tick(s);
    }
    if (now >= next_watchdog) {
      next_watchdog = now + watchdog / 2;
      if (cores_alive(now, watchdog / 2)) notifier.send("WATCHDOG=1");
    }
    if (now >= next_checkpoint) {
      next_checkpoint = now + config.checkpoint_interval;
      request_snapshots();
      checkpoint();
    }
    const auto until = std::min({deadline, next_tick, next_checkpoint, next_watchdog});
    const auto wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count() + 1;
    fds.clear();
    fds.push_back({stop_fd, POLLIN, 0});
    if (sigfd >= 0) fds.push_back({sigfd, POLLIN, 0});
    const size_t http_first = fds.size();
    if (http) http->fill_pollfds(fds);
    int timeout = static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 1000));
    if (http) {
      const int t = http->poll_timeout_ms(Clock::now());
      if (t >= 0) timeout = std::min(timeout, t);
    }
    const int n = ::poll(fds.data(), fds.size(), timeout);
    // The listener keeps its own deadlines (idle connections, a backoff
    // after running out of descriptors): it is told even when nothing came.
    if (http) http->on_poll({fds.data() + http_first, fds.size() - http_first}, Clock::now());
    if (n <= 0) continue;
    if (sigfd >= 0 && (fds[1].revents & POLLIN) != 0) {
      signalfd_siginfo si{};
      if (::read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
          Log::write(Level::kInfo, -1,
                     si.ssi_signo == SIGINT ? "SIGINT: stopping" : "SIGTERM: stopping");
          break;
        }
        if (si.ssi_signo == SIGHUP) {
          Log::write(Level::kInfo, -1, "SIGHUP: reopening");
          config.on_hangup();
        }
      }
    }
  }
  // However the loop ended (a signal, the duration, stop(), fail()), the
  // engine is stopping now (Engine::stopping()).
  stop_requested.store(true);
  if (notifier.enabled()) notifier.send("STOPPING=1");
  if (sigfd >= 0) ::close(sigfd);
}

}  // namespace shardring
