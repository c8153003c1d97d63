// tls/x509_san.h: internal to tls/. Looks for an IP address among a DER
// certificate's subjectAltName entries, which wolfSSL only parses when built
// with WOLFSSL_IP_ALT_NAME (neither our build nor Debian's is). Any thread.
#pragma once

#include <cstdint>
#include <span>

namespace shardring::tls::internal {

// True when `der` (one X.509 certificate) has a subjectAltName extension
// (RFC 5280 4.2.1.6) with an iPAddress entry equal to `ip` (4 or 16 bytes,
// network order). Malformed or truncated DER gives false, never a crash.
bool CertificateHasIpSan(std::span<const uint8_t> der, std::span<const uint8_t> ip) noexcept;

}  // namespace shardring::tls::internal
