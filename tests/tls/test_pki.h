// tests/tls/test_pki.h: certificates made at test time with the openssl
// command-line tool (wolfSSL's bundled test certificates have expired).
// Shared by the TLS tests and benchmarks; one set per process.
#pragma once

#include <string>

namespace shardring::tls::testing {

struct TestPki {
  std::string dir;           // temporary folder holding every file below
  std::string ca_cert;       // "shardring test CA", the one clients trust
  std::string server_cert;   // leaf for DNS:localhost, IP:127.0.0.1, IP:::1
  std::string server_chain;  // server_cert followed by ca_cert
  std::string server_key;
  std::string other_ca_cert;  // a CA nobody trusts
  std::string unknown_cert;   // localhost leaf issued by other_ca_cert
  std::string unknown_key;
  std::string expired_cert;  // localhost leaf by ca_cert, expired in 2020
  std::string expired_key;
  std::string not_a_cert;  // a text file that holds no PEM at all
};

// Makes the files on first use (about a second); the folder is removed when
// the process exits. `error` is set, and the result empty, when openssl
// fails: tests then fail with that message.
const TestPki& GetTestPki(std::string* error = nullptr);

}  // namespace shardring::tls::testing
