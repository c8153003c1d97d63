// tests/fuzz/parse_gateway_bot_fuzz.cc: parse_gateway_bot over arbitrary
// bodies. Invariants: no crash; a success has a URL, at least one shard and
// a max_concurrency of at least 1 (the identify buckets divide by it); a
// failure naming a field names one of the documented ones.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "parse/envelope.h"

using namespace shardring::parse;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  GatewayBot bot;
  std::string_view field;
  const Errc e = parse_gateway_bot(size ? body : std::string_view(), bot, &field);
  if (e == Errc::kOk) {
    if (bot.url.empty() || bot.shards == 0 || bot.max_concurrency == 0) {
      std::abort();
    }
  } else if (e == Errc::kMissingField || e == Errc::kBadField) {
    if (field != "url" && field != "shards" && !field.starts_with("session_start_limit")) {
      std::abort();
    }
  }
  return 0;
}
