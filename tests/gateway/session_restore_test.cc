// tests/gateway/session_restore_test.cc: gateway::Session across processes:
// a session saved by one run is taken up by the next (restore), a clean
// stop can keep it resumable, and every session has a stable key.
#include <string>
#include <vector>

#include "gateway/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gateway/session_test_util.h"

namespace shardring::gateway {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SessionRestore, ResumesTheSavedSessionFromItsSeqWithoutTheIdentifyGate) {
  Session s(TestConfig(), 0.5);
  ASSERT_TRUE(s.restore(kSessionId, kResumeUrl, 42));
  EXPECT_EQ(s.session_id(), kSessionId);
  EXPECT_EQ(s.resume_url(), kResumeUrl);
  EXPECT_EQ(s.last_seq(), 42u);
  EXPECT_EQ(s.session_key(), session_key_of(kSessionId));
  (void)s.on_connected(t0);
  const Actions hello = s.on_hello(41'250ms, t0);
  // RESUME at once, with the saved seq: no RequestIdentify.
  EXPECT_THAT(Sent(hello), ElementsAre(resume_payload(kToken, kSessionId, 42)));
  for (const Action& a : hello) EXPECT_FALSE(std::holds_alternative<RequestIdentify>(a));
  EXPECT_EQ(s.state(), State::kResuming);
  // Replays up to the saved seq are not delivered again; later ones are.
  EXPECT_FALSE(s.on_dispatch(42));
  EXPECT_TRUE(s.on_dispatch(43));
  EXPECT_TRUE(s.on_resumed(44, t0).deliver);
  EXPECT_EQ(s.state(), State::kReady);
}

TEST(SessionRestore, AnUnknownSessionFallsBackToIdentify) {
  Session s(TestConfig(), 0.5);
  ASSERT_TRUE(s.restore(kSessionId, kResumeUrl, 42));
  (void)s.on_connected(t0);
  (void)s.on_hello(41'250ms, t0);
  // Op 9 d=false: the gateway no longer knows it.
  const Actions a = s.on_invalid_session(false, t0 + 1s);
  EXPECT_FALSE(s.has_session());
  EXPECT_EQ(s.session_key(), 0u);
  bool identify_next = false;
  for (const Action& x : a) {
    if (const auto* r = std::get_if<Reconnect>(&x)) {
      identify_next = r->mode == ConnectMode::kIdentify && r->url == kUrl;
    }
  }
  EXPECT_TRUE(identify_next);
}

TEST(SessionRestore, AResumeUrlThatKeepsFailingGivesWayToTheGatewayUrl) {
  Session s(TestConfig(), 0.5);
  ASSERT_TRUE(s.restore(kSessionId, kResumeUrl, 42));
  std::vector<std::string> urls;
  for (uint32_t i = 0; i < kResumeUrlAttempts + 1; ++i) {
    for (const Action& a : s.on_connect_failed(t0)) {
      if (const auto* r = std::get_if<Reconnect>(&a)) {
        EXPECT_EQ(r->mode, ConnectMode::kResume);
        urls.push_back(r->url);
      }
    }
  }
  EXPECT_EQ(urls, (std::vector<std::string>{std::string(kResumeUrl), std::string(kResumeUrl),
                                            std::string(kResumeUrl), std::string(kUrl)}));
  // Still the saved session: it RESUMEs there.
  (void)s.on_connected(t0);
  EXPECT_THAT(Sent(s.on_hello(41'250ms, t0)), ElementsAre(resume_payload(kToken, kSessionId, 42)));
}

TEST(SessionRestore, RefusesWhatItCannotKeep) {
  Session s(TestConfig(), 0.5);
  EXPECT_FALSE(s.restore("", kResumeUrl, 1));
  EXPECT_FALSE(s.restore(std::string(kMaxSessionIdBytes + 1, 'a'), kResumeUrl, 1));
  EXPECT_FALSE(s.restore(kSessionId, std::string(kMaxResumeUrlBytes + 1, 'a'), 1));
  EXPECT_FALSE(s.restore(std::string("x") + std::string(kToken), kResumeUrl, 1));
  EXPECT_FALSE(s.has_session());
  (void)s.on_connected(t0);
  EXPECT_FALSE(s.restore(kSessionId, kResumeUrl, 1));  // connected already
}

TEST(SessionRestore, AKeepingStopClosesWith4000AndKeepsTheSession) {
  Session s(TestConfig(), 0.5);
  (void)s.on_connected(t0);
  (void)s.on_hello(41'250ms, t0);
  (void)s.on_identify_granted(t0);
  ASSERT_TRUE(s.on_ready(1, kSessionId, kResumeUrl, t0, 198622483471925248).deliver);
  EXPECT_TRUE(s.on_dispatch(2));
  EXPECT_EQ(s.user_id(), 198622483471925248u);
  EXPECT_THAT(Lines(s.shutdown(t0 + 1s, Session::StopMode::kKeepSession)),
              ElementsAre("CancelTimer heartbeat", "CloseConnection 4000"));
  EXPECT_EQ(s.state(), State::kStopped);
  EXPECT_EQ(s.session_id(), kSessionId);
  EXPECT_EQ(s.last_seq(), 2u);
  // Nothing follows: no reconnect.
  EXPECT_THAT(Lines(s.on_close(4000, t0 + 2s)), IsEmpty());
}

TEST(SessionRestore, AnEndingStopForgetsTheSession) {
  Session s(TestConfig(), 0.5);
  ASSERT_TRUE(s.restore(kSessionId, kResumeUrl, 7));
  (void)s.on_connected(t0);
  (void)s.on_hello(41'250ms, t0);
  EXPECT_THAT(Lines(s.shutdown(t0 + 1s)),
              ElementsAre("CancelTimer heartbeat", "CloseConnection 1000"));
  EXPECT_FALSE(s.has_session());
}

TEST(SessionKey, IsStableNonZeroAndDiffersBetweenSessions) {
  static_assert(session_key_of("") == 0);
  EXPECT_NE(session_key_of("a"), 0u);
  EXPECT_EQ(session_key_of(kSessionId), session_key_of(std::string(kSessionId)));
  EXPECT_NE(session_key_of("5c4b8ce27187466ec895c867776050d4"),
            session_key_of("987c58edd79f2ad12f7fa934bf8f5755"));
  // FNV-1a 64 of "a" (a published test vector).
  EXPECT_EQ(session_key_of("a"), 0xaf63dc4c8601ec8cULL);
}

TEST(ReadyInfo, ReadsTheBotUserIdAndIgnoresWhatIsNotASnowflake) {
  parse::Parser parser;
  auto read = [&](std::string d) {
    d.append(parse::kPadding, '\0');
    parse::ReadyInfo info;
    EXPECT_EQ(parser.ready_info(std::string_view(d.data(), d.size() - parse::kPadding), info),
              parse::Errc::kOk);
    return info;
  };
  EXPECT_EQ(read(R"({"v":10,"user":{"username":"b","id":"198622483471925248","bot":true},)"
                 R"("session_id":"abc","resume_gateway_url":"wss://x"})")
                .user_id,
            198622483471925248u);
  EXPECT_EQ(read(R"({"user":{"id":198622483471925248},"session_id":"abc"})").user_id, 0u);
  EXPECT_EQ(read(R"({"user":{"id":"12a"},"session_id":"abc"})").user_id, 0u);
  EXPECT_EQ(read(R"({"user":"x","session_id":"abc"})").user_id, 0u);
  EXPECT_EQ(read(R"({"user":{"id":"99999999999999999999999"},"session_id":"abc"})").user_id, 0u);
  EXPECT_EQ(read(R"({"session_id":"abc","user":{"id":"7"}})").session_id, "abc");
}

TEST(SessionRestore, RewindResumesFromAnEarlierSeqAndDeliversTheReplayAgain) {
  Session s(TestConfig(), 0.5);
  ASSERT_TRUE(s.restore(kSessionId, kResumeUrl, 42));
  (void)s.on_connected(t0);
  (void)s.on_hello(41'250ms, t0);
  EXPECT_TRUE(s.on_resumed(43, t0).deliver);
  EXPECT_TRUE(s.on_dispatch(44));
  // Another session's loss, or a seq not below the last: nothing.
  EXPECT_THAT(s.rewind(40, session_key_of("another"), t0), IsEmpty());
  EXPECT_THAT(s.rewind(44, s.session_key(), t0), IsEmpty());
  // The sink lost 41-44: close with 4000 and RESUME from 40 at once.
  const Actions a = s.rewind(40, s.session_key(), t0);
  bool closed = false, resumes = false;
  for (const Action& x : a) {
    if (const auto* c = std::get_if<CloseConnection>(&x)) closed = c->code == kCloseResumable;
    if (const auto* r = std::get_if<Reconnect>(&x)) resumes = r->mode == ConnectMode::kResume;
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(resumes);
  EXPECT_EQ(s.last_seq(), 40u);
  EXPECT_EQ(s.stats().rewinds, 1u);
  (void)s.on_connected(t0);
  EXPECT_THAT(Sent(s.on_hello(41'250ms, t0)), ElementsAre(resume_payload(kToken, kSessionId, 40)));
  // The replay is delivered again.
  EXPECT_TRUE(s.on_dispatch(41));
  EXPECT_TRUE(s.on_dispatch(42));
}

}  // namespace
}  // namespace shardring::gateway
