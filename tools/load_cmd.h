// tools/load_cmd.h: `shardring load` (docs/interface.md "shardring load").
#pragma once

#include <span>
#include <string_view>

namespace shardring::tools {

// Returns the process exit code: 0, 1 (the gateway or the engine failed),
// 2 (bad flags), 3 (a fatal close).
int load_main(std::span<const std::string_view> args);

}  // namespace shardring::tools
