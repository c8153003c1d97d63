// tests/ws/fuzz_decoder.h: the ws::Decoder fuzz body shared by the client-
// and server-role targets: hostile bytes split into reads the fuzzer chooses.
// Invariants: no crash or overread; messages within the limit; in-place views
// inside the read that held them; assembled messages followed by kPadding
// readable bytes; text (when the decoder checks it) and close reasons valid
// UTF-8; close codes valid; a
// fatal result stays fatal.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/ws/fuzz_chunks.h"
#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/utf8.h"

#define CHECK(cond)            \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

namespace shardring::ws::fuzz {

// One fuzz input through a decoder of `role`; aborts on a broken invariant.
inline int RunDecoder(Role role, const uint8_t* data, size_t size) {
  const fuzz::Plan plan = fuzz::MakePlan(data, size);
  DecoderOptions opts;
  // Small limits now and then, so 1009 paths are reached.
  opts.max_message_bytes = (plan.flags & 1) ? 64 + (plan.flags >> 2) : 1 << 20;
  opts.allowed_rsv = (plan.flags & 2) ? 0x40 : 0;
  // Now and then the owner checks text UTF-8 itself (the engine's way).
  opts.check_text_utf8 = (plan.flags & 0x3) != 0x3;
  Decoder dec(role, opts);
  Encoder enc(role);
  std::string replies;
  Errc terminal = Errc::kOk;
  fuzz::ForEachPiece(plan, [&](std::span<std::byte> piece) {
    dec.feed(piece);
    Message m;
    Errc e;
    while ((e = dec.next(m)) == Errc::kOk) {
      // The limit covers data messages; control frames have their own 125.
      const bool data = m.kind == MessageKind::kText || m.kind == MessageKind::kBinary;
      CHECK(m.payload.size() <= (data ? opts.max_message_bytes : kMaxControlPayload));
      if (m.in_place) {
        CHECK(m.payload.data() >= piece.data() &&
              m.payload.data() + m.payload.size() <= piece.data() + piece.size());
      } else {
        // The promised padding must be readable (ASan checks the reads).
        volatile std::byte sink{};
        for (size_t i = 0; i < kPadding; ++i) {
          sink = sink ^ m.payload.data()[m.payload.size() + i];
        }
      }
      CHECK((m.rsv & ~opts.allowed_rsv) == 0);
      switch (m.kind) {
        case MessageKind::kText:
          CHECK(!opts.check_text_utf8 || is_valid_utf8(m.payload));
          break;
        case MessageKind::kPing:
        case MessageKind::kPong:
          break;
        case MessageKind::kClose:
          CHECK(m.close_code == CloseCode::kNoStatusReceived || is_valid_close_code(m.close_code));
          CHECK(is_valid_utf8(m.close_reason));
          break;
        case MessageKind::kBinary:
          break;
      }
      replies.clear();
      const Errc r =
          enc.reply(replies, m, MaskKey{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}});
      CHECK(r == Errc::kOk || r == Errc::kClosed);
    }
    if (e != Errc::kNeedMore) {
      CHECK(is_fatal(e));
      CHECK(dec.next(m) == e);  // sticky
      CHECK(dec.status() == e);
      terminal = e;
      return false;
    }
    return true;
  });
  if (terminal != Errc::kOk) {
    Message m;
    CHECK(dec.next(m) == terminal);
  }
  return 0;
}

}  // namespace shardring::ws::fuzz
