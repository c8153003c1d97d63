// engine/redis_sink.h: `--sink redis`: every dispatch event into a Redis
// stream per shard (`P:shard:N`, fields seq, t, d), exactly once across
// resends, resumes, restarts and takeovers (redis/scripts.h kAppendScript).
//
// One RedisWriter per consumer thread, each with its own connection to
// Redis, all sharing one RedisOutput (the failure state, the counts, and
// what is durable per shard for checkpoints). A writer buffers events and
// writes them in one pipelined round trip when its consumer runs dry, or
// when kFlushBytes are buffered: one script call per shard and session in
// the batch, at most kMaxEventsPerCall events each.
//
// Redis faults:
// - Unreachable, a timeout, a reset, or a reply that says to wait
//   (LOADING, BUSY, TRYAGAIN, READONLY, MASTERDOWN): the writer reconnects
//   with backoff and sends the whole batch again, for as long as it takes.
//   Meanwhile its consumer goes on taking events into the writer's buffer
//   while the process's writers hold less than buffer_bytes
//   (`--redis-buffer-mib`), retrying on a timer (Engine::on_idle_timed);
//   past that the consumer waits, so the engine's ring fills and the shards
//   stop reading (TCP pushes back to the gateway); heartbeats go on. The
//   outage is logged once when it starts and once when it ends.
// - While the engine stops, a writer tries for stop_retry (5 s) more, then gives
//   up: what it held was not checkpointed, so the next run replays it.
// - Any other error reply (OOM, MISCONF, NOPERM, WRONGTYPE, ...) will not go
//   away by waiting: the sink fails (on_failure: the run stops, exit 4,
//   sessions saved at what Redis holds). FENCED (another process took the
//   shard over) fails the same way: this process must not write.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/histogram.h"
#include "engine/redis_link.h"
#include "engine/session_store.h"

namespace shardring::engine {

struct ChannelEvent;

// `--redis-buffer-mib`: what a process buffers through a Redis outage before
// its shards stop reading. Each writer addresses its buffer with 32-bit
// offsets, so the cap stays well below 4 GiB.
inline constexpr int64_t kDefaultRedisBufferMiB = 64;
inline constexpr int64_t kMaxRedisBufferMiB = 2048;

struct RedisSinkOptions {
  RedisUrl url;
  std::string prefix = "shardring";
  // By shard id: the fence this process holds (engine/redis_store.h
  // claim_shards). A shard without one is claimed by the writer before its
  // first append (HINCRBY of its fence): from then on a process that wrote
  // the shard before is fenced off.
  std::vector<std::string> fences;
  // Resumes `shard` from `seq` of `session` (Engine::rewind): the stream
  // lost what was appended after it. Unset: the loss is only logged.
  std::function<void(uint32_t shard, uint64_t seq, uint64_t session)> rewind;
  // True once the engine is stopping: a writer then retries for at most
  // stop_retry more.
  std::function<bool()> stopping;
  std::chrono::milliseconds stop_retry = std::chrono::seconds(5);
  // What the process's writers together buffer through an outage (t and d
  // bytes) before their consumers wait; 0: they wait at once.
  size_t buffer_bytes = 0;
};

class RedisOutput {
 public:
  static constexpr std::chrono::milliseconds kMinBackoff{50};
  static constexpr std::chrono::milliseconds kMaxBackoff{2000};

  explicit RedisOutput(RedisSinkOptions opts);
  RedisOutput(const RedisOutput&) = delete;
  RedisOutput& operator=(const RedisOutput&) = delete;

  // Called once, on the thread that saw the failure, with a one-line reason
  // starting with "redis: ". Set before the first write.
  void on_failure(std::function<void(const std::string&)> f) { on_failure_ = std::move(f); }
  bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  // Events appended to the streams (not counting the ones already there).
  uint64_t lines() const noexcept { return appended_.load(std::memory_order_relaxed); }
  // Events a stream already held (resends, replays): not appended again.
  uint64_t skipped() const noexcept { return skipped_.load(std::memory_order_relaxed); }
  // Events handed over that Redis holds, appended now or before (a resend
  // after a reply lost in an outage): the summary's `events`.
  uint64_t held() const noexcept { return lines() + skipped(); }
  // Shards resumed because their stream had lost appended events.
  uint64_t rewinds() const noexcept { return rewinds_.load(std::memory_order_relaxed); }
  // A checkpoint (Config::sink_progress): the last event per shard that
  // Redis acknowledged. Returns "redis".
  std::string progress(std::vector<Durable>& by_shard);
  const std::string& name() const { return name_; }
  const RedisSinkOptions& options() const { return opts_; }
  // Any thread: the fence this process holds for `shard`; empty when not
  // claimed yet.
  std::string fence(uint32_t shard);
  // Writers waiting on Redis now (an outage).
  int waiting();
  // Bytes of events the writers hold through an outage (buffer_bytes).
  uint64_t buffered() const noexcept { return buffered_.load(std::memory_order_relaxed); }

 private:
  friend class RedisWriter;
  void record(uint32_t shard, Durable d, uint64_t appended, uint64_t skipped);
  void fail(const std::string& reason);
  void set_fence(uint32_t shard, std::string fence);
  // A writer's outage starts (down) or ends: recovered, or given up.
  void outage(bool down, const std::string& why, bool recovered = true);

  RedisSinkOptions opts_;
  std::string name_;
  std::mutex mu_;
  std::vector<Durable> written_;     // by shard id, under mu_
  std::vector<std::string> fences_;  // by shard id, under mu_
  int outages_ = 0;                  // writers now retrying, under mu_
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> appended_{0}, skipped_{0}, rewinds_{0}, buffered_{0};
  std::function<void(const std::string&)> on_failure_;
};

class RedisWriter {
 public:
  static constexpr size_t kFlushBytes = 256 * 1024;
  static constexpr size_t kMaxEventsPerCall = 512;

  explicit RedisWriter(std::shared_ptr<RedisOutput> out);
  ~RedisWriter();
  // Copies the event; writes when kFlushBytes are buffered. Through an
  // outage, retries when its backoff has passed, and waits once the process
  // buffers buffer_bytes. Dropped once the output has failed.
  void append(const ChannelEvent& e);
  // From the gateway's send stamp (Event::sent_ns, `shardring gateway`
  // only) to Redis acknowledging the append: the hand-off's lag.
  const Histogram& lag() const { return lag_; }
  // The consumer ran dry (Engine::on_idle_timed): writes what is buffered,
  // in one pipelined round trip. Through an outage with buffer room left it
  // returns at once, the events held; the result is how soon to call again
  // (zero: nothing is held).
  std::chrono::milliseconds idle();
  // Writes what is buffered; returns when Redis has it, or the output
  // failed, or the engine stops and stop_retry passed.
  void flush();

 private:
  using Clock = std::chrono::steady_clock;
  enum class Attempt { kDone, kRetry, kFailed };
  struct Pending {
    uint32_t shard;
    uint64_t seq, session;
    int64_t sent_ns;
    uint32_t t_off, t_len, d_off, d_len;
  };
  // A shard whose stream lost events: resumed from `seq`. Until the
  // replay arrives (a seq at or below the highest seen), what the old
  // connection still delivers is dropped: it would leave a hole.
  struct Rewinding {
    bool on = false;
    uint64_t session = 0, max_seen = 0;
  };
  void on_lost(uint32_t shard, uint64_t session, uint64_t have);
  // One script call: events [begin, end) of order_, one shard and session.
  struct Call {
    size_t begin, end;
  };
  // Claims the shards of the batch this process holds no fence for.
  bool claim(std::string* error);
  void build();
  // One pipelined round trip of everything buffered; kRetry: a fault that
  // waiting may fix, described in *error.
  Attempt attempt(std::string* error);
  // Into an outage (logged by the first writer), or the next backoff step.
  void retry_later(const std::string& error);
  void clear();  // after the batch was written, or given up
  // Counts what the arena grew by in the output's buffered bytes.
  void account();
  bool stopping() const;

  std::shared_ptr<RedisOutput> out_;
  RedisLink link_;
  RedisScript script_;
  std::string arena_;  // t and d bytes of the buffered events
  std::vector<Pending> pending_;
  std::vector<uint32_t> order_;  // indexes into pending_, grouped by shard
  std::vector<Call> calls_;
  std::vector<std::string> fences_;   // by shard id: this writer's copy
  std::vector<Durable> known_;        // by shard id: the last appended, as Redis said
  std::vector<Durable> seen_;         // by shard id: the last event given to append()
  std::vector<Rewinding> rewinding_;  // by shard id
  bool down_ = false;                 // in an outage (counted in RedisOutput::waiting)
  bool holding_ = false;              // buffering through it: retry at retry_at_
  Clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
  size_t accounted_ = 0;  // bytes of arena_ counted in RedisOutput::buffered_
  Histogram lag_;
  std::string wire_;
  std::vector<redis::Reply> replies_;
};

}  // namespace shardring::engine
