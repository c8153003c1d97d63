// tests/engine/log_test.cc: log lines as a reader gets them: JSON lines that
// parse whatever text a field holds (peer text with quotes, newlines and
// control bytes), text lines on one line, the token scrubbed from both; the
// writer thread writes every line, and a burst does not cost its caller a
// context switch per line.
#include "engine/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
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

// Context switches of the calling thread so far (given up and taken away).
long ThreadSwitches() {
  rusage u{};
  EXPECT_EQ(getrusage(RUSAGE_THREAD, &u), 0);
  return u.ru_nvcsw + u.ru_nivcsw;
}

// 2,000 shards starting log "identifying" and "ready" each, from the core
// thread, on a CPU the writer thread shares (as when a process is pinned to
// one core). Woken for every line, the writer took that CPU from the logging
// thread about twice a line (7,000 switches for these 4,000 lines, measured);
// woken once per burst, about 40 over the test's 200 ms.
TEST(Log, ABurstOfLinesDoesNotSwitchTheLoggingThreadOutPerLine) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &saved)) {
      CPU_SET(c, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  Log::configure(Log::Format::kText, Level::kInfo, null_fd);
  Log::start_writer();  // its thread shares the one CPU
  // The core thread's work between two shards' lines (I/O, parsing): a
  // spin, so the writer has drained and sleeps when the next line comes.
  auto work = [] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  const long before = ThreadSwitches();
  for (int shard = 0; shard < 2000; ++shard) {
    Log::write(Level::kInfo, shard, "identifying");
    work();
    Log::write(Level::kInfo, shard, "ready", {{"seq", 1}});
    work();
  }
  const long switches = ThreadSwitches() - before;
  Log::flush();
  Log::configure(Log::Format::kText, Level::kInfo, 2);
  ::close(null_fd);
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  EXPECT_LT(switches, 400);
}

}  // namespace
}  // namespace shardring::engine
