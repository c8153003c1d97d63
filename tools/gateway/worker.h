// tools/gateway/worker.h: one I/O thread of the synthetic gateway: its
// listening socket (SO_REUSEPORT), io_uring, provided receive buffers,
// timer wheel and accepted connections. A thin driver: it accepts, receives,
// sends and keeps timers; every protocol decision belongs to each
// connection's conn::ServerConnection (TLS, HTTP, WebSocket) and
// DiscordConn (the gateway protocol), and to http.h for plain requests.
//
// Threads: a Worker is made, run and destroyed on its own thread; it
// touches the Server::Shared only through the registry, the counters and
// the read-only parts (shared.h).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "conn/server.h"
#include "engine/timer_wheel.h"
#include "engine/uring.h"
#include "gateway/identify_buckets.h"
#include "tools/gateway/discord.h"
#include "tools/gateway/shared.h"

namespace shardring::gatewaysrv {

// The timers of the wheel. A cookie is engine::OpTag{Op::kTimer, slot,
// kind}: the generation field holds the kind. A connection's timers are all
// cancelled when it ends, so a cookie always names the slot's current one.
enum class TimerKind : uint8_t {
  kCloseLinger = static_cast<uint8_t>(conn::ServerTimer::kCloseLinger),
  kGenerate = conn::kServerTimerCount,  // DiscordTimer, in order
  kReconnect,
  kInvalidSession,
  kDelay,         // --delay-ms: the held send batch may go
  kHousekeeping,  // thread 0: forget expired sessions
  kCount,
};
inline constexpr size_t kTimerKinds = static_cast<size_t>(TimerKind::kCount);
static_assert(static_cast<size_t>(TimerKind::kDelay) ==
              conn::kServerTimerCount + kDiscordTimerCount);

// The longest a worker's wait for completions lasts.
inline constexpr auto kMaxWait = std::chrono::milliseconds(20);
// An IDENTIFY is timed as if it arrived as early as the beginning of the
// last full wait before the one that posted it (gateway::ArrivalBound,
// IdentifyBuckets::try_take_for): the worker cannot tell when in those two
// waits and passes the bytes came. While identifies are gated the wait is
// therefore cut to the window / kIdentifyWaitDivisor (at least
// kMinIdentifyWait), which bounds how early an identify read on an idle
// worker can be admitted (two waits). On Discord's 5 s window kMaxWait is shorter
// already; the 40 ms windows of load runs get 1 ms.
inline constexpr int64_t kIdentifyWaitDivisor = 40;
inline constexpr auto kMinIdentifyWait = std::chrono::milliseconds(1);
constexpr std::chrono::microseconds longest_wait(Clock::duration identify_window) {
  if (identify_window <= Clock::duration::zero()) return kMaxWait;
  return std::clamp(
      std::chrono::duration_cast<std::chrono::microseconds>(identify_window / kIdentifyWaitDivisor),
      std::chrono::microseconds(kMinIdentifyWait), std::chrono::microseconds(kMaxWait));
}
static_assert(longest_wait(Clock::duration::zero()) == kMaxWait);  // no gate
static_assert(longest_wait(std::chrono::seconds(5)) == kMaxWait);
static_assert(longest_wait(std::chrono::milliseconds(400)) == std::chrono::milliseconds(10));
static_assert(longest_wait(std::chrono::milliseconds(40)) == kMinIdentifyWait);

class Worker {
 public:
  Worker(Server::Shared& sh, int listen_fd, uint32_t index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Sets up the ring and the buffers (on the thread that will run).
  absl::Status init();
  // Serves until Server::stop(); then closes with 1001 and returns.
  void run();

 private:
  // One accepted socket.
  struct Conn {
    Conn(Server::Shared& sh, conn::ServerScratch& cs, DiscordScratch& ds);
    conn::ServerConnection conn;
    DiscordConn discord;
    int fd = -1;
    uint32_t slot = 0, gen = 0;
    bool dead = false;  // socket shut down; freed once no request is in flight
    bool send_inflight = false;
    bool recv_armed = false;
    std::span<const std::byte> inflight;  // the write in flight (the conn's)
    size_t inflight_off = 0;
    std::array<engine::TimerId, kTimerKinds> timers{};
  };

  void arm_accept();
  void arm_recv(Conn& c);
  void submit_send(Conn& c);
  Conn* lookup(uint32_t slot, uint32_t gen);
  void on_cqe(const io_uring_cqe& cqe);
  void on_accept(const io_uring_cqe& cqe);
  void on_recv(Conn& c, const io_uring_cqe& cqe);
  void on_send(Conn& c, int res);
  void on_timer(uint64_t cookie);
  // Socket bytes through the connection, then what they asked for.
  void process(Conn& c, std::span<std::byte> bytes, size_t slack);
  void on_event(Conn& c, const conn::ServerEvent& ev);
  // Carries out what the connection and its Discord side asked for.
  void sync(Conn& c);
  void start_send(Conn& c);
  void set_timer(Conn& c, TimerKind kind, std::optional<Instant> deadline);
  // Ends the connection now; freed by maybe_release() once no operation
  // refers to it.
  // `reset`: with TCP RST (SO_LINGER 0, no FIN), as a failing node would.
  void terminate(Conn& c, std::string_view why, bool reset = false);
  // Server::reset_all(): every connection of this thread, reset.
  void reset_all();
  void maybe_release(Conn& c);
  void begin_stop();

  Server::Shared& sh_;
  int listen_fd_;
  uint32_t index_;
  std::unique_ptr<engine::Uring> ring_;
  std::unique_ptr<engine::BufferRing> bufs_;
  std::optional<engine::TimerWheel> wheel_;
  conn::ServerScratch conn_scratch_;
  DiscordScratch discord_scratch_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> gens_;
  std::vector<uint32_t> free_;
  std::vector<std::pair<uint32_t, uint32_t>> rearm_;
  size_t live_ = 0;
  bool stopping_ = false;
  uint64_t reset_seen_ = 0;  // Shared::reset_gen acted on
  Instant stop_deadline_{};
  Instant now_{};
  // The earliest what the pass in hand reaps can have arrived (run() starts it).
  std::optional<gateway::ArrivalBound> arrival_;
};

}  // namespace shardring::gatewaysrv
