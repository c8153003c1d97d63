// tools/gateway/registry.h: what the synthetic gateway's I/O threads share
// about Discord sessions: the session registry (RESUME works on any
// thread), the per-shard counters, the identify buckets, and the resume
// window (--resume-window-s). Stage: the gateway's Discord role
// (tools/gateway/discord.h), after a payload is parsed. No I/O: the time
// comes in as an argument.
//
// Threads: every I/O thread calls it; one mutex guards the maps and the
// buckets, taken only at IDENTIFY, RESUME, disconnect and housekeeping
// (never per event). A session's own fields below its line belong to the
// one connection it is attached to.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/identify_buckets.h"
#include "tools/gateway/server.h"

namespace shardring::gatewaysrv {

using Clock = std::chrono::steady_clock;
using Instant = Clock::time_point;

// Counters of one shard id, all its sessions together.
struct ShardStats {
  std::atomic<uint64_t> identifies{0}, resumes{0}, events_sent{0}, last_seq{0};
  std::atomic<uint64_t> identifies_refused{0}, resumes_refused{0};
  std::string session_id;  // under the registry's mutex
};

// A dispatch that is not regenerated from a template (READY, RESUMED,
// GUILD_MEMBERS_CHUNK): kept for replay.
struct Kept {
  uint64_t seq;
  std::string payload;
};

// One Discord session. While `attached`, only the I/O thread of the
// connection that holds it touches the fields below the line; handing it to
// another connection goes through the registry.
struct SessionState {
  std::string id, token;
  uint32_t shard = 0, total = 1, guilds = 0;
  uint64_t seed = 0;            // events are a function of (seed, seq)
  uint64_t snowflake_base = 0;  // ids minted for this session's events
  ShardStats* stats = nullptr;
  bool attached = false;  // under the registry's mutex
  Instant detached_at;    // under the registry's mutex
  // ----
  uint64_t last_seq = 0;
  uint64_t generated = 0;     // template events (for --events)
  uint64_t replay_floor = 0;  // kept dispatches before this were dropped
  std::deque<Kept> kept;
};

// The answer to a RESUME.
enum class ResumeVerdict : uint8_t {
  kResumed,        // the session, now attached to the caller
  kUnknown,        // op 9 d=false
  kTokenMismatch,  // op 9 d=false
  kExpired,        // op 9 d=false: detached for longer than the window
  kTooOld,         // op 9 d=false: the seq is beyond the replay window
  kInUse,          // op 9 d=true: still attached to a connection
  kBadSeq,         // close 4007: a seq the session never reached
};
std::string_view to_string(ResumeVerdict v) noexcept;

// Server-wide counters (stats(), --stats-json); any thread, relaxed.
struct Counters {
  std::atomic<uint64_t> connections{0}, ws_sessions{0}, identifies{0}, resumes{0}, events_sent{0},
      rate_limited{0}, http_requests{0}, tls_handshakes{0}, tls_resumed{0};
  // IDENTIFYs not answered with READY, RESUMEs not answered with RESUMED.
  std::atomic<uint64_t> identifies_refused{0}, resumes_refused{0};
};

class Registry {
 public:
  // `identify_window` 0: identifies are never refused. `resume_window`: how
  // long a detached session stays resumable (0: forgotten at detach).
  Registry(uint32_t max_concurrency, std::chrono::milliseconds identify_window,
           std::chrono::seconds resume_window);

  // The identify gate, with the engine's bucket rule: true when shard
  // `shard` may identify, read at `now` and arrived no earlier than
  // `arrived_after` (IdentifyBuckets::try_take_for: the bucket's window is
  // then spent from `arrived_after`); otherwise *bucket and *early say
  // which bucket refused and how early.
  [[nodiscard]] bool try_identify(uint32_t shard, Instant now, Instant arrived_after,
                                  uint32_t* bucket, Clock::duration* early);

  // The identify window; zero when identifies are never refused.
  [[nodiscard]] Clock::duration identify_window() const noexcept {
    return gate_ ? buckets_.window() : Clock::duration::zero();
  }

  // An IDENTIFY was refused (op 9 or a close): counted for `shard` when the
  // IDENTIFY named a valid one (the server-wide count is the caller's).
  void count_identify_refused(std::optional<uint32_t> shard);

  // Registers a new session, attached to its connection (`s.id` unique).
  void add(const std::shared_ptr<SessionState>& s);
  // Looks up session `id` for a RESUME from `seq` with `token`. kResumed
  // hands the session over, attached; kExpired and kTooOld forget it. Any
  // other verdict than kUnknown counts as a refused resume of the session's
  // shard (the server-wide count is the caller's): only a known session
  // says which shard a RESUME was for.
  ResumeVerdict resume(const std::string& id, std::string_view token, uint64_t seq, Instant now,
                       std::shared_ptr<SessionState>* out);
  // The session's connection ended at `now`: resumable for the window, or
  // forgotten now when the window is 0.
  void detach(SessionState& s, Instant now);
  // The session is over (Discord's rules: a close with 1000/1001, ...).
  void forget(const std::string& id);
  // Forgets sessions detached for longer than the window.
  void expire(Instant now);

  [[nodiscard]] std::vector<std::pair<uint32_t, ShardCounters>> shard_counters() const;

 private:
  ShardStats* stats_for(uint32_t shard);  // under mu_
  // resume()'s answer for a session it found (under mu_).
  ResumeVerdict verdict(const SessionState& s, std::string_view token, uint64_t seq,
                        Instant now) const;

  mutable std::mutex mu_;
  gateway::IdentifyBuckets buckets_;
  bool gate_ = true;
  const Clock::duration resume_window_;
  std::unordered_map<std::string, std::shared_ptr<SessionState>> sessions_;
  std::map<uint32_t, std::unique_ptr<ShardStats>> shard_stats_;
};

}  // namespace shardring::gatewaysrv
