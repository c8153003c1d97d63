// tests/tls/memory_test.cc: heap held by idle TLS sessions, counted through
// wolfSSL's allocator hooks (docs/memory.md: what an idle TLS shard costs).
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/memory.h>
// clang-format on

#include <malloc.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <vector>

#include "tests/tls/test_pki.h"
#include "tests/tls/tls_harness.h"
#include "tls/context.h"
#include "tls/session.h"

namespace {

std::atomic<long> g_wolf_live{0};

void* CountingMalloc(size_t size) {
  void* p = std::malloc(size);
  if (p != nullptr) g_wolf_live += static_cast<long>(malloc_usable_size(p));
  return p;
}

void CountingFree(void* p) {
  if (p == nullptr) return;
  g_wolf_live -= static_cast<long>(malloc_usable_size(p));
  std::free(p);
}

void* CountingRealloc(void* p, size_t size) {
  const long old = p != nullptr ? static_cast<long>(malloc_usable_size(p)) : 0;
  void* q = std::realloc(p, size);
  if (q != nullptr) {
    g_wolf_live += static_cast<long>(malloc_usable_size(q)) - old;
  } else if (size == 0) {
    g_wolf_live -= old;
  }
  return q;
}

// Before main(), so that every wolfSSL allocation goes through the hooks.
const bool g_hooks_installed =
    wolfSSL_SetAllocators(CountingMalloc, CountingFree, CountingRealloc) == 0;

}  // namespace

namespace shardring::tls {
namespace {

using ::shardring::tls::testing::GetTestPki;
using ::shardring::tls::testing::Handshake;
using ::shardring::tls::testing::Transfer;

// The wolfSSL that scripts/setup.sh builds defines WOLFSSL_USER_IO; Debian's
// does not, and holds an order of magnitude more per session (79 KB
// measured), so the bound depends on which one is linked.
#ifdef WOLFSSL_USER_IO
// 3,468 B measured with the GHASH table gone (--enable-aesgcm=small);
// 2,736 B with the TLS 1.3 hello extensions freed after the handshake
// (scripts/wolfssl/trim-tls13-extensions.patch).
constexpr long kMaxIdleClientBytes = 3 * 1024;
#else
constexpr long kMaxIdleClientBytes = 128 * 1024;
#endif

TEST(TlsMemory, IdleSessionsAfterTheHandshakeHoldAFewKilobytes) {
  ASSERT_TRUE(g_hooks_installed);
  std::string error;
  const auto& pki = GetTestPki(&error);
  ASSERT_EQ(error, "");
  ClientOptions co;
  co.system_ca_file.clear();
  co.ca_file = pki.ca_cert;
  auto client_ctx = Context::client(co);
  ASSERT_TRUE(client_ctx.ok()) << client_ctx.status();
  ServerOptions so;
  so.cert_file = pki.server_chain;
  so.key_file = pki.server_key;
  auto server_ctx = Context::server(so);
  ASSERT_TRUE(server_ctx.ok()) << server_ctx.status();
  EXPECT_GT(g_wolf_live.load(), 0) << "allocator hooks not called";

  SessionCache cache;
  auto connect = [&](std::vector<Session>& clients, std::vector<Session>& servers) {
    clients.push_back(*Session::client(*client_ctx, "localhost", &cache));
    servers.push_back(*Session::server(*server_ctx));
    ASSERT_TRUE(Handshake(clients.back(), servers.back()).ok());
    // The TLS 1.3 ticket, and an application message each way, so that
    // record buffers have been used before we look.
    ASSERT_EQ(Transfer(servers.back(), clients.back()), "");
    ASSERT_EQ(clients.back().write_plaintext(testing::AsBytes("ping")), Errc::kOk);
    ASSERT_EQ(Transfer(clients.back(), servers.back()), "ping");
    ASSERT_EQ(servers.back().write_plaintext(testing::AsBytes("pong")), Errc::kOk);
    ASSERT_EQ(Transfer(servers.back(), clients.back()), "pong");
  };
  {
    // Warm-up: lazily made state (ticket keys, the cached session) and, in
    // Debian's build (FP_ECC), wolfCrypt's per-thread cache of ECC point
    // tables, which grows with each new ephemeral key up to 15 entries.
    std::vector<Session> c, s;
    for (int i = 0; i < 24; ++i) connect(c, s);
  }
  constexpr int kSessions = 64;
  const long baseline = g_wolf_live.load();
  std::vector<Session> clients, servers;
  clients.reserve(kSessions);
  servers.reserve(kSessions);
  for (int i = 0; i < kSessions; ++i) connect(clients, servers);
  const long with_both = g_wolf_live.load();
  size_t our_buffers = 0;
  for (const Session& c : clients) our_buffers += c.buffer_bytes();
  servers.clear();
  const long with_clients = g_wolf_live.load();
  const long per_client = (with_clients - baseline) / kSessions;
  const long per_server = (with_both - with_clients) / kSessions;
  std::printf(
      "wolfSSL heap per idle session: client %ld B (resumed: %s), server %ld B;"
      " our buffers per client %zu B; sizeof(Session) %zu B\n",
      per_client, clients.back().is_resumed() ? "yes" : "no", per_server, our_buffers / kSessions,
      sizeof(Session));
  RecordProperty("client_bytes", static_cast<int>(per_client));
  RecordProperty("server_bytes", static_cast<int>(per_server));
  EXPECT_LE(per_client, kMaxIdleClientBytes);
  EXPECT_LE(per_server, kMaxIdleClientBytes);
  EXPECT_LE(our_buffers / kSessions, Session::kRetainedOutputBytes);
  clients.clear();
  // Everything a session allocated is given back when it goes.
  EXPECT_EQ(g_wolf_live.load(), baseline);
}

}  // namespace
}  // namespace shardring::tls
