// tools/gateway/discord.h: the Discord gateway's side of one WebSocket
// connection (gateway v10, JSON), sans-I/O. Stage: above
// conn::ServerConnection, which hands it client payloads and takes its
// payloads and closes. It sends HELLO; ACKs heartbeats; checks IDENTIFY and
// answers READY, GUILD_CREATEs and the event stream (stream.h); RESUMEs
// with a replay and RESUMED; answers op 8 with a member chunk; and closes
// as Discord does: 4008 over 120 payloads per 60 s, 4002 for a bad
// payload, 4001 for an unknown opcode, 4003 before IDENTIFY, 4004 for a
// wrong token, 4005 for identifying twice, 4010 for a bad shard, 4013 for
// bad intents; op 9 for an identify its bucket refuses (registry.h).
//
// No socket, clock or thread: the time comes in as arguments; timer
// requests (deadlines per DiscordTimer) and log lines go out for the
// driver (worker.cc). Shared state it touches: the registry (its mutex)
// and the counters (atomics). One DiscordConn per accepted connection,
// used only by the thread that owns the connection; connections of one
// thread share a DiscordScratch.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/rng.h"
#include "conn/server.h"
#include "parse/envelope.h"
#include "simdjson.h"
#include "tools/gateway/shared.h"
#include "tools/gateway/stream.h"

namespace shardring::gatewaysrv {

// The timers one connection asks for: at most one deadline per kind.
enum class DiscordTimer : uint8_t {
  kGenerate = 0,    // the next events are due (--rate)
  kReconnect,       // fault: op 7 every --reconnect-every
  kInvalidSession,  // fault: op 9 d=true every --invalid-session-every
  kCount,
};
inline constexpr size_t kDiscordTimerCount = static_cast<size_t>(DiscordTimer::kCount);

// What the connections of one thread share.
struct DiscordScratch {
  explicit DiscordScratch(uint64_t seed);
  parse::Parser parser;
  simdjson::dom::parser dom;  // IDENTIFY, RESUME and op 8's d
  base::Rng rng;              // session ids and stream seeds
  std::string payload;        // a templated payload being framed
};

// A log line for the driver: `shard` < 0 when not about one shard; peer
// text in `text` is already escaped.
struct LogNote {
  int64_t shard;
  std::string text;
};

class DiscordConn {
 public:
  // `sh`, `scratch` and `conn` must outlive this object.
  DiscordConn(Server::Shared& sh, DiscordScratch& scratch, conn::ServerConnection& conn);

  // ---- inputs
  // The WebSocket opened (conn.accept_upgrade() done) for a request with
  // `query` and Host `host`: HELLO, or a close for a bad v= or encoding=.
  void on_open(std::string_view query, std::string_view host, Instant now);
  // One client payload; `text` has parse::kPadding readable bytes after it.
  // It was read at `now` and arrived no earlier than `arrived_after` (the
  // driver's bound: an IDENTIFY is timed against its bucket with both).
  void on_payload(std::string_view text, Instant now, Instant arrived_after);
  // The client's close frame (already echoed by the connection).
  void on_client_close(uint16_t code, Instant now);
  // The connection found bad frames and closed with `code` (`what`: static).
  void on_protocol_error(uint16_t code, std::string_view what, Instant now);
  void on_timer(DiscordTimer timer, Instant now);
  // A write completed: the stream may go on.
  void on_written(Instant now);
  // The gateway is stopping: close with 1001.
  void shutdown(Instant now);
  // The socket is closing (`why`: for the log): the session is detached
  // and stays resumable; no more timers.
  void on_disconnect(std::string_view why, Instant now);

  // ---- outputs, drained by the driver after every input
  [[nodiscard]] std::vector<LogNote>& notes() noexcept { return notes_; }
  // Bit k set: timer k was armed, re-armed or cancelled since the last call.
  [[nodiscard]] uint32_t take_timer_changes() noexcept { return std::exchange(timer_changes_, 0); }
  [[nodiscard]] std::optional<Instant> deadline(DiscordTimer t) const noexcept {
    return deadlines_[static_cast<size_t>(t)];
  }
  // The shard of the session, -1 before IDENTIFY/RESUME.
  [[nodiscard]] int64_t shard() const noexcept { return session_ ? int64_t{session_->shard} : -1; }

 private:
  void on_heartbeat(const parse::Envelope& env, Instant now);
  // Count the refusals of identify() and resume() (stats(), --stats-json).
  void on_identify(const parse::Envelope& env, Instant now);
  void on_resume(const parse::Envelope& env, Instant now);
  // True when READY went out; else op 9 or a close went out, and
  // *named_shard is the shard the IDENTIFY named when it named a valid one.
  bool identify(const parse::Envelope& env, Instant now, std::optional<uint32_t>* named_shard);
  // True when the replay and RESUMED went out; else op 9 or a close did.
  bool resume(const parse::Envelope& env, Instant now);
  void on_request_members(std::string_view d_json, Instant now);
  // d of IDENTIFY/RESUME/op 8 as a DOM object; false after closing 4002.
  bool d_object(std::string_view d, simdjson::dom::object& obj, Instant now);
  std::shared_ptr<SessionState> new_session(std::string_view token, uint32_t shard, uint32_t total,
                                            Instant now);
  // After READY or RESUMED: the event stream and the periodic faults.
  void start_stream(Instant now);
  // The hot loop: the events that are due (at --rate 0, as many as fit)
  // onto the connection.
  void generate(Instant now);
  void send(std::string_view json);
  void send_drawn(const Draw& d);
  void count_sent(uint64_t n);
  // Closes with `code`, Discord's or RFC 6455's; `reason` is ours.
  void close(uint16_t code, std::string_view reason, Instant now);
  void close_decode_error(Instant now);
  void forget_session();
  void arm(DiscordTimer t, Instant deadline);
  void disarm(DiscordTimer t);
  void log(std::string text) { notes_.push_back(LogNote{shard(), std::move(text)}); }

  Server::Shared& sh_;
  DiscordScratch& scratch_;
  conn::ServerConnection& conn_;
  std::string host_;  // Host of the upgrade: resume_gateway_url
  std::shared_ptr<SessionState> session_;
  bool identified_ = false;
  bool stream_blocked_ = false;  // paused on a full send queue
  uint64_t conn_events_ = 0;     // template events on this connection
  uint64_t acks_ = 0;
  Instant window_start_{};  // client payload rate limit
  uint32_t window_count_ = 0;
  Pacer pacer_;
  uint32_t timer_changes_ = 0;
  std::array<std::optional<Instant>, kDiscordTimerCount> deadlines_{};
  std::vector<LogNote> notes_;
  Instant arrived_after_{};  // of the payload in hand (on_payload)
};

}  // namespace shardring::gatewaysrv
