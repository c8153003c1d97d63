// conn/client.h: one shard's gateway connection in the client role, sans-I/O.
// Stage: conn, between the engine's io_uring driver and the stages it chains:
// tls::Session (wss://) -> ws::ClientHandshake, ws::Decoder -> parse::Inflater
// (compression) -> parse::Parser -> gateway::Session, and back out through
// ws::Encoder and TLS. No socket, clock, thread or random source in here:
// socket bytes, the time and random numbers come in (the latter from a
// seeded base::Rng the caller owns); bytes to write, dispatches, timer
// requests and requests to dial, identify or drop the socket go out.
//
// Driving it (the engine's core thread does this; tests do it with strings):
//   schedule_dial(at)                       first connection at `at`
//   on_timer(timer, now) ... take_dial()    time to dial: resolve, connect
//   on_transport_open(endpoint, now)        TCP is up: TLS / the upgrade go out
//   receive(bytes, slack, now)              socket bytes (ciphertext with TLS)
//   while (poll(event, now)) deliver(event) dispatches, in seq order
//   on_write_done(now)                      a write taken earlier is sent
//   on_transport_lost(now) / on_dial_failed(now)
// and after every input: take_write(), take_notes(), timer_changes(),
// take_identify_request(), take_dial(), take_close_socket(), take_fatal().
// Nothing here calls back into the driver, so no input can re-enter another.
//
// One ClientConnection per shard, for the shard's life (its gateway::Session
// carries across sockets). Used only by the thread that owns the shard;
// connections of one thread share a ClientScratch.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/rng.h"
#include "gateway/session.h"
#include "parse/envelope.h"
#include "parse/event_type.h"
#include "parse/inflate.h"
#include "tls/context.h"
#include "tls/session.h"
#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/handshake.h"

namespace shardring::conn {

using Clock = std::chrono::steady_clock;
using Instant = Clock::time_point;

// Decrypted bytes handled per step (TLS); the scratch buffer has the
// parser's padding after it.
inline constexpr size_t kPlaintextChunk = 64 * 1024;
// Bytes waiting to be written beyond which the peer is taken to have stopped
// reading: the connection is dropped (and resumed) instead of growing.
inline constexpr size_t kMaxQueuedOutBytes = 1 << 20;
// Write buffer a driver keeps between writes: a heartbeat's frame, TLS
// record included, fits; a larger buffer (a TLS handshake flight, the
// upgrade request, an IDENTIFY, a bot's own message) is given back once
// written, so an idle shard does not hold its largest write for life.
inline constexpr size_t kRetainedWriteBytes = 256;
// After our close frame, how long to wait for the peer's before dropping the
// socket anyway.
inline constexpr std::chrono::milliseconds kCloseLinger{1'000};

// The timers a connection asks for: at most one deadline per kind. The
// first three are gateway::TimerId's.
enum class Timer : uint8_t {
  kHeartbeat = 0,
  kHelloTimeout = 1,
  kSendWindow = 2,
  kCloseLinger,  // our close frame went out; the peer's has not come
  kDial,         // time to dial (first connection, reconnect backoff)
  kCount,
};
inline constexpr size_t kTimerCount = static_cast<size_t>(Timer::kCount);
// The session's timers keep their numbers here (the connection passes them
// through by value), and every one of them has a place.
static_assert(static_cast<int>(Timer::kHeartbeat) ==
              static_cast<int>(gateway::TimerId::kHeartbeat));
static_assert(static_cast<int>(Timer::kHelloTimeout) ==
              static_cast<int>(gateway::TimerId::kHelloTimeout));
static_assert(static_cast<int>(Timer::kSendWindow) ==
              static_cast<int>(gateway::TimerId::kSendWindow));
static_assert(static_cast<size_t>(Timer::kCloseLinger) == gateway::kTimerCount);

// Settings shared by every shard of a process.
struct ClientOptions {
  gateway::Config session;  // shard_id is overwritten per connection
  parse::Compression compression = parse::Compression::kNone;
  parse::EventFilter filter;  // --events: others are dropped after the envelope
  bool routing_keys = true;   // read guild_id/channel_id from d
  bool validate_d = false;    // check d fully before delivering it
  std::string user_agent = "shardring (https://github.com/shardring, 0.1)";
};

// Things worth a log line or a counter, in the order they happened. The
// driver turns them into both; `text` is peer or library text (escape it).
enum class Note : uint8_t {
  kTlsHandshakeFailed,   // text: the TLS error
  kTlsHandshakeDone,     // value: 1 when the session was resumed
  kTlsSetupFailed,       // text
  kTlsRecordError,       // text: a protocol error after the handshake
  kTlsClosedByPeer,      // close_notify
  kTlsWriteFailed,       // text
  kBadUrl,               // the endpoint cannot make a WebSocket request
  kUpgradeRefused,       // value: HTTP status; text: the ws error
  kConnected,            // value: 1 with TLS
  kBadFrame,             // value: the close code we send
  kBadCompressedStream,  // value: the close code; text: the inflate error
  kBadPayload,           // value: bytes; text: the parse error
  kPeerClosed,           // value: the close code; text: the reason
  kPeerNotReading,       // value: bytes waiting to be written
  kIdentifying,
  kResuming,            // value: seq
  kHeartbeat,           // a heartbeat frame was queued
  kZombie,              // no ACK for the last heartbeat: closing, resuming
  kReady,               // value: seq
  kResumed,             // value: seq
  kBadReady,            // READY without a session_id
  kBadHello,            // HELLO without a heartbeat_interval
  kReconnectRequested,  // op 7
  kInvalidSession,      // op 9; value: 1 when resumable
  kUnknownOpcode,       // value: the opcode
  kDispatchWithoutSeq,
  kFiltered,      // a dispatch --events does not want
  kReconnecting,  // value: delay in ms; text: "resume" / "identify"
  kSendRefused,   // text: gateway::to_string(Errc)
};
std::string_view to_string(Note n) noexcept;

struct NoteRecord {
  Note note;
  int64_t value = 0;
  std::string text;
};

// What the connections of one thread share: the TLS context and session
// cache, the parser, and buffers used within a single call (an event's views
// may point into them until the next poll()).
struct ClientScratch {
  explicit ClientScratch(uint64_t seed);
  const tls::Context* tls_context = nullptr;  // required for wss://
  tls::SessionCache tls_cache;
  parse::Parser parser;
  base::Rng rng;
  std::vector<std::byte> plain;   // kPlaintextChunk + parse::kPadding
  parse::InflateBuffer inflated;  // the last inflated message
  std::string frame;              // a frame being encoded
  std::string padded;             // an unpadded payload, copied once
  std::string target;             // the request target being written
  gateway::Actions actions;       // the session's answer to one input
  std::vector<NoteRecord> notes;  // the current connection's (notes())
  // ClientOptions::session, stored once for every connection made with it
  // (remade when a connection is made with other options).
  std::shared_ptr<const gateway::Config> session_config;
};

// Where the driver connected: the host for TLS (SNI, certificate) and the
// Host header, and the request target. Views: the driver keeps the strings
// alive until the connection is open or has dropped the socket (the engine's
// are its shard's URL).
struct Endpoint {
  bool tls = false;
  std::string_view host;  // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string_view path = "/";
  std::string_view query;  // without '?'; may be empty
};

// A dispatch to deliver. t and d are views valid until the next call on the
// connection or on any connection sharing its scratch.
struct Dispatch {
  uint64_t seq = 0;
  parse::EventType type = parse::EventType::kNone;
  std::string_view t;
  std::string_view d;
  uint64_t guild_id = 0;  // 0 when absent or not read
  uint64_t channel_id = 0;
  uint64_t sent_ns = 0;  // the synthetic gateway's send stamp; 0 otherwise
};

enum class Phase : uint8_t {
  kIdle,     // no socket
  kDialing,  // the driver resolves and connects
  kTls,      // TLS handshake
  kUpgrade,  // WebSocket request sent, waiting for 101
  kOpen,     // WebSocket open: the gateway session runs
  kClosing,  // our close frame queued; waiting for it to go and the peer's
};
std::string_view to_string(Phase p) noexcept;

class ClientConnection {
 public:
  // `options` and `scratch` must outlive the connection.
  ClientConnection(const ClientOptions& options, ClientScratch& scratch, uint32_t shard_id);

  // ---- inputs
  // Dial at `at` (the first connection; later ones the session schedules).
  void schedule_dial(Instant at);
  void on_timer(Timer timer, Instant now);
  // The driver is resolving and connecting (after take_dial()).
  void on_dial_started(Instant now);
  // Resolving, connecting or the set-up (TLS, upgrade) failed or timed out:
  // the socket, if any, is dropped and the session retries with backoff.
  void on_dial_failed(Instant now);
  // TCP connected to `endpoint` (kept, see Endpoint): TLS or the WebSocket
  // request goes out.
  void on_transport_open(const Endpoint& endpoint, Instant now);
  // Socket bytes (ciphertext with TLS). `bytes` must stay valid until poll()
  // returns false; `slack` readable bytes follow it (parse::kPadding spares
  // a copy). May end anywhere: mid record, mid frame, mid character.
  void receive(std::span<std::byte> bytes, size_t slack, Instant now);
  // Processes received bytes up to the next dispatch to deliver: true with
  // `out` filled (call again), false when everything received is handled.
  [[nodiscard]] bool poll(Dispatch& out, Instant now);
  // EOF or an error on the socket.
  void on_transport_lost(Instant now);
  // The bytes taken by the last take_write() are written.
  void on_write_done(Instant now);
  // The identify gate granted the slot asked for by take_identify_request().
  void on_identify_granted(Instant now);
  // A user payload (a gateway JSON text), sent in order behind the limits.
  [[nodiscard]] gateway::Errc send(std::string payload, Instant now);
  // Before the first dial: resume a saved session (gateway::Session::restore)
  // at its resume URL. False when it cannot be taken up; the shard then
  // identifies.
  [[nodiscard]] bool restore(std::string_view session_id, std::string_view resume_url,
                             uint64_t seq);
  // The driver stopped (or resumed) reading this connection: backpressure
  // (gateway::Session::set_reading_paused: no zombie verdict meanwhile).
  void set_reading_paused(bool paused) noexcept { session_.set_reading_paused(paused); }
  // The sink lost events past `seq` of the session `session_key`:
  // gateway::Session::rewind (a RESUME from `seq`, the gateway replays).
  void rewind(uint64_t seq, uint64_t session_key, Instant now);
  // Clean stop; no reconnect follows. kEndSession closes with 1000 (the
  // Discord session ends), kKeepSession with 4000 (it stays resumable and
  // session() keeps it, for the caller to save).
  void shutdown(Instant now,
                gateway::Session::StopMode mode = gateway::Session::StopMode::kEndSession);

  // ---- outputs, drained by the driver after every input
  // Moves the bytes to write into `out` (its old contents dropped); false
  // when there are none or a write is still in flight.
  [[nodiscard]] bool take_write(std::vector<std::byte>& out);
  // A driver's buffer whose write is done (or dropped): emptied, its memory
  // kept only up to kRetainedWriteBytes.
  static void recycle_write(std::vector<std::byte>& buffer) noexcept;
  [[nodiscard]] size_t queued_write_bytes() const noexcept;
  // Notes since they were last cleared. They are kept in the scratch the
  // connections of a thread share (an idle shard holds none): drain and
  // clear them after every input, before another connection gets one.
  [[nodiscard]] std::vector<NoteRecord>& notes() noexcept { return scratch_.notes; }
  // Bit k set: timer k was armed, re-armed or cancelled since the last call.
  [[nodiscard]] uint32_t take_timer_changes() noexcept {
    const uint32_t c = timer_changes_;
    timer_changes_ = 0;
    return c;
  }
  [[nodiscard]] std::optional<Instant> deadline(Timer t) const noexcept {
    const Instant d = deadlines_[static_cast<size_t>(t)];
    if (d == kUnarmed) return std::nullopt;
    return d;
  }
  [[nodiscard]] bool take_identify_request() noexcept {
    return std::exchange(identify_requested_, false);
  }
  // True once when it is time to dial; dial_url() is where (empty: the
  // configured gateway URL).
  [[nodiscard]] bool take_dial() noexcept { return std::exchange(dial_requested_, false); }
  [[nodiscard]] const std::string& dial_url() const noexcept { return dial_url_; }
  // True once when the connection is done with its socket: close it; every
  // completion still in flight for it is stale.
  [[nodiscard]] bool take_close_socket() noexcept { return std::exchange(close_socket_, false); }
  // Set once when the gateway refused the shard for good (4004, 4010-4014).
  [[nodiscard]] std::optional<gateway::Fatal> take_fatal() noexcept {
    if (!fatal_) return std::nullopt;
    std::optional<gateway::Fatal> f(std::move(*fatal_));
    fatal_.reset();
    return f;
  }

  // ---- state
  Phase phase() const noexcept { return phase_; }
  // The WebSocket is open (or closing) on the current socket.
  bool upgraded() const noexcept { return phase_ == Phase::kOpen || phase_ == Phase::kClosing; }
  // READY or RESUMED on the open connection.
  bool ready() const noexcept {
    return phase_ == Phase::kOpen && session_.state() == gateway::State::kReady;
  }
  uint32_t shard() const noexcept { return shard_; }
  const gateway::Session& session() const noexcept { return session_; }
  bool is_tls() const noexcept { return tls_.has_value(); }

 private:
  // Plaintext from the socket (or TLS): the upgrade's answer, then frames.
  void feed_plain(std::span<std::byte> bytes, size_t slack, Instant now);
  // One message; true with `out` filled when it is a dispatch to deliver.
  bool on_message(const ws::Message& msg, Instant now, Dispatch& out);
  bool on_payload(std::string_view text, bool padded, Instant now, Dispatch& out);
  bool filtered(parse::EventType type, std::string_view t) const;
  void drive_tls_handshake(Instant now);
  // Sends the WebSocket request (after TLS, if any).
  void start_upgrade(Instant now);
  void queue_frame_text(std::string_view json, Instant now);
  // Queues bytes for the socket (through TLS when there is TLS). A failure,
  // or more than kMaxQueuedOutBytes waiting, drops the connection.
  void queue_bytes(std::span<const std::byte> bytes, Instant now);
  ws::MaskKey mask_key();
  // Our side found the peer at fault: close with `code`, resume.
  void close_resumable(uint16_t code, Instant now);
  void begin_close(Instant now);
  void drop_socket();
  void maybe_finish_close();
  void perform(gateway::Actions& actions, Instant now);
  void arm(Timer t, Instant deadline);
  void disarm(Timer t);
  void note(Note n, int64_t value = 0, std::string text = {});

  const ClientOptions& options_;
  ClientScratch& scratch_;
  uint32_t shard_;
  gateway::Session session_;
  Phase phase_ = Phase::kIdle;
  std::optional<tls::Session> tls_;
  std::unique_ptr<ws::ClientHandshake> handshake_;  // during the upgrade only
  ws::Decoder decoder_;
  ws::Encoder encoder_{ws::Role::kClient};
  std::optional<parse::Inflater> inflater_;
  // How payloads are parsed: per --validate-d and routing keys; a dispatch
  // --events drops needs its envelope only.
  parse::Options parse_options_;
  static constexpr parse::Options kDropOptions{.check = parse::Check::kEnvelope};
  // Input: plaintext fed and not yet given to the decoder (no TLS), and
  // whether the decoder may still hold messages.
  std::span<std::byte> pending_plain_;
  size_t pending_slack_ = 0;
  bool decoder_fed_ = false;
  bool tls_drained_ = true;             // TLS had nothing more since the last receive()
  tls::Errc tls_end_ = tls::Errc::kOk;  // close_notify or an error, once
                                        // the plaintext before it is read
  Endpoint endpoint_;                   // until the upgrade is sent
  // Output.
  std::vector<std::byte> out_;  // plain: bytes to write
  bool write_in_flight_ = false;
  bool close_received_ = false;  // the peer's close frame (or no WebSocket)
  bool close_socket_ = false;
  bool identify_requested_ = false;
  bool dial_requested_ = false;
  std::string dial_url_;
  std::unique_ptr<gateway::Fatal> fatal_;  // rare: kept off the connection
  uint32_t timer_changes_ = 0;
  static constexpr Instant kUnarmed = Instant::max();
  std::array<Instant, kTimerCount> deadlines_;
  uint64_t zombies_seen_ = 0;
};

}  // namespace shardring::conn
