// tests/tls/session_test.cc: tls::Context and tls::Session, client and server
// talking in memory, with certificates made at test time.
#include "tls/session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/tls/test_pki.h"
#include "tests/tls/tls_harness.h"
#include "tls/context.h"

namespace shardring::tls {
namespace {

using ::shardring::tls::testing::AsBytes;
using ::shardring::tls::testing::Drain;
using ::shardring::tls::testing::FeedInChunks;
using ::shardring::tls::testing::GetTestPki;
using ::shardring::tls::testing::Handshake;
using ::shardring::tls::testing::TestPki;
using ::shardring::tls::testing::Transfer;
using ::testing::HasSubstr;

const TestPki& Pki() {
  std::string error;
  const TestPki& pki = GetTestPki(&error);
  EXPECT_EQ(error, "");
  return pki;
}

ClientOptions TrustingTestCa() {
  ClientOptions o;
  o.system_ca_file.clear();
  o.ca_file = Pki().ca_cert;
  return o;
}

Context MakeClientContext(ClientOptions o = TrustingTestCa()) {
  absl::StatusOr<Context> ctx = Context::client(o);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return std::move(ctx).value();
}

Context MakeServerContext(std::string cert = Pki().server_chain, std::string key = Pki().server_key,
                          Versions versions = Versions::kTls12OrNewer,
                          std::string cipher_list = "") {
  ServerOptions o;
  o.cert_file = std::move(cert);
  o.key_file = std::move(key);
  o.versions = versions;
  o.cipher_list = std::move(cipher_list);
  absl::StatusOr<Context> ctx = Context::server(o);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return std::move(ctx).value();
}

Session MakeClient(const Context& ctx, std::string_view host = "localhost",
                   SessionCache* cache = nullptr) {
  absl::StatusOr<Session> s = Session::client(ctx, host, cache);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

Session MakeServer(const Context& ctx) {
  absl::StatusOr<Session> s = Session::server(ctx);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

std::string RandomText(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A connected pair over the good certificate.
struct Pair {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext();
  Session client = MakeClient(client_ctx);
  Session server = MakeServer(server_ctx);
};

TEST(TlsSession, HandshakeCompletesWithTls13AndAlpn) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok())
      << p.client.error_detail() << " / " << p.server.error_detail();
  EXPECT_TRUE(p.client.is_handshake_done());
  EXPECT_TRUE(p.server.is_handshake_done());
  EXPECT_EQ(p.client.version(), "TLSv1.3");
  EXPECT_EQ(p.client.cipher(), "TLS13-AES128-GCM-SHA256");
  EXPECT_EQ(p.client.alpn(), "http/1.1");
  EXPECT_EQ(p.server.alpn(), "http/1.1");
  EXPECT_FALSE(p.client.is_resumed());
  EXPECT_EQ(p.client.last_error(), Errc::kOk);
  // handshake() after completion is a no-op.
  EXPECT_EQ(p.client.handshake(), Errc::kOk);
}

TEST(TlsSession, ApplicationDataRoundTripsInBothDirections) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  ASSERT_EQ(p.client.write_plaintext(AsBytes("GET / HTTP/1.1\r\n\r\n")), Errc::kOk);
  Errc last;
  EXPECT_EQ(Transfer(p.client, p.server, SIZE_MAX, 1 << 16, &last), "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(last, Errc::kWantRead);
  EXPECT_EQ(p.server.unread_ciphertext(), 0u);
  ASSERT_EQ(p.server.write_plaintext(AsBytes("HTTP/1.1 101 ")), Errc::kOk);
  ASSERT_EQ(p.server.write_plaintext(AsBytes("Switching Protocols\r\n")), Errc::kOk);
  // The client also consumes the server's session ticket on the way.
  EXPECT_EQ(Transfer(p.server, p.client, SIZE_MAX, 1 << 16, &last),
            "HTTP/1.1 101 Switching Protocols\r\n");
  EXPECT_EQ(last, Errc::kWantRead);
}

TEST(TlsSession, TwoMebibyteMessagesCrossManyRecordsBothWays) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  const std::string up = RandomText(2 << 20, 1);
  const std::string down = RandomText(2 << 20, 2);
  ASSERT_EQ(p.client.write_plaintext(AsBytes(up)), Errc::kOk);
  // 2 MiB of plaintext is at least 128 records of 16 KiB plus overhead.
  EXPECT_GT(p.client.pending_ciphertext().size(), up.size() + 128 * 16);
  EXPECT_TRUE(Transfer(p.client, p.server, 65536) == up);
  ASSERT_EQ(p.server.write_plaintext(AsBytes(down)), Errc::kOk);
  EXPECT_TRUE(Transfer(p.server, p.client, 100'000, 3000) == down);
}

TEST(TlsSession, OneByteAtATimeDrivesHandshakeAndData) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server, /*chunk=*/1).ok())
      << p.client.error_detail() << " / " << p.server.error_detail();
  const std::string msg = RandomText(40'000, 3);
  ASSERT_EQ(p.server.write_plaintext(AsBytes(msg)), Errc::kOk);
  EXPECT_TRUE(Transfer(p.server, p.client, /*chunk=*/1) == msg);
  ASSERT_EQ(p.client.write_plaintext(AsBytes(msg)), Errc::kOk);
  EXPECT_TRUE(Transfer(p.client, p.server, /*chunk=*/1, /*read_cap=*/7) == msg);
}

// Two feeds split at every offset of a three-record wire: what the client
// reads must not depend on how the kernel chunked the stream. Records are
// sealed under advancing sequence numbers, so each cut gets its own copy of
// the three messages; every copy encrypts to the same length.
TEST(TlsSession, SameRecordsWhereverTheReadSplits) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  EXPECT_EQ(Transfer(p.server, p.client), "");  // consumes the ticket
  auto write_three = [&] {
    for (const char* m : {"alpha", "beta", "gamma"}) {
      ASSERT_EQ(p.server.write_plaintext(AsBytes(m)), Errc::kOk);
    }
  };
  write_three();
  const std::vector<std::byte> first = Drain(p.server);
  const size_t length = first.size();
  ASSERT_EQ(FeedInChunks(p.client, first, SIZE_MAX, [] { return Errc::kOk; }), Errc::kOk);
  Errc last;
  ASSERT_EQ(Transfer(p.server, p.client, SIZE_MAX, 1 << 16, &last), "alphabetagamma");
  for (size_t cut = 0; cut <= length; ++cut) write_three();
  const std::vector<std::byte> all = Drain(p.server);
  ASSERT_EQ(all.size(), (length + 1) * length);

  std::vector<std::byte> buf(64);
  for (size_t cut = 0; cut <= length; ++cut) {
    SCOPED_TRACE(::testing::Message() << "cut=" << cut);
    const std::span<const std::byte> one(all.data() + cut * length, length);
    std::string got;
    for (std::span<const std::byte> piece : {one.first(cut), one.subspan(cut)}) {
      ASSERT_EQ(p.client.feed_ciphertext(piece), Errc::kOk);
      size_t n = 0;
      Errc e;
      while ((e = p.client.read_plaintext(buf, n)) == Errc::kOk) {
        got.append(reinterpret_cast<const char*>(buf.data()), n);
      }
      got.append(reinterpret_cast<const char*>(buf.data()), n);
      ASSERT_EQ(e, Errc::kWantRead) << p.client.error_detail();
      ASSERT_EQ(p.client.unread_ciphertext(), 0u);
    }
    EXPECT_EQ(got, "alphabetagamma");
  }
}

TEST(TlsSession, FullPlaintextBufferLeavesInputBorrowedUntilFedAgain) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  EXPECT_EQ(Transfer(p.server, p.client), "");
  const std::string first = RandomText(10'000, 4);
  const std::string second = RandomText(10'000, 5);
  ASSERT_EQ(p.server.write_plaintext(AsBytes(first)), Errc::kOk);
  std::vector<std::byte> wire1 = Drain(p.server);
  ASSERT_EQ(p.server.write_plaintext(AsBytes(second)), Errc::kOk);
  std::vector<std::byte> wire2 = Drain(p.server);

  std::vector<std::byte> buf(1000);
  size_t n = 0;
  ASSERT_EQ(p.client.feed_ciphertext(wire1), Errc::kOk);
  ASSERT_EQ(p.client.read_plaintext(buf, n), Errc::kOk);  // buffer full
  ASSERT_EQ(n, buf.size());
  std::string got(reinterpret_cast<const char*>(buf.data()), n);
  // wire1 is one record already taken by wolfSSL; the rest is wolfSSL's.
  // Feed wire2 while wire1's plaintext is still pending, then recycle both
  // of our buffers at once: nothing may still point into them.
  ASSERT_EQ(p.client.feed_ciphertext(wire2), Errc::kOk);
  ASSERT_EQ(p.client.retain_ciphertext(), Errc::kOk);
  std::fill(wire1.begin(), wire1.end(), std::byte{0});
  std::fill(wire2.begin(), wire2.end(), std::byte{0});
  Errc e;
  while ((e = p.client.read_plaintext(buf, n)) == Errc::kOk) {
    got.append(reinterpret_cast<const char*>(buf.data()), n);
  }
  got.append(reinterpret_cast<const char*>(buf.data()), n);
  EXPECT_EQ(e, Errc::kWantRead);
  EXPECT_TRUE(got == first + second);
}

TEST(TlsSession, UnknownCaFailsWithCertificateInvalid) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext(Pki().unknown_cert, Pki().unknown_key);
  Session client = MakeClient(client_ctx);
  Session server = MakeServer(server_ctx);
  auto r = Handshake(client, server);
  EXPECT_EQ(r.client, Errc::kCertificateInvalid);
  EXPECT_TRUE(is_verification_failure(client.last_error()));
  EXPECT_THAT(client.error_detail(), HasSubstr("certificate_invalid"));
  EXPECT_THAT(client.error_detail(), HasSubstr("(-188)"));  // ASN_NO_SIGNER_E
  // Later calls keep failing the same way.
  size_t n = 0;
  std::byte b[8];
  EXPECT_EQ(client.read_plaintext(b, n), Errc::kCertificateInvalid);
  EXPECT_EQ(client.write_plaintext(AsBytes("x")), Errc::kCertificateInvalid);
  // The client tells the server why with a fatal alert.
  const std::vector<std::byte> alert = Drain(client);
  ASSERT_FALSE(alert.empty());
  EXPECT_EQ(FeedInChunks(server, alert, SIZE_MAX, [&] { return server.handshake(); }),
            Errc::kHandshakeFailed);
  // unknown_ca (48), ASN_NO_SIGNER_E's alert.
  EXPECT_THAT(server.error_detail(), HasSubstr("peer sent fatal alert unknown_ca (48)"));
}

TEST(TlsSession, ExpiredCertificateFailsWithCertificateInvalid) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext(Pki().expired_cert, Pki().expired_key);
  Session client = MakeClient(client_ctx);
  Session server = MakeServer(server_ctx);
  EXPECT_EQ(Handshake(client, server).client, Errc::kCertificateInvalid);
  EXPECT_THAT(client.error_detail(), HasSubstr("(-151)"));  // ASN_AFTER_DATE_E
  EXPECT_THAT(client.error_detail(), HasSubstr("depth 0"));
}

TEST(TlsSession, WrongHostnameFailsWithHostnameMismatch) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext();
  Session client = MakeClient(client_ctx, "gateway.discord.gg");
  Session server = MakeServer(server_ctx);
  EXPECT_EQ(Handshake(client, server).client, Errc::kHostnameMismatch);
  EXPECT_THAT(client.error_detail(), HasSubstr("wanted 'gateway.discord.gg'"));
}

TEST(TlsSession, IpLiteralIsCheckedAgainstIpSans) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext();
  for (const char* ok_host : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(ok_host);
    Session client = MakeClient(client_ctx, ok_host);
    Session server = MakeServer(server_ctx);
    EXPECT_TRUE(Handshake(client, server).ok()) << client.error_detail();
  }
  Session client = MakeClient(client_ctx, "127.0.0.2");
  Session server = MakeServer(server_ctx);
  EXPECT_EQ(Handshake(client, server).client, Errc::kHostnameMismatch);
  EXPECT_THAT(client.error_detail(), HasSubstr("wanted '127.0.0.2'"));
}

TEST(TlsSession, InsecureModeConnectsDespiteUnknownCaAndWrongName) {
  ClientOptions o;
  o.verification = Verification::kInsecure;
  o.system_ca_file.clear();
  Context client_ctx = MakeClientContext(o);
  EXPECT_FALSE(client_ctx.verifies_peer());
  Context server_ctx = MakeServerContext(Pki().unknown_cert, Pki().unknown_key);
  Session client = MakeClient(client_ctx, "not-localhost.example");
  Session server = MakeServer(server_ctx);
  ASSERT_TRUE(Handshake(client, server).ok()) << client.error_detail();
  ASSERT_EQ(client.write_plaintext(AsBytes("hi")), Errc::kOk);
  EXPECT_EQ(Transfer(client, server), "hi");
}

TEST(TlsSession, SystemBundleAndExtraCaFileLoadTogether) {
  ClientOptions o;  // the system bundle by default
  o.ca_file = Pki().ca_cert;
  Context client_ctx = MakeClientContext(o);
  Context server_ctx = MakeServerContext();
  Session client = MakeClient(client_ctx);
  Session server = MakeServer(server_ctx);
  EXPECT_TRUE(Handshake(client, server).ok()) << client.error_detail();
}

TEST(TlsSession, SystemBundleAloneRefusesTheTestCa) {
  ClientOptions o;  // verification on, system roots only
  Context client_ctx = MakeClientContext(o);
  Context server_ctx = MakeServerContext();
  Session client = MakeClient(client_ctx);
  Session server = MakeServer(server_ctx);
  EXPECT_EQ(Handshake(client, server).client, Errc::kCertificateInvalid);
}

TEST(TlsSession, SecondConnectionResumesWithTheTls13Ticket) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext();
  SessionCache cache;
  {
    Session client = MakeClient(client_ctx, "localhost", &cache);
    Session server = MakeServer(server_ctx);
    ASSERT_TRUE(Handshake(client, server).ok());
    EXPECT_FALSE(client.is_resumed());
    // The ticket arrives after the handshake: nothing cached until read.
    EXPECT_EQ(cache.size(), 0u);
    Errc last;
    EXPECT_EQ(Transfer(server, client, SIZE_MAX, 1 << 16, &last), "");
    EXPECT_EQ(last, Errc::kWantRead);
    EXPECT_TRUE(cache.contains("localhost"));
  }
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    Session client = MakeClient(client_ctx, "localhost", &cache);
    Session server = MakeServer(server_ctx);
    ASSERT_TRUE(Handshake(client, server).ok()) << client.error_detail();
    EXPECT_TRUE(client.is_resumed());
    EXPECT_TRUE(server.is_resumed());
    ASSERT_EQ(server.write_plaintext(AsBytes("resumed")), Errc::kOk);
    EXPECT_EQ(Transfer(server, client), "resumed");
  }
  // Another host gets no ticket.
  Session other = MakeClient(client_ctx, "127.0.0.1", &cache);
  Session server = MakeServer(server_ctx);
  ASSERT_TRUE(Handshake(other, server).ok());
  EXPECT_FALSE(other.is_resumed());
}

TEST(TlsSession, Tls12HandshakeResumesFromTheCacheToo) {
  Context client_ctx = MakeClientContext();
  // A server that stops at TLS 1.2: the client follows it down.
  Context server_ctx =
      MakeServerContext(Pki().server_chain, Pki().server_key, Versions::kTls12Only);
  SessionCache cache;
  {
    Session client = MakeClient(client_ctx, "localhost", &cache);
    Session server = MakeServer(server_ctx);
    ASSERT_TRUE(Handshake(client, server).ok()) << client.error_detail();
    EXPECT_EQ(client.version(), "TLSv1.2");
    EXPECT_EQ(client.alpn(), "http/1.1");
    EXPECT_TRUE(cache.contains("localhost"));
  }
  Session client = MakeClient(client_ctx, "localhost", &cache);
  Session server = MakeServer(server_ctx);
  auto r = Handshake(client, server);
  ASSERT_TRUE(r.ok()) << to_string(r.client) << " " << to_string(r.server) << " "
                      << client.error_detail() << " / " << server.error_detail();
  EXPECT_TRUE(client.is_resumed());
  ASSERT_EQ(client.write_plaintext(AsBytes("tls12")), Errc::kOk);
  EXPECT_EQ(Transfer(client, server), "tls12");
}

TEST(TlsSession, Tls13OnlyClientRefusesATls12OnlyServer) {
  ClientOptions o = TrustingTestCa();
  o.versions = Versions::kTls13Only;
  Context client_ctx = MakeClientContext(o);
  Context server_ctx =
      MakeServerContext(Pki().server_chain, Pki().server_key, Versions::kTls12Only);
  Session client = MakeClient(client_ctx);
  Session server = MakeServer(server_ctx);
  auto r = Handshake(client, server);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(is_fatal(r.client) || is_fatal(r.server));
}

TEST(TlsSession, CloseNotifyEndsTheStreamCleanly) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  ASSERT_EQ(p.client.write_plaintext(AsBytes("bye")), Errc::kOk);
  ASSERT_EQ(p.client.shutdown(), Errc::kOk);
  EXPECT_EQ(p.client.write_plaintext(AsBytes("more")), Errc::kClosed);
  Errc last;
  EXPECT_EQ(Transfer(p.client, p.server, SIZE_MAX, 1 << 16, &last), "bye");
  EXPECT_EQ(last, Errc::kClosed);
  EXPECT_EQ(p.server.last_error(), Errc::kClosed);
  EXPECT_FALSE(is_fatal(last));
  EXPECT_THAT(p.server.error_detail(), HasSubstr("close_notify"));
  size_t n = 0;
  std::byte b[8];
  EXPECT_EQ(p.server.read_plaintext(b, n), Errc::kClosed);
  EXPECT_EQ(n, 0u);
  // The server answers with its own close_notify, and the client sees it.
  EXPECT_EQ(p.server.shutdown(), Errc::kOk);
  EXPECT_FALSE(p.server.pending_ciphertext().empty());
  EXPECT_EQ(Transfer(p.server, p.client, SIZE_MAX, 1 << 16, &last), "");
  EXPECT_EQ(last, Errc::kClosed);
}

TEST(TlsSession, ServerCloseNotifyReachesTheClientAfterItsData) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  ASSERT_EQ(p.server.write_plaintext(AsBytes("last words")), Errc::kOk);
  ASSERT_EQ(p.server.shutdown(), Errc::kOk);
  ASSERT_EQ(p.server.shutdown(), Errc::kOk);  // idempotent
  Errc last;
  EXPECT_EQ(Transfer(p.server, p.client, 1, 1 << 16, &last), "last words");
  EXPECT_EQ(last, Errc::kClosed);
  // No more data after the peer's close_notify; our own may still go out.
  EXPECT_EQ(p.client.write_plaintext(AsBytes("x")), Errc::kClosed);
  EXPECT_EQ(p.client.shutdown(), Errc::kOk);
  EXPECT_EQ(Transfer(p.client, p.server, SIZE_MAX, 1 << 16, &last), "");
  EXPECT_EQ(last, Errc::kClosed);
}

TEST(TlsSession, GarbageInsteadOfServerHelloFailsTheHandshake) {
  Context client_ctx = MakeClientContext();
  Session client = MakeClient(client_ctx);
  ASSERT_EQ(client.handshake(), Errc::kWantRead);
  EXPECT_FALSE(client.pending_ciphertext().empty());  // the ClientHello
  const std::string garbage = "HTTP/1.1 400 Bad Request\r\n\r\n" + RandomText(500, 6);
  ASSERT_EQ(client.feed_ciphertext(AsBytes(garbage)), Errc::kOk);
  EXPECT_EQ(client.handshake(), Errc::kHandshakeFailed);
  EXPECT_THAT(client.error_detail(), HasSubstr("handshake_failed: "));
  ASSERT_EQ(client.retain_ciphertext(), Errc::kOk);
}

TEST(TlsSession, GarbageClientHelloFailsTheServerHandshake) {
  Context server_ctx = MakeServerContext();
  for (uint32_t seed = 0; seed < 50; ++seed) {
    Session server = MakeServer(server_ctx);
    std::string garbage = RandomText(300, seed);
    if (seed % 2 == 0) garbage[0] = 0x16;  // a handshake record header
    if (seed % 4 == 0) garbage[1] = 0x03;
    Errc e =
        FeedInChunks(server, AsBytes(garbage), 1 + seed * 7, [&] { return server.handshake(); });
    EXPECT_TRUE(e == Errc::kWantRead || e == Errc::kHandshakeFailed) << to_string(e);
  }
}

TEST(TlsSession, TamperedRecordAfterHandshakeIsAProtocolError) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  EXPECT_EQ(Transfer(p.server, p.client), "");
  ASSERT_EQ(p.server.write_plaintext(AsBytes("payload")), Errc::kOk);
  std::vector<std::byte> wire = Drain(p.server);
  wire[wire.size() - 3] ^= std::byte{0x01};  // inside the AEAD tag
  ASSERT_EQ(p.client.feed_ciphertext(wire), Errc::kOk);
  size_t n = 0;
  std::vector<std::byte> buf(64);
  EXPECT_EQ(p.client.read_plaintext(buf, n), Errc::kProtocol);
  EXPECT_EQ(n, 0u);
  EXPECT_THAT(p.client.error_detail(), HasSubstr("protocol: "));
  // An alert for the peer may be queued; reading again keeps failing.
  EXPECT_EQ(p.client.read_plaintext(buf, n), Errc::kProtocol);
  ASSERT_EQ(p.client.retain_ciphertext(), Errc::kOk);
}

TEST(TlsSession, RandomBytesAfterHandshakeNeverCrash) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    Pair p;
    ASSERT_TRUE(Handshake(p.client, p.server).ok());
    std::string garbage = RandomText(4000, 100 + seed);
    if (seed % 2 == 0) {
      garbage[0] = 0x17;  // application_data, TLS 1.2 record version
      garbage[1] = 0x03;
      garbage[2] = 0x03;
    }
    Errc last;
    EXPECT_EQ(Transfer(p.server, p.client), "");
    const std::string out = [&] {
      std::vector<std::byte> buf(512);
      std::string s;
      Errc e = FeedInChunks(p.client, AsBytes(garbage), 1 + seed * 13, [&] {
        size_t n = 0;
        Errc r;
        while ((r = p.client.read_plaintext(buf, n)) == Errc::kOk) {
          s.append(reinterpret_cast<const char*>(buf.data()), n);
        }
        return r;
      });
      last = e;
      return s;
    }();
    EXPECT_EQ(out, "");
    EXPECT_TRUE(last == Errc::kProtocol || last == Errc::kWantRead) << to_string(last);
  }
}

TEST(TlsSession, PlaintextCallsBeforeTheHandshakeAreNotReady) {
  Pair p;
  size_t n = 1;
  std::byte b[8];
  EXPECT_EQ(p.client.read_plaintext(b, n), Errc::kNotReady);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(p.client.write_plaintext(AsBytes("early")), Errc::kNotReady);
  EXPECT_EQ(p.client.shutdown(), Errc::kNotReady);
  EXPECT_FALSE(is_fatal(Errc::kNotReady));
  Session empty;
  EXPECT_EQ(empty.handshake(), Errc::kNotReady);
  EXPECT_EQ(empty.pending_ciphertext().size(), 0u);
}

TEST(TlsSession, MovedSessionsKeepWorkingMidHandshake) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext();
  Session client = MakeClient(client_ctx);
  Session server = MakeServer(server_ctx);
  ASSERT_EQ(client.handshake(), Errc::kWantRead);
  std::vector<Session> moved;
  moved.push_back(std::move(client));
  moved.push_back(std::move(server));
  moved.reserve(100);  // reallocates: both move again
  Session c = std::move(moved[0]);
  Session s;
  s = std::move(moved[1]);
  ASSERT_TRUE(Handshake(c, s).ok()) << c.error_detail();
  ASSERT_EQ(c.write_plaintext(AsBytes("moved")), Errc::kOk);
  EXPECT_EQ(Transfer(c, s), "moved");
}

TEST(TlsSession, TakeCiphertextHandsOverBuffersWithoutLosingBytes) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  ASSERT_EQ(p.client.write_plaintext(AsBytes("one")), Errc::kOk);
  const size_t total = p.client.pending_ciphertext().size();
  p.client.consume_ciphertext(5);  // partly sent through the span API
  EXPECT_EQ(p.client.pending_ciphertext().size(), total - 5);
  std::vector<std::byte> first(p.client.pending_ciphertext().begin() - 5,
                               p.client.pending_ciphertext().end());
  std::vector<std::byte> rest;
  p.client.take_ciphertext(rest);
  EXPECT_TRUE(p.client.pending_ciphertext().empty());
  ASSERT_EQ(rest.size(), total - 5);
  EXPECT_TRUE(std::equal(rest.begin(), rest.end(), first.begin() + 5));
  ASSERT_EQ(p.server.feed_ciphertext(first), Errc::kOk);
  size_t n = 0;
  std::vector<std::byte> buf(16);
  EXPECT_EQ(p.server.read_plaintext(buf, n), Errc::kWantRead);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), "one");
}

TEST(TlsSession, DrainedOutputKeepsOnlyASmallBuffer) {
  Pair p;
  ASSERT_TRUE(Handshake(p.client, p.server).ok());
  const std::string big = RandomText(100'000, 7);
  ASSERT_EQ(p.client.write_plaintext(AsBytes(big)), Errc::kOk);
  EXPECT_GT(p.client.buffer_bytes(), big.size());
  p.client.consume_ciphertext(p.client.pending_ciphertext().size());
  EXPECT_LE(p.client.buffer_bytes(), Session::kRetainedOutputBytes);
}

// ---- configuration errors

TEST(TlsContext, MissingCaFileIsNotFoundAndNamesTheFile) {
  ClientOptions o;
  o.system_ca_file.clear();
  o.ca_file = "/nonexistent/ca.pem";
  absl::StatusOr<Context> ctx = Context::client(o);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ctx.status().message()), HasSubstr("/nonexistent/ca.pem"));
  EXPECT_THAT(std::string(ctx.status().message()), HasSubstr("--ca-file"));
}

TEST(TlsContext, CaFileWithoutCertificatesIsInvalidArgument) {
  ClientOptions o;
  o.system_ca_file.clear();
  o.ca_file = Pki().not_a_cert;
  absl::StatusOr<Context> ctx = Context::client(o);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ctx.status().message()), HasSubstr(Pki().not_a_cert));
}

TEST(TlsContext, VerificationWithoutAnyCaIsRefused) {
  ClientOptions o;
  o.system_ca_file.clear();
  absl::StatusOr<Context> ctx = Context::client(o);
  ASSERT_FALSE(ctx.ok());
  EXPECT_THAT(std::string(ctx.status().message()), HasSubstr("--insecure"));
}

TEST(TlsContext, BadServerFilesAreNamed) {
  ServerOptions o;
  o.cert_file = "/nonexistent/cert.pem";
  o.key_file = Pki().server_key;
  auto a = Context::server(o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("--tls-cert '/nonexistent/cert.pem'"));

  o.cert_file = Pki().not_a_cert;
  auto b = Context::server(o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(b.status().message()), HasSubstr(Pki().not_a_cert));

  o.cert_file = Pki().server_chain;
  o.key_file = Pki().ca_cert;  // a certificate is not a key
  auto c = Context::server(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("--tls-key"));

  o.key_file = Pki().unknown_key;  // a key, but not the certificate's
  auto d = Context::server(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr(Pki().unknown_key));
  EXPECT_THAT(std::string(d.status().message()),
              ::testing::AnyOf(HasSubstr("does not match"), HasSubstr("does the key match")));
}

TEST(TlsContext, BadCipherListIsInvalidArgument) {
  ClientOptions o = TrustingTestCa();
  o.cipher_list = "NOT-A-CIPHER";
  auto ctx = Context::client(o);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TlsContext, SessionsNeedAContextOfTheirRole) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext();
  EXPECT_FALSE(Session::server(client_ctx).ok());
  EXPECT_FALSE(Session::client(server_ctx, "localhost").ok());
  EXPECT_FALSE(Session::client(client_ctx, "").ok());
  EXPECT_FALSE(Session::client(client_ctx, std::string(254, 'a')).ok());
}

TEST(TlsSessionCache, EvictsTheOldestHostWhenFull) {
  Context client_ctx = MakeClientContext();
  Context server_ctx = MakeServerContext();
  SessionCache cache(/*max_entries=*/2);
  for (const char* host : {"localhost", "127.0.0.1", "::1"}) {
    Session client = MakeClient(client_ctx, host, &cache);
    Session server = MakeServer(server_ctx);
    ASSERT_TRUE(Handshake(client, server).ok());
    EXPECT_EQ(Transfer(server, client), "");
    EXPECT_TRUE(cache.contains(host));
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.contains("localhost"));
  cache.erase("::1");
  EXPECT_EQ(cache.size(), 1u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(TlsErrc, NamesAndClassesAreStable) {
  EXPECT_EQ(to_string(Errc::kHostnameMismatch), "hostname_mismatch");
  EXPECT_FALSE(is_fatal(Errc::kWantRead));
  EXPECT_FALSE(is_fatal(Errc::kClosed));
  EXPECT_TRUE(is_fatal(Errc::kProtocol));
  EXPECT_TRUE(is_verification_failure(Errc::kCertificateInvalid));
  EXPECT_FALSE(is_verification_failure(Errc::kHandshakeFailed));
}

}  // namespace
}  // namespace shardring::tls
