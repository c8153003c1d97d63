#include "tests/tls/test_contexts.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace shardring::tls::testing {

const TestContexts& GetTestContexts() {
  static const TestContexts* contexts = [] {
    std::string error;
    const TestPki& pki = GetTestPki(&error);
    if (!error.empty()) {
      std::fprintf(stderr, "test PKI: %s\n", error.c_str());
      std::abort();
    }
    ClientOptions co;
    co.system_ca_file.clear();
    co.ca_file = pki.ca_cert;
    ServerOptions so;
    so.cert_file = pki.server_chain;
    so.key_file = pki.server_key;
    auto c = Context::client(co);
    auto s = Context::server(so);
    if (!c.ok() || !s.ok()) {
      std::fprintf(stderr, "test TLS contexts: %s\n",
                   std::string(!c.ok() ? c.status().message() : s.status().message()).c_str());
      std::abort();
    }
    return new TestContexts{std::move(*c), std::move(*s)};
  }();
  return *contexts;
}

}  // namespace shardring::tls::testing
