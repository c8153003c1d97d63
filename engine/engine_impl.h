// engine/engine_impl.h: the inside of shardring::Engine (internal to
// engine/). engine.cc starts a run (checks the configuration, asks
// /gateway/bot, plans the sessions to resume, starts the threads) and
// answers the API; control.cc is run()'s loop while the shards run;
// consumers.cc the consumer threads and the checkpoints.
#pragma once

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "engine/commands.h"
#include "engine/core.h"
#include "engine/engine.h"
#include "engine/http_server.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/notify.h"
#include "engine/sessions.h"
#include "parse/envelope.h"

namespace shardring {

using Clock = std::chrono::steady_clock;

struct Engine::Impl {
  Config config;
  std::function<void(const Event&)> handler;
  std::function<std::chrono::milliseconds()> idle;  // on_idle, on_idle_timed
  std::unique_ptr<engine::Shared> shared;
  std::vector<std::unique_ptr<engine::CoreThread>> cores;
  std::vector<uint32_t> shard_core;  // shard - first -> core index
  uint32_t first = 0, last = 0;
  std::vector<std::thread> consumers;
  std::vector<std::unique_ptr<std::atomic<uint64_t>>> delivered;  // per consumer
  std::atomic<bool> consumers_stop{false};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> failed{false};  // fail() was called: run() returns 4
  std::atomic<bool> started_cores{false};
  Clock::time_point started{};
  std::atomic<uint64_t> peak_rss{0};
  std::unique_ptr<engine::SessionKeeper> keeper;  // with a session store
  std::optional<parse::GatewayBot> bot;           // /gateway/bot, when asked
  std::atomic<int> stop_mode{-1};                 // stop(mode); -1: Config's
  uint32_t restored = 0;                          // sessions taken up at start

  static int64_t UnixMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static double CpuSeconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  static uint64_t PeakRssKib() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<uint64_t>(ru.ru_maxrss);
  }

  // The control loop's wake-up (an eventfd) and its service-manager link.
  int stop_fd = -1;
  engine::Notifier notifier;
  bool notified_ready = false;
  std::unique_ptr<engine::HttpListener> http;  // Config::metrics_listen
  engine::CommandChecker commands;             // Engine::send's checks
  // [consumer]: a sample of the time from reading an event to its handler.
  std::vector<std::unique_ptr<engine::Histogram>> consumer_latency;

  Impl() : stop_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Impl() {
    if (stop_fd >= 0) ::close(stop_fd);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void request_stop() {
    stop_requested.store(true);
    if (stop_fd >= 0) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(stop_fd, &one, sizeof one);
    }
  }

  void fail(std::string_view reason) {
    if (shared) shared->sink_failed.store(true, std::memory_order_release);
    if (!failed.exchange(true)) {
      engine::Log::write(engine::Level::kError, -1, "the sink failed: stopping",
                         {{"reason", reason}});
    }
    request_stop();
  }

  // engine.cc
  absl::Status resolve_gateway(uint32_t* max_concurrency);
  int run();
  Stats stats() const;
  // Every core thread's heartbeat lateness so far, merged.
  std::unique_ptr<engine::Histogram> heartbeat_lateness() const;
  std::vector<ShardInfo> shard_infos() const;
  // control.cc: until a stop, the duration or a fatal close.
  void control(const sigset_t& sigs);
  // Every core thread's loop turned within `within` before `now`.
  bool cores_alive(Clock::time_point now, std::chrono::microseconds within) const;
  // READY=1 (once every shard was ready once) and STATUS= to the service
  // manager.
  void notify_status(const Stats& s, double events_per_s);
  // metrics.cc: the answer to an HTTP GET of `path` (/metrics, /healthz,
  // /shards).
  engine::HttpReply serve_http(std::string_view path);
  void collect(engine::ProcessMetrics* p, std::vector<engine::ShardMetrics>* out);
  // consumers.cc
  // One event to the user's handler, on a consumer thread or (consumers =
  // 0) on its core thread.
  void handle(const engine::ChannelEvent& e) const;
  void consumer_main(unsigned c);
  // Asks the core threads for a snapshot of their shards and the consumers
  // for a flush, and waits (up to kCheckpointWait) for the answers, so a
  // checkpoint is as fresh as the threads allow; a thread busy longer (a
  // slow handler) is saved as of its last answer.
  void request_snapshots();
  // The sessions to save now: the core threads' last snapshots with what
  // is done (the engine's tracking or the sink's own word).
  void checkpoint();
};

}  // namespace shardring
