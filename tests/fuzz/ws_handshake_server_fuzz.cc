// tests/fuzz/ws_handshake_server_fuzz.cc: ws::ServerHandshake over hostile bytes
// in reads the fuzzer chooses. Invariants: no crash or overread; consumed
// never exceeds the piece; a result other than kNeedMore is final; the head
// never exceeds kMaxHandshakeBytes; a success is internally consistent.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tests/ws/fuzz_chunks.h"
#include "ws/base64.h"
#include "ws/handshake.h"

using namespace shardring::ws;

#define CHECK(cond)            \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::Plan plan = fuzz::MakePlan(data, size);
  ServerHandshake hs;
  Errc result = Errc::kNeedMore;
  size_t head_bytes = 0;
  fuzz::ForEachPiece(plan, [&](std::span<std::byte> piece) {
    size_t consumed = 0;
    result = hs.feed(piece, consumed);
    CHECK(consumed <= piece.size());
    head_bytes += consumed;
    if (result == Errc::kNeedMore) {
      CHECK(consumed == piece.size());
      return true;
    }
    return false;
  });
  CHECK(head_bytes <= kMaxHandshakeBytes);
  std::string out;
  if (result == Errc::kOk) {
    CHECK(hs.method() == "GET");
    CHECK(!hs.path().empty() && hs.path().front() == '/');
    std::byte nonce[18];
    size_t n = 0;
    CHECK(base64_decode(hs.key(), nonce, n) && n == 16);
    hs.write_accept(out);
    CHECK(out.size() > 0);
  } else if (result == Errc::kNotUpgrade) {
    CHECK(!hs.method().empty());
    for (const Header& h : hs.head().headers()) {
      CHECK(!h.name.empty());
      (void)hs.header(h.name);
    }
  } else if (result != Errc::kNeedMore) {
    ServerHandshake::write_error(out, result);
    CHECK(out.size() > 0);
  }
  if (result != Errc::kNeedMore) {
    size_t consumed = 1;
    CHECK(hs.feed(std::span<const std::byte>(), consumed) == result);
    CHECK(consumed == 0);
  }
  return 0;
}
