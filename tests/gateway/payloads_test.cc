// tests/gateway/payloads_test.cc: the JSON the shard sends, byte for byte,
// and the string escaper; cross-checked with simdjson and the real corpus.
#include "gateway/payloads.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <system_error>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace shardring::gateway {
namespace {

std::string Escaped(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// Parses `json` as a JSON string literal with simdjson and returns its value.
std::string RoundTrip(const std::string& literal) {
  simdjson::dom::parser parser;
  std::string_view value;
  EXPECT_EQ(parser.parse(literal).get(value), simdjson::SUCCESS) << literal;
  return std::string(value);
}

TEST(GatewayPayloads, EscaperTable) {
  struct Row {
    std::string in;
    std::string out;
  };
  const Row rows[] = {
      {"", R"("")"},
      {"plain", R"("plain")"},
      {"a\"b", R"("a\"b")"},
      {"a\\b", R"("a\\b")"},
      {"\b\f\n\r\t", R"("\b\f\n\r\t")"},
      {std::string("\0", 1), R"("\u0000")"},
      {"\x01\x1f", R"("\u0001\u001f")"},
      {"\x7f", "\"\x7f\""},  // DEL needs no escape in JSON
      {"/", R"("/")"},
      {"caf\xc3\xa9 \xf0\x9f\x94\xa5", "\"caf\xc3\xa9 \xf0\x9f\x94\xa5\""},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(testing::Message() << "in=" << testing::PrintToString(r.in));
    EXPECT_EQ(Escaped(r.in), r.out);
  }
}

TEST(GatewayPayloads, EveryByteValueSurvivesARoundTripThroughAJsonParser) {
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all.push_back('\0');
  const std::string literal = Escaped(all);
  EXPECT_EQ(RoundTrip(literal), all);
}

TEST(GatewayPayloads, EscaperAppendsToWhatIsAlreadyThere) {
  std::string out = "x=";
  append_json_string(out, "a\"");
  EXPECT_EQ(out, R"(x="a\"")");
}

TEST(GatewayPayloads, HeartbeatIsNullBeforeAnyDispatchThenTheSeq) {
  EXPECT_EQ(heartbeat_payload(0), R"({"op":1,"d":null})");
  EXPECT_EQ(heartbeat_payload(251), R"({"op":1,"d":251})");
  EXPECT_EQ(heartbeat_payload(18446744073709551615u), R"({"op":1,"d":18446744073709551615})");
}

TEST(GatewayPayloads, IdentifyHasDiscordsFieldNamesExactly) {
  Config c;
  c.token = "tok\"en";
  c.intents = 513;
  c.shard_id = 3;
  c.shard_count = 16;
  EXPECT_EQ(identify_payload(c),
            R"({"op":2,"d":{"token":"tok\"en","intents":513,)"
            R"("properties":{"os":"linux","browser":"shardring","device":"shardring"},)"
            R"("shard":[3,16]}})");
  c.large_threshold = 250;
  c.presence_json = R"({"status":"online","afk":false})";
  EXPECT_EQ(identify_payload(c),
            R"({"op":2,"d":{"token":"tok\"en","intents":513,)"
            R"("properties":{"os":"linux","browser":"shardring","device":"shardring"},)"
            R"("shard":[3,16],"large_threshold":250,)"
            R"("presence":{"status":"online","afk":false}}})");
}

TEST(GatewayPayloads, ResumeHasDiscordsFieldNamesExactly) {
  EXPECT_EQ(resume_payload("randomstring", "evenmorerandomstring", 1337),
            R"({"op":6,"d":{"token":"randomstring",)"
            R"("session_id":"evenmorerandomstring","seq":1337}})");
  EXPECT_EQ(resume_payload("t\\", "s\n", 0),
            R"({"op":6,"d":{"token":"t\\","session_id":"s\n","seq":0}})");
}

std::filesystem::path CorpusDir() {
  if (const char* d = std::getenv("SHARDRING_CORPUS_DIR")) return d;
  if (const char* s = std::getenv("SHARDRING_SOURCE_DIR")) {
    return std::filesystem::path(s) / "tests/data/corpus";
  }
  return std::filesystem::path(__FILE__).parent_path() / "../data/corpus";
}

std::set<std::string> Keys(simdjson::dom::object o) {
  std::set<std::string> keys;
  for (auto field : o) keys.insert(std::string(field.key));
  return keys;
}

// Discord's own examples (discord-api-docs, in tests/data/corpus) and ours
// use the same keys at every level; "compress" is the one we leave out
// (transport compression goes in the URL).
TEST(GatewayPayloads, IdentifyAndResumeUseTheKeysOfDiscordsExamples) {
  const auto dir = CorpusDir();
  std::error_code ec;
  ASSERT_TRUE(std::filesystem::is_directory(dir, ec))
      << "corpus folder missing: " << dir << " (tests/data/corpus, or SHARDRING_CORPUS_DIR)";
  ASSERT_FALSE(std::filesystem::is_empty(dir, ec)) << "corpus folder is empty: " << dir;
  const auto identify_file = dir / "dad_op2_identify_send.json";
  const auto resume_file = dir / "dad_op6_resume_send.json";
  ASSERT_TRUE(std::filesystem::is_regular_file(identify_file, ec))
      << "corpus file missing: " << identify_file;
  ASSERT_TRUE(std::filesystem::is_regular_file(resume_file, ec))
      << "corpus file missing: " << resume_file;
  simdjson::dom::parser p1, p2, p3, p4;
  simdjson::dom::element theirs_id, ours_id, theirs_re, ours_re;
  ASSERT_EQ(p1.load(identify_file.string()).get(theirs_id), simdjson::SUCCESS);
  ASSERT_EQ(p2.load(resume_file.string()).get(theirs_re), simdjson::SUCCESS);
  Config c;
  c.token = "my_token";
  c.large_threshold = 250;
  c.presence_json = R"({"activities":[],"status":"dnd","since":91879201,"afk":false})";
  const std::string id = identify_payload(c);
  const std::string re = resume_payload("randomstring", "evenmorerandomstring", 1337);
  ASSERT_EQ(p3.parse(id).get(ours_id), simdjson::SUCCESS);
  ASSERT_EQ(p4.parse(re).get(ours_re), simdjson::SUCCESS);

  EXPECT_EQ(Keys(ours_id.get_object()), Keys(theirs_id.get_object()));
  std::set<std::string> their_d = Keys(theirs_id["d"].get_object());
  their_d.erase("compress");
  EXPECT_EQ(Keys(ours_id["d"].get_object()), their_d);
  EXPECT_EQ(Keys(ours_id["d"]["properties"].get_object()),
            Keys(theirs_id["d"]["properties"].get_object()));
  EXPECT_EQ(int64_t(ours_id["op"]), 2);

  EXPECT_EQ(Keys(ours_re.get_object()), Keys(theirs_re.get_object()));
  EXPECT_EQ(Keys(ours_re["d"].get_object()), Keys(theirs_re["d"].get_object()));
  // Same values too: the example's RESUME is exactly what we build.
  EXPECT_EQ(std::string_view(ours_re["d"]["session_id"]),
            std::string_view(theirs_re["d"]["session_id"]));
  EXPECT_EQ(int64_t(ours_re["d"]["seq"]), int64_t(theirs_re["d"]["seq"]));
}

TEST(GatewayPayloads, ConfigErrorsNameTheProblemAndNeverTheToken) {
  Config ok;
  ok.token = "SECRET-TOKEN";
  ok.shard_id = 15;
  ok.shard_count = 16;
  EXPECT_EQ(config_error(ok), "");

  Config bad_shard = ok;
  bad_shard.shard_id = 16;
  EXPECT_THAT(config_error(bad_shard), testing::HasSubstr("shard id 16"));

  Config zero = ok;
  zero.shard_count = 0;
  zero.shard_id = 0;
  EXPECT_NE(config_error(zero), "");

  struct Row {
    uint16_t threshold;
    bool ok;
  };
  for (const Row r :
       {Row{0, true}, Row{49, false}, Row{50, true}, Row{250, true}, Row{251, false}}) {
    Config c = ok;
    c.large_threshold = r.threshold;
    EXPECT_EQ(config_error(c).empty(), r.ok) << r.threshold;
  }

  // The IDENTIFY must fit Discord's 4096-byte limit: one byte over fails.
  Config big = ok;
  big.presence_json = "\"\"";
  const size_t base = identify_payload(big).size();
  big.presence_json = "\"" + std::string(kMaxPayloadBytes - base, 'x') + "\"";
  EXPECT_EQ(identify_payload(big).size(), kMaxPayloadBytes);
  EXPECT_EQ(config_error(big), "");
  big.presence_json.insert(1, "x");
  EXPECT_THAT(config_error(big), testing::HasSubstr("4096"));
  EXPECT_THAT(config_error(big), testing::Not(testing::HasSubstr("SECRET")));
}

}  // namespace
}  // namespace shardring::gateway
