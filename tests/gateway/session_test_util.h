// tests/gateway/session_test_util.h: what the gateway::Session tests share:
// a shard's config, made-up times (t0 is the steady clock's epoch), and the
// actions as to_string() lines or as the texts sent.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

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

}  // namespace
}  // namespace shardring::gateway
