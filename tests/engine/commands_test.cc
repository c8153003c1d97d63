// tests/engine/commands_test.cc: what Engine::send and `run --commands`
// accept, and why they refuse the rest (engine/commands.h).
#include "engine/commands.h"

#include <gtest/gtest.h>

#include <string>

namespace shardring::engine {
namespace {

using std::chrono::milliseconds;
using Clock = CommandChecker::Clock;

TEST(CommandChecker, AcceptsTheCommandsABotSends) {
  CommandChecker c;
  const Clock::time_point t0{};
  for (const char* p :
       {R"({"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}})",
        R"({"op":4,"d":{"guild_id":"1","channel_id":null,"self_mute":false,"self_deaf":false}})",
        R"({"op":8,"d":{"guild_id":"1","query":"ab","limit":10}})",
        R"({"op":31,"d":{"guild_ids":["1"]}})"}) {
    EXPECT_TRUE(c.check(p, t0).queued) << p;
  }
}

TEST(CommandChecker, RefusesTheSessionsOwnOpcodesAndOthers) {
  CommandChecker c;
  const Clock::time_point t0{};
  for (int op : {1, 2, 6}) {
    const auto r = c.check("{\"op\":" + std::to_string(op) + ",\"d\":{}}", t0);
    EXPECT_FALSE(r.queued);
    EXPECT_EQ(r.reason, "heartbeat, identify and resume are the session's own");
  }
  for (int op : {0, 7, 9, 10, 11, 14, 99}) {
    EXPECT_FALSE(c.check("{\"op\":" + std::to_string(op) + ",\"d\":{}}", t0).queued) << op;
  }
}

TEST(CommandChecker, RefusesWhatIsNotAPayload) {
  CommandChecker c;
  const Clock::time_point t0{};
  EXPECT_EQ(c.check("nope", t0).reason, "not a JSON object");
  EXPECT_EQ(c.check("[3]", t0).reason, "not a JSON object");
  EXPECT_EQ(c.check(R"({"op":3,"d":{}} x)", t0).reason, "not a JSON object");
  EXPECT_EQ(c.check(R"({"d":{}})", t0).reason, "no integer \"op\"");
  EXPECT_EQ(c.check(R"({"op":"3","d":{}})", t0).reason, "no integer \"op\"");
  EXPECT_EQ(c.check(R"({"op":3})", t0).reason, "no \"d\"");
}

TEST(CommandChecker, APayloadOfExactly4096BytesPassesOneMoreIsRefused) {
  CommandChecker c;
  const Clock::time_point t0{};
  const std::string head = R"({"op":3,"d":")", tail = "\"}";
  const std::string fits = head + std::string(4096 - head.size() - tail.size(), 'x') + tail;
  ASSERT_EQ(fits.size(), 4096u);
  EXPECT_TRUE(c.check(fits, t0).queued);
  const std::string over = head + std::string(4097 - head.size() - tail.size(), 'x') + tail;
  EXPECT_EQ(c.check(over, t0).reason, "over 4096 bytes");
}

TEST(CommandChecker, AllOfAGuildsMembersAtMostOncePer30Seconds) {
  CommandChecker c;
  const Clock::time_point t0{};
  const std::string all = R"({"op":8,"d":{"guild_id":"42","query":"","limit":0}})";
  const std::string other = R"({"op":8,"d":{"guild_id":"43","query":"","limit":0}})";
  const std::string some = R"({"op":8,"d":{"guild_id":"42","query":"a","limit":0}})";
  EXPECT_TRUE(c.check(all, t0).queued);
  EXPECT_TRUE(c.check(other, t0).queued);  // per guild
  EXPECT_TRUE(c.check(some, t0).queued);   // a query is not "all"
  const auto again = c.check(all, t0 + kAllMembersWindow - milliseconds(1));
  EXPECT_FALSE(again.queued);
  EXPECT_EQ(again.reason, "all of this guild's members were asked for less than 30 s ago");
  EXPECT_TRUE(c.check(all, t0 + kAllMembersWindow).queued);
}

TEST(CommandLine, MakesTheGatewayPayload) {
  uint32_t shard = 0;
  std::string payload;
  std::string_view reason;
  ASSERT_TRUE(parse_command_line(R"({"shard":3,"op":3,"d":{"status":"idle", "afk":false}})", &shard,
                                 &payload, &reason));
  EXPECT_EQ(shard, 3u);
  EXPECT_EQ(payload, R"({"op":3,"d":{"status":"idle","afk":false}})");
  EXPECT_FALSE(parse_command_line(R"({"op":3,"d":{}})", &shard, &payload, &reason));
  EXPECT_EQ(reason, "no \"shard\" id");
  EXPECT_FALSE(parse_command_line(R"({"shard":-1,"op":3,"d":{}})", &shard, &payload, &reason));
  EXPECT_FALSE(parse_command_line("", &shard, &payload, &reason));
}

}  // namespace
}  // namespace shardring::engine
