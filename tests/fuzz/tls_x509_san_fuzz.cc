// tests/fuzz/tls_x509_san_fuzz.cc: arbitrary DER into the subjectAltName IP
// lookup. Byte 0 picks the address length (even: 4, odd: 16); the address
// follows, then the certificate bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tls/x509_san.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t ip_len = data[0] % 2 == 0 ? 4 : 16;
  if (size < 1 + ip_len) return 0;
  const std::span<const uint8_t> ip(data + 1, ip_len);
  // An exact-size copy, so that reads past the end are caught.
  const std::vector<uint8_t> der(data + 1 + ip_len, data + size);
  (void)shardring::tls::internal::CertificateHasIpSan(der, ip);
  return 0;
}
