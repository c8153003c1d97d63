// tools/gateway/server.h: the synthetic Discord gateway server behind
// `shardring gateway` (docs/interface.md). Thread-per-core io_uring: each I/O
// thread has its own listening socket (SO_REUSEPORT), ring, provided
// receive buffers, timer wheel and connections; plain or TLS; HTTP
// (/api/v10/gateway/bot) and WebSocket (gateway v10, JSON) on one port.
//
// Threads: start(), port(), url(), stats() and stop() are for the thread
// that owns the Server (stats() may run while it serves: counters are
// atomics). Shared between I/O threads, under one mutex and touched only at
// IDENTIFY, RESUME and disconnect: the session registry (for RESUME on any
// thread), the per-shard counters' directory and the identify buckets
// (registry.h). Everything else belongs to one I/O thread.
//
// Inside (tools/gateway/): server.cc starts the threads; worker.cc is each
// thread's io_uring loop, a driver of conn::ServerConnection (conn/server.h:
// TLS, HTTP, WebSocket) and DiscordConn (discord.h: the gateway protocol);
// http.cc answers plain requests; registry.cc holds the shared sessions;
// stream.cc makes the events and replays; token.cc reads the bot's user id
// out of a token; faults.cc reads the fault flags.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/gateway/gateway_options.h"

namespace shardring::gatewaysrv {

// Events a session can replay on RESUME: a resume from a seq further back
// than this gets op 9 d=false. Replays are regenerated from the session's
// seed (an event's content is a function of its seq), so the window costs
// no memory per event; dispatches that are not from templates (READY,
// RESUMED, GUILD_MEMBERS_CHUNK) are kept, at most kMaxKeptDispatches.
inline constexpr uint64_t kReplayBufferEvents = 4096;
inline constexpr size_t kMaxKeptDispatches = 64;
// Client payload limits (Discord: "Gateway Rate Limits" and "Sending
// Events"): 120 payloads per 60 s (else close 4008), at most 4096 bytes
// each (else 4002).
inline constexpr uint32_t kClientSendLimit = 120;
inline constexpr std::chrono::seconds kClientSendWindow{60};
inline constexpr size_t kMaxClientPayload = 4096;
// Bytes queued for one connection (unsent frames) above which event
// generation pauses until the client reads: per-connection memory stays
// bounded whatever the client does. Replays and GUILD_CREATEs may exceed
// it once (they are bounded by the replay window and the guild count).
inline constexpr size_t kSendQueueBytes = 256 << 10;
// With --rate 0, the queue is topped up to this after each send.
inline constexpr size_t kDrainTopUpBytes = 128 << 10;
// After our close frame, how long we wait for the client's before closing
// the TCP connection.
inline constexpr std::chrono::milliseconds kCloseLinger{1000};

// Counters of one shard id (all sessions for it); from stats().
struct ShardCounters {
  uint64_t identifies = 0;   // READY sent
  uint64_t resumes = 0;      // RESUMED sent
  uint64_t events_sent = 0;  // dispatch frames queued, replays included
  uint64_t last_seq = 0;
  std::string session_id;  // latest session
  // IDENTIFYs naming this shard not answered with READY.
  uint64_t identifies_refused = 0;
  // RESUMEs of a session of this shard the gateway still knew, not answered
  // with RESUMED.
  uint64_t resumes_refused = 0;
};

struct Stats {
  uint64_t connections = 0;            // TCP connections accepted
  uint64_t sessions = 0;               // WebSocket sessions (upgrades)
  uint64_t identifies = 0;             // READY sent
  uint64_t resumes = 0;                // RESUMED sent
  uint64_t events_sent = 0;            // dispatch frames queued
  uint64_t identify_rate_limited = 0;  // op 9 for a too-fast identify
  // IDENTIFYs not answered with READY (op 9 or a close), rate-limited ones
  // included; RESUMEs not answered with RESUMED (op 9 or a close).
  uint64_t identifies_refused = 0;
  uint64_t resumes_refused = 0;
  uint64_t http_requests = 0;
  uint64_t tls_handshakes = 0;                             // completed, full or resumed
  uint64_t tls_resumed = 0;                                // of those, resumed (session ticket)
  std::vector<std::pair<uint32_t, ShardCounters>> shards;  // by shard id
};

class Server {
 public:
  // Reads the mix and TLS files, binds one socket per thread, starts the
  // threads and returns once they all serve (or the first error: bind
  // failure, io_uring unavailable, bad --mix or TLS files). Logs the
  // "listening on HOST:PORT" line on stderr.
  static absl::StatusOr<std::unique_ptr<Server>> start(const GatewayOptions& options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the real one when --listen asked for port 0).
  [[nodiscard]] uint16_t port() const noexcept;
  // "ws://HOST:PORT" or "wss://HOST:PORT": what clients should dial.
  [[nodiscard]] std::string url() const;
  [[nodiscard]] Stats stats() const;
  // {"sessions":..,"identifies":..,"resumes":..,"events_sent":..,
  //  "shards":{"0":{"identifies":..,"resumes":..,"events_sent":..,
  //  "last_seq":..,"session_id":"..","identifies_refused":..,
  //  "resumes_refused":..},...}, ...} (docs/interface.md lists every key).
  [[nodiscard]] std::string stats_json() const;

  // Sends close 1001 to every WebSocket client, waits for the sends (at
  // most about 1.5 s), closes everything and joins the threads.
  // Idempotent.
  void stop();
  // Fault: every connection is reset at once (TCP RST, no close frame), as
  // when a gateway node fails; the sessions are kept, so clients RESUME.
  // Any thread; the I/O threads act within their next loop turn (~20 ms).
  void reset_all();

  struct Shared;  // state shared by the I/O threads (server.cc)

 private:
  Server() = default;
  std::unique_ptr<Shared> shared_;
};

}  // namespace shardring::gatewaysrv
