// tests/tls/x509_san_test.cc: the subjectAltName IP lookup behind IP-literal
// host verification, over a real certificate and every truncation of it.
#include "tls/x509_san.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/tls/test_pki.h"

namespace shardring::tls::internal {
namespace {

std::vector<uint8_t> ServerCertDer() {
  std::string error;
  const auto& pki = testing::GetTestPki(&error);
  EXPECT_EQ(error, "");
  const std::string der = pki.dir + "/server.der";
  const std::string cmd =
      "openssl x509 -in '" + pki.server_cert + "' -outform der -out '" + der + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(der, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

const uint8_t kLoopback4[] = {127, 0, 0, 1};
const uint8_t kOther4[] = {127, 0, 0, 2};
const uint8_t kLoopback6[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

TEST(X509San, FindsTheIpAddressesTheCertificateNames) {
  const std::vector<uint8_t> der = ServerCertDer();
  ASSERT_GT(der.size(), 100u);
  EXPECT_TRUE(CertificateHasIpSan(der, kLoopback4));
  EXPECT_TRUE(CertificateHasIpSan(der, kLoopback6));
  EXPECT_FALSE(CertificateHasIpSan(der, kOther4));
  // The IPv4 address is not found as a prefix of a longer one, or vice versa.
  EXPECT_FALSE(CertificateHasIpSan(der, std::span(kLoopback6).first(4)));
  EXPECT_FALSE(CertificateHasIpSan(der, std::span(kLoopback4).first(3)));
}

TEST(X509San, TruncatedOrCorruptCertificatesNeverMatchOrCrash) {
  const std::vector<uint8_t> der = ServerCertDer();
  for (size_t len = 0; len < der.size(); ++len) {
    // Exact-size heap copies, so that a sanitizer sees any overread.
    const std::vector<uint8_t> cut(der.begin(), der.begin() + len);
    EXPECT_FALSE(CertificateHasIpSan(cut, kLoopback4)) << "len=" << len;
  }
  for (size_t i = 0; i < der.size(); ++i) {
    std::vector<uint8_t> bad = der;
    bad[i] ^= 0xFF;
    (void)CertificateHasIpSan(bad, kLoopback4);  // any answer, no crash
  }
}

}  // namespace
}  // namespace shardring::tls::internal
