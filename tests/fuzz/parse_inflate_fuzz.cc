// tests/fuzz/parse_inflate_fuzz.cc: the zlib-stream and zstd-stream
// inflaters. Input: one mode byte, then records of [1-byte length][bytes].
//   mode & 1: zlib-stream, else zstd-stream.
//   mode & 2: differential: each record is a payload, compressed by our
//             Deflater and inflated back on one stream: must match exactly.
//   else:     hostile: each record is a raw WebSocket message.
// Invariants: no crash, no leak; a payload fits kMaxInflatedBytes and has
// kPadding bytes after it inside the buffer; once an error is returned the
// stream keeps refusing until reset(), and after reset() a good stream works.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parse/inflate.h"

using namespace shardring::parse;

namespace {
std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
void check(InflateErrc e, std::string_view payload, const InflateBuffer& out) {
  if (e != InflateErrc::kOk) return;
  if (payload.size() > kMaxInflatedBytes) std::abort();
  if (payload.data() != out.data() || out.size() < payload.size() + kPadding) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Compression c = (data[0] & 1) ? Compression::kZlibStream : Compression::kZstdStream;
  const bool differential = (data[0] & 2) != 0;
  std::vector<std::string_view> records;
  for (size_t i = 1; i < size;) {
    const size_t n = std::min<size_t>(data[i], size - i - 1);
    records.emplace_back(reinterpret_cast<const char*>(data + i + 1), n);
    i += 1 + n;
  }
  Inflater inf(c);
  InflateBuffer out;
  std::string_view payload;
  if (differential) {
    Deflater def(c, 1);
    for (std::string_view p : records) {
      if (p.empty()) continue;  // no gateway payload is empty
      std::string msg;
      if (!def.compress(p, msg)) std::abort();
      const InflateErrc e = inf.inflate(as_bytes(msg), out, &payload);
      if (e != InflateErrc::kOk || payload != p) std::abort();
      check(e, payload, out);
    }
    return 0;
  }
  bool broken = false;
  for (std::string_view m : records) {
    const InflateErrc e = inf.inflate(as_bytes(m), out, &payload);
    if (broken && e != InflateErrc::kCorrupt) std::abort();
    check(e, payload, out);
    if (e != InflateErrc::kOk && e != InflateErrc::kNeedMore) broken = true;
  }
  inf.reset();
  Deflater def(c, 1);
  std::string msg;
  if (!def.compress("{\"op\":11}", msg)) std::abort();
  if (inf.inflate(as_bytes(msg), out, &payload) != InflateErrc::kOk || payload != "{\"op\":11}") {
    std::abort();
  }
  return 0;
}
