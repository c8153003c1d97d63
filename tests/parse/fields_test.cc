// tests/parse/fields_test.cc: the event-type table and `--events` filter,
// and the readers for HELLO, READY, op 9 and GET /gateway/bot.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "parse/envelope.h"
#include "parse/event_type.h"
#include "tests/parse/corpus.h"

namespace shardring::parse {
namespace {

using ::testing::ElementsAre;
using testing::Padded;

// Discord v10 "Receive Events" dispatch names.
constexpr std::string_view kDiscordEvents[] = {
    "READY",
    "RESUMED",
    "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
    "AUTO_MODERATION_RULE_CREATE",
    "AUTO_MODERATION_RULE_UPDATE",
    "AUTO_MODERATION_RULE_DELETE",
    "AUTO_MODERATION_ACTION_EXECUTION",
    "CHANNEL_CREATE",
    "CHANNEL_UPDATE",
    "CHANNEL_DELETE",
    "CHANNEL_PINS_UPDATE",
    "THREAD_CREATE",
    "THREAD_UPDATE",
    "THREAD_DELETE",
    "THREAD_LIST_SYNC",
    "THREAD_MEMBER_UPDATE",
    "THREAD_MEMBERS_UPDATE",
    "ENTITLEMENT_CREATE",
    "ENTITLEMENT_UPDATE",
    "ENTITLEMENT_DELETE",
    "GUILD_CREATE",
    "GUILD_UPDATE",
    "GUILD_DELETE",
    "GUILD_AUDIT_LOG_ENTRY_CREATE",
    "GUILD_BAN_ADD",
    "GUILD_BAN_REMOVE",
    "GUILD_EMOJIS_UPDATE",
    "GUILD_STICKERS_UPDATE",
    "GUILD_INTEGRATIONS_UPDATE",
    "GUILD_MEMBER_ADD",
    "GUILD_MEMBER_REMOVE",
    "GUILD_MEMBER_UPDATE",
    "GUILD_MEMBERS_CHUNK",
    "GUILD_ROLE_CREATE",
    "GUILD_ROLE_UPDATE",
    "GUILD_ROLE_DELETE",
    "GUILD_SCHEDULED_EVENT_CREATE",
    "GUILD_SCHEDULED_EVENT_UPDATE",
    "GUILD_SCHEDULED_EVENT_DELETE",
    "GUILD_SCHEDULED_EVENT_USER_ADD",
    "GUILD_SCHEDULED_EVENT_USER_REMOVE",
    "GUILD_SOUNDBOARD_SOUND_CREATE",
    "GUILD_SOUNDBOARD_SOUND_UPDATE",
    "GUILD_SOUNDBOARD_SOUND_DELETE",
    "GUILD_SOUNDBOARD_SOUNDS_UPDATE",
    "SOUNDBOARD_SOUNDS",
    "INTEGRATION_CREATE",
    "INTEGRATION_UPDATE",
    "INTEGRATION_DELETE",
    "INTERACTION_CREATE",
    "INVITE_CREATE",
    "INVITE_DELETE",
    "MESSAGE_CREATE",
    "MESSAGE_UPDATE",
    "MESSAGE_DELETE",
    "MESSAGE_DELETE_BULK",
    "MESSAGE_REACTION_ADD",
    "MESSAGE_REACTION_REMOVE",
    "MESSAGE_REACTION_REMOVE_ALL",
    "MESSAGE_REACTION_REMOVE_EMOJI",
    "MESSAGE_POLL_VOTE_ADD",
    "MESSAGE_POLL_VOTE_REMOVE",
    "PRESENCE_UPDATE",
    "RATE_LIMITED",
    "STAGE_INSTANCE_CREATE",
    "STAGE_INSTANCE_UPDATE",
    "STAGE_INSTANCE_DELETE",
    "SUBSCRIPTION_CREATE",
    "SUBSCRIPTION_UPDATE",
    "SUBSCRIPTION_DELETE",
    "TYPING_START",
    "USER_UPDATE",
    "VOICE_CHANNEL_EFFECT_SEND",
    "VOICE_STATE_UPDATE",
    "VOICE_SERVER_UPDATE",
    "WEBHOOKS_UPDATE",
};

TEST(EventType, EveryDiscordDispatchHasItsOwnValueAndName) {
  EXPECT_EQ(std::size(kDiscordEvents) + 2, kEventTypeCount);
  std::set<EventType> seen;
  for (std::string_view name : kDiscordEvents) {
    SCOPED_TRACE(name);
    const EventType t = event_type_from_name(name);
    EXPECT_NE(t, EventType::kUnknown);
    EXPECT_NE(t, EventType::kNone);
    EXPECT_EQ(to_string(t), name);
    EXPECT_TRUE(seen.insert(t).second);
  }
}

TEST(EventType, NearMissesAreUnknown) {
  for (std::string_view name :
       {"", "ready", "READY ", " READY", "READ", "READYY", "MESSAGE_CREAT", "MESSAGE_CREATEE",
        "XESSAGE_CREATE", "MESSAGE_CREATX", "GUILD_MEMBER_UPDATE_",
        "THIS_IS_A_VERY_LONG_NAME_THAT_NO_EVENT_HAS_AT_ALL_X"}) {
    EXPECT_EQ(event_type_from_name(name), EventType::kUnknown) << name;
  }
  EXPECT_EQ(event_type_from_name(std::string_view("READY\0", 6)), EventType::kUnknown);
  EXPECT_EQ(to_string(EventType::kNone), "");
  EXPECT_EQ(to_string(EventType::kUnknown), "UNKNOWN");
}

TEST(EventFilter, KeepsKnownNamesAsBitsAndUnknownNamesAsStrings) {
  const auto f = EventFilter::parse(" MESSAGE_CREATE,GUILD_CREATE , NEW_EVENT,NEW_EVENT");
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->allows_all());
  EXPECT_EQ(f->known().count(), 2u);
  EXPECT_THAT(f->unknown_names(), ElementsAre("NEW_EVENT"));
  EXPECT_TRUE(f->allows(EventType::kMessageCreate, "MESSAGE_CREATE"));
  EXPECT_TRUE(f->allows(EventType::kGuildCreate, "GUILD_CREATE"));
  EXPECT_FALSE(f->allows(EventType::kTypingStart, "TYPING_START"));
  EXPECT_TRUE(f->allows(EventType::kUnknown, "NEW_EVENT"));
  EXPECT_FALSE(f->allows(EventType::kUnknown, "OTHER_EVENT"));
  EXPECT_TRUE(f->allows(EventType::kNone, ""));
  EXPECT_TRUE(EventFilter().allows(EventType::kTypingStart, "TYPING_START"));
}

TEST(EventFilter, RefusesMalformedLists) {
  std::string error;
  EXPECT_FALSE(EventFilter::parse("", &error).has_value());
  EXPECT_FALSE(EventFilter::parse("READY,,RESUMED", &error).has_value());
  EXPECT_FALSE(EventFilter::parse("READY,message_create", &error).has_value());
  EXPECT_EQ(error, "message_create");
  EXPECT_FALSE(EventFilter::parse("READY,", &error).has_value());
}

std::string CorpusFile(std::string_view name) {
  for (const auto& f : testing::load_corpus()) {
    if (f.name == name) return f.bytes;
  }
  ADD_FAILURE() << "corpus file missing: " << name;
  return "";
}

// The d of a corpus frame, as the engine would have it.
std::string DOf(Parser& p, std::string_view frame) {
  Padded buf(frame);
  Envelope env;
  EXPECT_EQ(p.parse(buf.view(), env), Errc::kOk);
  return std::string(env.d);
}

TEST(SessionFields, HelloIntervalFromRealHellos) {
  Parser p;
  uint64_t ms = 0;
  ASSERT_EQ(p.hello_interval(Padded(DOf(p, CorpusFile("dad_op10_hello.json"))).view(), ms),
            Errc::kOk);
  EXPECT_EQ(ms, 45000u);
  ASSERT_EQ(p.hello_interval(Padded(DOf(p, CorpusFile("disgord_op10_hello.json"))).view(), ms),
            Errc::kOk);
  EXPECT_EQ(ms, 41250u);
  EXPECT_EQ(p.hello_interval(Padded(R"({"_trace":[]})").view(), ms), Errc::kMissingField);
  EXPECT_EQ(p.hello_interval(Padded(R"({"heartbeat_interval":0})").view(), ms), Errc::kBadField);
  EXPECT_EQ(p.hello_interval(Padded(R"({"heartbeat_interval":"1"})").view(), ms), Errc::kBadField);
  EXPECT_EQ(p.hello_interval(Padded("null").view(), ms), Errc::kNotObject);
}

TEST(SessionFields, ReadyInfoFromRealReadies) {
  Parser p;
  ReadyInfo info;
  ASSERT_EQ(p.ready_info(Padded(DOf(p, CorpusFile("kord_op0_ready.json"))).view(), info),
            Errc::kOk);
  EXPECT_FALSE(info.session_id.empty());
  EXPECT_FALSE(info.resume_gateway_url.empty());
  EXPECT_TRUE(info.resume_gateway_url.starts_with("wss://")) << info.resume_gateway_url;
  // Pre-2022 READY: no resume_gateway_url.
  ASSERT_EQ(p.ready_info(Padded(DOf(p, CorpusFile("disgord_op0_ready.json"))).view(), info),
            Errc::kOk);
  EXPECT_FALSE(info.session_id.empty());
  EXPECT_TRUE(info.resume_gateway_url.empty());
  ASSERT_EQ(
      p.ready_info(Padded(R"({"session_id":"a\"b","resume_gateway_url":"wss://x"})").view(), info),
      Errc::kOk);
  EXPECT_EQ(info.session_id, "a\"b");
  EXPECT_EQ(info.resume_gateway_url, "wss://x");
  EXPECT_EQ(p.ready_info(Padded(R"({"v":10})").view(), info), Errc::kMissingField);
  EXPECT_EQ(p.ready_info(Padded(R"({"session_id":5})").view(), info), Errc::kBadField);
}

TEST(SessionFields, InvalidSessionDIsABoolean) {
  Parser p;
  bool resumable = true;
  ASSERT_EQ(
      invalid_session_resumable(DOf(p, CorpusFile("dad_op9_invalid_session.json")), resumable),
      Errc::kOk);
  EXPECT_FALSE(resumable);
  ASSERT_EQ(invalid_session_resumable("true", resumable), Errc::kOk);
  EXPECT_TRUE(resumable);
  for (std::string_view bad : {"", "null", "1", "\"true\"", "truee", "{}"}) {
    EXPECT_EQ(invalid_session_resumable(bad, resumable), Errc::kBadField) << bad;
  }
}

TEST(GatewayBot, ReadsTheDocumentedExample) {
  GatewayBot bot;
  ASSERT_EQ(parse_gateway_bot(CorpusFile("dad_rest_get_gateway_bot.json"), bot), Errc::kOk);
  EXPECT_EQ(bot.url, "wss://gateway.discord.gg/");
  EXPECT_EQ(bot.shards, 9u);
  EXPECT_EQ(bot.total, 1000u);
  EXPECT_EQ(bot.remaining, 999u);
  EXPECT_EQ(bot.reset_after_ms, 14400000u);
  EXPECT_EQ(bot.max_concurrency, 1u);
}

TEST(GatewayBot, NamesTheMissingOrBadField) {
  const std::string full = R"({"url":"wss://g","shards":2,"session_start_limit":{"total":1,)"
                           R"("remaining":1,"reset_after":5,"max_concurrency":16}})";
  GatewayBot bot;
  ASSERT_EQ(parse_gateway_bot(full, bot), Errc::kOk);
  EXPECT_EQ(bot.max_concurrency, 16u);
  struct Case {
    std::string_view remove, field;
  };
  for (const Case& c : {Case{R"("url":"wss://g",)", "url"}, Case{R"("shards":2,)", "shards"},
                        Case{R"("total":1,)", "session_start_limit.total"},
                        Case{R"("remaining":1,)", "session_start_limit.remaining"},
                        Case{R"("reset_after":5,)", "session_start_limit.reset_after"},
                        Case{R"(,"max_concurrency":16)", "session_start_limit.max_concurrency"}}) {
    std::string body = full;
    body.erase(body.find(c.remove), c.remove.size());
    std::string_view field;
    EXPECT_EQ(parse_gateway_bot(body, bot, &field), Errc::kMissingField) << body;
    EXPECT_EQ(field, c.field);
  }
  std::string_view field;
  std::string zero = full;
  zero.replace(zero.find(":16"), 3, ":0");
  EXPECT_EQ(parse_gateway_bot(zero, bot, &field), Errc::kBadField);
  EXPECT_EQ(field, "session_start_limit.max_concurrency");
  EXPECT_EQ(parse_gateway_bot(R"({"url":1})", bot, &field), Errc::kBadField);
  EXPECT_EQ(field, "url");
  EXPECT_EQ(parse_gateway_bot(R"({"shards":0})", bot, &field), Errc::kBadField);
  EXPECT_NE(parse_gateway_bot("not json", bot), Errc::kOk);
  EXPECT_EQ(parse_gateway_bot("[]", bot), Errc::kNotObject);
  EXPECT_EQ(parse_gateway_bot(full + "x", bot), Errc::kBadJson);
}

}  // namespace
}  // namespace shardring::parse
