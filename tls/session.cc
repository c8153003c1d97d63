// tls/session.cc: wolfSSL driven through its custom I/O callbacks from
// in-memory buffers.
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
// clang-format on

#include "tls/session.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tls/wolfssl_glue.h"
#include "tls/x509_san.h"

namespace shardring::tls {
namespace {

// The address bytes of an IP literal (4 or 16), or 0 for a name.
uint8_t ParseIpLiteral(const std::string& host, uint8_t (&out)[16]) {
  if (inet_pton(AF_INET, host.c_str(), out) == 1) return 4;
  if (inet_pton(AF_INET6, host.c_str(), out) == 1) return 16;
  return 0;
}

bool IsHostnameError(int code) { return code == DOMAIN_NAME_MISMATCH || code == IPADDR_MISMATCH; }

// Codes wolfSSL reports when the peer's chain is refused: wolfCrypt's ASN
// range (-140 ... -299: parse, date, signature, unknown signer, path length)
// and the TLS layer's verification codes.
bool IsCertificateError(int code) {
  return (code <= ASN_PARSE_E && code > MIN_CODE_E && code != MEMORY_E) ||
         code == VERIFY_CERT_ERROR || code == NO_PEER_CERT;
}

}  // namespace

// The C callbacks wolfSSL calls; friends of Session.
struct SessionCallbacks {
  // wolfSSL asks for at most `size` bytes of the stream: the bytes copied
  // earlier come first, then the caller's borrowed span. Nothing left:
  // WANT_READ, which wolfSSL passes up without losing partial records (it
  // keeps them in its own input buffer).
  static int Recv(WOLFSSL*, char* buf, int size, void* ctx) noexcept {
    auto* s = static_cast<Session*>(ctx);
    size_t want = static_cast<size_t>(size);
    size_t got = 0;
    if (s->carry_head_ < s->carry_.size()) {
      const size_t n = std::min(want, s->carry_.size() - s->carry_head_);
      std::memcpy(buf, s->carry_.data() + s->carry_head_, n);
      s->carry_head_ += n;
      got = n;
      if (s->carry_head_ == s->carry_.size()) {
        std::vector<std::byte>().swap(s->carry_);  // rare; give it back
        s->carry_head_ = 0;
      }
    }
    if (got < want && !s->borrowed_.empty()) {
      const size_t n = std::min(want - got, s->borrowed_.size());
      std::memcpy(buf + got, s->borrowed_.data(), n);
      s->borrowed_ = s->borrowed_.subspan(n);
      got += n;
    }
    return got == 0 ? WOLFSSL_CBIO_ERR_WANT_READ : static_cast<int>(got);
  }

  // Records wolfSSL wants sent: appended to the outgoing buffer.
  static int Send(WOLFSSL*, char* buf, int size, void* ctx) noexcept {
    auto* s = static_cast<Session*>(ctx);
    const auto* p = reinterpret_cast<const std::byte*>(buf);
    try {
      s->out_.insert(s->out_.end(), p, p + size);
    } catch (...) {
      return WOLFSSL_CBIO_ERR_GENERAL;  // surfaces as kInternal
    }
    return size;
  }

  // Called for every certificate of the peer's chain, valid or not (wolfSSL
  // is built with WOLFSSL_ALWAYS_VERIFY_CB and WOLFSSL_VERIFY_CB_ALL_CERTS):
  // remembers the first refusal, for the logs, and for an IP literal checks
  // the leaf's IP SANs, which wolfSSL does not parse in these builds. Reads
  // only what wolfSSL fills without its OpenSSL compatibility layer (the
  // chain's DER buffers and the subject's CN), so the build can leave that
  // layer out: it kept an X509 copy of the peer's certificate per session.
  static int Verify(int preverify, WOLFSSL_X509_STORE_CTX* store) noexcept {
    auto* s = static_cast<Session*>(store->userCtx);
    if (s == nullptr) return preverify;
    int error = preverify ? 0 : store->error;
    if (error == 0 && s->ip_len_ != 0 && store->error_depth == 0) {
      const WOLFSSL_BUFFER_INFO* leaf =
          store->certs != nullptr && store->totalCerts > 0 ? &store->certs[0] : nullptr;
      if (leaf != nullptr && leaf->buffer != nullptr && leaf->length > 0 &&
          internal::CertificateHasIpSan({leaf->buffer, leaf->length}, {s->ip_, s->ip_len_})) {
        s->ip_verified_ = true;
      } else {
        error = IPADDR_MISMATCH;
      }
    }
    if (error == 0) return 1;
    if (s->verify_error_ == 0) {
      s->verify_error_ = error;
      s->verify_depth_ = store->error_depth;
      if (store->domain != nullptr && store->domain[0] != '\0') {
        try {
          s->verify_subject_ = absl::StrCat("CN=", store->domain);
        } catch (...) {
        }
      }
    }
    return 0;
  }

  // A session ticket arrived (TLS 1.3: after the handshake, inside
  // wolfSSL_read). The session is stored once wolfSSL has finished with
  // the message, in Session::maybe_store_session().
  static int Ticket(WOLFSSL*, const unsigned char*, int, void* ctx) noexcept {
    static_cast<Session*>(ctx)->ticket_arrived_ = true;
    return 0;
  }
};

absl::StatusOr<Session> Session::client(const Context& context, std::string_view host,
                                        SessionCache* cache) {
  if (context.ctx_ == nullptr || context.role_ != Role::kClient) {
    return absl::InvalidArgumentError("tls: client session needs a client Context");
  }
  internal::release_caches_at_thread_exit();  // this thread runs its handshake
  // RFC 1035 2.3.4: a name is at most 253 characters written out.
  if (host.empty() || host.size() > 253 || host.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "tls: client session needs a host name of 1 to 253 characters");
  }
  WOLFSSL* ssl = wolfSSL_new(context.ctx_);
  if (ssl == nullptr) {
    return absl::ResourceExhaustedError("tls: cannot allocate a session");
  }
  Session s(ssl, /*client=*/true, cache, std::string(host));
  s.ip_len_ = ParseIpLiteral(s.host_, s.ip_);
  // RFC 6066 3: literal IP addresses are not sent as SNI.
  if (s.ip_len_ == 0 &&
      wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, s.host_.data(),
                     static_cast<unsigned short>(s.host_.size())) != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat("tls: cannot use '", s.host_, "' as SNI"));
  }
  if (!context.alpn_.empty()) {
    std::string alpn = context.alpn_;  // wolfSSL wants a mutable buffer
    if (wolfSSL_UseALPN(ssl, alpn.data(), static_cast<unsigned>(alpn.size()),
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls: bad ALPN protocol list '", context.alpn_, "'"));
    }
  }
  if (context.verifies_peer()) {
    // Names are checked by wolfSSL against the SANs (then the CN); IP
    // literals by the callback, against IP SANs only (RFC 6125 6.2.1).
    s.verify_ = true;
    if (s.ip_len_ == 0 && wolfSSL_check_domain_name(ssl, s.host_.c_str()) != WOLFSSL_SUCCESS) {
      return absl::ResourceExhaustedError("tls: cannot set the host name to check");
    }
    wolfSSL_set_verify(ssl, WOLFSSL_VERIFY_PEER, &SessionCallbacks::Verify);
  }
  if (cache != nullptr) {
    if (WOLFSSL_SESSION* cached = cache->find(s.host_); cached != nullptr) {
      // Fails for an expired session: forget it, do a full handshake.
      if (wolfSSL_set_session(ssl, cached) == WOLFSSL_SUCCESS) {
        s.offered_resumption_ = true;
      } else {
        cache->erase(s.host_);
      }
    }
  }
  s.bind_callbacks();
  return s;
}

absl::StatusOr<Session> Session::server(const Context& context) {
  if (context.ctx_ == nullptr || context.role_ != Role::kServer) {
    return absl::InvalidArgumentError("tls: server session needs a server Context");
  }
  internal::release_caches_at_thread_exit();  // this thread runs its handshake
  WOLFSSL* ssl = wolfSSL_new(context.ctx_);
  if (ssl == nullptr) {
    return absl::ResourceExhaustedError("tls: cannot allocate a session");
  }
  Session s(ssl, /*client=*/false, nullptr, std::string());
  if (!context.alpn_.empty()) {
    std::string alpn = context.alpn_;
    if (wolfSSL_UseALPN(ssl, alpn.data(), static_cast<unsigned>(alpn.size()),
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls: bad ALPN protocol list '", context.alpn_, "'"));
    }
  }
  s.bind_callbacks();
  return s;
}

Session::Session(WOLFSSL* ssl, bool client, SessionCache* cache, std::string host) noexcept
    : ssl_(ssl), cache_(cache), host_(std::move(host)), client_(client) {}

Session::Session(Session&& other) noexcept
    : ssl_(std::exchange(other.ssl_, nullptr)),
      borrowed_(std::exchange(other.borrowed_, {})),
      carry_(std::move(other.carry_)),
      carry_head_(std::exchange(other.carry_head_, 0)),
      out_(std::move(other.out_)),
      out_head_(std::exchange(other.out_head_, 0)),
      cache_(other.cache_),
      host_(std::move(other.host_)),
      error_(other.error_),
      client_(other.client_),
      done_(other.done_),
      verify_(other.verify_),
      ip_verified_(other.ip_verified_),
      ip_len_(other.ip_len_),
      offered_resumption_(other.offered_resumption_),
      ticket_arrived_(other.ticket_arrived_),
      stored_session_(other.stored_session_),
      sent_close_(other.sent_close_),
      wolf_error_(other.wolf_error_),
      verify_error_(other.verify_error_),
      verify_depth_(other.verify_depth_),
      verify_subject_(std::move(other.verify_subject_)) {
  std::memcpy(ip_, other.ip_, sizeof ip_);
  if (ssl_ != nullptr) bind_callbacks();
}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    this->~Session();
    new (this) Session(std::move(other));
  }
  return *this;
}

Session::~Session() { release(); }

void Session::release() noexcept {
  if (ssl_ != nullptr) {
    wolfSSL_free(ssl_);
    ssl_ = nullptr;
  }
}

// wolfSSL keeps `this` for its callbacks: bound again after every move.
void Session::bind_callbacks() noexcept {
  wolfSSL_SSLSetIORecv(ssl_, &SessionCallbacks::Recv);
  wolfSSL_SSLSetIOSend(ssl_, &SessionCallbacks::Send);
  wolfSSL_SetIOReadCtx(ssl_, this);
  wolfSSL_SetIOWriteCtx(ssl_, this);
  wolfSSL_SetCertCbCtx(ssl_, this);
  if (client_) {
    (void)wolfSSL_set_SessionTicket_cb(ssl_, &SessionCallbacks::Ticket, this);
  }
}

// ---- ciphertext in

Errc Session::feed_ciphertext(std::span<const std::byte> bytes) noexcept {
  if (Errc e = retain_ciphertext(); e != Errc::kOk) return e;
  borrowed_ = bytes;
  return Errc::kOk;
}

size_t Session::unread_ciphertext() const noexcept {
  return carry_.size() - carry_head_ + borrowed_.size();
}

Errc Session::retain_ciphertext() noexcept {
  if (borrowed_.empty()) return Errc::kOk;
  try {
    carry_.erase(carry_.begin(), carry_.begin() + static_cast<ptrdiff_t>(carry_head_));
    carry_head_ = 0;
    carry_.insert(carry_.end(), borrowed_.begin(), borrowed_.end());
  } catch (...) {
    return Errc::kInternal;
  }
  borrowed_ = {};
  return Errc::kOk;
}

// ---- handshake

Errc Session::handshake() noexcept {
  if (ssl_ == nullptr) return Errc::kNotReady;
  if (error_ != Errc::kOk) return error_;
  if (done_) return Errc::kOk;
  const int ret = client_ ? wolfSSL_connect(ssl_) : wolfSSL_accept(ssl_);
  if (ret != WOLFSSL_SUCCESS) return fail(ret);
  if (verify_ && ip_len_ != 0 && !ip_verified_ && wolfSSL_session_reused(ssl_) != 1) {
    // Fail closed should a wolfSSL build ever skip the callback for a
    // certificate it accepted. (A resumed session proved the address when
    // it was first made.)
    verify_error_ = wolf_error_ = IPADDR_MISMATCH;
    error_ = Errc::kHostnameMismatch;
    return error_;
  }
  done_ = true;
  maybe_store_session();
  return Errc::kOk;
}

// ---- plaintext

Errc Session::read_plaintext(std::span<std::byte> out, size_t& produced) noexcept {
  produced = 0;
  if (ssl_ == nullptr) return Errc::kNotReady;
  if (error_ != Errc::kOk) return error_;
  if (!done_) return Errc::kNotReady;
  Errc result = Errc::kOk;
  while (produced < out.size()) {
    const int want = static_cast<int>(std::min<size_t>(out.size() - produced, INT_MAX));
    const int ret = wolfSSL_read(ssl_, out.data() + produced, want);
    if (ret > 0) {
      produced += static_cast<size_t>(ret);
      continue;
    }
    result = fail(ret);
    break;
  }
  if (ticket_arrived_) maybe_store_session();
  return result;
}

Errc Session::write_plaintext(std::span<const std::byte> in) noexcept {
  if (ssl_ == nullptr) return Errc::kNotReady;
  if (error_ != Errc::kOk) return error_;
  if (!done_) return Errc::kNotReady;
  if (sent_close_) return Errc::kClosed;
  while (!in.empty()) {
    const int n = static_cast<int>(std::min<size_t>(in.size(), INT_MAX));
    const int ret = wolfSSL_write(ssl_, in.data(), n);
    if (ret <= 0) return fail(ret);
    in = in.subspan(static_cast<size_t>(ret));
  }
  return Errc::kOk;
}

// ---- ciphertext out

void Session::consume_ciphertext(size_t n) noexcept {
  assert(n <= out_.size() - out_head_);
  out_head_ += std::min(n, out_.size() - out_head_);
  if (out_head_ == out_.size()) {
    out_head_ = 0;
    if (out_.capacity() > kRetainedOutputBytes) {
      std::vector<std::byte>().swap(out_);
    } else {
      out_.clear();
    }
  }
}

void Session::take_ciphertext(std::vector<std::byte>& out) noexcept {
  if (out_head_ > 0) {
    out_.erase(out_.begin(), out_.begin() + static_cast<ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
  out.clear();
  out.swap(out_);
}

// ---- closing

Errc Session::shutdown() noexcept {
  if (ssl_ == nullptr || !done_) return Errc::kNotReady;
  if (is_fatal(error_)) return error_;
  if (sent_close_) return Errc::kOk;
  sent_close_ = true;
  const int ret = wolfSSL_shutdown(ssl_);
  if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE) return Errc::kOk;
  return fail(ret);
}

// ---- errors and resumption

Errc Session::fail(int ret) noexcept {
  const int err = wolfSSL_get_error(ssl_, ret);
  if (err == WOLFSSL_ERROR_WANT_READ) return Errc::kWantRead;
  wolf_error_ = err;
  Errc e;
  if (err == WOLFSSL_ERROR_ZERO_RETURN) {
    e = done_ ? Errc::kClosed : Errc::kHandshakeFailed;
  } else if (verify_error_ != 0) {
    e = IsHostnameError(verify_error_) ? Errc::kHostnameMismatch : Errc::kCertificateInvalid;
  } else if (IsHostnameError(err)) {
    e = Errc::kHostnameMismatch;
  } else if (!done_ && IsCertificateError(err)) {
    e = Errc::kCertificateInvalid;
  } else if (err == MEMORY_E || err == MEMORY_ERROR || err == SOCKET_ERROR_E || err == WANT_WRITE ||
             err == WOLFSSL_ERROR_WANT_WRITE) {
    e = Errc::kInternal;  // our Send callback could not allocate
  } else {
    e = done_ ? Errc::kProtocol : Errc::kHandshakeFailed;
  }
  // A cached session that led to a failed handshake is not offered again.
  if (!done_ && offered_resumption_ && cache_ != nullptr) cache_->erase(host_);
  error_ = e;
  return e;
}

void Session::maybe_store_session() noexcept {
  if (!client_ || cache_ == nullptr || !done_) return;
  // TLS 1.3: only a ticket makes a session resumable. TLS 1.2: the session
  // (ticket or id) is complete when the handshake is.
  const bool tls13 = wolfSSL_version(ssl_) == TLS1_3_VERSION;
  if (tls13 ? !ticket_arrived_ : stored_session_) return;
  ticket_arrived_ = false;
  stored_session_ = true;
  WOLFSSL_SESSION* live = wolfSSL_get1_session(ssl_);
  if (live == nullptr) return;
  // Our own copy: the live one belongs to this connection.
  WOLFSSL_SESSION* copy = wolfSSL_SESSION_dup(live);
  wolfSSL_SESSION_free(live);
  if (copy != nullptr) cache_->store(host_, copy);
}

// ---- introspection

bool Session::is_resumed() const noexcept {
  return ssl_ != nullptr && done_ && wolfSSL_session_reused(ssl_) == 1;
}

std::string_view Session::alpn() const noexcept {
  if (ssl_ == nullptr || !done_) return {};
  char* name = nullptr;
  unsigned short size = 0;
  if (wolfSSL_ALPN_GetProtocol(ssl_, &name, &size) != WOLFSSL_SUCCESS || name == nullptr) {
    return {};
  }
  return {name, size};
}

std::string_view Session::version() const noexcept {
  if (ssl_ == nullptr || !done_) return {};
  const char* v = wolfSSL_get_version(ssl_);
  return v != nullptr ? std::string_view(v) : std::string_view();
}

std::string_view Session::cipher() const noexcept {
  if (ssl_ == nullptr || !done_) return {};
  const char* c = wolfSSL_get_cipher_name(ssl_);
  return c != nullptr ? std::string_view(c) : std::string_view();
}

std::string Session::error_detail() const {
  if (error_ == Errc::kOk) return "no error";
  std::string d(to_string(error_));
  if (error_ == Errc::kClosed) return d + ": peer sent close_notify";
  if (wolf_error_ != 0) absl::StrAppend(&d, ": ", internal::wolfssl_error_text(wolf_error_));
  if (verify_error_ != 0) {
    absl::StrAppend(&d, "; certificate at depth ", verify_depth_);
    if (!verify_subject_.empty()) absl::StrAppend(&d, " (", verify_subject_, ")");
    absl::StrAppend(&d, " refused: ", internal::wolfssl_error_text(verify_error_));
    if (IsHostnameError(verify_error_)) absl::StrAppend(&d, "; wanted '", host_, "'");
  } else if (IsHostnameError(wolf_error_)) {
    absl::StrAppend(&d, "; wanted '", host_, "'");
  }
  WOLFSSL_ALERT_HISTORY history{};
  if (ssl_ != nullptr && wolfSSL_get_alert_history(ssl_, &history) == WOLFSSL_SUCCESS &&
      history.last_rx.level == alert_fatal) {
    absl::StrAppend(&d, "; peer sent fatal alert ", internal::alert_name(history.last_rx.code),
                    " (", history.last_rx.code, ")");
  }
  return d;
}

size_t Session::buffer_bytes() const noexcept { return carry_.capacity() + out_.capacity(); }

}  // namespace shardring::tls
