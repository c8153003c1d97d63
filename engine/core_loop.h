// engine/core_loop.h: the inside of a core thread, shared by the files that
// implement it (internal to engine/): core.cc (the io_uring loop, sockets,
// timers, carrying out what each connection asks), dial.cc (admission,
// resolve, connect, the connect timeout), deliver.cc (events to the handler
// inline or to the consumers' channels, backpressure) and notes.cc (the
// connection's notes as log lines and counters). Every
// protocol decision is the conn::ClientConnection's; this code owns the
// sockets, buffers, timers and threads, and names no opcode or close code.
// Used only by the core thread that owns the loop.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/fifo.h"
#include "conn/client.h"
#include "engine/core.h"
#include "engine/timer_wheel.h"
#include "engine/uring.h"

namespace shardring::engine {

using Clock = std::chrono::steady_clock;

// Timers in the wheel: the connection's (conn::Timer) and the driver's own.
// A timer's cookie is an OpTag{Op::kTimer, slot, kind}.
enum class DriverTimer : uint8_t {
  kConnectTimeout = conn::kTimerCount,
  kIdentifyRetry,
  kResolvePoll,
  kUnpause,
  kCount,
};
inline constexpr size_t kAllTimers = static_cast<size_t>(DriverTimer::kCount);
constexpr uint8_t TimerKind(conn::Timer t) { return static_cast<uint8_t>(t); }
constexpr uint8_t TimerKind(DriverTimer t) { return static_cast<uint8_t>(t); }

// An event the consumer's channel had no room for: owned until it fits.
struct OwnedEvent {
  ChannelEvent event;  // t and d point into `bytes` once pushed
  std::string bytes;   // t, then d
};

// One shard: its connection and what the driver keeps for its socket.
struct Shard {
  Shard(const conn::ClientOptions& options, conn::ClientScratch& scratch, uint32_t shard_id)
      : conn(options, scratch, shard_id) {}

  conn::ClientConnection conn;
  uint32_t slot = 0;
  uint32_t gen = 1;  // bumped when the socket closes: late completions are stale
  uint32_t consumer = 0;
  int fd = -1;
  int ops = 0;  // io_uring requests in flight, any generation
  Url url;
  SocketAddress addr;
  std::vector<std::byte> inflight;  // the write in flight
  size_t inflight_off = 0;
  bool send_inflight = false;
  bool recv_armed = false;
  bool want_connect = false;  // dial once the old socket's requests are done
  bool dialing = false;       // counted in Loop::dialing
  bool dial_queued = false;   // in Loop::dial_queue
  bool ready = false;         // counted in CoreCounters::ready
  bool ever_ready = false;    // counted in Shared::ever_ready
  bool counted_connected = false;
  Durable delivered;             // the last event handed towards the sink (checkpoints)
  StatusSlot* status = nullptr;  // what other threads see of it
  bool done_touched = false;     // in Loop::done_touched
  // Backpressure: receive buffers (id, length) not yet handed to the
  // connection, and events it produced that found no room, oldest first.
  bool paused = false;
  Clock::time_point paused_since{};
  base::Fifo<std::pair<uint16_t, uint32_t>> held;
  base::Fifo<OwnedEvent> backlog;
  std::array<TimerId, kAllTimers> timers{};
};

struct CoreThread::Loop {
  Loop(uint32_t index, Shared& shared, const std::vector<uint32_t>& shards, int wake_fd,
       UserSends& sends, Snapshots& snaps, StatusSlot* status);
  absl::Status init();
  void run();

  // core.cc: the loop, completions, sockets, timers, the connection's asks.
  void on_cqe(const io_uring_cqe& cqe);
  void on_recv(Shard& sh, const io_uring_cqe& cqe, bool stale);
  void on_send(Shard& sh, const io_uring_cqe& cqe, bool stale);
  void arm_recv(Shard& sh);
  void submit_send(Shard& sh);
  void process(Shard& sh, uint16_t bid, uint32_t len);
  // Hands back every buffer of a receive completion of `len` bytes from `bid`.
  void recycle_received(uint16_t bid, uint32_t len);
  // Carries out everything the connection asked for since its last input.
  void sync(Shard& sh);
  // notes.cc: one note as a log line and counters.
  void on_note(Shard& sh, const conn::NoteRecord& n);
  void close_socket(Shard& sh);
  void set_ready(Shard& sh, bool ready);
  // The shard's StatusSlot, after every input.
  void publish_status(Shard& sh);
  void arm(Shard& sh, uint8_t kind, Clock::time_point deadline);
  void disarm(Shard& sh, uint8_t kind);
  void on_timer(uint64_t cookie);
  void request_identify(Shard& sh);
  void fatal(Shard& sh, const gateway::Fatal& f);
  void take_user_sends();
  void start_shutdown();
  // Copies every shard's session state into `snaps` (checkpoints).
  void take_snapshot();
  bool all_quiet() const;
  void arm_wake();
  void publish_inline();

  // dial.cc
  void dial(Shard& sh);
  void admit_dials();
  void dial_ended(Shard& sh);
  void resolve_and_connect(Shard& sh);
  void on_connected_tcp(Shard& sh);
  void connect_failed(Shard& sh);

  // deliver.cc
  EventChannel& channel(Shard& sh) { return *shared.channels[index][sh.consumer]; }
  void deliver(Shard& sh, const conn::Dispatch& ev);
  void hold(Shard& sh, uint16_t bid, uint32_t len);
  void pause(Shard& sh);
  void end_pause(Shard& sh);
  void unpause(Shard& sh);
  bool push_backlog(Shard& sh);

  uint32_t index;
  Shared& shared;
  const Settings& s;
  int wake_fd;
  CoreCounters& counters;
  std::unique_ptr<Uring> ring;
  BufferRing bufs;
  TimerWheel wheel{Clock::now(), 4096};
  std::optional<tls::Context> tls_ctx;
  conn::ClientScratch scratch;
  std::vector<std::unique_ptr<Shard>> shards;
  // Connections being set up now (Shard::dialing), and the slots of shards
  // waiting for one of those to end (kMaxDialsInFlight).
  uint32_t dialing = 0;
  base::Fifo<uint32_t> dial_queue;
  Clock::time_point now{};
  const Shard* heartbeat_timer_shard = nullptr;  // while a heartbeat timer runs
  Clock::time_point heartbeat_deadline{};
  uint64_t enobufs = 0;
  uint64_t pushed_consumers = 0;
  bool shutting_down = false;
  Clock::time_point shutdown_deadline{};
  uint64_t wake_buf = 0;
  bool wake_armed = false;
  UserSends& sends;
  Snapshots& snaps;
  uint64_t checkpoint_gen_seen = 0;
  const bool inline_handlers;  // Settings::consumers == 0
  bool bundles = false;        // ring->features().recv_bundle
  uint64_t delivered_inline = 0, published_inline = 0;
  uint32_t latency_sample = 0;  // every kLatencySampleEvery-th event is timed
  // Inline handlers with Shared::track_done: slots that delivered since the
  // last publish_inline().
  std::vector<uint32_t> done_touched;
};

}  // namespace shardring::engine
