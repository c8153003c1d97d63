// tls/session.h: one TLS connection driven from memory. Stage: TLS, between
// the engine's io_uring receive/send and ws::Decoder/ws::Encoder. Sans-I/O:
// ciphertext comes in as spans, plaintext goes out into the caller's buffer,
// ciphertext to send collects in an outgoing buffer the engine drains. Never
// blocks, never touches a socket. One Session per connection, used only by
// the thread that owns the connection.
//
// The engine's loop, after every call below: send pending_ciphertext() (or
// take_ciphertext()), because handshakes, key updates, alerts and
// close_notify produce ciphertext from any call, not only from writes.
//
//   session.feed_ciphertext(received);             // borrowed, not copied
//   if (!session.is_handshake_done()) e = session.handshake();
//   while ((e = session.read_plaintext(free_space, n)) == Errc::kOk) {...}
//   // kWantRead: all fed bytes consumed, wait for the socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tls/context.h"
#include "tls/errc.h"

struct WOLFSSL;

namespace shardring::tls {

class Session {
 public:
  // Output buffer capacity kept after the engine drains it; a larger buffer
  // (a big write, the handshake's first flight) is released, so an idle
  // session holds no more than this of our own.
  static constexpr size_t kRetainedOutputBytes = 2048;

  // A client session for `host` (a DNS name, or an IPv4/IPv6 literal without
  // brackets). A name is sent as SNI; with verification on, the certificate
  // must be valid for `host` (IP literals against IP SANs). With `cache`, a
  // session stored for `host` is offered for resumption and new tickets are
  // stored there; `cache` must outlive this session.
  static absl::StatusOr<Session> client(const Context& context, std::string_view host,
                                        SessionCache* cache = nullptr);
  static absl::StatusOr<Session> server(const Context& context);

  Session() noexcept = default;  // empty; assign from client() or server()
  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // ---- ciphertext in
  // Hands the session bytes received from the peer. They are borrowed, not
  // copied: keep them valid and unchanged until unread_ciphertext() is 0, or
  // until the next feed_ciphertext() or retain_ciphertext(). Bytes still
  // unread from an earlier feed are copied into the session here (this
  // happens only when the caller stopped reading with its plaintext buffer
  // full). kOk, or kInternal when that copy cannot be allocated.
  [[nodiscard]] Errc feed_ciphertext(std::span<const std::byte> bytes) noexcept;
  // Fed bytes not yet taken by TLS (borrowed and copied ones together).
  [[nodiscard]] size_t unread_ciphertext() const noexcept;
  // Copies the borrowed unread bytes into the session, so the caller can
  // recycle its receive buffer now. kOk or kInternal.
  [[nodiscard]] Errc retain_ciphertext() noexcept;

  // ---- handshake
  // Advances the handshake as far as the fed bytes allow. kOk: complete
  // (calling again returns kOk). kWantRead: send pending_ciphertext(), feed
  // more. Fatal codes: kHandshakeFailed, kCertificateInvalid,
  // kHostnameMismatch, kInternal; pending_ciphertext() may then hold an
  // alert for the peer.
  [[nodiscard]] Errc handshake() noexcept;
  [[nodiscard]] bool is_handshake_done() const noexcept { return done_; }

  // ---- plaintext
  // Decrypts fed records straight into `out` ([ptr, ptr + cap): typically
  // the free tail of the connection's big receive buffer, its padding slack
  // left outside the span) and sets `produced` to the bytes written there,
  // whatever the result:
  //   kOk        `out` is full; more plaintext may be ready: call again.
  //   kWantRead  every fed byte is consumed; feed more.
  //   kClosed    the peer sent close_notify after `produced` bytes.
  //   kNotReady  the handshake has not finished.
  //   fatal      kProtocol (bad MAC, garbage, fatal alert) or kInternal.
  // A TLS 1.3 ticket in the stream is consumed here and, for a client with a
  // SessionCache, stored in it.
  [[nodiscard]] Errc read_plaintext(std::span<std::byte> out, size_t& produced) noexcept;

  // Encrypts all of `in` into records appended to pending_ciphertext(). kOk,
  // kNotReady before the handshake, kClosed after either side closed, or a
  // fatal code. The outgoing buffer grows without bound: the engine applies
  // back-pressure by watching pending_ciphertext().size().
  [[nodiscard]] Errc write_plaintext(std::span<const std::byte> in) noexcept;

  // ---- ciphertext out
  // Bytes to send, oldest first. The span stays valid until the next
  // non-const call on this session.
  [[nodiscard]] std::span<const std::byte> pending_ciphertext() const noexcept {
    return {out_.data() + out_head_, out_.size() - out_head_};
  }
  // Marks the first `n` pending bytes as sent. Precondition: n <= size.
  void consume_ciphertext(size_t n) noexcept;
  // Moves every pending byte into `out` (its old contents are dropped) by
  // swapping buffers, so the caller owns them for an in-flight send without
  // a copy; `out`'s old capacity is reused for the next records.
  void take_ciphertext(std::vector<std::byte>& out) noexcept;

  // ---- closing
  // Queues our close_notify (RFC 8446 6.1). Writes are refused afterwards;
  // reads still deliver what the peer sends until its close_notify.
  [[nodiscard]] Errc shutdown() noexcept;

  // ---- introspection
  [[nodiscard]] bool is_client() const noexcept { return client_; }
  // True after a handshake that resumed a cached session (abbreviated).
  [[nodiscard]] bool is_resumed() const noexcept;
  // Negotiated ALPN protocol, empty when none.
  [[nodiscard]] std::string_view alpn() const noexcept;
  // "TLSv1.3", "TLSv1.2"; empty before the handshake.
  [[nodiscard]] std::string_view version() const noexcept;
  // e.g. "TLS13-AES128-GCM-SHA256"; empty before the handshake.
  [[nodiscard]] std::string_view cipher() const noexcept;
  // What ended the session (kClosed or a fatal code); kOk while usable.
  [[nodiscard]] Errc last_error() const noexcept { return error_; }
  // For logs, after a fatal code: wolfSSL's error text and number and, for a
  // verification failure, the certificate's depth, subject and reason.
  [[nodiscard]] std::string error_detail() const;
  // Heap bytes held by this object's own buffers (wolfSSL's not included).
  [[nodiscard]] size_t buffer_bytes() const noexcept;

 private:
  friend struct SessionCallbacks;
  Session(WOLFSSL* ssl, bool client, SessionCache* cache, std::string host) noexcept;
  void bind_callbacks() noexcept;
  void release() noexcept;
  Errc fail(int ret) noexcept;
  void maybe_store_session() noexcept;

  WOLFSSL* ssl_ = nullptr;
  // Input: copied bytes (carry_ from carry_head_) come before borrowed ones.
  std::span<const std::byte> borrowed_;
  std::vector<std::byte> carry_;
  size_t carry_head_ = 0;
  // Output: bytes from out_head_ to the end are pending.
  std::vector<std::byte> out_;
  size_t out_head_ = 0;
  // Client resumption.
  SessionCache* cache_ = nullptr;
  std::string host_;
  // State.
  Errc error_ = Errc::kOk;
  bool client_ = false;
  bool done_ = false;
  bool verify_ = false;       // client checking the certificate
  bool ip_verified_ = false;  // the leaf holds host_'s IP in its SANs
  uint8_t ip_len_ = 0;        // 4 or 16 when host_ is an IP literal
  uint8_t ip_[16] = {};
  bool offered_resumption_ = false;
  bool ticket_arrived_ = false;
  bool stored_session_ = false;
  bool sent_close_ = false;
  int wolf_error_ = 0;  // wolfSSL error code behind error_
  // Set by the certificate callback when the peer's chain is refused.
  int verify_error_ = 0;
  int verify_depth_ = -1;
  std::string verify_subject_;
};

}  // namespace shardring::tls
