// tests/conn/client_test.cc: conn::ClientConnection as byte strings: a whole
// session (upgrade, HELLO, IDENTIFY, dispatches, a resume) with the server's
// bytes split at every offset, compressed, and through TLS split at seeded
// random offsets; the exact payloads the client writes; and the hostile
// cases (bad frames, bad JSON, zombie, fatal close).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/rng.h"
#include "gateway/payloads.h"
#include "tests/conn/client_harness.h"
#include "tests/tls/test_contexts.h"

namespace shardring::conn {
namespace {

using testing::ClientHarness;
using testing::Delivered;
using testing::DOf;
using ::testing::ElementsAre;
using testing::FakeGateway;

constexpr char kToken[] = "Bot-token-for-tests.abc";
constexpr char kResumeUrl[] = "ws://127.0.0.1:9999";

ClientOptions Options(parse::Compression c = parse::Compression::kNone) {
  ClientOptions o;
  o.session.token = kToken;
  o.session.intents = 513;
  o.session.shard_count = 4;
  o.session.gateway_url = "ws://127.0.0.1:8080/?v=10&encoding=json";
  o.compression = c;
  return o;
}

Endpoint Plain() { return Endpoint{false, "127.0.0.1", 8080, "/", "v=10&encoding=json"}; }

// The client's first bytes are the upgrade request; the gateway reads it.
void Upgrade(ClientHarness& h, FakeGateway& g) {
  g.from_client(h.take_written());
  ASSERT_TRUE(g.upgraded());
}

std::vector<Delivered> Expected(uint64_t last) {
  std::vector<Delivered> v;
  v.push_back({1, "READY", DOf(testing::Ready(1, "sess-1", kResumeUrl)), 0});
  for (uint64_t s = 2; s <= last; ++s) {
    v.push_back({s, "MESSAGE_CREATE", DOf(testing::Message(s)), 41771983423143937});
  }
  return v;
}

// Runs the first half of a session: upgrade + HELLO split at `cut_a`, the
// identify grant, then READY and dispatches 2..4 split at `cut_b`.
// Returns the harness for the checks.
struct Session {
  ClientHarness h;
  FakeGateway g;
};

void RunSession(Session& s, size_t cut_a, size_t cut_b, std::string* phase_a_out = nullptr,
                std::string* phase_b_out = nullptr) {
  ClientHarness& h = s.h;
  FakeGateway& g = s.g;
  h.connect(Plain());
  Upgrade(h, g);
  const std::string a = g.accept() + g.frame(testing::Hello());
  if (phase_a_out) *phase_a_out = a;
  cut_a = std::min(cut_a, a.size());
  h.receive(std::string_view(a).substr(0, cut_a));
  h.receive(std::string_view(a).substr(cut_a));
  ASSERT_EQ(h.identify_requests, 1) << "cut_a=" << cut_a;
  h.grant_identify();
  g.from_client(h.take_written());
  std::string b = g.frame(testing::Ready(1, "sess-1", kResumeUrl));
  for (uint64_t seq = 2; seq <= 4; ++seq) b += g.frame(testing::Message(seq));
  if (phase_b_out) *phase_b_out = b;
  cut_b = std::min(cut_b, b.size());
  h.receive(std::string_view(b).substr(0, cut_b));
  h.receive(std::string_view(b).substr(cut_b));
}

gateway::Config ShardConfig(uint32_t shard = 0) {
  gateway::Config c = Options().session;
  c.shard_id = shard;
  return c;
}

TEST(ClientConnection, WritesTheUpgradeRequestForTheEndpoint) {
  ClientHarness h(Options(), 1);
  h.connect(Endpoint{false, "::1", 9000, "/gw", "v=10&encoding=json"});
  const std::string req = h.take_written();
  EXPECT_THAT(req, ::testing::StartsWith("GET /gw?v=10&encoding=json HTTP/1.1\r\n"));
  EXPECT_THAT(req, ::testing::HasSubstr("\r\nHost: [::1]:9000\r\n"));
  EXPECT_THAT(req, ::testing::HasSubstr("\r\nSec-WebSocket-Version: 13\r\n"));
  EXPECT_EQ(h.conn().phase(), Phase::kUpgrade);
}

TEST(ClientConnection, WholeSessionSplitAtEveryOffsetOfHello) {
  std::string a;
  {
    Session probe{ClientHarness(Options(), 7), FakeGateway()};
    RunSession(probe, 0, 0, &a);
  }
  ASSERT_GT(a.size(), 150u);  // the 101 answer and HELLO
  for (size_t cut = 0; cut <= a.size(); ++cut) {
    Session s{ClientHarness(Options(), 7), FakeGateway()};
    RunSession(s, cut, SIZE_MAX);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    EXPECT_EQ(s.h.delivered, Expected(4)) << "cut=" << cut;
    // Exactly one payload on the wire: IDENTIFY, byte for byte.
    EXPECT_THAT(s.g.texts, ElementsAre(gateway::identify_payload(ShardConfig()))) << "cut=" << cut;
    EXPECT_TRUE(s.h.conn().ready());
  }
}

TEST(ClientConnection, WholeSessionSplitAtEveryOffsetOfTheDispatches) {
  std::string b;
  {
    Session probe{ClientHarness(Options(), 7), FakeGateway()};
    RunSession(probe, SIZE_MAX, 0, nullptr, &b);
  }
  ASSERT_GT(b.size(), 400u);  // READY and three dispatches
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    Session s{ClientHarness(Options(), 7), FakeGateway()};
    RunSession(s, SIZE_MAX, cut);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    ASSERT_EQ(s.h.delivered, Expected(4)) << "cut=" << cut;
  }
}

class CompressedSession : public ::testing::TestWithParam<parse::Compression> {};

TEST_P(CompressedSession, SameEventsWhereverTheReadSplits) {
  // The whole server stream after the upgrade, one compressed stream.
  auto run = [&](size_t cut, std::string* wire_out) {
    ClientHarness h(Options(GetParam()), 3);
    FakeGateway g(GetParam());
    h.connect(Plain());
    Upgrade(h, g);
    h.receive(g.accept() + g.frame(testing::Hello()));
    h.grant_identify();
    g.from_client(h.take_written());
    std::string b = g.frame(testing::Ready(1, "sess-1", kResumeUrl));
    for (uint64_t seq = 2; seq <= 6; ++seq) b += g.frame(testing::Message(seq));
    if (wire_out) *wire_out = b;
    cut = std::min(cut, b.size());
    h.receive(std::string_view(b).substr(0, cut));
    h.receive(std::string_view(b).substr(cut));
    EXPECT_EQ(h.delivered, Expected(6)) << "cut=" << cut;
    EXPECT_FALSE(h.noted(Note::kBadCompressedStream));
  };
  std::string wire;
  run(0, &wire);
  ASSERT_GT(wire.size(), 200u);
  for (size_t cut = 1; cut <= wire.size(); ++cut) run(cut, nullptr);
}

INSTANTIATE_TEST_SUITE_P(Streams, CompressedSession,
                         ::testing::Values(parse::Compression::kZlibStream,
                                           parse::Compression::kZstdStream));

TEST(ClientConnection, TlsSessionSplitAtSeededRandomOffsets) {
  const tls::testing::TestContexts& ctx = tls::testing::GetTestContexts();

  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed=" << seed);
    base::Rng rng(seed);
    // Feeds `wire` to the client in pieces of 1..max bytes.
    auto feed = [&](ClientHarness& h, const std::string& wire) {
      for (size_t at = 0; at < wire.size();) {
        const size_t n = std::min<size_t>(1 + rng.next() % 700, wire.size() - at);
        h.receive(std::string_view(wire).substr(at, n));
        at += n;
      }
    };
    ClientHarness h(Options(), seed);
    h.scratch().tls_context = &ctx.client;
    FakeGateway g(parse::Compression::kNone, &ctx.server);
    h.connect(Endpoint{true, "localhost", 8443, "/", "v=10&encoding=json"});
    ASSERT_EQ(h.conn().phase(), Phase::kTls);
    // The handshake: flights back and forth until the upgrade request is out.
    for (int round = 0; round < 8 && !g.upgraded(); ++round) {
      g.from_client(h.take_written());
      feed(h, g.take_tls_out());
    }
    ASSERT_TRUE(g.upgraded());
    ASSERT_TRUE(h.noted(Note::kTlsHandshakeDone));
    feed(h, g.wire(g.accept() + g.frame(testing::Hello())));
    ASSERT_EQ(h.identify_requests, 1);
    h.grant_identify();
    g.from_client(h.take_written());
    EXPECT_THAT(g.texts, ElementsAre(gateway::identify_payload(ShardConfig())));
    std::string b = g.frame(testing::Ready(1, "sess-1", kResumeUrl));
    for (uint64_t seq = 2; seq <= 20; ++seq) b += g.frame(testing::Message(seq));
    feed(h, g.wire(b));
    EXPECT_EQ(h.delivered, Expected(20));
    EXPECT_TRUE(h.conn().ready());
  }
}

// After READY: op 7 from the gateway. The client closes resumably (4000),
// dials the resume URL after the backoff and RESUMEs with the last seq; the
// replayed dispatches it already delivered are not delivered again.
TEST(ClientConnection, ReconnectRequestResumesAtTheResumeUrl) {
  Session s{ClientHarness(Options(), 11), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  ClientHarness& h = s.h;
  h.receive(s.g.frame(R"({"t":null,"s":null,"op":7,"d":null})"));
  EXPECT_TRUE(h.noted(Note::kReconnectRequested));
  s.g.from_client(h.take_written());
  EXPECT_THAT(s.g.closes, ElementsAre(gateway::kCloseResumable));
  EXPECT_EQ(h.conn().phase(), Phase::kClosing);
  EXPECT_FALSE(h.conn().ready());
  // The gateway echoes the close: the socket goes.
  h.receive(s.g.close_frame(gateway::kCloseResumable));
  EXPECT_EQ(h.sockets_closed, 1);
  EXPECT_EQ(h.conn().phase(), Phase::kIdle);
  ASSERT_TRUE(h.conn().deadline(Timer::kDial).has_value());
  ASSERT_TRUE(h.fire(Timer::kDial));
  EXPECT_EQ(h.dials(), 1);
  EXPECT_EQ(h.conn().dial_url(), kResumeUrl);

  FakeGateway g2;
  h.conn().on_dial_started(h.now());
  h.conn().on_transport_open(Endpoint{false, "127.0.0.1", 9999, "/", "v=10&encoding=json"},
                             h.now());
  h.after();
  Upgrade(h, g2);
  h.receive(g2.accept() + g2.frame(testing::Hello()));
  EXPECT_EQ(h.identify_requests, 1);  // only the first connection's
  g2.from_client(h.take_written());
  EXPECT_THAT(g2.texts, ElementsAre(gateway::resume_payload(kToken, "sess-1", 4)));
  // Replays of 3 and 4, then the new 5, then RESUMED.
  h.receive(g2.frame(testing::Message(3)) + g2.frame(testing::Message(4)) +
            g2.frame(testing::Message(5)) + g2.frame(testing::Resumed(6)));
  std::vector<Delivered> want = Expected(5);
  want.push_back({6, "RESUMED", "{}", 0});
  EXPECT_EQ(h.delivered, want);
  EXPECT_TRUE(h.noted(Note::kResuming));
  EXPECT_TRUE(h.noted(Note::kResumed));
  EXPECT_TRUE(h.conn().ready());
}

TEST(ClientConnection, MissingHeartbeatAckClosesResumably) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  ClientHarness& h = s.h;
  ASSERT_TRUE(h.fire(Timer::kHeartbeat));  // the first beat, with the last seq
  s.g.from_client(h.take_written());
  ASSERT_EQ(s.g.texts.size(), 2u);
  EXPECT_EQ(s.g.texts[1], gateway::heartbeat_payload(4));
  EXPECT_TRUE(h.noted(Note::kHeartbeat));
  ASSERT_TRUE(h.fire(Timer::kHeartbeat));  // no ACK came: zombie
  s.g.from_client(h.take_written());
  EXPECT_THAT(s.g.closes, ElementsAre(gateway::kCloseResumable));
  EXPECT_TRUE(h.noted(Note::kZombie));
  EXPECT_TRUE(h.conn().deadline(Timer::kDial).has_value());
}

TEST(ClientConnection, AckedHeartbeatsKeepTheConnection) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  ClientHarness& h = s.h;
  for (int beat = 0; beat < 5; ++beat) {
    ASSERT_TRUE(h.fire(Timer::kHeartbeat));
    h.receive(s.g.frame(R"({"t":null,"s":null,"op":11,"d":null})"));
  }
  s.g.from_client(h.take_written());
  EXPECT_TRUE(s.g.closes.empty());
  EXPECT_FALSE(h.noted(Note::kZombie));
  EXPECT_TRUE(h.conn().ready());
}

TEST(ClientConnection, BadFrameClosesWith1002AndResumes) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  // RSV1 set without an extension negotiated (RFC 6455 5.2).
  std::string bad = s.g.frame(testing::Message(5));
  bad[0] = static_cast<char>(static_cast<uint8_t>(bad[0]) | 0x40);
  s.h.receive(bad + s.g.frame(testing::Message(6)));
  s.g.from_client(s.h.take_written());
  EXPECT_THAT(s.g.closes, ElementsAre(1002));
  EXPECT_TRUE(s.h.noted(Note::kBadFrame));
  EXPECT_EQ(s.h.delivered, Expected(4));  // nothing after the bad frame
  EXPECT_TRUE(s.h.conn().deadline(Timer::kDial).has_value());
  EXPECT_FALSE(s.h.fatal.has_value());
}

TEST(ClientConnection, BadJsonClosesWith1007AndResumes) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  s.h.receive(s.g.frame(R"({"t":"MESSAGE_CREATE","s":5,"op":0,"d":{"id":)"));
  s.g.from_client(s.h.take_written());
  EXPECT_THAT(s.g.closes, ElementsAre(gateway::kCloseBadPayload));
  EXPECT_TRUE(s.h.noted(Note::kBadPayload));
  EXPECT_EQ(s.h.delivered, Expected(4));
}

TEST(ClientConnection, FatalCloseStopsTheShard) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  s.h.receive(s.g.close_frame(4004));
  ASSERT_TRUE(s.h.fatal.has_value());
  EXPECT_EQ(*s.h.fatal, 4004);
  EXPECT_EQ(s.h.sockets_closed, 1);
  EXPECT_FALSE(s.h.conn().deadline(Timer::kDial).has_value());
  EXPECT_EQ(s.h.conn().session().state(), gateway::State::kFatal);
}

TEST(ClientConnection, ShutdownEndsTheSessionWith1000) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  s.h.conn().shutdown(s.h.now());
  s.h.after();
  s.g.from_client(s.h.take_written());
  EXPECT_THAT(s.g.closes, ElementsAre(gateway::kCloseNormal));
  s.h.receive(s.g.close_frame(gateway::kCloseNormal));
  EXPECT_EQ(s.h.sockets_closed, 1);
  EXPECT_FALSE(s.h.conn().deadline(Timer::kDial).has_value());
  EXPECT_EQ(s.h.dials(), 0);
}

TEST(ClientConnection, PingIsAnsweredWithPong) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  std::string ping;
  ws::Encoder enc(ws::Role::kServer);
  ASSERT_EQ(enc.ping(ping, testing::AsBytes("abc")), ws::Errc::kOk);
  s.h.receive(ping);
  s.g.from_client(s.h.take_written());
  EXPECT_EQ(s.g.pongs, 1);
}

TEST(ClientConnection, EventsFilterDropsUnwantedDispatchesButCountsTheirSeq) {
  for (bool validate_d : {false, true}) {
    ClientOptions o = Options();
    o.filter = *parse::EventFilter::parse("GUILD_CREATE");
    o.validate_d = validate_d;
    Session s{ClientHarness(o, 5), FakeGateway()};
    RunSession(s, SIZE_MAX, SIZE_MAX);
    // READY (not listed) and MESSAGE_CREATE 2-4 are dropped but counted;
    // the session still took READY's session id.
    EXPECT_TRUE(s.h.delivered.empty());
    EXPECT_TRUE(s.h.conn().ready());
    EXPECT_TRUE(s.h.conn().session().has_session());
    EXPECT_EQ(s.h.conn().session().last_seq(), 4u);
    int filtered = 0;
    for (Note n : s.h.notes) filtered += n == Note::kFiltered;
    EXPECT_EQ(filtered, 4);
    s.h.receive(s.g.frame(R"({"t":"GUILD_CREATE","s":5,"op":0,"d":{"id":"9"}})"));
    ASSERT_EQ(s.h.delivered.size(), 1u);
    EXPECT_EQ(s.h.delivered[0].seq, 5u);
  }
}

TEST(ClientConnection, EofWhileOpenResumesAndEofWhileUpgradingRetries) {
  Session s{ClientHarness(Options(), 5), FakeGateway()};
  RunSession(s, SIZE_MAX, SIZE_MAX);
  s.h.lose_transport();
  EXPECT_EQ(s.h.sockets_closed, 1);
  EXPECT_TRUE(s.h.conn().deadline(Timer::kDial).has_value());
  EXPECT_TRUE(s.h.conn().session().has_session());

  ClientHarness h(Options(), 5);
  h.connect(Plain());
  h.lose_transport();  // before the 101
  EXPECT_EQ(h.sockets_closed, 1);
  EXPECT_TRUE(h.conn().deadline(Timer::kDial).has_value());
}

TEST(ClientConnection, UpgradeRefusedRetriesWithBackoff) {
  ClientHarness h(Options(), 5);
  h.connect(Plain());
  h.receive("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(h.noted(Note::kUpgradeRefused));
  EXPECT_EQ(h.sockets_closed, 1);
  EXPECT_TRUE(h.conn().deadline(Timer::kDial).has_value());
}

}  // namespace
}  // namespace shardring::conn

namespace shardring::conn {
namespace {

// Connections made with the same options share one copy of the session
// configuration (the token, the URL, the presence); other options get
// their own.
TEST(ClientConnectionConfig, ConnectionsOfTheSameOptionsShareTheSessionConfiguration) {
  ClientScratch scratch(1);
  ClientOptions options;
  options.session.token = "Bot-token-for-tests.abc";
  options.session.shard_count = 4;
  options.session.gateway_url = "ws://127.0.0.1:8080/?v=10&encoding=json";
  ClientConnection a(options, scratch, 0), b(options, scratch, 3);
  ASSERT_NE(scratch.session_config, nullptr);
  const gateway::Config* shared = scratch.session_config.get();
  EXPECT_EQ(scratch.session_config.use_count(), 3);  // the scratch and two sessions
  EXPECT_EQ(*shared, options.session);
  ClientOptions other = options;
  other.session.token = "Bot-another-token";
  ClientConnection c(other, scratch, 1);
  EXPECT_NE(scratch.session_config.get(), shared);
  EXPECT_EQ(scratch.session_config->token, "Bot-another-token");
  EXPECT_EQ(scratch.session_config.use_count(), 2);
}

// A finished write's buffer is kept for the next one only while it is
// within kRetainedWriteBytes: an idle shard keeps a heartbeat's buffer, not
// its TLS handshake flight or IDENTIFY.
TEST(ClientConnectionWrites, BuffersAreKeptOnlyUpToTheRetainedSize) {
  std::vector<std::byte> heartbeat(kRetainedWriteBytes);
  ClientConnection::recycle_write(heartbeat);
  EXPECT_TRUE(heartbeat.empty());
  EXPECT_GE(heartbeat.capacity(), kRetainedWriteBytes);
  std::vector<std::byte> identify(kRetainedWriteBytes + 1);
  ClientConnection::recycle_write(identify);
  EXPECT_TRUE(identify.empty());
  EXPECT_EQ(identify.capacity(), 0u);
  // A heartbeat frame with its TLS record fits: 6 bytes of header, up to
  // {"op":1,"d":<20 digits>}, the record's 5-byte header, type and tag.
  EXPECT_GE(kRetainedWriteBytes, 6 + 29 + 5 + 1 + 16);
}

}  // namespace
}  // namespace shardring::conn
