// tls/errc.h: the codes tls::Session reports. Stage: TLS, between the
// engine's socket and ws::Decoder. Plain values, usable from any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace shardring::tls {

// Everything a Session call can report. kWantRead is flow control, not a
// failure; kClosed is the peer's clean end of stream (close_notify);
// kNotReady is a call out of order (data before the handshake finished).
// Any value for which is_fatal() holds ends the connection; the session
// keeps returning it, and Session::error_detail() says why for the logs.
enum class Errc : uint8_t {
  kOk,
  kWantRead,            // feed more ciphertext (send pending_ciphertext() first)
  kClosed,              // peer sent close_notify: no more plaintext will come
  kNotReady,            // plaintext I/O before the handshake completed
  kHandshakeFailed,     // no shared version/cipher, peer alert, bad handshake
  kCertificateInvalid,  // chain did not verify: unknown CA, expired, bad sig
  kHostnameMismatch,    // chain verified, but not for the host we asked for
  kProtocol,            // bad record after the handshake: MAC, garbage, alert
  kInternal,            // out of memory or a wolfSSL failure not the peer's
};

// True for the codes that end the connection with an error.
constexpr bool is_fatal(Errc e) noexcept { return e >= Errc::kHandshakeFailed; }

// True when the failure is about the peer's certificate: retrying the same
// host will fail the same way, so the engine should back off hard and log.
constexpr bool is_verification_failure(Errc e) noexcept {
  return e == Errc::kCertificateInvalid || e == Errc::kHostnameMismatch;
}

// "ok", "want_read", "certificate_invalid", ...: stable names for logs.
std::string_view to_string(Errc e) noexcept;

}  // namespace shardring::tls
