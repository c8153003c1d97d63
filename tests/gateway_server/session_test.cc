// The synthetic gateway's sessions as restart tests of a client need them,
// over loopback: --resume-window-s (a session resumable after its
// connection ends, refused after the window), identifies and resumes
// counted accepted and refused in stats() and --stats-json, and READY's
// user id taken from the token.
#include <chrono>
#include <string>
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
using gwtest::Open;
using gwtest::Options;
using gwtest::resume;
using gwtest::Start;
using gwtest::TestClient;
using ::testing::HasSubstr;

// Long enough for the gateway to see a dropped socket's end.
constexpr auto kDisconnectSettle = std::chrono::milliseconds(200);

// The counters of shard `id` (all zero when it has none yet).
ShardCounters ShardOf(const Stats& s, uint32_t id) {
  for (const auto& [shard, c] : s.shards) {
    if (shard == id) return c;
  }
  return {};
}

// Identifies on a new connection, reads a few events and drops the socket
// without a close frame (the session stays resumable). Returns the session
// id and, in *last, the last seq read.
std::string IdentifyThenDrop(uint16_t port, uint32_t shard, uint32_t total, uint64_t* last) {
  TestClient c;
  Open(c, port);
  EXPECT_TRUE(c.send_text(identify(shard, total)));
  auto ready = c.next_payload();
  EXPECT_TRUE(ready);
  if (!ready) return "";
  *last = ready->s.value_or(0);
  for (int i = 0; i < 5; ++i) {
    auto ev = c.next_payload();
    EXPECT_TRUE(ev);
    if (!ev) break;
    *last = ev->s.value_or(*last);
  }
  c.close_socket();
  return json_field(ready->raw, "/d/session_id");
}

TEST(GatewaySessions, ResumeWithinTheWindowSucceedsAfterADisconnect) {
  GatewayOptions o = Options();
  o.resume_window_s = 60;
  auto server = Start(o);
  ASSERT_TRUE(server);
  uint64_t last = 0;
  const std::string id = IdentifyThenDrop(server->port(), 1, 2, &last);
  ASSERT_FALSE(id.empty());
  std::this_thread::sleep_for(kDisconnectSettle);
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(resume(id, last)));
  bool resumed = false;
  while (auto ev = c.next_payload()) {
    ASSERT_EQ(ev->op, 0) << ev->raw;
    if (ev->t == "RESUMED") {
      resumed = true;
      break;
    }
  }
  EXPECT_TRUE(resumed);
  const Stats s = server->stats();
  EXPECT_EQ(s.resumes, 1u);
  EXPECT_EQ(s.resumes_refused, 0u);
  EXPECT_EQ(ShardOf(s, 1).resumes, 1u);
  EXPECT_EQ(ShardOf(s, 1).resumes_refused, 0u);
}

// A RESUME after the window gets op 9 d=false and counts as refused.
void ExpectResumeRefused(TestClient& c, const std::string& id, uint64_t last) {
  ASSERT_TRUE(c.send_text(resume(id, last)));
  auto nine = c.next_payload();
  ASSERT_TRUE(nine);
  EXPECT_EQ(nine->op, 9);
  EXPECT_EQ(json_field(nine->raw, "/d"), "false");
}

TEST(GatewaySessions, AZeroWindowForgetsTheSessionWhenItsConnectionEnds) {
  GatewayOptions o = Options();
  o.resume_window_s = 0;
  auto server = Start(o);
  ASSERT_TRUE(server);
  uint64_t last = 0;
  const std::string id = IdentifyThenDrop(server->port(), 0, 1, &last);
  ASSERT_FALSE(id.empty());
  std::this_thread::sleep_for(kDisconnectSettle);
  TestClient c;
  Open(c, server->port());
  ExpectResumeRefused(c, id, last);
  const Stats s = server->stats();
  EXPECT_EQ(s.resumes, 0u);
  EXPECT_EQ(s.resumes_refused, 1u);
  // Forgotten: the gateway no longer knows the RESUME's shard.
  EXPECT_EQ(ShardOf(s, 0).resumes_refused, 0u);
  EXPECT_EQ(ShardOf(s, 0).identifies, 1u);
}

TEST(GatewaySessions, AResumeAfterTheWindowIsRefusedAndCountedForItsShard) {
  GatewayOptions o = Options();
  o.resume_window_s = 1;
  auto server = Start(o);
  ASSERT_TRUE(server);
  uint64_t last = 0;
  const std::string id = IdentifyThenDrop(server->port(), 3, 4, &last);
  ASSERT_FALSE(id.empty());
  // Past the window, and well before the gateway's first sweep of expired
  // sessions (5 s after start), so the session is still known: expired.
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  TestClient c;
  Open(c, server->port());
  ExpectResumeRefused(c, id, last);
  const Stats s = server->stats();
  EXPECT_EQ(s.resumes, 0u);
  EXPECT_EQ(s.resumes_refused, 1u);
  EXPECT_EQ(ShardOf(s, 3).resumes_refused, 1u);
  // Expired sessions are forgotten: a second try is an unknown session,
  // counted in the totals only.
  TestClient d;
  Open(d, server->port());
  ExpectResumeRefused(d, id, last);
  EXPECT_EQ(server->stats().resumes_refused, 2u);
  EXPECT_EQ(ShardOf(server->stats(), 3).resumes_refused, 1u);
}

// Every answer but RESUMED counts, for the shard of a session still known.
TEST(GatewaySessions, RefusedResumesOfAKnownSessionCountForItsShard) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  uint64_t last = 0;
  const std::string id = IdentifyThenDrop(server->port(), 2, 4, &last);
  ASSERT_FALSE(id.empty());
  std::this_thread::sleep_for(kDisconnectSettle);
  {
    TestClient c;  // a seq the session never reached: 4007
    Open(c, server->port());
    ASSERT_TRUE(c.send_text(resume(id, last + 1'000'000)));
    EXPECT_EQ(c.await_close(), 4007);
  }
  {
    TestClient c;  // another token than the session's: op 9 d=false
    Open(c, server->port());
    ASSERT_TRUE(c.send_text(resume(id, last, "other")));
    auto nine = c.next_payload();
    ASSERT_TRUE(nine);
    EXPECT_EQ(nine->op, 9);
    EXPECT_EQ(json_field(nine->raw, "/d"), "false");
  }
  TestClient c;  // still resumable
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(resume(id, last)));
  while (auto ev = c.next_payload()) {
    if (ev->t == "RESUMED") break;
  }
  const Stats s = server->stats();
  EXPECT_EQ(s.resumes, 1u);
  EXPECT_EQ(s.resumes_refused, 2u);
  EXPECT_EQ(ShardOf(s, 2).resumes, 1u);
  EXPECT_EQ(ShardOf(s, 2).resumes_refused, 2u);
  EXPECT_THAT(server->stats_json(), HasSubstr(R"("resumes":1,"events_sent":)"));
}

TEST(GatewaySessions, AnIdentifyInsideItsBucketsWindowIsRefusedAndCounted) {
  GatewayOptions o = Options();
  o.identify_window_ms = 60'000;
  o.max_concurrency = 1;
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient a, b;
  Open(a, server->port());
  Open(b, server->port());
  ASSERT_TRUE(a.send_text(identify(0, 2)));
  auto ready = a.next_payload();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->t, "READY");
  // Shard 1 shares the one bucket: too early.
  ASSERT_TRUE(b.send_text(identify(1, 2)));
  auto nine = b.next_payload();
  ASSERT_TRUE(nine);
  EXPECT_EQ(nine->op, 9);
  EXPECT_EQ(json_field(nine->raw, "/d"), "false");
  // Identifying twice closes with 4005, refused for the shard it names.
  ASSERT_TRUE(a.send_text(identify(0, 2)));
  EXPECT_EQ(a.await_close(), 4005);

  const Stats s = server->stats();
  EXPECT_EQ(s.identifies, 1u);
  EXPECT_EQ(s.identifies_refused, 2u);
  EXPECT_EQ(s.identify_rate_limited, 1u);
  EXPECT_EQ(ShardOf(s, 0).identifies, 1u);
  EXPECT_EQ(ShardOf(s, 0).identifies_refused, 1u);
  EXPECT_EQ(ShardOf(s, 1).identifies, 0u);
  EXPECT_EQ(ShardOf(s, 1).identifies_refused, 1u);

  const std::string json = server->stats_json();
  EXPECT_EQ(json_field(json, "/identifies"), "1");
  EXPECT_EQ(json_field(json, "/identifies_refused"), "2");
  EXPECT_EQ(json_field(json, "/identify_rate_limited"), "1");
  EXPECT_EQ(json_field(json, "/resumes_refused"), "0");
  EXPECT_EQ(json_field(json, "/shards/1/identifies_refused"), "1");
  EXPECT_EQ(json_field(json, "/shards/1/session_id"), "");
  EXPECT_EQ(json_field(json, "/shards/0/identifies_refused"), "1");
  EXPECT_EQ(json_field(json, "/shards/0/resumes_refused"), "0");
}

TEST(GatewaySessions, AnIdentifyWithAWrongTokenIsRefusedAndCounted) {
  GatewayOptions o = Options();
  o.token = "tok";
  auto server = Start(o);
  ASSERT_TRUE(server);
  TestClient c;
  Open(c, server->port());
  ASSERT_TRUE(c.send_text(identify(3, 4, "wrong")));
  EXPECT_EQ(c.await_close(), 4004);
  const Stats s = server->stats();
  EXPECT_EQ(s.identifies, 0u);
  EXPECT_EQ(s.identifies_refused, 1u);
  EXPECT_EQ(s.identify_rate_limited, 0u);
  EXPECT_EQ(ShardOf(s, 3).identifies_refused, 1u);
}

// READY's d.user.id is the id the token encodes, as Discord's is.
TEST(GatewaySessions, ReadyUserIdFollowsTheToken) {
  auto server = Start(Options());
  ASSERT_TRUE(server);
  for (const auto& [token, want] :
       {std::pair{"MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabc.xyz", "123456789012345678"},
        std::pair{"MTA5OTUxMjIxMTA0MjgyODI4OA.G1.x", "1099512211042828288"},
        std::pair{"tok", "1099512211042828288"}}) {
    SCOPED_TRACE(token);
    TestClient c;
    Open(c, server->port());
    ASSERT_TRUE(c.send_text(identify(0, 1, token)));
    auto ready = c.next_payload();
    ASSERT_TRUE(ready);
    ASSERT_EQ(ready->t, "READY");
    EXPECT_EQ(json_field(ready->raw, "/d/user/id"), want);
    EXPECT_EQ(json_field(ready->raw, "/d/user/bot"), "true");
  }
}

TEST(GatewaySessions, ResumeWindowFlagTakes0To86400) {
  bool help = false;
  std::string usage;
  auto o = parse_gateway_options({}, &help, &usage);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->resume_window_s, 180);
  for (const auto& [arg, want] : {std::pair{"0", 0}, std::pair{"86400", 86400}}) {
    const std::string_view args[] = {"--resume-window-s", arg};
    o = parse_gateway_options(args, &help, &usage);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->resume_window_s, want);
  }
  for (const char* bad : {"-1", "86401", "soon", "1.5"}) {
    SCOPED_TRACE(bad);
    const std::string_view args[] = {"--resume-window-s", bad};
    o = parse_gateway_options(args, &help, &usage);
    ASSERT_FALSE(o.ok());
    EXPECT_THAT(std::string(o.status().message()), HasSubstr("--resume-window-s"));
    EXPECT_EQ(gateway_main(args), 2);
  }
}

}  // namespace
}  // namespace shardring::gatewaysrv
