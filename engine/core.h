// engine/core.h: a core thread and the shards it owns. One CoreThread per
// online core: its own io_uring, provided-buffer ring, timer wheel, parser,
// TLS context and session cache, and the connections of its shards. Nothing
// here is shared with other core threads except through `Shared` (the
// identify gate, the resolver, the event channels, the stop flag and the
// counters), so the hot path takes no locks.
//
// A shard's connection goes: resolve -> TCP connect -> TLS (wss://) ->
// WebSocket upgrade -> gateway::Session (HELLO, IDENTIFY/RESUME, heartbeats,
// dispatches) -> close -> backoff -> again. Every protocol decision is the
// shard's conn::ClientConnection's; the core thread (core_loop.h) carries
// them out with io_uring.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conn/client.h"
#include "engine/checkpoint.h"
#include "engine/event_channel.h"
#include "engine/histogram.h"
#include "engine/identify_gate.h"
#include "engine/resolver.h"
#include "engine/shard_status.h"
#include "engine/uring.h"
#include "engine/url.h"
#include "parse/event_type.h"
#include "parse/inflate.h"
#include "tls/context.h"

namespace shardring::engine {

// Receive buffers per core thread (kernel-provided, shared by its sockets).
inline constexpr uint16_t kRecvBuffers = 256;
inline constexpr uint32_t kRecvBufferBytes = 16 * 1024;
// Connections being set up at once per core thread (resolve, TCP connect,
// TLS handshake, WebSocket upgrade); more shards wait their turn, oldest
// first. A handshake's transient memory is many times an open connection's,
// and thousands at once leave the heap full of holes afterwards; at ~1 ms of
// CPU per TLS handshake, 64 keep a core busy at any round-trip time under
// 64 ms, and identifies are paced far slower than that anyway.
inline constexpr uint32_t kMaxDialsInFlight = 64;
// Delivery latency is sampled: one event in this many (a power of two) is
// timed, so the clock is read a few times per thousand events, not per event.
inline constexpr uint32_t kLatencySampleEvery = 16;
// Polls while waiting on the resolver, or on a full event channel.
inline constexpr std::chrono::milliseconds kResolvePoll{5};
inline constexpr std::chrono::milliseconds kBackpressurePoll{1};
// A loop pass that reaped at least this many completions was busy: the next
// wait does not linger (see Settings::coalesce).
inline constexpr unsigned kCoalesceBusyCompletions = 64;

// What every core thread of a process runs with (built once from Config).
struct Settings {
  // What each shard's connection needs: token, intents, shard count, the
  // gateway URL as text, large_threshold, presence, compression, --events,
  // routing keys, --validate-d.
  conn::ClientOptions client;
  Url gateway;  // with v=10&encoding=json
  tls::ClientOptions tls;
  unsigned consumers = 1;  // 0: handlers inline (Shared::deliver_inline)
  // Config::coalesce: after a light loop pass (some completions, fewer than
  // kCoalesceBusyCompletions) wait up to this long for more. 0: off.
  std::chrono::microseconds coalesce{0};
  std::chrono::milliseconds connect_timeout{};  // Config::connect_timeout
  // The longest a core thread's loop waits before it turns again (a
  // service manager's watchdog wants to see every loop turn).
  std::chrono::microseconds max_wait{1'000'000};
  UringFallbacks uring_fallbacks;  // Config::uring_fallbacks
};

// Counters one core thread publishes (relaxed atomics, summed when read).
struct CoreCounters {
  std::atomic<uint64_t> identifies{0}, resumes{0}, reconnects{0}, heartbeats{0}, zombies{0},
      replays_skipped{0}, backpressure_ms{0}, protocol_errors{0}, filtered{0}, tls_handshakes{0},
      tls_resumed{0};
  std::atomic<uint32_t> connected{0}, ready{0};
  // Events handed to the handler inline (Settings::consumers == 0).
  std::atomic<uint64_t> delivered_inline{0};
  // Steady-clock ns of the loop's last turn: a stalled core thread stops
  // the service manager's watchdog pings.
  std::atomic<int64_t> loop_ns{0};
  // Heartbeat deadline to frame queued, in ns (this core thread writes).
  Histogram heartbeat_late;
  // Handlers inline (Settings::consumers == 0): a sample of the time from
  // reading an event to handing it to the handler, in ns.
  Histogram delivery_latency;
  // Closes by code (shard_status.h CloseSlot) and events delivered by type
  // (parse::EventType); this core thread writes (Bump), anyone reads.
  std::array<std::atomic<uint64_t>, kCloseCodeSlots> closes{};
  std::array<std::atomic<uint64_t>, parse::kEventTypeCount> events_by_type{};
};

struct Shared {
  Settings settings;
  std::unique_ptr<IdentifyGate> gate;  // local, file:DIR, ...
  Resolver resolver;
  // channels[core][consumer]
  std::vector<std::vector<std::unique_ptr<EventChannel>>> channels;
  std::vector<std::unique_ptr<ConsumerWaker>> wakers;  // [consumer]
  // [consumer]: the checkpoint generation its last flush answered.
  std::vector<std::unique_ptr<std::atomic<uint64_t>>> flushed_gen;
  std::vector<std::unique_ptr<CoreCounters>> counters;  // [core]
  std::atomic<bool> stopping{false};
  // Shards of this process, how many have been READY at least once, and the
  // steady-clock ns when the last of them first was (0 until then).
  uint32_t shards_here = 0;
  std::atomic<uint32_t> ever_ready{0};
  std::atomic<int64_t> all_ready_ns{0};
  std::atomic<uint16_t> fatal_code{0};
  std::mutex fatal_mu;
  std::string fatal_message;
  std::function<void()> on_fatal;                           // wakes the engine's main thread
  std::function<void(const ShardChange&)> on_shard_change;  // Config's
  // consumers == 0: the core thread hands each event to this (the user's
  // handler) and calls idle_inline after a loop pass that delivered.
  std::function<void(const ChannelEvent&)> deliver_inline;
  std::function<void()> idle_inline;

  // Sessions across runs (docs/interface.md "--state"), shards first_shard..
  // restore[shard - first_shard]: a saved session to RESUME at start.
  uint32_t first_shard = 0;
  std::vector<Restore> restore;
  // A clean stop closes with 1000 (no store, or StopMode::kEndSessions);
  // false: with 4000, keeping the sessions to save.
  std::atomic<bool> end_sessions{true};
  // Bumped by run()'s thread at each checkpoint: core threads snapshot
  // their shards, consumers flush (on_idle) and publish what is done.
  std::atomic<uint64_t> checkpoint_gen{0};
  std::atomic<uint64_t> bot_user_id{0};  // READY's d.user.id
  // What the handlers have done, [shard - first_shard], when the engine
  // tracks it (no Config::sink_progress); under done_mu.
  bool track_done = false;
  std::atomic<bool> sink_failed{false};  // Engine::fail(): nothing more is done
  std::mutex done_mu;
  std::vector<Durable> done;

  Shared(Settings s, std::unique_ptr<IdentifyGate> g)
      : settings(std::move(s)), gate(std::move(g)) {}
  uint32_t consumer_of(uint32_t shard) const {
    return wakers.empty() ? 0 : shard % static_cast<uint32_t>(wakers.size());
  }
};

// Payloads other threads queue for this core's shards (Engine::send).
struct UserSends {
  struct Rewind {
    uint32_t slot;
    uint64_t seq, session_key;
  };
  std::mutex mu;
  std::vector<std::pair<uint32_t, std::string>> queue;  // (slot, payload)
  std::vector<Rewind> rewinds;                          // Engine::rewind
  std::atomic<bool> pending{false};
};

// A core thread's latest snapshot of its shards, for run()'s thread.
struct Snapshots {
  mutable std::mutex mu;
  std::vector<ShardSnapshot> shards;
  std::atomic<uint64_t> gen{0};  // the Shared::checkpoint_gen it answers
};

class CoreThread {
 public:
  CoreThread(uint32_t index, Shared& shared, std::vector<uint32_t> shards);
  ~CoreThread();
  CoreThread(const CoreThread&) = delete;
  CoreThread& operator=(const CoreThread&) = delete;

  // Starts the thread (pinned to `cpu` when >= 0). Blocks until its io_uring
  // is set up; returns the set-up error, if any.
  absl::Status start(int cpu);
  void join();
  // Any thread: wake the loop (stop, queued user sends).
  void wake();
  // Any thread, before or after start(): queue a user payload for one of
  // this thread's shards. False when the shard is not run here.
  bool queue_send(uint32_t shard, std::string payload);
  bool queue_rewind(uint32_t shard, uint64_t seq, uint64_t session_key);
  // Any thread: the sessions of this thread's shards as of the last
  // snapshot (one per Shared::checkpoint_gen, and one as the thread ends,
  // after its shards closed).
  std::vector<ShardSnapshot> snapshot() const;
  // Any thread: the status of this thread's shards, in shards() order.
  const std::vector<uint32_t>& shard_ids() const { return shards_; }
  const StatusSlot& status(size_t i) const { return status_[i]; }
  // The checkpoint generation the last snapshot answered.
  uint64_t snapshot_gen() const { return snaps_.gen.load(std::memory_order_acquire); }

 private:
  struct Loop;
  uint32_t index_;
  Shared& shared_;
  std::vector<uint32_t> shards_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  int wake_fd_ = -1;
  UserSends sends_;
  Snapshots snaps_;
  std::unique_ptr<StatusSlot[]> status_;  // [i]: shards_[i]
};

}  // namespace shardring::engine
