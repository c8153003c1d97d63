// tests/fuzz/ws_handshake_client_fuzz.cc: ws::ClientHandshake over hostile bytes
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
  static const char kNonce[] = "the sample nonce";
  ClientHandshake hs(
      std::span<const std::byte, 16>(reinterpret_cast<const std::byte*>(kNonce), 16));
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
  if (result == Errc::kOk) {
    CHECK(hs.status() == 101);
    CHECK(hs.head().header("Sec-WebSocket-Accept") == hs.expected_accept());
  }
  if (result != Errc::kNeedMore) {
    size_t consumed = 1;
    CHECK(hs.feed(std::span<const std::byte>(), consumed) == result);
    CHECK(consumed == 0);
  }
  return 0;
}
