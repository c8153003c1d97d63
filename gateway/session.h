// gateway/session.h: the Discord gateway v10 state machine for one shard.
// Stage: gateway, after parse::Envelope on the way in and before ws::Encoder
// on the way out. Sans-I/O: typed inputs plus `now` in, a short list of
// Actions out; it never reads a clock, draws a random number or touches a
// socket. Jitter in [0, 1) comes from the caller (set_jitter()). One Session
// per shard, used only by the core thread that owns the shard.
//
// Life of a connection, as the engine drives it:
//   (engine dials config.gateway_url, or the url of the last Reconnect)
//   on_connected()             -> StartTimer(kHelloTimeout)
//   on_hello(interval)         -> StartTimer(kHeartbeat at interval*jitter),
//                                 then RequestIdentify (no session) or
//                                 SendText(RESUME) (a session to resume)
//   on_identify_granted()      -> SendText(IDENTIFY)
//   on_ready()/on_resumed()    -> the session is live; queued sends go out
//   on_dispatch(seq)           -> deliver or not (a replay already delivered)
//   on_close()/on_connection_lost()/zombie/op 7/op 9
//                              -> [CloseConnection] Reconnect{url, delay, mode}
//                                 or Fatal
// After a Reconnect the engine waits `delay`, dials `url` and calls
// on_connected() or on_connect_failed(). Events still arriving from the old
// connection (the echo of our close frame, its EOF) are ignored until then.
//
// Discord docs: "Gateway" (connections, heartbeats, resuming, rate limits) and
// "Opcodes and Status Codes" (close codes; see close_codes.h).
#ifndef SHARDRING_GATEWAY_SESSION_H_
#define SHARDRING_GATEWAY_SESSION_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "base/fifo.h"
#include "base/rng.h"
#include "gateway/close_codes.h"
#include "gateway/opcodes.h"
#include "gateway/payloads.h"
#include "gateway/send_window.h"
#include "gateway/session_key.h"
#include "parse/envelope.h"

namespace shardring::gateway {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Errors from queue_send(). Nothing else in a session fails: protocol
// violations by the peer are handled as data (close and reconnect).
enum class Errc : uint8_t {
  kOk,
  kPayloadTooLarge,  // over kMaxPayloadBytes (4096): never sent
  kEmptyPayload,     // zero bytes: not a gateway payload
  kQueueFull,        // kMaxQueuedSends already waiting for the rate limit
  kSessionEnded,     // after Fatal or shutdown(): nothing will be sent
};
std::string_view to_string(Errc e) noexcept;

// --- Limits and timings (Discord docs, "Gateway": "Rate Limiting",
// "Sending Heartbeats", "Resuming"). ---

// At most 120 sends per connection in any 60 s. kHeartbeatReserve of them are
// kept for HEARTBEAT/IDENTIFY/RESUME, so user sends stop at 115 and can never
// starve the heartbeat into a zombie close.
inline constexpr int kMaxSendsPerWindow = 120;
inline constexpr Millis kSendWindow{60'000};
inline constexpr int kHeartbeatReserve = 5;
inline constexpr int kMaxUserSendsPerWindow = kMaxSendsPerWindow - kHeartbeatReserve;
// Send times a session holds without a heap array (SendWindow): an idle
// shard's IDENTIFY or RESUME and heartbeats in any kSendWindow fit.
inline constexpr int kInlineSendTimes = 6;
// User sends waiting for the rate limit (or for READY); more is kQueueFull.
inline constexpr size_t kMaxQueuedSends = 1024;
// Reconnect backoff. The first reconnect after a healthy session waits
// jitter * kBackoffBase (Discord: op 7 "reconnect immediately"; the jitter
// spreads a gateway node's whole fleet). Each further failure without a READY
// or RESUMED doubles d = kBackoffBase * 2^n up to kBackoffCap and waits
// d/2 + jitter * d/2.
inline constexpr Millis kBackoffBase{1'000};
inline constexpr Millis kBackoffCap{60'000};
// Op 9 d=false: "wait a random amount of time between 1 and 5 seconds".
inline constexpr Millis kInvalidSessionMinWait{1'000};
inline constexpr Millis kInvalidSessionMaxWait{5'000};
// Dials of a session's resume URL that fail in a row (no TCP, TLS or
// WebSocket) before the session is resumed through the configured gateway
// URL instead: a saved resume URL may name a gateway node that is gone.
inline constexpr uint32_t kResumeUrlAttempts = 3;
// A connection that sends no HELLO within this long is closed and retried.
inline constexpr Millis kHelloTimeout{20'000};
// HELLO's heartbeat_interval is clamped into this range: below 1 s the
// heartbeats alone would eat the 120/60 s budget; above 10 min a dead
// connection would go unnoticed. Discord sends 41250 ms.
inline constexpr Millis kMinHeartbeatInterval{1'000};
inline constexpr Millis kMaxHeartbeatInterval{600'000};
// READY fields longer than this are not kept (the session then identifies
// instead of resuming). Discord's are 32 bytes and about 40 bytes.
inline constexpr size_t kMaxSessionIdBytes = 128;
inline constexpr size_t kMaxResumeUrlBytes = 512;

// --- Actions: requests from the session to the engine, in order. ---

enum class TimerId : uint8_t {
  kHeartbeat,     // the next heartbeat is due (and the last one's ACK)
  kHelloTimeout,  // HELLO did not come
  kSendWindow,    // the send window has room again for what is waiting
};
inline constexpr size_t kTimerCount = 3;

enum class SendKind : uint8_t { kHeartbeat, kIdentify, kResume, kUser };
enum class ConnectMode : uint8_t { kResume, kIdentify };

// One text frame to send. IDENTIFY and RESUME contain the token: log the
// kind and size (to_string() does), never `json`.
struct SendText {
  SendKind kind;
  std::string json;
};
// Arm (or re-arm, replacing the old deadline) this shard's timer `id`. The
// engine calls on_timer(id, now) at or after `deadline`, never before.
struct StartTimer {
  TimerId id;
  Clock::time_point deadline;
};
struct CancelTimer {
  TimerId id;
};
// Ask the identify gate for a slot; it answers with on_identify_granted().
// At most one request is outstanding at a time, across connections.
struct RequestIdentify {};
// Send a close frame with `code` and drop the connection. 1000 ends the
// session; kCloseResumable (4000) keeps it resumable.
struct CloseConnection {
  uint16_t code;
};
// After `delay`, dial `url` (resume_gateway_url to resume, config.gateway_url
// to identify) and call on_connected() or on_connect_failed().
struct Reconnect {
  std::string url;
  Millis delay;
  ConnectMode mode;
};
// The gateway refused this shard for good (4004, 4010-4014): the process
// exits 3 and prints `message` (names the code and the remedy; never the
// token). Nothing follows a Fatal.
struct Fatal {
  uint16_t code;
  std::string message;
};

using Action = std::variant<SendText, StartTimer, CancelTimer, RequestIdentify, CloseConnection,
                            Reconnect, Fatal>;
using Actions = absl::InlinedVector<Action, 4>;

// One line for logs: SendText shows its kind and size and, for heartbeats
// only, its text; timers show the deadline as milliseconds on the steady
// clock. Never contains the token or a user payload.
std::string to_string(const Action& action);
std::string_view to_string(TimerId id) noexcept;
std::string_view to_string(SendKind kind) noexcept;
std::string_view to_string(ConnectMode mode) noexcept;

enum class State : uint8_t {
  kConnecting,     // no connection: waiting for on_connected()
  kAwaitingHello,  // connected, HELLO not yet received
  kAwaitingGrant,  // HELLO done, no session: waiting for the identify gate
  kIdentifying,    // IDENTIFY sent (or due), waiting for READY
  kResuming,       // RESUME sent (or due), waiting for RESUMED
  kReady,          // READY or RESUMED received: user sends flow
  kStopped,        // shutdown(): no more connections
  kFatal,          // Fatal emitted: no more connections
};
std::string_view to_string(State s) noexcept;

// Counters for logs and the run summary. Plain fields, read by the owner.
struct Stats {
  uint64_t dispatches_delivered = 0;
  uint64_t replays_skipped = 0;  // dispatches with seq <= last: not delivered
  uint64_t seq_gaps = 0;         // delivered dispatches with seq > last + 1
  uint64_t rewinds = 0;          // rewind(): resumed from an earlier seq
  uint64_t heartbeats_sent = 0;
  uint64_t heartbeat_acks = 0;
  uint64_t zombies = 0;  // connections closed for a missing ACK
  uint64_t identifies = 0;
  uint64_t resumes = 0;  // RESUME payloads sent
  uint64_t reconnects = 0;
  uint64_t user_sends = 0;
  uint64_t wasted_grants = 0;     // identify slots granted while unable to use
  Millis last_heartbeat_rtt{-1};  // -1: no ACK yet
};

// What a payload read by on_payload() was, for the owner's logs and
// counters. Whether to deliver it is Payload::deliver.
enum class Received : uint8_t {
  kDispatch,            // op 0 with a seq after the last one
  kReplay,              // op 0 with a seq already delivered (after a resume)
  kDispatchWithoutSeq,  // op 0 without s: ignored
  kReady,               // READY: the session is live
  kResumed,             // RESUMED: the session is live again
  kBadReady,            // READY without a session_id: closed, reconnecting
  kHello,               // op 10
  kBadHello,            // op 10 without a heartbeat_interval: closed
  kHeartbeatAck,        // op 11
  kHeartbeatRequest,    // op 1
  kReconnectRequest,    // op 7
  kInvalidSession,      // op 9 (Payload::resumable)
  kUnknownOp,           // an opcode a client never receives: ignored
};
std::string_view to_string(Received r) noexcept;

struct Payload {
  Received kind = Received::kUnknownOp;
  bool deliver = false;    // hand the dispatch to the sink
  bool resumable = false;  // kInvalidSession: d was true
};

// The close code we send when the gateway's payload cannot be used (bad
// JSON, a HELLO or READY without its fields): RFC 6455 "invalid frame
// payload data". Not 1000/1001, so the session stays resumable.
inline constexpr uint16_t kCloseBadPayload = 1007;

// What READY and RESUMED return: whether to deliver the event like any other
// dispatch (docs/interface.md: READY and RESUMED are delivered), and actions.
struct DispatchOutcome {
  bool deliver = false;
  Actions actions;
};

class Session {
 public:
  // `config` should pass config_error(); `jitter` in [0, 1) (clamped).
  Session(Config config, double jitter);
  // The same with a configuration many sessions share (every shard of a
  // process: the token, the gateway URL and the presence stored once);
  // `shard_id` stands for config->shard_id.
  Session(std::shared_ptr<const Config> config, uint32_t shard_id, double jitter);

  // The jitter the next decisions use (first heartbeat offset, backoff, the
  // op 9 wait). The engine draws a fresh value before each input; tests pin
  // it. Values outside [0, 1) are clamped into it.
  void set_jitter(double jitter) noexcept;

  // The WebSocket handshake finished; HELLO comes next. Any earlier
  // connection's state is dropped.
  [[nodiscard]] Actions on_connected(Clock::time_point now);
  // Dialing, TLS or the WebSocket handshake failed: retry with backoff.
  [[nodiscard]] Actions on_connect_failed(Clock::time_point now);
  // Op 10. Ignored unless it is the first HELLO on this connection.
  [[nodiscard]] Actions on_hello(Millis heartbeat_interval, Clock::time_point now);
  // Op 11.
  [[nodiscard]] Actions on_heartbeat_ack(Clock::time_point now);
  // Op 1 from the server: heartbeat now; the schedule stays as it is.
  [[nodiscard]] Actions on_heartbeat_request(Clock::time_point now);
  // Op 7: close resumably and resume.
  [[nodiscard]] Actions on_reconnect(Clock::time_point now);
  // Op 9: d=true resumes (if there is a session); d=false drops the session,
  // closes, and identifies anew after 1-5 s.
  [[nodiscard]] Actions on_invalid_session(bool resumable, Clock::time_point now);

  // Op 0 other than READY and RESUMED; the hot path. True: deliver it. False:
  // a replay of a seq already delivered in this session (after a resume).
  // Discord numbers a session's dispatches 1, 2, 3...; a new session starts
  // when IDENTIFY is sent. A jump past last + 1 is delivered and counted.
  [[nodiscard]] bool on_dispatch(uint64_t seq) noexcept {
    const uint64_t last = last_seq_;
    const bool fresh = seq > last;
    stats_.dispatches_delivered += fresh;
    stats_.replays_skipped += !fresh;
    stats_.seq_gaps += fresh & (seq != last + 1);
    last_seq_ = fresh ? seq : last;
    return fresh;
  }
  // READY: keeps session_id and resume_gateway_url (views, copied), resets
  // the backoff, releases queued sends.
  [[nodiscard]] DispatchOutcome on_ready(uint64_t seq, std::string_view session_id,
                                         std::string_view resume_gateway_url, Clock::time_point now,
                                         uint64_t user_id = 0);
  // RESUMED: resets the backoff, releases queued sends.
  [[nodiscard]] DispatchOutcome on_resumed(uint64_t seq, Clock::time_point now);

  // Any payload from the gateway, parsed: the opcode switch. Reads HELLO's,
  // READY's and op 9's fields with `parser` (the buffer behind `env` must be
  // padded, as parse requires). Actions are appended to `out`. The hot path
  // (a dispatch) appends nothing.
  // A jitter is drawn from `rng` only for what the payload decides (op 7,
  // op 9, HELLO's first beat), never for a dispatch.
  [[nodiscard]] Payload on_payload(const parse::Envelope& env, parse::Parser& parser,
                                   base::Rng& rng, Clock::time_point now, Actions& out) {
    // The hot path, inline: a dispatch other than READY and RESUMED.
    if (env.op == to_int(Op::kDispatch) && env.s && env.type != parse::EventType::kReady &&
        env.type != parse::EventType::kResumed) [[likely]] {
      Payload p;
      p.deliver = on_dispatch(*env.s);
      p.kind = p.deliver ? Received::kDispatch : Received::kReplay;
      return p;
    }
    set_jitter(rng.unit());  // drawn only off the dispatch path
    return on_other_payload(env, parser, now, out);
  }

  // The server's close frame (or the echo of ours): close_codes.h decides.
  [[nodiscard]] Actions on_close(uint16_t code, Clock::time_point now);
  // EOF or reset without a close frame: like 1006, resume.
  [[nodiscard]] Actions on_connection_lost(Clock::time_point now);
  // A timer armed by StartTimer is due. Stale or early calls are harmless.
  [[nodiscard]] Actions on_timer(TimerId id, Clock::time_point now);
  // The identify gate's answer to RequestIdentify.
  [[nodiscard]] Actions on_identify_granted(Clock::time_point now);

  // A user payload (a whole gateway JSON text, e.g. op 3 or op 8), sent in
  // order once the session is READY and the send window allows; SendText
  // actions, if any, are appended to `out`. kOk: sent or queued.
  [[nodiscard]] Errc queue_send(std::string payload, Clock::time_point now, Actions& out);

  // Before the first connection: take up a session saved by an earlier
  // process (docs/interface.md "--state"). The first connection then RESUMEs
  // it from `seq` at `resume_url` (the configured gateway when empty)
  // without asking the identify gate; if the gateway refuses (op 9), the
  // shard identifies as usual. False (and nothing changes) when connected
  // already, or when a field could not be kept (too long, empty session id,
  // contains the token).
  [[nodiscard]] bool restore(std::string_view session_id, std::string_view resume_url,
                             uint64_t seq) noexcept;

  // The sink lost what it had written past `seq` of session `session_key`
  // (a Redis restored from an older snapshot): last_seq() goes back to
  // `seq` and, when connected, the connection closes with 4000 and RESUMEs
  // from there, so the gateway replays what follows and it is delivered
  // again. Nothing when the session is another (the lost events belong to
  // an ended session), or `seq` is not below last_seq().
  [[nodiscard]] Actions rewind(uint64_t seq, uint64_t session_key, Clock::time_point now);

  // The driver stopped reading the connection (backpressure: the consumer
  // is behind) or started again. While paused, a heartbeat without an ACK
  // is not a zombie: the ACK may be unread behind the paused bytes. Beats
  // go on at their interval (the gateway wants them). The ACK check resumes
  // only for a beat sent after reading resumed: the one before may be unread
  // behind the backlog that built up while paused.
  void set_reading_paused(bool paused) noexcept {
    reading_paused_ = paused;
    if (paused) paused_since_beat_ = true;
  }

  // Clean stop. kEndSession closes with 1000, which ends the Discord
  // session; kKeepSession closes with kCloseResumable (4000), which keeps it
  // resumable, and keeps session_id(), resume_url() and last_seq() for the
  // caller to save. Queued user sends are dropped; queued_sends() says how
  // many before the call.
  enum class StopMode : uint8_t { kEndSession, kKeepSession };
  [[nodiscard]] Actions shutdown(Clock::time_point now, StopMode mode = StopMode::kEndSession);

  State state() const noexcept { return state_; }
  bool has_session() const noexcept { return !session_id_.empty(); }
  // The session to resume (empty when none) and where to resume it (empty:
  // the configured gateway URL).
  const std::string& session_id() const noexcept { return session_id_; }
  const std::string& resume_url() const noexcept { return resume_url_; }
  // A 64-bit digest of session_id() (0 when none): the same for every event
  // of one Discord session, across resumes and processes. With the seq it
  // names an event, so a consumer can drop the repeats a crash replays.
  uint64_t session_key() const noexcept { return session_key_; }
  // The bot's user id from the last READY (d.user.id); 0 before one.
  uint64_t user_id() const noexcept { return user_id_; }
  // The last seq delivered in this session; 0 before any.
  uint64_t last_seq() const noexcept { return last_seq_; }
  size_t queued_sends() const noexcept { return queue_.size(); }
  // Sends on this connection within the last kSendWindow before `now`.
  int sends_in_window(Clock::time_point now) const noexcept;
  const Stats& stats() const noexcept { return stats_; }
  // One line: shard, state, seq, heartbeat, backoff, queue. No token, and no
  // session id or URL text (only whether they are present).
  std::string debug_string() const;

 private:
  enum class Pending : uint8_t { kNone, kIdentify, kResume };

  bool connected() const noexcept {
    return state_ >= State::kAwaitingHello && state_ <= State::kReady;
  }
  bool hello_seen() const noexcept {
    return state_ >= State::kAwaitingGrant && state_ <= State::kReady;
  }
  void arm(TimerId id, Clock::time_point deadline, Actions& out);
  void disarm(TimerId id, Actions& out);
  void disarm_all(Actions& out);
  // Leaves the connection: timers off, optional close frame, Reconnect.
  void reconnect(Actions& out, uint16_t close_code, Millis min_delay);
  Millis next_backoff() noexcept;
  Payload on_other_payload(const parse::Envelope& env, parse::Parser& parser, Clock::time_point now,
                           Actions& out);
  void clear_session() noexcept;
  void heartbeat_now(Clock::time_point now, Actions& out);
  void expire(Clock::time_point now) const noexcept;
  void record_send(Clock::time_point now);
  // Sends what is due and fits in the window; arms kSendWindow otherwise.
  void flush(Clock::time_point now, Actions& out);
  bool contains_token(std::string_view s) const noexcept;

  std::shared_ptr<const Config> config_;  // never null
  uint32_t shard_id_;
  double jitter_ = 0;
  State state_ = State::kConnecting;
  Pending pending_ = Pending::kNone;
  bool heartbeat_due_ = false;       // a heartbeat waits for window room
  bool awaiting_ack_ = false;        // a heartbeat went out, no ACK yet
  bool reading_paused_ = false;      // set_reading_paused()
  bool paused_since_beat_ = false;   // reading paused since the last beat went out
  bool identify_requested_ = false;  // RequestIdentify outstanding
  uint32_t backoff_failures_ = 0;    // reconnects since READY/RESUMED
  uint64_t last_seq_ = 0;
  Millis heartbeat_interval_{0};
  Clock::time_point last_heartbeat_at_{};
  std::string session_id_;
  std::string resume_url_;
  uint64_t session_key_ = 0;  // session_key_of(session_id_)
  uint64_t user_id_ = 0;
  // User payloads waiting for the send window, oldest first.
  base::Fifo<std::string> queue_;
  std::array<bool, kTimerCount> armed_{};
  std::array<Clock::time_point, kTimerCount> deadline_{};
  // Send times on this connection, oldest first, in a ring; entries older
  // than kSendWindow are dropped lazily (hence mutable). Each is the clock's
  // milliseconds, rounded up, mod 2^32 (ages are differences: right for any
  // age under 24 days, and a connection never goes a minute without a
  // heartbeat): 480 bytes per shard instead of 960.
  // Millisecond stamps of this connection's sends in the window.
  mutable SendWindow<kMaxSendsPerWindow, kInlineSendTimes> sent_;
  Stats stats_;
};

}  // namespace shardring::gateway

#endif  // SHARDRING_GATEWAY_SESSION_H_
