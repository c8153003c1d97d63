// tools/run_cmd.h: `shardring run` (docs/interface.md): parse flags, run the
// engine with an ndjson or null sink, print the summary, map exit codes
// (4: the sink failed for good). SIGPIPE is ignored; with ndjson:PATH,
// SIGHUP reopens PATH.
#pragma once

#include <span>
#include <string_view>

namespace shardring::tools {

int run_main(std::span<const std::string_view> args);

}  // namespace shardring::tools
