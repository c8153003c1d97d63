#include "tools/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tools/options.h"

namespace shardring::tools {
namespace {
using ::testing::HasSubstr;
using ::testing::Not;

// The line of `usage` that declares --name.
std::string LineOf(const std::string& usage, const std::string& name) {
  std::istringstream in(usage);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  --" + name + " ", 0) == 0 || line == "  --" + name) return line;
  }
  return "";
}

TEST(FlagSetUsage, ShowsEachFlagsDefault) {
  std::string api = "https://example.test", empty;
  std::optional<std::string> given = "x", unset;
  int64_t threads = 4;
  std::optional<int64_t> total;
  double rate = 0.5;
  bool on = false;
  FlagSet f("test");
  f.add_string("api", &api, "REST base");
  f.add_string("empty", &empty, "an empty string");
  f.add_string("given", &given, "an optional with a value");
  f.add_string("unset", &unset, "an optional without one");
  f.add_int("threads", &threads, 1, 64, "I/O threads");
  f.add_int("total", &total, 1, 64, "shard count");
  f.add_double("rate", &rate, 0, 10, "events per second");
  f.add_bool("on", &on, "a switch");
  const std::string u = f.usage();
  EXPECT_THAT(LineOf(u, "api"), HasSubstr("REST base (default https://example.test)"));
  EXPECT_THAT(LineOf(u, "given"), HasSubstr("(default x)"));
  EXPECT_THAT(LineOf(u, "threads"), HasSubstr("I/O threads (default 4)"));
  EXPECT_THAT(LineOf(u, "rate"), HasSubstr("(default 0.5)"));
  for (const char* none : {"empty", "unset", "total", "on"}) {
    EXPECT_THAT(LineOf(u, none), Not(HasSubstr("default"))) << none;
  }
}

TEST(FlagSetUsage, AValueOutsideTheRangeMeansNotGiven) {
  int64_t n = -1;
  double secs = -1;
  FlagSet f("test");
  f.add_int("n", &n, 0, 10, "a count");
  f.add_double("secs", &secs, 0, 1e9, "stop after SECS");
  EXPECT_THAT(f.usage(), Not(HasSubstr("default")));
}

TEST(FlagSetUsage, HelpThatNamesTheDefaultIsLeftAlone) {
  int64_t threads = 0;
  FlagSet f("test");
  f.add_int("threads", &threads, 0, 64, "I/O threads (default: online cores)");
  EXPECT_THAT(LineOf(f.usage(), "threads"), HasSubstr("I/O threads (default: online cores)"));
  EXPECT_THAT(f.usage(), Not(HasSubstr("(default 0)")));
}

TEST(FlagSetUsage, WrapsAtOneHundredColumns) {
  std::string s;
  FlagSet f("test");
  f.add_string(
      "long", &s,
      std::string(40, 'a') + " " + std::string(40, 'b') + " " + std::string(40, 'c') + " end");
  std::istringstream in(f.usage());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GE(lines.size(), 2u);
  for (const std::string& line : lines) EXPECT_LE(line.size(), 100u) << line;
  EXPECT_EQ(lines[1].find_first_not_of(' '), 27u);
}

TEST(FlagSetUsage, CommandsEndWithExitCodesAndExamples) {
  for (const char* command : {"run", "gateway", "load"}) {
    const std::string u = FlagSet(command).usage();
    EXPECT_THAT(u, HasSubstr("\nexit codes:\n  0  ")) << command;
    EXPECT_THAT(u, HasSubstr("\nexamples:\n  ")) << command;
    EXPECT_THAT(u, HasSubstr(std::string("shardring ") + command + " --")) << command;
  }
  EXPECT_THAT(FlagSet("test").usage(), Not(HasSubstr("exit codes")));
}

TEST(FlagSetUsage, RunShowsItsDefaults) {
  bool help = false;
  std::string usage;
  const std::vector<std::string_view> args = {"--help"};
  ASSERT_TRUE(parse_run_options(args, nullptr, &help, &usage).ok());
  EXPECT_TRUE(help);
  EXPECT_THAT(LineOf(usage, "api"), HasSubstr("(default https://discord.com/api/v10)"));
  EXPECT_THAT(LineOf(usage, "intents"), HasSubstr("(default 513)"));
  EXPECT_THAT(LineOf(usage, "sink"), HasSubstr("(default ndjson)"));
  EXPECT_THAT(LineOf(usage, "duration"), Not(HasSubstr("default")));
  EXPECT_THAT(usage, HasSubstr("\n  4  the sink failed"));
}

TEST(FlagSetUsage, ManStyleIsRoff) {
  std::string api = "https://example.test";
  bool on = false;
  FlagSet f("run");
  f.add_string("api", &api, "REST base");
  f.add_bool("live", &on, "a live view");
  FlagSet::set_usage_style(UsageStyle::kMan);
  const std::string u = "text a command puts first\n" + f.usage();
  FlagSet::set_usage_style(UsageStyle::kText);
  const std::string_view man = FlagSet::man_section(u);
  EXPECT_THAT(std::string(man), Not(HasSubstr("text a command puts first")));
  EXPECT_THAT(std::string(man), HasSubstr(".TP\n.BI \"\\-\\-api \" S\nREST base (default "
                                          "https://example.test)\n"));
  EXPECT_THAT(std::string(man), HasSubstr(".TP\n.B \\-\\-live\na live view\n"));
  EXPECT_THAT(std::string(man), HasSubstr("Exit status:"));
  EXPECT_TRUE(FlagSet::man_section(f.usage()).empty());  // back to text
}

}  // namespace
}  // namespace shardring::tools
