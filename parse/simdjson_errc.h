// parse/simdjson_errc.h: internal to parse/. simdjson's error codes as ours,
// trailing JSON whitespace trimmed, strings consumed; shared by envelope.cc and
// readers.cc. Pure functions, any thread.
#pragma once

#include <simdjson.h>

#include <string_view>

#include "parse/envelope.h"

namespace shardring::parse::internal {

namespace od = simdjson::ondemand;

inline Errc from_simdjson(simdjson::error_code e) noexcept {
  switch (e) {
    case simdjson::SUCCESS:
      return Errc::kOk;
    case simdjson::CAPACITY:
      return Errc::kTooLarge;
    case simdjson::MEMALLOC:
      return Errc::kNoMemory;
    case simdjson::EMPTY:
      return Errc::kEmpty;
    case simdjson::UTF8_ERROR:
      return Errc::kBadUtf8;
    case simdjson::DEPTH_ERROR:
      return Errc::kTooDeep;
    default:
      return Errc::kBadJson;
  }
}

inline std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && is_json_space(s.back())) s.remove_suffix(1);
  return s;
}

// Moves past a string value we read through its raw token. Every string we
// do not decode must be consumed this way: simdjson 3.0.1 skips an
// unconsumed string that is followed by ':' as if it were a key, swallowing
// the colon, so `{"a":"b":"c"}` would otherwise pass.
inline void consume_if_string(simdjson::ondemand::value& v, std::string_view tok) noexcept {
  if (!tok.empty() && tok[0] == '"') {
    od::raw_json_string raw;
    (void)v.get_raw_json_string().get(raw);
  }
}

}  // namespace shardring::parse::internal
