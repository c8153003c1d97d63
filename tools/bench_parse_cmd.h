// tools/bench_parse_cmd.h: `shardring bench-parse FILE...` (docs/interface.md
// "shardring bench-parse"): the event parser on a user's own capture, beside
// simdjson's DOM and validate_utf8 over the same bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shardring::tools {

struct BenchParseOptions {
  std::vector<std::string> files;
  double seconds = 0.5;     // each measurement runs passes over the set at least this long
  int64_t repetitions = 5;  // measurements per parser; the median is printed
};

absl::StatusOr<BenchParseOptions> parse_bench_parse_options(std::span<const std::string_view> args,
                                                            bool* help, std::string* usage);

// Returns the exit code: 0; 1 when no payload in the files is JSON; 2 for
// bad flags or a file that cannot be read.
int bench_parse_main(std::span<const std::string_view> args);

}  // namespace shardring::tools
