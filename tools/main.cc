// tools/main.cc: the `shardring` command line (docs/interface.md).
#include <cstring>
#include <iostream>
#include <string_view>
#include <vector>

#include "tools/load_cmd.h"
#include "tools/run_cmd.h"
#include "tools/version.h"
#if SHARDRING_HAVE_GATEWAY_SERVER
#include "tools/gateway/gateway_main.h"
#endif

namespace {
constexpr std::string_view kUsage =
    "usage: shardring <command> [flags]\n"
    "\n"
    "commands:\n"
    "  run       connect gateway shards and write every dispatch event to a sink\n"
#if SHARDRING_HAVE_GATEWAY_SERVER
    "  gateway   run a synthetic Discord gateway (load tests, development)\n"
#endif
    "  load      load-test the engine against a synthetic gateway and summarise\n"
    "\n"
    "`shardring <command> --help` lists the command's flags;\n"
    "`shardring --version` prints the version and the build.\n";
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string_view cmd = argv[1];
  std::vector<std::string_view> args(argv + 2, argv + argc);
  if (cmd == "run") return shardring::tools::run_main(args);
  if (cmd == "load") return shardring::tools::load_main(args);
#if SHARDRING_HAVE_GATEWAY_SERVER
  if (cmd == "gateway") return shardring::gatewaysrv::gateway_main(args);
#endif
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "--version") {
    std::cout << shardring::tools::version_text();
    return 0;
  }
  std::cerr << "shardring: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}
