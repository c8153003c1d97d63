// tests/gateway/session_sends_test.cc: gateway::Session's send limiter: user
// sends wait for READY, are capped per window (heartbeats keep their share),
// queue up to kMaxQueuedSends, and the window never reopens early.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gateway/session_test_util.h"

namespace shardring::gateway {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// ---- The send limiter ------------------------------------------------------

TEST(GatewaySession, UserSendsWaitForReadyAndGoOutInOrder) {
  Session s(TestConfig(), 0.5);
  Actions out;
  EXPECT_EQ(s.queue_send(R"({"op":3,"d":1})", t0, out), Errc::kOk);
  (void)s.on_connected(t0);
  (void)s.on_hello(41'250ms, t0);
  EXPECT_EQ(s.queue_send(R"({"op":3,"d":2})", t0, out), Errc::kOk);
  (void)s.on_identify_granted(t0);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(s.queued_sends(), 2u);
  const DispatchOutcome ready = s.on_ready(1, kSessionId, kResumeUrl, t0);
  EXPECT_THAT(Sent(ready.actions), ElementsAre(R"({"op":3,"d":1})", R"({"op":3,"d":2})"));
  EXPECT_THAT(Lines(ready.actions),
              ElementsAre("SendText user 14 bytes", "SendText user 14 bytes"));
  EXPECT_EQ(s.queue_send(R"({"op":3,"d":3})", t0, out), Errc::kOk);
  EXPECT_THAT(Sent(out), ElementsAre(R"({"op":3,"d":3})"));
}

TEST(GatewaySession, PayloadOf4096BytesIsSentAndOneByteMoreIsRejected) {
  struct Row {
    size_t size;
    Errc result;
  };
  for (const Row r :
       {Row{0, Errc::kEmptyPayload}, Row{1, Errc::kOk}, Row{4095, Errc::kOk}, Row{4096, Errc::kOk},
        Row{4097, Errc::kPayloadTooLarge}, Row{1 << 20, Errc::kPayloadTooLarge}}) {
    SCOPED_TRACE(r.size);
    Session s = ReadySession();
    Actions out;
    EXPECT_EQ(s.queue_send(std::string(r.size, 'x'), t0 + 1s, out), r.result);
    EXPECT_EQ(out.size(), r.result == Errc::kOk ? 1u : 0u);
    EXPECT_EQ(s.queued_sends(), 0u);
  }
}

TEST(GatewaySession, QueueHoldsItsLimitThenReportsFull) {
  Session s(TestConfig(), 0.5);  // not connected: everything waits
  Actions out;
  for (size_t i = 0; i < kMaxQueuedSends; ++i) {
    ASSERT_EQ(s.queue_send("{}", t0, out), Errc::kOk);
  }
  EXPECT_EQ(s.queue_send("{}", t0, out), Errc::kQueueFull);
  EXPECT_EQ(s.queued_sends(), kMaxQueuedSends);
  EXPECT_THAT(out, IsEmpty());
}

// What went out does not count against the queue's limit: only what waits.
TEST(GatewaySession, QueueLimitCountsOnlyWaitingSends) {
  Session s = ReadySession();  // the identify took one slot of the window
  Actions out;
  const size_t sent_now = kMaxUserSendsPerWindow - 1;
  for (size_t i = 0; i < sent_now + kMaxQueuedSends; ++i) {
    ASSERT_EQ(s.queue_send("{}", t0 + 1s, out), Errc::kOk) << i;
  }
  EXPECT_EQ(Sent(out).size(), sent_now);
  EXPECT_EQ(s.queued_sends(), kMaxQueuedSends);
  EXPECT_EQ(s.queue_send("{}", t0 + 1s, out), Errc::kQueueFull);
  (void)s.shutdown(t0 + 2s);
  EXPECT_EQ(s.queued_sends(), 0u);
}

// Plays the engine: fires armed timers in deadline order, records every send.
struct Driver {
  explicit Driver(Session& session) : s(session) {}
  Session& s;
  std::vector<std::pair<Clock::time_point, SendText>> sends;
  std::optional<Clock::time_point> timers[kTimerCount];
  void take(Actions&& actions, Clock::time_point now) {
    for (Action& a : actions) {
      if (auto* st = std::get_if<SendText>(&a)) sends.emplace_back(now, std::move(*st));
      if (auto* t = std::get_if<StartTimer>(&a)) timers[size_t(t->id)] = t->deadline;
      if (auto* c = std::get_if<CancelTimer>(&a)) timers[size_t(c->id)].reset();
    }
  }
  // Fires due timers up to `until`, acking heartbeats at once.
  void run_until(Clock::time_point until) {
    for (;;) {
      size_t next = kTimerCount;
      for (size_t i = 0; i < kTimerCount; ++i) {
        if (timers[i] && *timers[i] <= until &&
            (next == kTimerCount || *timers[i] < *timers[next])) {
          next = i;
        }
      }
      if (next == kTimerCount) return;
      const Clock::time_point now = *timers[next];
      timers[next].reset();
      take(s.on_timer(TimerId(next), now), now);
      take(s.on_heartbeat_ack(now), now);
    }
  }
  // The most sends in any window of kSendWindow, and of user sends.
  std::pair<int, int> max_in_window() const {
    int most = 0, most_user = 0;
    for (size_t i = 0; i < sends.size(); ++i) {
      int all = 0, user = 0;
      for (size_t j = i; j < sends.size() && sends[j].first < sends[i].first + kSendWindow; ++j) {
        ++all;
        user += sends[j].second.kind == SendKind::kUser;
      }
      most = std::max(most, all);
      most_user = std::max(most_user, user);
    }
    return {most, most_user};
  }
};

TEST(GatewaySession, UserSendsAreCappedPerWindowAndReleasedInOrderByTheTimer) {
  Session s(TestConfig(), 0.5);
  Driver d{s};
  d.take(s.on_connected(t0), t0);
  d.take(s.on_hello(41'250ms, t0), t0);
  d.take(s.on_identify_granted(t0), t0);
  d.take(s.on_ready(1, kSessionId, kResumeUrl, t0).actions, t0);
  const int kTotal = 400;
  for (int i = 0; i < kTotal; ++i) {
    Actions out;
    ASSERT_EQ(s.queue_send(R"({"op":3,"n":)" + std::to_string(i) + "}", t0 + 1s, out), Errc::kOk);
    d.take(std::move(out), t0 + 1s);
  }
  // The identify plus 114 user sends fill the user share of the window.
  EXPECT_EQ(s.sends_in_window(t0 + 1s), kMaxUserSendsPerWindow);
  EXPECT_EQ(s.queued_sends(), size_t(kTotal - 114));
  ASSERT_TRUE(d.timers[size_t(TimerId::kSendWindow)].has_value());
  EXPECT_EQ(*d.timers[size_t(TimerId::kSendWindow)], t0 + kSendWindow);

  d.run_until(t0 + 10min);
  EXPECT_EQ(s.queued_sends(), 0u);
  std::vector<std::string> user;
  int heartbeats = 0;
  for (const auto& [at, send] : d.sends) {
    if (send.kind == SendKind::kUser) user.push_back(send.json);
    heartbeats += send.kind == SendKind::kHeartbeat;
  }
  ASSERT_EQ(user.size(), size_t(kTotal));
  for (int i = 0; i < kTotal; ++i) {
    EXPECT_EQ(user[i], R"({"op":3,"n":)" + std::to_string(i) + "}");
  }
  EXPECT_GT(heartbeats, 10);
  const auto [most, most_user] = d.max_in_window();
  EXPECT_LE(most, kMaxSendsPerWindow);
  EXPECT_LE(most_user, kMaxUserSendsPerWindow);
  EXPECT_EQ(s.stats().zombies, 0u);
}

// Send times are kept as the clock's milliseconds (rounded up, mod 2^32):
// the window never reopens early, within the millisecond of a send or
// across the 2^32 ms wrap of the clock.
TEST(GatewaySession, TheSendWindowNeverReopensEarlyAtAnyClockValue) {
  using std::chrono::microseconds;
  const Clock::time_point wrap = t0 + Millis(int64_t{1} << 32);
  for (const Clock::time_point base :
       {t0 + microseconds(999), t0 + 7s + microseconds(1), wrap - 30s + microseconds(250)}) {
    SCOPED_TRACE(base.time_since_epoch().count());
    Session s(TestConfig(), 0.5);
    (void)s.on_connected(base);
    (void)s.on_hello(41'250ms, base);
    (void)s.on_identify_granted(base);
    ASSERT_TRUE(s.on_ready(1, kSessionId, kResumeUrl, base).deliver);
    Actions out;
    for (int i = 0; i < 200; ++i) ASSERT_EQ(s.queue_send("{}", base, out), Errc::kOk);
    EXPECT_EQ(s.sends_in_window(base), kMaxUserSendsPerWindow);
    std::optional<Clock::time_point> reopen;
    for (const Action& a : out) {
      if (const auto* t = std::get_if<StartTimer>(&a); t && t->id == TimerId::kSendWindow) {
        reopen = t->deadline;
      }
    }
    ASSERT_TRUE(reopen.has_value());
    EXPECT_GE(*reopen, base + kSendWindow);
    EXPECT_LT(*reopen, base + kSendWindow + 1ms);
    EXPECT_EQ(s.sends_in_window(base + kSendWindow - microseconds(1)), kMaxUserSendsPerWindow);
    EXPECT_EQ(s.sends_in_window(*reopen), 0);
  }
}

TEST(GatewaySession, HeartbeatsStillGoOutWhenUserSendsFillTheirShare) {
  Session s = ReadySession();
  Actions out;
  for (int i = 0; i < 300; ++i) ASSERT_EQ(s.queue_send("{}", t0 + 1s, out), Errc::kOk);
  EXPECT_EQ(s.sends_in_window(t0 + 1s), kMaxUserSendsPerWindow);
  // The beat takes a reserved slot, which moves the moment the user share
  // reopens from 60 s (the identify ages out) to 61 s.
  EXPECT_THAT(Lines(s.on_timer(TimerId::kHeartbeat, t0 + 20'625ms)),
              ElementsAre(Heartbeat(1), "StartTimer send_window " + At(61'000ms),
                          "StartTimer heartbeat " + At(61'875ms)));
  EXPECT_EQ(s.sends_in_window(t0 + 20'625ms), kMaxUserSendsPerWindow + 1);
}

TEST(GatewaySession, AFloodOfHeartbeatRequestsNeverExceeds120SendsPerWindow) {
  Session s = ReadySession();
  int sent = 0;
  std::vector<std::string> other;
  for (int i = 0; i < 500; ++i) {
    for (const std::string& line : Lines(s.on_heartbeat_request(t0 + 1s))) {
      if (line == Heartbeat(1)) {
        ++sent;
      } else {
        other.push_back(line);
      }
    }
  }
  EXPECT_EQ(sent, kMaxSendsPerWindow - 1);  // the identify took one
  EXPECT_EQ(s.sends_in_window(t0 + 1s), kMaxSendsPerWindow);
  // The one still due waits for the window to reopen, not forever.
  EXPECT_THAT(other, ElementsAre("StartTimer send_window " + At(kSendWindow)));
  EXPECT_THAT(Lines(s.on_heartbeat_request(t0 + 2s)), IsEmpty());
  EXPECT_THAT(Lines(s.on_timer(TimerId::kSendWindow, t0 + kSendWindow)), ElementsAre(Heartbeat(1)));
}

TEST(GatewaySession, TheSendWindowStartsAfreshOnEachConnection) {
  Session s = ReadySession();
  Actions out;
  for (int i = 0; i < 200; ++i) ASSERT_EQ(s.queue_send("{}", t0 + 1s, out), Errc::kOk);
  EXPECT_EQ(s.queued_sends(), 86u);
  const Actions lost = s.on_connection_lost(t0 + 2s);
  EXPECT_THAT(Lines(lost), Contains("CancelTimer send_window"));
  (void)s.on_connected(t0 + 3s);
  EXPECT_EQ(s.sends_in_window(t0 + 3s), 0);
  (void)s.on_hello(41'250ms, t0 + 3s);  // RESUME: 1 send
  const DispatchOutcome resumed = s.on_resumed(2, t0 + 3s);
  EXPECT_EQ(Sent(resumed.actions).size(), 86u);
  EXPECT_EQ(s.queued_sends(), 0u);
}

}  // namespace
}  // namespace shardring::gateway
