// tls/errc.cc: names for tls::Errc.
#include "tls/errc.h"

namespace shardring::tls {

std::string_view to_string(Errc e) noexcept {
  switch (e) {
    case Errc::kOk:
      return "ok";
    case Errc::kWantRead:
      return "want_read";
    case Errc::kClosed:
      return "closed";
    case Errc::kNotReady:
      return "not_ready";
    case Errc::kHandshakeFailed:
      return "handshake_failed";
    case Errc::kCertificateInvalid:
      return "certificate_invalid";
    case Errc::kHostnameMismatch:
      return "hostname_mismatch";
    case Errc::kProtocol:
      return "protocol";
    case Errc::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace shardring::tls
