// tests/engine/log_test.cc: log lines as a reader gets them: JSON lines that
// parse whatever text a field holds (peer text with quotes, newlines and
// control bytes), text lines on one line, the token scrubbed from both.
#include "engine/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "simdjson.h"

namespace shardring::engine {
namespace {

// Captures what Log writes, through a pipe.
class Captured {
 public:
  explicit Captured(Log::Format format) {
    EXPECT_EQ(::pipe(fds_), 0);
    Log::configure(format, Level::kDebug, fds_[1]);
  }
  ~Captured() {
    Log::configure(Log::Format::kText, Level::kInfo, 2);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string read_line() {
    std::string line;
    char c;
    while (::read(fds_[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }

 private:
  int fds_[2] = {-1, -1};
};

constexpr char kPeerText[] =
    "a \"quoted\" \\ reason\nwith a newline, a tab\t, \x01 and caf\xc3\xa9";

TEST(Log, JsonLinesParseWhateverTextAFieldHolds) {
  Captured cap(Log::Format::kJson);
  Log::write(Level::kWarn, 7, "gateway closed the \"connection\"",
             {{"code", 4000},
              {"reason", kPeerText},
              {"resumable", true},
              {"ratio", 0.5},
              {"bytes", uint64_t{18446744073709551615u}},
              {"delta", int64_t{-3}}});
  const std::string line = cap.read_line();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
  EXPECT_EQ(std::string_view(doc["level"].get_string().value()), "warn");
  EXPECT_EQ(int64_t(doc["shard"].get_int64().value()), 7);
  EXPECT_EQ(std::string_view(doc["msg"].get_string().value()), "gateway closed the \"connection\"");
  EXPECT_EQ(int64_t(doc["code"].get_int64().value()), 4000);
  EXPECT_EQ(std::string_view(doc["reason"].get_string().value()), kPeerText);
  EXPECT_TRUE(doc["resumable"].get_bool().value());
  EXPECT_DOUBLE_EQ(doc["ratio"].get_double().value(), 0.5);
  EXPECT_EQ(uint64_t(doc["bytes"].get_uint64().value()), 18446744073709551615u);
  EXPECT_EQ(int64_t(doc["delta"].get_int64().value()), -3);
}

TEST(Log, TextLinesStayOnOneLineWithQuotedText) {
  Captured cap(Log::Format::kText);
  Log::write(Level::kInfo, -1, "gateway", {{"url", "wss://x\r\ny"}, {"shards", 16u}});
  const std::string line = cap.read_line();
  EXPECT_NE(line.find(" info shard=- gateway url=\"wss://x\\r\\ny\" shards=16"), std::string::npos)
      << line;
}

TEST(Log, TheTokenIsScrubbedFromFieldsToo) {
  Log::set_secret("SECRET.TOKEN.value");
  Captured cap(Log::Format::kJson);
  Log::write(Level::kError, 1, "refused", {{"error", "bad Bot SECRET.TOKEN.value here"}});
  const std::string line = cap.read_line();
  EXPECT_EQ(line.find("SECRET.TOKEN.value"), std::string::npos) << line;
  EXPECT_NE(line.find("[redacted]"), std::string::npos) << line;
  Log::set_secret("");
}

// Warnings and errors of one message: a burst of 20, then left out (a
// thousand shards failing alike must not flood the log); other messages and
// info lines are not held back.
TEST(Log, RepeatedWarningsAreLimitedPerMessage) {
  std::vector<std::string> lines;
  Log::configure(Log::Format::kText, Level::kDebug, 2);
  Log::set_sink([&](Level, int64_t, std::string_view line) { lines.emplace_back(line); });
  for (int i = 0; i < 50; ++i) {
    Log::write(Level::kWarn, i, "connect failed (a test of the repeat limit)", {{"i", i}});
  }
  for (int i = 0; i < 30; ++i) Log::write(Level::kInfo, i, "ready (a test of the repeat limit)");
  Log::write(Level::kError, -1, "another message (a test of the repeat limit)");
  Log::set_sink(nullptr);
  size_t warns = 0, infos = 0, others = 0;
  for (const auto& l : lines) {
    warns += l.find("connect failed") != std::string::npos;
    infos += l.find("ready (a test") != std::string::npos;
    others += l.find("another message") != std::string::npos;
  }
  EXPECT_EQ(warns, 20u);
  EXPECT_EQ(infos, 30u);
  EXPECT_EQ(others, 1u);
}

// The writer thread: lines queued by several threads all come out, each
// whole, and raw() (the summary) comes after them.
TEST(Log, TheWriterThreadWritesEveryLineBeforeTheSummary) {
  Captured cap(Log::Format::kText);
  Log::start_writer();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) Log::write(Level::kInfo, t, "queued line", {{"i", i}});
    });
  }
  for (auto& th : threads) th.join();
  Log::raw("summary {}");
  int seen = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string l = cap.read_line();
    seen += l.find(" queued line i=") != std::string::npos;
  }
  EXPECT_EQ(seen, 400);
  EXPECT_EQ(cap.read_line(), "summary {}");
}

}  // namespace
}  // namespace shardring::engine
