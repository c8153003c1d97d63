// tests/parse/corpus_test.cc: every file of the real corpus through the
// parser: full frames as they are, bare d files wrapped in every key order,
// the REST body through parse_gateway_bot. Each result is checked against
// simdjson's DOM parser reading the same bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <string>

#include "parse/envelope.h"
#include "tests/parse/corpus.h"

namespace shardring::parse {
namespace {

using testing::CorpusFile;
using testing::FileKind;
using testing::Padded;

// What tests/data/corpus holds (see its SOURCES.md): a file added or removed
// there changes these, so that no test passes on files it never read.
constexpr size_t kCorpusFiles = 37;  // *.json
constexpr int kFullFrames = 24;
constexpr int kBareD = 12;
constexpr int kRestBodies = 1;

const std::vector<CorpusFile>& Corpus() {
  static const auto* corpus = new std::vector<CorpusFile>(testing::load_corpus());
  return *corpus;
}

std::string Minify(simdjson::dom::element e) { return simdjson::minify(e); }

// Checks `env` against a DOM parse of the whole message.
void ExpectMatchesDom(std::string_view msg, const Envelope& env) {
  simdjson::dom::parser dom;
  simdjson::dom::element root;
  ASSERT_EQ(dom.parse(std::string(msg)).get(root), simdjson::SUCCESS);
  int64_t op = -1;
  ASSERT_EQ(root["op"].get_int64().get(op), simdjson::SUCCESS);
  EXPECT_EQ(env.op, op);
  simdjson::dom::element s;
  if (root["s"].get(s) == simdjson::SUCCESS && !s.is_null()) {
    EXPECT_EQ(env.s, s.get_uint64().value_unsafe());
  } else {
    EXPECT_FALSE(env.s.has_value());
  }
  simdjson::dom::element t;
  if (root["t"].get(t) == simdjson::SUCCESS && !t.is_null()) {
    EXPECT_EQ(env.t, t.get_string().value_unsafe());
  } else {
    EXPECT_FALSE(env.t.has_value());
  }
  simdjson::dom::element d;
  if (root["d"].get(d) != simdjson::SUCCESS) {
    EXPECT_EQ(env.d_kind, JsonKind::kAbsent);
    return;
  }
  // d's view, parsed alone, is the same value, and has no outer whitespace.
  ASSERT_FALSE(env.d.empty());
  EXPECT_FALSE(is_json_space(env.d.front()));
  EXPECT_FALSE(is_json_space(env.d.back()));
  simdjson::dom::parser dom2;
  simdjson::dom::element alone;
  ASSERT_EQ(dom2.parse(std::string(env.d)).get(alone), simdjson::SUCCESS);
  EXPECT_EQ(Minify(alone), Minify(d));
}

TEST(ParseCorpus, TheCorpusIsThere) {
  ASSERT_FALSE(Corpus().empty()) << "no *.json files in the corpus folder " << testing::corpus_dir()
                                 << " (tests/data/corpus, or SHARDRING_CORPUS_DIR)";
  EXPECT_EQ(Corpus().size(), kCorpusFiles) << testing::corpus_dir();
  for (const auto& f : Corpus()) {
    if (f.kind == FileKind::kBareD) {
      EXPECT_FALSE(f.event.empty()) << "map " << f.name << " to its event";
    }
  }
}

TEST(ParseCorpus, EveryFullFrameParsesInEveryMode) {
  Parser p;
  int frames = 0;
  for (const auto& f : Corpus()) {
    if (f.kind != FileKind::kFull) continue;
    SCOPED_TRACE(f.name);
    ++frames;
    Padded buf(f.bytes);
    Envelope full, fast, routed;
    ASSERT_EQ(p.parse(buf.view(), full), Errc::kOk);
    ExpectMatchesDom(f.bytes, full);
    ASSERT_EQ(p.parse(buf.view(), fast, {.check = Check::kEnvelope}), Errc::kOk);
    ASSERT_EQ(p.parse(buf.view(), routed, {.check = Check::kEnvelope, .routing_keys = true}),
              Errc::kOk);
    // The full check's reference path, and both with routing keys.
    Envelope reference, full_routed, reference_routed;
    ASSERT_EQ(p.parse(buf.view(), reference, {.fast_path = false}), Errc::kOk);
    ASSERT_EQ(p.parse(buf.view(), full_routed, {.routing_keys = true}), Errc::kOk);
    ASSERT_EQ(p.parse(buf.view(), reference_routed, {.routing_keys = true, .fast_path = false}),
              Errc::kOk);
    EXPECT_EQ(full_routed.routing.guild_id, reference_routed.routing.guild_id);
    EXPECT_EQ(full_routed.routing.channel_id, reference_routed.routing.channel_id);
    EXPECT_EQ(full_routed.routing.guild_id, routed.routing.guild_id);
    EXPECT_EQ(full_routed.routing.channel_id, routed.routing.channel_id);
    for (const Envelope* e : {&fast, &routed, &reference, &full_routed, &reference_routed}) {
      EXPECT_EQ(e->op, full.op);
      EXPECT_EQ(e->s, full.s);
      EXPECT_EQ(e->t, full.t);
      EXPECT_EQ(e->type, full.type);
      EXPECT_EQ(e->d.data(), full.d.data());
      EXPECT_EQ(e->d.size(), full.d.size());
      EXPECT_EQ(e->d_kind, full.d_kind);
    }
    EventName name;
    ASSERT_EQ(p.event_type(buf.view(), name), Errc::kOk);
    EXPECT_EQ(name.t, full.t);
    EXPECT_EQ(name.type, full.type);
    if (full.d_kind != JsonKind::kAbsent) {
      EXPECT_EQ(p.validate_d(full.d), Errc::kOk);
    }
    if (f.name.find("_op0_") != std::string::npos) {
      EXPECT_EQ(full.op, 0);
      EXPECT_TRUE(full.s.has_value());
      EXPECT_NE(full.type, EventType::kNone);
    }
  }
  EXPECT_EQ(frames, kFullFrames) << testing::corpus_dir();
}

TEST(ParseCorpus, KnownFramesGiveTheExpectedFields) {
  Parser p;
  int matched = 0;
  for (const auto& f : Corpus()) {
    Padded buf(f.bytes);
    Envelope env;
    if (f.kind != FileKind::kFull) continue;
    SCOPED_TRACE(f.name);
    ASSERT_EQ(p.parse(buf.view(), env, {.routing_keys = true}), Errc::kOk);
    bool known = true;
    if (f.name == "kord_op0_unknown_event_type.json") {
      EXPECT_EQ(env.type, EventType::kUnknown);
      EXPECT_EQ(env.t, "DOCUMENTED_API");
      EXPECT_EQ(env.d, "{}");
    } else if (f.name == "dad_op11_heartbeat_ack.json") {
      EXPECT_EQ(env.op, 11);
      EXPECT_EQ(env.d_kind, JsonKind::kAbsent);
    } else if (f.name == "dad_op7_reconnect.json") {
      EXPECT_EQ(env.d, "null");
    } else if (f.name == "dad_op9_invalid_session.json") {
      EXPECT_EQ(env.d, "false");
    } else if (f.name == "dad_op1_heartbeat_send.json") {
      EXPECT_EQ(env.d, "251");
    } else if (f.name == "kord_op0_resumed_with_trace.json") {
      EXPECT_EQ(env.type, EventType::kResumed);
      EXPECT_EQ(env.s, 30u);
    } else if (f.name == "disgord_op0_message_create.json") {
      EXPECT_EQ(env.type, EventType::kMessageCreate);
      EXPECT_TRUE(env.routing.guild_id.has_value());
      EXPECT_TRUE(env.routing.channel_id.has_value());
    } else if (f.name == "dad_op4_voice_state_update_send.json") {
      EXPECT_EQ(env.routing.guild_id, 41771983423143937u);
      EXPECT_EQ(env.routing.channel_id, 127121515262115840u);
    } else {
      known = false;
    }
    matched += known;
  }
  // Every file named above was found and checked.
  EXPECT_EQ(matched, 8) << testing::corpus_dir();
}

TEST(ParseCorpus, EveryBareDParsesWrappedInEveryKeyOrder) {
  Parser p;
  int files = 0;
  for (const auto& f : Corpus()) {
    if (f.kind != FileKind::kBareD) continue;
    SCOPED_TRACE(f.name);
    ++files;
    const std::string_view d = testing::trim(f.bytes);
    std::string order = "dost";
    uint64_t seq = 1;
    do {
      SCOPED_TRACE(order);
      const std::string msg = testing::wrap_dispatch(d, f.event, seq, order);
      Padded buf(msg);
      for (Check check : {Check::kFull, Check::kEnvelope}) {
        Envelope env;
        ASSERT_EQ(p.parse(buf.view(), env, {.check = check, .routing_keys = true}), Errc::kOk);
        EXPECT_EQ(env.op, 0);
        EXPECT_EQ(env.s, seq);
        EXPECT_EQ(env.t, f.event);
        EXPECT_EQ(to_string(env.type), f.event);
        EXPECT_EQ(env.d, d);
        EXPECT_EQ(env.d_kind, JsonKind::kObject);
      }
      ++seq;
    } while (std::next_permutation(order.begin(), order.end()));
    // The DOM agrees on the Discord key order.
    const std::string msg = testing::wrap_dispatch(d, f.event, 7);
    Padded buf(msg);
    Envelope env;
    ASSERT_EQ(p.parse(buf.view(), env), Errc::kOk);
    ExpectMatchesDom(msg, env);
  }
  EXPECT_EQ(files, kBareD) << testing::corpus_dir();
}

TEST(ParseCorpus, BigGuildCreateParsesAndRoutesInPlace) {
  Parser p;
  for (const auto& f : Corpus()) {
    if (f.name != "serenity_d_guild_create_big.json") continue;
    ASSERT_GT(f.bytes.size(), 2'000'000u);
    const std::string msg = testing::wrap_dispatch(testing::trim(f.bytes), "GUILD_CREATE", 3);
    Padded buf(msg);
    Envelope env;
    ASSERT_EQ(p.parse(buf.view(), env, {.routing_keys = true}), Errc::kOk);
    EXPECT_EQ(env.type, EventType::kGuildCreate);
    EXPECT_EQ(env.d.size(), testing::trim(f.bytes).size());
    EXPECT_FALSE(env.routing.guild_id.has_value());  // GUILD_CREATE has "id"
    return;
  }
  FAIL() << "serenity_d_guild_create_big.json missing";
}

TEST(ParseCorpus, RestBodyParsesThroughTheRestParser) {
  int files = 0;
  for (const auto& f : Corpus()) {
    if (f.kind != FileKind::kRest) continue;
    ++files;
    GatewayBot bot;
    EXPECT_EQ(parse_gateway_bot(f.bytes, bot), Errc::kOk) << f.name;
    EXPECT_FALSE(bot.url.empty());
    EXPECT_GE(bot.max_concurrency, 1u);
  }
  EXPECT_EQ(files, kRestBodies) << testing::corpus_dir();
}

}  // namespace
}  // namespace shardring::parse
