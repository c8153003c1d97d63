// tests/fuzz/redis_reply_fuzz.cc: the RESP reply reader on whatever a
// server (or something posing as one) sends. Invariants: no crash, no
// allocation beyond the limits; the bytes read whole give the same replies
// as the same bytes fed in two pieces at any split.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "redis/resp.h"

using namespace shardring::redis;

namespace {

std::vector<std::string> ReadAll(std::string_view a, std::string_view b, bool* failed) {
  ReplyReader rd;
  std::vector<std::string> out;
  Reply r;
  *failed = false;
  for (std::string_view part : {a, b}) {
    rd.feed(part);
    for (;;) {
      auto res = rd.next(&r);
      if (res == ReplyReader::Result::kReply) {
        out.push_back(r.debug_string());
        continue;
      }
      if (res == ReplyReader::Result::kProtocolError) *failed = true;
      break;
    }
    if (*failed) break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  bool failed_whole = false, failed_split = false;
  auto whole = ReadAll(in, {}, &failed_whole);
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  auto split = ReadAll(in.substr(0, cut), in.substr(cut), &failed_split);
  // Replies before a protocol error may differ only in how many were read
  // before the failure was seen; without one they must be identical.
  if (!failed_whole && !failed_split && whole != split) abort();
  if (failed_whole != failed_split) {
    // The split read sees an error only from bytes the whole read saw too.
    if (!failed_whole) abort();
  }
  return 0;
}
