// tests/tls/test_contexts.h: TLS contexts over the test PKI (test_pki.h),
// for tests, fuzz targets and benchmarks that use our tls:: library.
#pragma once

#include "tests/tls/test_pki.h"
#include "tls/context.h"

namespace shardring::tls::testing {

// A client context trusting the test CA and a server context serving the
// localhost leaf (server_chain), made once per process. For fuzz targets and
// benchmarks, which have no test to fail: when the files or a context cannot
// be made it prints why and aborts.
struct TestContexts {
  Context client;
  Context server;
};
const TestContexts& GetTestContexts();

}  // namespace shardring::tls::testing
