// conn/server.h: one accepted connection in the server role, sans-I/O.
// Stage: conn, between a server's io_uring driver (the synthetic gateway,
// tools/gateway/worker.cc) and the stages it chains: tls::Session (server)
// -> ws::ServerHandshake (the HTTP request head) -> ws::Decoder (server
// role: unmasks) -> the application's payloads; and back out through
// ws::Encoder (server role), parse::Deflater (compress=zlib-stream or
// zstd-stream from the upgrade URL) and TLS. No socket, clock, thread or
// random source in here: socket bytes and the time come in; bytes to write,
// requests, payloads, a timer deadline and "close the socket" go out.
//
// Driving it (the gateway's worker does this; tests do it with strings):
//   receive(bytes, slack, now)           socket bytes (ciphertext with TLS)
//   while (poll(event, now)) handle it   requests, payloads, closes
//     kHttpRequest    -> respond(...)                    before the next poll
//     kUpgradeRequest -> accept_upgrade() or respond()   before the next poll
//     kText           -> send_text(...), send_close(...) as the protocol says
//   take_write() / on_write_done(now)    one write in flight at a time
//   on_timer(timer, now), on_transport_lost(now)
// and after every input: notes(), take_timer_changes()/deadline(),
// take_close_socket(). Nothing here calls back into the driver.
//
// Ownership and threads: one ServerConnection per accepted socket, used only
// by the thread that owns the socket. Connections of one thread share a
// ServerScratch; the views an event holds point into the bytes passed to
// receive(), into the connection or into that scratch, and stay valid until
// the next call to poll() or receive() on this connection. Poll a connection
// until it returns false before feeding another one that shares the scratch.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
inline constexpr size_t kServerPlaintextChunk = 16 * 1024;
// After our close frame, how long to wait for the client's before the
// socket is closed anyway (ServerOptions::close_linger's default).
inline constexpr std::chrono::milliseconds kServerCloseLinger{1'000};

// Settings shared by every connection of a server.
struct ServerOptions {
  // Largest client message (all fragments); above it the connection closes
  // with 1009. An application limit below it (Discord's 4096 bytes) is the
  // application's to enforce.
  size_t max_message_bytes = 64 << 10;
  // zstd-stream window (2^17 = 128 KiB): a client keeps a window this big
  // per connection for its life, so a server asks for a modest one.
  int zstd_window_log = 17;
  // Fault injection: > 0 splits every outgoing message into frames of this
  // many payload bytes (with zlib-stream, into several messages of this
  // many compressed bytes each, which a client joins up to the 00 00 ff ff
  // suffix, as Discord documents). 0: one frame per message.
  uint32_t fragment = 0;
  std::chrono::milliseconds close_linger = kServerCloseLinger;
};

// What the connections of one thread share: buffers used within one call.
struct ServerScratch {
  ServerScratch();
  std::vector<std::byte> plain;  // kServerPlaintextChunk + ws::kPadding
  std::string padded;            // an unpadded client payload, copied once
  std::string compressed;        // a payload's compressed bytes
  std::string payload;           // a payload being fragmented
};

enum class ServerEventKind : uint8_t {
  kHttpRequest,     // a well-formed request that is not an upgrade
  kUpgradeRequest,  // a valid WebSocket upgrade request
  kText,            // a data message from the client (text or binary)
  kClose,           // the client's close frame; ours is queued in answer
  kProtocolError,   // bad frames from the client; our close is queued
};

struct ServerEvent {
  ServerEventKind kind = ServerEventKind::kText;
  // kHttpRequest, kUpgradeRequest: the request (method, path, query,
  // headers).
  const ws::ServerHandshake* request = nullptr;
  // kHttpRequest: HTTP allows another request on this connection after the
  // answer (HTTP/1.1 without "Connection: close", or HTTP/1.0 with
  // keep-alive; never with a request body, which is not read).
  bool keep_alive = false;
  // kUpgradeRequest: compress= of the query (kNone when absent or empty);
  // nullopt for a value this side does not know.
  std::optional<parse::Compression> compression = parse::Compression::kNone;
  // kText: the payload, with parse::kPadding readable bytes after it.
  std::string_view text;
  bool binary = false;
  // kClose: the client's code (ws::CloseCode::kNoStatusReceived when none)
  // and reason. kProtocolError: the code we close with and what was wrong.
  uint16_t code = 0;
  std::string_view reason;
};

// Things worth a log line or a counter, in order. `text` is peer or library
// text: escape it.
enum class ServerNote : uint8_t {
  kTlsHandshakeDone,   // value: 1 when the session was resumed
  kTlsError,           // text: the TLS error; the connection ends
  kTlsClosedByPeer,    // close_notify: the connection ends once written
  kBadRequest,         // value: the HTTP status answered (the request head
                       // did not parse or is a bad upgrade); closing
  kCompressionFailed,  // out of memory compressing; the connection ends
};
std::string_view to_string(ServerNote n) noexcept;

struct ServerNoteRecord {
  ServerNote note;
  int64_t value = 0;
  std::string text;
};

enum class ServerPhase : uint8_t {
  kTls,       // TLS handshake
  kHttp,      // reading a request head (one or more requests)
  kOpen,      // WebSocket open
  kClosing,   // our close frame is queued: waiting for the client's
  kFlushing,  // input ignored; the socket closes once the output is written
  kDone,      // finished: close the socket
};

// The timers a connection asks for: at most one deadline per kind.
enum class ServerTimer : uint8_t { kCloseLinger = 0, kCount };
inline constexpr size_t kServerTimerCount = static_cast<size_t>(ServerTimer::kCount);

class ServerConnection {
 public:
  // `tls`: the server context for a TLS listener, null for plain. `options`
  // and `scratch` (and `tls`) must outlive the connection. A TLS session
  // that cannot be set up leaves the connection kDone with a kTlsError note.
  ServerConnection(const ServerOptions& options, ServerScratch& scratch, const tls::Context* tls);

  // ---- inputs
  // Socket bytes (ciphertext with TLS). `bytes` must stay valid and
  // unchanged until poll() returns false (the decoder unmasks in place);
  // `slack` readable bytes follow it (ws::kPadding spares a copy of a
  // payload). May end anywhere: mid record, mid head, mid frame.
  void receive(std::span<std::byte> bytes, size_t slack, Instant now);
  // Handles received bytes up to the next event: true with `out` filled
  // (call again), false when everything received is handled.
  [[nodiscard]] bool poll(ServerEvent& out, Instant now);
  // The bytes returned by the last take_write() are all written.
  void on_write_done(Instant now);
  void on_timer(ServerTimer timer, Instant now);
  // EOF or an error on the socket: the connection is over.
  void on_transport_lost(Instant now);

  // ---- answers to a request event (before the next poll())
  // An HTTP response with Content-Length, `headers`, then "Connection:
  // keep-alive" or "close". Without keep_alive (always, for an upgrade
  // request refused) the socket closes once it is written.
  void respond(uint16_t status, std::string_view reason, std::span<const ws::Header> headers,
               std::string_view body, bool keep_alive);
  // 101 Switching Protocols; the WebSocket is open, compressed as the
  // query asked (ServerEvent::compression; kNone when it was not known).
  void accept_upgrade();

  // ---- output on an open WebSocket (ignored otherwise: false)
  // One JSON payload: a text frame, or a binary message of the compressed
  // stream when compression was negotiated; fragmented with
  // ServerOptions::fragment. An empty payload is not sent (false): no
  // gateway payload is empty, and a compressed stream cannot carry one.
  bool send_text(std::string_view json);
  // The hot path: the output buffer, to append whole unmasked one-frame
  // text messages to (mix.h's append_frame), or null when payloads must go
  // through send_text() (not open, compression, fragmenting).
  [[nodiscard]] std::string* raw_frame_buffer() noexcept {
    return phase_ == ServerPhase::kOpen && !deflater_ && options_.fragment == 0 ? &out_ : nullptr;
  }
  // Our close frame (`reason` dropped when too long to send); the socket
  // closes once the client's close frame came and ours is written, or after
  // ServerOptions::close_linger. False when the WebSocket is not open or
  // `code` cannot be sent.
  bool send_close(uint16_t code, std::string_view reason, Instant now);
  // Ends the connection without a close frame once what is queued is
  // written; input is ignored from now on. `why` (static text) is the
  // close_reason().
  void end_after_write(std::string_view why);

  // ---- outputs, drained by the driver after every input
  // The bytes to write next, or empty while a write is in flight or there
  // is nothing to write. Valid until on_write_done() or the connection's
  // end; write them in order, then call on_write_done().
  [[nodiscard]] std::span<const std::byte> take_write();
  // Bytes waiting to be written, the write in flight included.
  [[nodiscard]] size_t queued_bytes() const noexcept;
  [[nodiscard]] std::vector<ServerNoteRecord>& notes() noexcept { return notes_; }
  // True once when the timer's deadline changed since the last call.
  [[nodiscard]] bool take_timer_changes() noexcept { return std::exchange(timer_changed_, false); }
  [[nodiscard]] std::optional<Instant> deadline(ServerTimer t) const noexcept {
    return deadlines_[static_cast<size_t>(t)];
  }
  // True once when the connection is done with its socket: close it (after
  // the write in flight, if any, completes). close_reason() says why.
  [[nodiscard]] bool take_close_socket() noexcept { return std::exchange(close_socket_, false); }
  [[nodiscard]] std::string_view close_reason() const noexcept { return close_reason_; }

  // ---- state
  ServerPhase phase() const noexcept { return phase_; }
  // The WebSocket is open and we have not sent our close frame.
  bool is_open() const noexcept { return phase_ == ServerPhase::kOpen; }
  bool upgraded() const noexcept { return upgraded_; }
  bool is_tls() const noexcept { return tls_.has_value(); }
  // The negotiated compression (kNone before the upgrade).
  parse::Compression compression() const noexcept {
    return deflater_ ? deflater_->compression() : parse::Compression::kNone;
  }

 private:
  // Plaintext bytes at pending_: request heads, then frames. True with
  // `out` filled for a request event.
  bool feed_plain(ServerEvent& out);
  // One decoded message; true with `out` filled when the driver must see it.
  bool on_message(const ws::Message& msg, ServerEvent& out);
  void drive_tls_handshake();
  void answer_unanswered();
  void start_flushing(std::string_view why);
  void finish(std::string_view why);
  void maybe_finish();
  void arm(ServerTimer t, Instant deadline);
  void disarm(ServerTimer t);
  void note(ServerNote n, int64_t value = 0, std::string text = {});

  const ServerOptions& options_;
  ServerScratch& scratch_;
  ServerPhase phase_ = ServerPhase::kHttp;
  bool upgraded_ = false;
  std::optional<tls::Session> tls_;
  ws::ServerHandshake handshake_;
  bool awaiting_answer_ = false;  // a request event not answered yet
  bool upgrade_request_ = false;  // that request is an upgrade
  bool next_request_ = false;     // answered with keep-alive: read another
  std::optional<parse::Compression> asked_compression_;
  ws::Decoder decoder_;
  ws::Encoder encoder_{ws::Role::kServer};
  std::optional<parse::Deflater> deflater_;
  // Input: plaintext received and not yet given to the handshake or the
  // decoder, and whether the decoder may still hold messages.
  std::span<std::byte> pending_;
  size_t pending_slack_ = 0;
  bool decoder_fed_ = false;
  bool tls_drained_ = true;             // TLS had nothing more to read
  tls::Errc tls_end_ = tls::Errc::kOk;  // close_notify or an error, once
                                        // the plaintext before it is read
  bool close_received_ = false;         // the client's close frame
  // Output: out_ collects plaintext (frames, HTTP answers); with TLS it is
  // encrypted when the driver takes a write.
  std::string out_;
  std::string inflight_plain_;
  std::vector<std::byte> inflight_tls_;
  size_t inflight_bytes_ = 0;
  bool write_in_flight_ = false;
  bool close_socket_ = false;
  std::string_view close_reason_;
  bool timer_changed_ = false;
  std::array<std::optional<Instant>, kServerTimerCount> deadlines_{};
  std::vector<ServerNoteRecord> notes_;
};

}  // namespace shardring::conn
