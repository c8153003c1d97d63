// bench/tls_record_bench.cc: tls::Session in memory, client and server in
// one process. Record decryption and encryption (MB/s of plaintext) per
// cipher and record size; full and resumed handshakes (both sides' CPU).
//
//   build/bin/tls_record_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/tls/test_pki.h"
#include "tests/tls/tls_harness.h"
#include "tls/context.h"
#include "tls/session.h"

namespace shardring::tls {
namespace {

using testing::AsBytes;
using testing::Drain;
using testing::Handshake;
using testing::Transfer;

const char* const kSuites[] = {"TLS13-AES128-GCM-SHA256", "TLS13-CHACHA20-POLY1305-SHA256"};

const testing::TestPki& Pki() {
  std::string error;
  const auto& pki = testing::GetTestPki(&error);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(1);
  }
  return pki;
}

Context ClientContext() {
  ClientOptions o;
  o.system_ca_file.clear();
  o.ca_file = Pki().ca_cert;
  return *Context::client(o);
}

Context ServerContext(const char* suite = "") {
  ServerOptions o;
  o.cert_file = Pki().server_chain;
  o.key_file = Pki().server_key;
  o.cipher_list = suite;
  return *Context::server(o);
}

struct Connected {
  Context client_ctx;
  Context server_ctx;
  Session client;
  Session server;

  explicit Connected(const char* suite)
      : client_ctx(ClientContext()), server_ctx(ServerContext(suite)) {
    client = *Session::client(client_ctx, "localhost");
    server = *Session::server(server_ctx);
    if (!Handshake(client, server).ok()) std::abort();
    (void)Transfer(server, client);  // the session ticket
  }
};

// range(0): suite index; range(1): plaintext bytes per record.
void BM_TlsDecryptRecords(benchmark::State& state) {
  const char* suite = kSuites[state.range(0)];
  const size_t record = static_cast<size_t>(state.range(1));
  const size_t batch = (size_t{1} << 20) / record;  // 1 MiB of plaintext
  Connected c(suite);
  if (c.client.cipher() != suite) {
    state.SkipWithError("suite not negotiated");
    return;
  }
  const std::string payload(record, 'x');
  std::vector<std::byte> wire;
  std::vector<std::byte> plain(batch * record);
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < batch; ++i) {
      if (c.server.write_plaintext(AsBytes(payload)) != Errc::kOk) std::abort();
    }
    c.server.take_ciphertext(wire);
    state.ResumeTiming();
    (void)c.client.feed_ciphertext(wire);
    size_t n = 0;
    if (c.client.read_plaintext(plain, n) != Errc::kOk || n != plain.size()) {
      state.SkipWithError("short read");
      break;
    }
    benchmark::DoNotOptimize(plain.data());
  }
  state.SetLabel(suite);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * record));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_TlsDecryptRecords)
    ->ArgsProduct({{0, 1}, {1024, 16384}})
    ->ArgNames({"suite", "record"});

void BM_TlsEncryptRecords(benchmark::State& state) {
  const char* suite = kSuites[state.range(0)];
  const size_t record = static_cast<size_t>(state.range(1));
  const size_t batch = (size_t{1} << 20) / record;
  Connected c(suite);
  const std::string payload(record, 'x');
  std::vector<std::byte> wire;
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      if (c.server.write_plaintext(AsBytes(payload)) != Errc::kOk) std::abort();
    }
    c.server.take_ciphertext(wire);
    benchmark::DoNotOptimize(wire.data());
  }
  state.SetLabel(suite);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * record));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_TlsEncryptRecords)
    ->ArgsProduct({{0, 1}, {1024, 16384}})
    ->ArgNames({"suite", "record"});

// Client and server both, ECDHE P-256 + ECDSA P-256, TLS 1.3.
void BM_TlsFullHandshake(benchmark::State& state) {
  Context client_ctx = ClientContext();
  Context server_ctx = ServerContext();
  for (auto _ : state) {
    Session client = *Session::client(client_ctx, "localhost");
    Session server = *Session::server(server_ctx);
    if (!Handshake(client, server).ok()) {
      state.SkipWithError("handshake failed");
      break;
    }
  }
}
BENCHMARK(BM_TlsFullHandshake)->Unit(benchmark::kMicrosecond);

// A reconnect that resumes with the cached ticket (PSK with ECDHE), and
// takes the new ticket the server sends, as the engine's reconnects do.
void BM_TlsResumedHandshake(benchmark::State& state) {
  Context client_ctx = ClientContext();
  Context server_ctx = ServerContext();
  SessionCache cache;
  {
    Session client = *Session::client(client_ctx, "localhost", &cache);
    Session server = *Session::server(server_ctx);
    if (!Handshake(client, server).ok()) std::abort();
    (void)Transfer(server, client);
  }
  for (auto _ : state) {
    Session client = *Session::client(client_ctx, "localhost", &cache);
    Session server = *Session::server(server_ctx);
    if (!Handshake(client, server).ok() || !client.is_resumed()) {
      state.SkipWithError("not resumed");
      break;
    }
    (void)Transfer(server, client);
  }
}
BENCHMARK(BM_TlsResumedHandshake)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace shardring::tls

BENCHMARK_MAIN();
