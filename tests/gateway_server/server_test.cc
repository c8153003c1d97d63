// Drives the synthetic gateway in-process on 127.0.0.1 (a free port) with a
// blocking test client, as a Discord client library would: HTTP, HELLO,
// IDENTIFY, READY, events, heartbeats, RESUME, the close codes, TLS.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gateway_server/test_client.h"
#include "tests/gateway_server/test_util.h"
#include "tools/gateway/gateway_main.h"
#include "tools/gateway/gateway_options.h"
#include "tools/gateway/server.h"

namespace shardring::gatewaysrv {
namespace {

using gwtest::identify;
using gwtest::json_field;
using gwtest::kIdentify;
using gwtest::Open;
using gwtest::Options;
using gwtest::Start;
using gwtest::TestClient;
using ::testing::HasSubstr;

TEST(GatewayServer, GatewayBotReportsUrlShardsAndConcurrency) {
  GatewayOptions o = Options();
  o.shards = 16;
  o.max_concurrency = 4;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  ASSERT_TRUE(c.connect(server->port()));
  std::string head, body;
  ASSERT_EQ(c.http("GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bot anything\r\n\r\n",
                   &head, &body),
            200);
  EXPECT_THAT(head, HasSubstr("Connection: keep-alive"));
  const std::string url = "ws://127.0.0.1:" + std::to_string(server->port());
  EXPECT_EQ(
      body,
      R"({"url":")" + url +
          R"(","shards":16,"session_start_limit":{"total":1000,"remaining":1000,"reset_after":0,"max_concurrency":4}})");
  // Keep-alive: a second request on the same connection.
  ASSERT_EQ(c.http("GET /api/v10/gateway HTTP/1.1\r\nHost: x\r\n\r\n", &head, &body), 200);
  EXPECT_EQ(body, R"({"url":")" + url + R"("})");
  ASSERT_EQ(c.http("GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &head, &body),
            404);
  EXPECT_THAT(head, HasSubstr("Connection: close"));
  EXPECT_TRUE(c.await_eof());
}

TEST(GatewayServer, GatewayBotRefusesAWrongTokenWith401) {
  GatewayOptions o = Options();
  o.token = "secret";
  auto server = Start(o);
  ASSERT_TRUE(server);
  std::string head, body;
  {
    TestClient c;
    ASSERT_TRUE(c.connect(server->port()));
    ASSERT_EQ(c.http("GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bot wrong\r\n\r\n",
                     &head, &body),
              401);
    EXPECT_EQ(body, R"({"message": "401: Unauthorized", "code": 0})");
    ASSERT_EQ(c.http("GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n\r\n", &head, &body), 401);
    ASSERT_EQ(c.http("GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bot secret\r\n\r\n",
                     &head, &body),
              200);
  }
}

TEST(GatewayServer, IdentifyGetsReadyThenGuildCreatesThenConsecutiveEvents) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  TestClient c;
  ASSERT_TRUE(c.connect(server->port()));
  ASSERT_TRUE(c.upgrade());
  auto hello = c.next_payload();
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->op, 10);
  EXPECT_EQ(json_field(hello->raw, "/d/heartbeat_interval"), "41250");
  EXPECT_EQ(json_field(hello->raw, "/d/_trace/0"), "shardring-gateway");

  ASSERT_TRUE(c.send_text(identify(1, 4)));
  auto ready = c.next_payload();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->op, 0);
  EXPECT_EQ(ready->t, "READY");
  EXPECT_EQ(ready->s, 1u);
  EXPECT_EQ(json_field(ready->raw, "/d/v"), "10");
  EXPECT_EQ(json_field(ready->raw, "/d/shard"), "[1,4]");
  EXPECT_EQ(json_field(ready->raw, "/d/session_id").size(), 32u);
  EXPECT_EQ(json_field(ready->raw, "/d/resume_gateway_url"),
            "ws://127.0.0.1:" + std::to_string(server->port()));
  EXPECT_EQ(json_field(ready->raw, "/d/user/bot"), "true");
  EXPECT_EQ(json_field(ready->raw, "/d/guilds/0/unavailable"), "true");
  const std::string g0 = json_field(ready->raw, "/d/guilds/0/id");
  // Discord's sharding formula holds for every guild of the shard.
  EXPECT_EQ((std::stoull(g0) >> 22) % 4, 1u);

  for (uint64_t want = 2; want <= 3; ++want) {
    auto gc = c.next_payload();
    ASSERT_TRUE(gc);
    EXPECT_EQ(gc->t, "GUILD_CREATE");
    EXPECT_EQ(gc->s, want);
    if (want == 2) {
      EXPECT_EQ(json_field(gc->raw, "/d/id"), g0);
      EXPECT_EQ(json_field(gc->raw, "/d/large"), "true");
    }
  }
  for (uint64_t want = 4; want < 40; ++want) {
    auto ev = c.next_payload();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->op, 0);
    EXPECT_EQ(ev->s, want);
    EXPECT_FALSE(ev->t.empty());
    EXPECT_NE(json_field(ev->raw, "/_ts_ns"), "?");
    const std::string gid = json_field(ev->raw, "/d/guild_id");
    if (gid != "?") {
      EXPECT_EQ((std::stoull(gid) >> 22) % 4, 1u) << ev->raw;
    }
  }
}

TEST(GatewayServer, HeartbeatsAreAckedAndPingsPonged) {
  GatewayOptions o = Options();
  o.rate = 0.001;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  // Before IDENTIFY too, as Discord allows.
  ASSERT_TRUE(c.send_text(R"({"op":1,"d":null})"));
  auto ack = c.next_payload();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->op, 11);
  ASSERT_TRUE(c.send_ping("abc"));
  auto pong = c.next();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->kind, ws::MessageKind::kPong);
  EXPECT_EQ(pong->text, "abc");
  ASSERT_TRUE(c.send_text(R"({"op":1,"d":251})"));
  ack = c.next_payload();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->op, 11);
}

TEST(GatewayServer, ResumeReplaysMissedEventsThenResumed) {
  GatewayOptions o = Options();
  o.rate = 1000;
  auto server = Start(o);
  ASSERT_TRUE(server);
  std::string session_id;
  uint64_t last = 0;
  {
    TestClient c;
    Open(c, server->port());
    ASSERT_TRUE(c.send_text(kIdentify));
    auto ready = c.next_payload();
    ASSERT_TRUE(ready);
    session_id = json_field(ready->raw, "/d/session_id");
    for (int i = 0; i < 20; ++i) {
      auto ev = c.next_payload();
      ASSERT_TRUE(ev);
      last = *ev->s;
    }
    c.close_socket();  // drop without a close frame: resumable
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(R"({"op":6,"d":{"token":"tok","session_id":")" + session_id +
                          R"(","seq":)" + std::to_string(last) + "}}"));
  uint64_t want = last + 1;
  while (true) {
    auto ev = c.next_payload();
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->s, want) << ev->raw;
    ++want;
    if (ev->t == "RESUMED") break;
    ASSERT_NE(ev->t, "READY");
  }
  EXPECT_GT(want, last + 10);  // events generated while it was away
  // The stream goes on after RESUMED.
  auto ev = c.next_payload();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->s, want);
  EXPECT_EQ(server->stats().resumes, 1u);

  // An unknown session gets op 9 d=false.
  TestClient d;
  Open(d, server->port());
  ASSERT_TRUE(d.send_text(R"({"op":6,"d":{"token":"tok","session_id":"nope","seq":1}})"));
  auto nine = d.next_payload();
  ASSERT_TRUE(nine);
  EXPECT_EQ(nine->op, 9);
  EXPECT_EQ(json_field(nine->raw, "/d"), "false");
}

TEST(GatewayServer, ReplayedEventsAreTheSameEvents) {
  GatewayOptions o = Options();
  o.rate = 2000;
  auto server = Start(o);
  ASSERT_TRUE(server);
  std::vector<std::string> first;
  std::string session_id;
  {
    TestClient c;
    Open(c, server->port());
    ASSERT_TRUE(c.send_text(kIdentify));
    auto ready = c.next_payload();
    ASSERT_TRUE(ready);
    session_id = json_field(ready->raw, "/d/session_id");
    for (int i = 0; i < 30; ++i) {
      auto ev = c.next_payload();
      ASSERT_TRUE(ev);
      first.push_back(json_field(ev->raw, "/d"));
    }
    c.close_socket();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  TestClient c;
  Open(c, server->port());
  // Resume from seq 1 (after READY): everything after it comes again.
  ASSERT_TRUE(
      c.send_text(R"({"op":6,"d":{"token":"tok","session_id":")" + session_id + R"(","seq":1}})"));
  for (size_t i = 0; i < first.size(); ++i) {
    auto ev = c.next_payload();
    ASSERT_TRUE(ev);
    EXPECT_EQ(json_field(ev->raw, "/d"), first[i]) << "event " << i;
  }
}

struct CloseCase {
  const char* name;
  std::vector<std::string> sends;
  uint16_t code;
};

class GatewayServerCloses : public ::testing::TestWithParam<CloseCase> {};

TEST_P(GatewayServerCloses, WithDiscordsCode) {
  GatewayOptions o = Options();
  o.token = "tok";
  o.rate = 0.001;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  for (const std::string& s : GetParam().sends) ASSERT_TRUE(c.send_text(s));
  EXPECT_EQ(c.await_close(), GetParam().code);
}

INSTANTIATE_TEST_SUITE_P(
    Protocol, GatewayServerCloses,
    ::testing::Values(
        CloseCase{"BadToken", {identify(0, 1, "wrong")}, 4004},
        CloseCase{"IdentifyTwice", {identify(0, 1), identify(0, 1)}, 4005},
        CloseCase{"UnknownOp", {R"({"op":42,"d":null})"}, 4001},
        CloseCase{"ServerOnlyOp", {R"({"op":10,"d":null})"}, 4001},
        CloseCase{"BadJson", {R"({"op":2,"d":{)"}, 4002}, CloseCase{"NotAnObject", {"[1,2]"}, 4002},
        CloseCase{"MissingProperties", {R"({"op":2,"d":{"token":"tok","intents":1}})"}, 4002},
        CloseCase{"ShardIdNotBelowTotal", {identify(5, 2)}, 4010},
        CloseCase{"ShardTotalZero",
                  {R"({"op":2,"d":{"token":"tok","intents":1,"properties":{},"shard":[0,0]}})"},
                  4010},
        CloseCase{"BadIntents",
                  {R"({"op":2,"d":{"token":"tok","intents":"all","properties":{}}})"},
                  4013},
        CloseCase{"PresenceBeforeIdentify",
                  {R"({"op":3,"d":{"since":null,"activities":[],"status":"online","afk":false}})"},
                  4003},
        CloseCase{"PayloadOver4096",
                  {R"({"op":1,"d":null,"x":")" + std::string(5000, 'a') + "\"}"},
                  4002}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(GatewayServer, WrongApiVersionCloses4012) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  TestClient c;
  ASSERT_TRUE(c.connect(server->port()));
  ASSERT_TRUE(c.upgrade("/?v=9&encoding=json"));
  EXPECT_EQ(c.await_close(), 4012);
}

TEST(GatewayServer, AnUnknownCompressValueIsRefusedWith400) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  TestClient c;
  ASSERT_TRUE(c.connect(server->port()));
  int status = 0;
  EXPECT_FALSE(c.upgrade("/?v=10&encoding=json&compress=gzip", &status));
  EXPECT_EQ(status, 400);
}

// compress= in the URL, as Discord: every payload on one stream, binary.
TEST(GatewayServer, CompressedStreamsCarryHelloReadyAndEvents) {
  for (auto [name, kind] : {std::pair{"zlib-stream", parse::Compression::kZlibStream},
                            std::pair{"zstd-stream", parse::Compression::kZstdStream}}) {
    SCOPED_TRACE(name);
    GatewayOptions o = Options();
    o.rate = 0;
    o.events = 50;
    auto server = Start(o);
    ASSERT_TRUE(server);
    TestClient c;
    ASSERT_TRUE(c.connect(server->port()));
    ASSERT_TRUE(c.upgrade(std::string("/?v=10&encoding=json&compress=") + name));
    c.expect_compression(kind);
    auto hello = c.next_payload();
    ASSERT_TRUE(hello);
    EXPECT_EQ(hello->op, 10);
    ASSERT_TRUE(c.send_text(identify(0, 1)));
    auto ready = c.next_payload();
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->t, "READY");
    uint64_t last = *ready->s;
    size_t dispatches = 1;
    while (auto p = c.next_payload(std::chrono::seconds(2))) {
      ASSERT_EQ(p->op, 0);
      ASSERT_EQ(*p->s, last + 1);
      last = *p->s;
      if (++dispatches == 1 + 2 + 50) break;  // READY, GUILD_CREATEs, events
    }
    EXPECT_EQ(dispatches, 1u + 2 + 50);
  }
}

TEST(GatewayServer, IdentifyFasterThanItsBucketGetsOp9) {
  GatewayOptions o = Options();
  o.identify_window_ms = 60'000;
  o.max_concurrency = 2;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient a, b, other;
  Open(a, server->port());
  Open(b, server->port());
  Open(other, server->port());
  ASSERT_TRUE(a.send_text(identify(0, 4)));
  auto ready = a.next_payload();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->t, "READY");
  // Shard 2 shares bucket 0 (2 % 2): too soon.
  ASSERT_TRUE(b.send_text(identify(2, 4)));
  auto nine = b.next_payload();
  ASSERT_TRUE(nine);
  EXPECT_EQ(nine->op, 9);
  EXPECT_EQ(json_field(nine->raw, "/d"), "false");
  // Shard 1 is in bucket 1: allowed.
  ASSERT_TRUE(other.send_text(identify(1, 4)));
  ready = other.next_payload();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->t, "READY");
  EXPECT_EQ(server->stats().identify_rate_limited, 1u);
}

TEST(GatewayServer, MoreThan120PayloadsInAMinuteClose4008) {
  GatewayOptions o = Options();
  o.rate = 0.001;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  for (int i = 0; i < 120; ++i) {
    ASSERT_TRUE(c.send_text(R"({"op":1,"d":null})"));
  }
  for (int i = 0; i < 120; ++i) {
    auto ack = c.next_payload();
    ASSERT_TRUE(ack) << i;
    ASSERT_EQ(ack->op, 11);
  }
  ASSERT_TRUE(c.send_text(R"({"op":1,"d":null})"));  // the 121st
  EXPECT_EQ(c.await_close(), 4008);
}

TEST(GatewayServer, ClientCloseIsEchoedAndTcpClosed) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_close(4000));
  EXPECT_EQ(c.await_close(), 4000);
  EXPECT_TRUE(c.await_eof());
}

TEST(GatewayServer, EventsFlagStopsGenerationAndStatsCountIt) {
  GatewayOptions o = Options();
  o.rate = 0;
  o.events = 50;
  o.guilds_per_shard = 1;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(identify(3, 8)));
  uint64_t last = 0;
  int count = 0;
  while (auto ev = c.next_payload(std::chrono::milliseconds(500))) {
    ++count;
    last = *ev->s;
  }
  EXPECT_EQ(count, 1 + 1 + 50);  // READY, GUILD_CREATE, 50 events
  EXPECT_EQ(last, 52u);
  // Heartbeats go on.
  ASSERT_TRUE(c.send_text(R"({"op":1,"d":52})"));
  auto ack = c.next_payload();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->op, 11);
  const std::string json = server->stats_json();
  EXPECT_THAT(
      json,
      HasSubstr(
          R"("3":{"identifies":1,"resumes":0,"events_sent":52,"last_seq":52,"session_id":")"));
  EXPECT_THAT(json, HasSubstr(R"("identifies":1,"resumes":0,"events_sent":52,)"));
}

TEST(GatewayServer, StopSendsGoingAwayToClients) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(kIdentify));
  ASSERT_TRUE(c.next_payload());
  const auto t0 = std::chrono::steady_clock::now();
  std::thread stopper([&] { server->stop(); });
  EXPECT_EQ(c.await_close(), 1001);
  c.send_close(1001);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(GatewayServer, FaultFlagsCloseReconnectAndInvalidate) {
  GatewayOptions o = Options();
  o.rate = 500;
  o.close_after = 10;
  o.close_code = 4000;
  o.fragment = 100;  // every message split into 100-byte frames
  o.segment = 777;   // and written 777 bytes at a time
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(identify(0, 1)));
  int events = 0;
  while (auto ev = c.next_payload()) {
    if (ev->t != "READY" && ev->t != "GUILD_CREATE") ++events;
  }
  EXPECT_EQ(events, 10);
  EXPECT_EQ(c.last_close(), 4000);

  GatewayOptions p = Options();
  p.rate = 0.001;
  p.reconnect_every_s = 0.05;
  auto s2 = Start(p);
  ASSERT_TRUE(s2);
  TestClient d;
  Open(d, s2->port());
  ASSERT_TRUE(d.send_text(identify(0, 1)));
  bool saw_op7 = false;
  while (auto ev = d.next_payload(std::chrono::seconds(2))) {
    if (ev->op == 7) {
      saw_op7 = true;
      break;
    }
  }
  EXPECT_TRUE(saw_op7);

  GatewayOptions q = Options();
  q.rate = 200;
  q.close_every = 5;
  auto s3 = Start(q);
  ASSERT_TRUE(s3);
  TestClient e;
  Open(e, s3->port());
  ASSERT_TRUE(e.send_text(identify(0, 1)));
  int n = 0;
  while (e.next_payload(std::chrono::seconds(2))) ++n;
  EXPECT_EQ(n, 1 + 2 + 5);       // READY, 2 GUILD_CREATEs, 5 events, then EOF
  EXPECT_EQ(e.last_close(), 0);  // no close frame
}

TEST(GatewayServer, NoAckAfterStopsAcking) {
  GatewayOptions o = Options();
  o.rate = 0.001;
  o.no_ack_after = 2;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.send_text(R"({"op":1,"d":null})"));
  EXPECT_TRUE(c.next_payload());
  EXPECT_TRUE(c.next_payload());
  EXPECT_FALSE(c.next_payload(std::chrono::milliseconds(300)));
}

TEST(GatewayServer, RequestGuildMembersGetsAChunkWithTheNonce) {
  GatewayOptions o = Options();
  o.rate = 0.001;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(identify(0, 1)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.next_payload());
  ASSERT_TRUE(c.send_text(
      R"({"op":8,"d":{"guild_id":"41771983444115456","query":"","limit":0,"nonce":"n1"}})"));
  auto chunk = c.next_payload();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->t, "GUILD_MEMBERS_CHUNK");
  EXPECT_EQ(chunk->s, 4u);
  EXPECT_EQ(json_field(chunk->raw, "/d/nonce"), "n1");
  EXPECT_EQ(json_field(chunk->raw, "/d/guild_id"), "41771983444115456");
}

// Hundreds of shards on two threads: every one gets READY and events.
TEST(GatewayServer, ServesManyShardsAtOnce) {
  GatewayOptions o = Options();
  o.rate = 20;
  o.guilds_per_shard = 1;
  o.shards = 300;
  auto server = Start(o);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<TestClient>> clients;
  for (uint32_t i = 0; i < 300; ++i) {
    auto c = std::make_unique<TestClient>();
    ASSERT_TRUE(c->connect(server->port()));
    ASSERT_TRUE(c->upgrade());
    ASSERT_TRUE(c->next_payload());
    ASSERT_TRUE(c->send_text(identify(i, 300)));
    clients.push_back(std::move(c));
  }
  for (auto& c : clients) {
    auto ready = c->next_payload();
    ASSERT_TRUE(ready);
    ASSERT_EQ(ready->t, "READY");
    ASSERT_TRUE(c->next_payload());  // GUILD_CREATE
    auto ev = c->next_payload();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->s, 3u);
  }
  EXPECT_EQ(server->stats().identifies, 300u);
}

// Garbage before and after the upgrade closes those connections only; the
// server goes on serving others.
TEST(GatewayServer, HostileBytesCloseOnlyTheirConnection) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    std::string junk(1 + rng() % 3000, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng());
    TestClient c;
    ASSERT_TRUE(c.connect(server->port()));
    if (round % 2 == 1) {
      ASSERT_TRUE(c.upgrade());
      ASSERT_TRUE(c.next_payload());  // HELLO
      // Masked-looking but invalid frames, then raw noise.
      junk[0] = static_cast<char>(0x81 | (rng() & 0x70));
    }
    c.write(junk);
    c.close_socket();
  }
  TestClient ok;
  ASSERT_TRUE(ok.connect(server->port()));
  std::string head, body;
  EXPECT_EQ(ok.http("GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n\r\n", &head, &body), 200);
  TestClient ws_client;
  Open(ws_client, server->port());
  ASSERT_TRUE(ws_client.send_text(kIdentify));
  auto ready = ws_client.next_payload();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->t, "READY");
}

std::string MakeCert(std::string* key) {
  const std::string dir = ::testing::TempDir() + "/gw_tls_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/cert.pem";
  *key = dir + "/key.pem";
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -days 2 -subj /CN=localhost -addext "
      "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      *key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return "";
  return cert;
}

TEST(GatewayServer, ServesHttpsAndWssWithTls) {
  std::string key;
  const std::string cert = MakeCert(&key);
  ASSERT_FALSE(cert.empty()) << "openssl failed";
  GatewayOptions o = Options();
  o.tls_cert = cert;
  o.tls_key = key;
  o.shards = 2;
  auto server = Start(o);
  ASSERT_TRUE(server);
  tls::ClientOptions co;
  co.system_ca_file = "";
  co.verification = tls::Verification::kInsecure;
  auto ctx = tls::Context::client(co);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  {
    TestClient c;
    ASSERT_TRUE(c.connect(server->port(), &*ctx));
    std::string head, body;
    ASSERT_EQ(c.http("GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n\r\n", &head, &body), 200);
    EXPECT_THAT(body, HasSubstr(R"("url":"wss://127.0.0.1:)"));
  }
  TestClient c;
  ASSERT_TRUE(c.connect(server->port(), &*ctx));
  ASSERT_TRUE(c.upgrade());
  auto hello = c.next_payload();
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->op, 10);
  ASSERT_TRUE(c.send_text(identify(1, 2)));
  auto ready = c.next_payload();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->t, "READY");
  EXPECT_THAT(json_field(ready->raw, "/d/resume_gateway_url"), HasSubstr("wss://"));
  for (uint64_t want = 2; want < 30; ++want) {
    auto ev = c.next_payload();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->s, want);
  }
  ASSERT_TRUE(c.send_text(R"({"op":1,"d":29})"));
  while (auto ev = c.next_payload()) {
    if (ev->op == 11) return;
  }
  ADD_FAILURE() << "no heartbeat ACK over TLS";
}

TEST(GatewayMain, BadFlagsExit2AndNameTheFlag) {
  const std::string_view bad_rate[] = {"--rate", "fast"};
  EXPECT_EQ(gateway_main(bad_rate), 2);
  const std::string_view unknown[] = {"--nope"};
  EXPECT_EQ(gateway_main(unknown), 2);
  const std::string_view half_tls[] = {"--tls-cert", "/x.pem"};
  EXPECT_EQ(gateway_main(half_tls), 2);
  bool help = false;
  std::string usage;
  const std::string_view listen[] = {"--listen", "localhost"};
  auto o = parse_gateway_options(listen, &help, &usage);
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("--listen"));
  const std::string_view code[] = {"--close-code", "4001"};
  o = parse_gateway_options(code, &help, &usage);
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("--close-code"));
}

// The whole program: SIGTERM stops it within 2 s with exit 0 and writes
// --stats-json.
TEST(GatewayMain, SigtermStopsCleanlyAndWritesStats) {
  const std::string stats =
      ::testing::TempDir() + "/gw_stats_" + std::to_string(::getpid()) + ".json";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string_view args[] = {"--listen", "127.0.0.1:0",  "--threads",
                                     "1",        "--stats-json", stats};
    std::_Exit(gateway_main(args));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream in(stats);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_THAT(ss.str(), HasSubstr(R"("sessions":0,"identifies":0)"));
  std::remove(stats.c_str());
}

}  // namespace
}  // namespace shardring::gatewaysrv
