// tests/gateway/session_test_util.h: what the gateway::Session tests share:
// a shard's config, made-up times (t0 is the steady clock's epoch), and the
// actions as to_string() lines or as the texts sent, and a session taken
// to READY.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gtest/gtest.h"

#include "gateway/session.h"

namespace shardring::gateway {
namespace {

constexpr std::string_view kToken = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs";
constexpr std::string_view kUrl = "wss://gateway.discord.gg";
constexpr std::string_view kResumeUrl = "wss://gateway-us-east1-b.discord.gg";
constexpr std::string_view kSessionId = "d6f5c3e2a1b0c9d8e7f6a5b4c3d2e1f0";
const Clock::time_point t0{};

Config TestConfig() {
  Config c;
  c.token = std::string(kToken);
  c.intents = 513;
  c.shard_id = 3;
  c.shard_count = 16;
  c.gateway_url = std::string(kUrl);
  return c;
}

std::vector<std::string> Lines(const Actions& actions) {
  std::vector<std::string> out;
  for (const Action& a : actions) out.push_back(to_string(a));
  return out;
}

// The texts of every SendText, in order.
std::vector<std::string> Sent(const Actions& actions) {
  std::vector<std::string> out;
  for (const Action& a : actions) {
    if (const auto* s = std::get_if<SendText>(&a)) out.push_back(s->json);
  }
  return out;
}

// The to_string() line of a heartbeat carrying `seq`.
inline std::string Heartbeat(uint64_t seq) {
  return "SendText heartbeat " + heartbeat_payload(seq);
}

// A time as the to_string() lines write it: "@1500ms".
inline std::string At(Millis t) {
  std::string s = "@";
  s += std::to_string(t.count());
  s += "ms";
  return s;
}

// A session taken through connect, HELLO (41250 ms), the identify grant and
// READY (seq 1) at t0.
inline Session ReadySession(double jitter = 0.5) {
  Session s(TestConfig(), jitter);
  (void)s.on_connected(t0);
  (void)s.on_hello(Millis(41'250), t0);
  (void)s.on_identify_granted(t0);
  EXPECT_TRUE(s.on_ready(1, kSessionId, kResumeUrl, t0).deliver);
  EXPECT_EQ(s.state(), State::kReady);
  return s;
}

}  // namespace
}  // namespace shardring::gateway
