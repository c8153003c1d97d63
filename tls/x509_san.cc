// tls/x509_san.cc: a bounds-checked walk over just enough DER to reach the
// subjectAltName extension.
#include "tls/x509_san.h"

#include <algorithm>
#include <cstddef>

namespace shardring::tls::internal {
namespace {

constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kOid = 0x06;
constexpr uint8_t kBoolean = 0x01;
constexpr uint8_t kOctetString = 0x04;
constexpr uint8_t kExtensions = 0xA3;                      // [3] EXPLICIT in TBSCertificate
constexpr uint8_t kIpAddress = 0x87;                       // GeneralName [7] IMPLICIT OCTET STRING
constexpr uint8_t kSubjectAltName[] = {0x55, 0x1D, 0x11};  // 2.5.29.17

struct Tlv {
  uint8_t tag = 0;
  std::span<const uint8_t> value;
};

// Reads one definite-length TLV off the front of `in`.
bool Next(std::span<const uint8_t>& in, Tlv& out) noexcept {
  if (in.size() < 2) return false;
  const uint8_t tag = in[0];
  if ((tag & 0x1F) == 0x1F) return false;  // multi-byte tags: not in X.509
  size_t len = in[1];
  size_t header = 2;
  if (len & 0x80) {
    const size_t n = len & 0x7F;
    if (n == 0 || n > 4 || in.size() < 2 + n) return false;
    len = 0;
    for (size_t i = 0; i < n; ++i) len = (len << 8) | in[2 + i];
    header += n;
  }
  if (in.size() - header < len) return false;
  out.tag = tag;
  out.value = in.subspan(header, len);
  in = in.subspan(header + len);
  return true;
}

bool SanHasIp(std::span<const uint8_t> names, std::span<const uint8_t> ip) noexcept {
  Tlv seq;
  if (!Next(names, seq) || seq.tag != kSequence) return false;
  std::span<const uint8_t> rest = seq.value;
  Tlv name;
  while (!rest.empty()) {
    if (!Next(rest, name)) return false;
    if (name.tag == kIpAddress && name.value.size() == ip.size() &&
        std::equal(ip.begin(), ip.end(), name.value.begin())) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool CertificateHasIpSan(std::span<const uint8_t> der, std::span<const uint8_t> ip) noexcept {
  if (ip.size() != 4 && ip.size() != 16) return false;
  Tlv cert, tbs;
  if (!Next(der, cert) || cert.tag != kSequence) return false;
  if (!Next(cert.value, tbs) || tbs.tag != kSequence) return false;
  std::span<const uint8_t> fields = tbs.value;
  Tlv field;
  while (!fields.empty()) {
    if (!Next(fields, field)) return false;
    if (field.tag != kExtensions) continue;
    Tlv list;
    std::span<const uint8_t> outer = field.value;
    if (!Next(outer, list) || list.tag != kSequence) return false;
    std::span<const uint8_t> exts = list.value;
    Tlv ext;
    while (!exts.empty()) {
      if (!Next(exts, ext) || ext.tag != kSequence) return false;
      std::span<const uint8_t> parts = ext.value;
      Tlv oid, value;
      if (!Next(parts, oid) || oid.tag != kOid) return false;
      if (!Next(parts, value)) return false;
      if (value.tag == kBoolean && !Next(parts, value)) return false;
      if (value.tag != kOctetString) return false;
      if (std::ranges::equal(oid.value, kSubjectAltName)) {
        return SanHasIp(value.value, ip);
      }
    }
    return false;
  }
  return false;
}

}  // namespace shardring::tls::internal
