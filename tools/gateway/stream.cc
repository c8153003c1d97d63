#include "tools/gateway/stream.h"

#include <algorithm>

#include "base/json.h"
#include "tools/gateway/text.h"
#include "tools/gateway/token.h"

namespace shardring::gatewaysrv {
namespace {

// READY's user id when the token does not encode one (token.h).
constexpr std::string_view kBotUserId = "1099512211042828288";
constexpr std::string_view kApplicationId = "1099512211042828288";

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t stamp_ns(Instant t) noexcept {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

Draw event_at(const Mix& mix, const SessionState& s, uint64_t seq, uint64_t ts_ns) {
  const uint64_t h = splitmix(s.seed ^ (seq * 0x9E3779B97F4A7C15ull));
  const uint32_t g = s.guilds == 0 ? 0 : static_cast<uint32_t>((h >> 40) % s.guilds);
  return Draw{&mix.pick(h),
              Splice{seq, ts_ns, guild_id(s.shard, s.total, g), s.snowflake_base + seq * 16}};
}

Draw guild_create_at(const Mix& mix, const SessionState& s, uint32_t g, uint64_t seq,
                     uint64_t ts_ns) {
  return Draw{&mix.guild_create(g == 0), Splice{seq, ts_ns, guild_id(s.shard, s.total, g), 0}};
}

void keep(SessionState& s, uint64_t seq, std::string payload) {
  s.kept.push_back({seq, std::move(payload)});
  while (!s.kept.empty() && (s.kept.size() > kMaxKeptDispatches ||
                             s.kept.front().seq + kReplayBufferEvents < s.last_seq)) {
    s.replay_floor = std::max(s.replay_floor, s.kept.front().seq + 1);
    s.kept.pop_front();
  }
}

void catch_up(SessionState& s, uint64_t resume_seq, Instant now, double rate,
              std::optional<uint64_t> events_limit) {
  if (rate <= 0) return;
  const double gap = std::chrono::duration<double>(now - s.detached_at).count();
  uint64_t missed = static_cast<uint64_t>(std::max(0.0, gap * rate));
  const uint64_t behind = s.last_seq - resume_seq;
  missed = std::min(missed, kReplayBufferEvents - std::min(behind, kReplayBufferEvents));
  const uint64_t limit = events_limit.value_or(UINT64_MAX);
  missed = std::min(missed, limit - std::min(s.generated, limit));
  s.last_seq += missed;
  s.generated += missed;
}

std::string hello_payload(int64_t heartbeat_ms) {
  std::string hello = R"({"t":null,"s":null,"op":10,"d":{"heartbeat_interval":)";
  append_to(&hello, heartbeat_ms, R"(,"_trace":)", kTrace, "}}");
  return hello;
}

std::string ready_payload(const SessionState& s, std::string_view resume_url) {
  const std::optional<std::string> user_id = user_id_from_token(s.token);
  std::string ready =
      R"({"t":"READY","s":1,"op":0,"d":{"v":10,"user_settings":{},"user":{"verified":true,"username":"shardring-bot","mfa_enabled":false,"id":")";
  append_to(
      &ready, user_id ? std::string_view(*user_id) : kBotUserId,
      R"(","global_name":null,"flags":0,"email":null,"discriminator":"0","bot":true,"avatar":null},"session_type":"normal","session_id":")",
      s.id, R"(","resume_gateway_url":)");
  base::append_json_string(ready, resume_url);
  ready += R"(,"relationships":[],"private_channels":[],"presences":[],"guilds":[)";
  for (uint32_t g = 0; g < s.guilds; ++g) {
    append_to(&ready, g ? "," : "", R"({"unavailable":true,"id":")", guild_id(s.shard, s.total, g),
              R"("})");
  }
  append_to(
      &ready,
      R"(],"guild_join_requests":[],"geo_ordered_rtc_regions":["us-east","us-central"],"auth":{},"application":{"id":")",
      kApplicationId, R"(","flags":565248},"_trace":)", kTrace, R"(,"shard":[)", s.shard, ",",
      s.total, "]}}");
  return ready;
}

std::string resumed_payload(uint64_t seq) {
  return cat(R"({"t":"RESUMED","s":)", seq, R"(,"op":0,"d":{"_trace":)", kTrace, "}}");
}

std::string members_chunk_payload(uint64_t seq, std::string_view guild,
                                  std::optional<std::string_view> nonce) {
  std::string p = cat(R"({"t":"GUILD_MEMBERS_CHUNK","s":)", seq, R"(,"op":0,"d":{"guild_id":")",
                      guild, R"(","members":[)");
  for (int i = 0; i < 3; ++i) {
    append_to(
        &p, i ? "," : "", R"({"user":{"username":"member_)", i,
        R"(","public_flags":0,"id":"22884696177455)", 1000 + i, R"(","global_name":"Member )", i,
        R"( ✨","discriminator":"0","avatar":null},"roles":[],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2020-04-04T04:04:04.000000+00:00","flags":0,"deaf":false,"avatar":null})");
  }
  p += R"(],"chunk_index":0,"chunk_count":1,"not_found":[])";
  if (nonce) {
    p += R"(,"nonce":)";
    base::append_json_string(p, *nonce);
  }
  p += "}}";
  return p;
}

uint64_t Pacer::due(Instant now, double rate) const noexcept {
  const double due = std::chrono::duration<double>(now - epoch_).count() * rate;
  const auto due_n = static_cast<uint64_t>(due);
  return due_n > count_ ? due_n - count_ : 0;
}

Instant Pacer::next(double rate) const noexcept {
  return epoch_ + std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::duration<double>(static_cast<double>(count_ + 1) / rate));
}

}  // namespace shardring::gatewaysrv
