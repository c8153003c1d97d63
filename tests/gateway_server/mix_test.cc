// The event templates: every built-in and file-given template, spliced with
// a seq, a send time and ids, is one valid gateway payload with those values.
#include "tools/gateway/mix.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace shardring::gatewaysrv {
namespace {

using ::testing::HasSubstr;

struct Parsed {
  std::string t;
  uint64_t s = 0, ts = 0;
  std::string guild_id, id;
};

Parsed Parse(const std::string& payload) {
  simdjson::dom::parser p;
  simdjson::dom::object o;
  Parsed out;
  EXPECT_EQ(p.parse(payload).get_object().get(o), simdjson::SUCCESS) << payload;
  std::string_view sv;
  EXPECT_EQ(o["t"].get_string().get(sv), simdjson::SUCCESS);
  out.t = std::string(sv);
  EXPECT_EQ(o["s"].get_uint64().get(out.s), simdjson::SUCCESS);
  EXPECT_EQ(o["_ts_ns"].get_uint64().get(out.ts), simdjson::SUCCESS);
  int64_t op = -1;
  EXPECT_EQ(o["op"].get_int64().get(op), simdjson::SUCCESS);
  EXPECT_EQ(op, 0);
  if (o["d"]["guild_id"].get_string().get(sv) == simdjson::SUCCESS) {
    out.guild_id = std::string(sv);
  }
  if (o["d"]["id"].get_string().get(sv) == simdjson::SUCCESS) {
    out.id = std::string(sv);
  }
  return out;
}

TEST(GatewayMix, EveryBuiltinTemplateSplicesIntoValidJson) {
  const Mix mix = Mix::builtin();
  ASSERT_GE(mix.events().size(), 10u);
  std::set<std::string> types;
  for (const Template& t : mix.events()) {
    SCOPED_TRACE(t.type);
    types.insert(t.type);
    const uint64_t gid = guild_id(5, 16, 2);
    for (uint64_t seq : {1ull, 9ull, 10ull, 123456789ull}) {
      std::string out;
      append_payload(out, t, Splice{seq, 987654321, gid, 1234567890123456789});
      EXPECT_EQ(out.size(), payload_size(t, Splice{seq, 987654321, gid, 0}));
      const Parsed p = Parse(out);
      EXPECT_EQ(p.t, t.type);
      EXPECT_EQ(p.s, seq);
      EXPECT_EQ(p.ts, 987654321u);
      if (!p.guild_id.empty()) {
        EXPECT_EQ(p.guild_id, std::to_string(gid));
      }
    }
    EXPECT_GE(t.body.size(), 100u);
    EXPECT_LE(t.body.size(), 4000u);
  }
  for (const char* want : {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "PRESENCE_UPDATE",
                           "TYPING_START", "GUILD_MEMBER_UPDATE", "MESSAGE_REACTION_ADD",
                           "MESSAGE_REACTION_REMOVE", "VOICE_STATE_UPDATE", "INTERACTION_CREATE"}) {
    EXPECT_TRUE(types.count(want)) << want;
  }
}

TEST(GatewayMix, FrameHeaderMatchesEveryLengthClass) {
  const Mix mix = Mix::builtin();
  for (bool large : {false, true}) {
    const Template& t = mix.guild_create(large);
    std::string frame;
    const Splice s{2, 1, guild_id(0, 1, 0), 0};
    append_frame(frame, t, s);
    const size_t n = payload_size(t, s);
    ASSERT_EQ(static_cast<uint8_t>(frame[0]), 0x81);
    if (n > 0xFFFF) {
      ASSERT_EQ(static_cast<uint8_t>(frame[1]), 127);
      EXPECT_EQ(frame.size(), n + 10);
    } else {
      ASSERT_EQ(static_cast<uint8_t>(frame[1]), 126);
      EXPECT_EQ(frame.size(), n + 4);
    }
    const Parsed p = Parse(frame.substr(frame.size() - n));
    EXPECT_EQ(p.id, std::to_string(guild_id(0, 1, 0)));
  }
  // A tiny event: 7-bit length.
  auto t = Mix::make_template("X", R"({"a":1})");
  ASSERT_TRUE(t.ok());
  std::string frame;
  append_frame(frame, *t, Splice{1, 1, 0, 0});
  EXPECT_EQ(static_cast<uint8_t>(frame[1]), frame.size() - 2);
}

TEST(GatewayMix, GuildIdsFollowDiscordsShardingFormula) {
  for (uint32_t total : {1u, 2u, 16u, 2000u, 100000u}) {
    for (uint32_t shard : {0u, total / 2, total - 1}) {
      for (uint32_t i : {0u, 1u, 99u}) {
        const uint64_t g = guild_id(shard, total, i);
        EXPECT_EQ((g >> 22) % total, shard);
        EXPECT_EQ(std::to_string(g).size(), kGuildIdDigits);
      }
    }
  }
}

TEST(GatewayMix, EveryMentionOfTheEventsGuildIsReplaced) {
  auto t = Mix::make_template(
      "MESSAGE_CREATE",
      R"({"id":"111","guild_id":"42","message_reference":{"guild_id":"42"},"x":"420"})");
  ASSERT_TRUE(t.ok());
  std::string out;
  append_payload(out, *t, Splice{7, 8, guild_id(1, 2, 0), 5000000000000000000});
  EXPECT_THAT(out, HasSubstr(R"("id":"5000000000000000000")"));
  EXPECT_THAT(
      out, HasSubstr(R"("message_reference":{"guild_id":")" + std::to_string(guild_id(1, 2, 0))));
  EXPECT_THAT(out, HasSubstr(R"("x":"420")"));
}

TEST(GatewayMix, MixFileLinesAreDrawnAndErrorsNameTheLine) {
  auto mix = Mix::from_lines(
      "# comment\n"
      "{\"op\":0,\"t\":\"A_EVENT\",\"d\":{\"guild_id\":\"1\",\"v\":\"é\"}}\n"
      "\n"
      "{\"op\": 0, \"t\": \"B_EVENT\", \"d\": [1, 2]}\r\n",
      "mix.jsonl");
  ASSERT_TRUE(mix.ok()) << mix.status();
  std::set<std::string> seen;
  for (uint64_t r = 0; r < 4096; ++r) seen.insert(mix->pick(r * 7919).type);
  EXPECT_EQ(seen, (std::set<std::string>{"A_EVENT", "B_EVENT"}));

  auto bad = Mix::from_lines("{\"op\":0,\"t\":\"A\",\"d\":{}}\n{\"op\":1}\n", "f.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("f.jsonl:2"));
  EXPECT_FALSE(Mix::from_lines("not json\n", "g").ok());
  EXPECT_FALSE(Mix::from_lines("# only comments\n", "h").ok());
}

TEST(GatewayMix, WeightsShapeTheDraws) {
  const Mix mix = Mix::builtin();
  size_t messages = 0, interactions = 0;
  for (uint64_t r = 0; r < 1024; ++r) {
    const std::string& t = mix.pick(r).type;
    messages += t == "MESSAGE_CREATE";
    interactions += t == "INTERACTION_CREATE";
  }
  EXPECT_GT(messages, 5 * interactions);
  EXPECT_GT(interactions, 0u);
}

}  // namespace
}  // namespace shardring::gatewaysrv
