// tools/main.cc: the `shardring` command line (docs/interface.md).
#include <algorithm>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "tools/bench_parse_cmd.h"
#include "tools/flags.h"
#include "tools/help.h"
#include "tools/load_cmd.h"
#include "tools/options.h"
#include "tools/run_cmd.h"
#include "tools/version.h"
#if SHARDRING_HAVE_GATEWAY_SERVER
#include "tools/gateway/gateway_main.h"
#include "tools/gateway/gateway_options.h"
#endif

namespace {

bool built(std::string_view command) {
#if SHARDRING_HAVE_GATEWAY_SERVER
  return true;
#else
  return command != "gateway";
#endif
}

std::string usage() {
  std::string out = "usage: shardring <command> [flags]\n\ncommands:\n";
  for (const shardring::tools::CommandHelp& c : shardring::tools::commands()) {
    if (!built(c.name)) continue;
    std::string name(c.name);
    name.resize(std::max<size_t>(name.size() + 2, 13), ' ');
    out += "  " + name + std::string(c.summary) + "\n";
  }
  out +=
      "\n`shardring <command> --help` lists the command's flags, exit codes and examples;\n"
      "`shardring --version` prints the version and the build.\n";
  return out;
}

// Each command's usage text as its own parser writes it (--help), in roff.
std::string man_page() {
  using shardring::tools::FlagSet;
  FlagSet::set_usage_style(shardring::tools::UsageStyle::kMan);
  const std::vector<std::string_view> help_args = {"--help"};
  std::vector<shardring::tools::ManCommand> sections;
  for (const shardring::tools::CommandHelp& c : shardring::tools::commands()) {
    if (!built(c.name)) continue;
    bool help = false;
    std::string text;
    if (c.name == "run") {
      (void)shardring::tools::parse_run_options(help_args, nullptr, &help, &text);
    } else if (c.name == "load") {
      (void)shardring::tools::parse_load_options(help_args, &help, &text);
    } else if (c.name == "bench-parse") {
      (void)shardring::tools::parse_bench_parse_options(help_args, &help, &text);
    }
#if SHARDRING_HAVE_GATEWAY_SERVER
    if (c.name == "gateway") {
      (void)shardring::gatewaysrv::parse_gateway_options(help_args, &help, &text);
    }
#endif
    sections.push_back({&c, std::string(FlagSet::man_section(text))});
  }
  FlagSet::set_usage_style(shardring::tools::UsageStyle::kText);
  return shardring::tools::man_page(shardring::tools::version(), sections);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << usage();
    return 2;
  }
  const std::string_view cmd = argv[1];
  std::vector<std::string_view> args(argv + 2, argv + argc);
  if (cmd == "run") return shardring::tools::run_main(args);
  if (cmd == "load") return shardring::tools::load_main(args);
  if (cmd == "bench-parse") return shardring::tools::bench_parse_main(args);
#if SHARDRING_HAVE_GATEWAY_SERVER
  if (cmd == "gateway") return shardring::gatewaysrv::gateway_main(args);
#endif
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << usage();
    return 0;
  }
  if (cmd == "--version") {
    std::cout << shardring::tools::version_text();
    return 0;
  }
  // The manual page, docs/shardring.1, is this output.
  if (cmd == "--help-man") {
    std::cout << man_page();
    return 0;
  }
  std::cerr << "shardring: unknown command '" << cmd << "'\n" << usage();
  return 2;
}
