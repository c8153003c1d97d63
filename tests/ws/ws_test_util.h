// tests/ws/ws_test_util.h: byte-string helpers shared by the ws tests.
// Frames are built here by hand, independently of ws::Encoder, so an encoder
// bug cannot hide a decoder bug.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ws/decoder.h"

namespace shardring::ws::testing_util {

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

inline std::span<std::byte> AsMutableBytes(std::string& s) {
  return std::as_writable_bytes(std::span(s.data(), s.size()));
}

inline std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

struct FrameSpec {
  int opcode = 0x1;
  bool fin = true;
  int rsv = 0;  // 0x70 mask
  bool masked = false;
  uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  int force_length_bytes = 0;  // 0: minimal; 2 or 8: force that form
};

// One frame exactly as RFC 6455 5.2 lays it out.
inline std::string Frame(std::string_view payload, FrameSpec f = {}) {
  std::string out;
  out.push_back(static_cast<char>((f.fin ? 0x80 : 0) | f.rsv | f.opcode));
  const uint64_t n = payload.size();
  const int mask_bit = f.masked ? 0x80 : 0;
  int form = f.force_length_bytes;
  if (form == 0) form = n < 126 ? 0 : n <= 0xFFFF ? 2 : 8;
  if (form == 0) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (form == 2) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(n >> (8 * i)));
  }
  if (f.masked) {
    out.append(reinterpret_cast<const char*>(f.key), 4);
    for (size_t i = 0; i < payload.size(); ++i) {
      out.push_back(static_cast<char>(payload[i] ^ f.key[i % 4]));
    }
  } else {
    out.append(payload);
  }
  return out;
}

inline std::string Frame(std::string_view payload, int opcode, bool fin, bool masked) {
  FrameSpec f;
  f.opcode = opcode;
  f.fin = fin;
  f.masked = masked;
  return Frame(payload, f);
}

inline std::string CloseFrame(uint16_t code, std::string_view reason, bool masked) {
  std::string body;
  body.push_back(static_cast<char>(code >> 8));
  body.push_back(static_cast<char>(code));
  body.append(reason);
  return Frame(body, 0x8, true, masked);
}

inline std::string ToString(const Message& m) {
  switch (m.kind) {
    case MessageKind::kText:
      return "text:" + std::string(m.text());
    case MessageKind::kBinary:
      return "binary:" + std::string(m.text());
    case MessageKind::kPing:
      return "ping:" + std::string(m.text());
    case MessageKind::kPong:
      return "pong:" + std::string(m.text());
    case MessageKind::kClose:
      return "close:" + std::to_string(m.close_code) + ":" + std::string(m.close_reason);
  }
  return "?";
}

struct Decoded {
  std::vector<std::string> messages;
  Errc last = Errc::kNeedMore;  // what ended the run
};

// Feeds `wire` in pieces ending at each of `cuts` (sorted offsets) and
// collects messages until an error, kClosed, or the end. Each piece is its
// own heap copy, so ASan sees reads past a piece.
inline Decoded DecodePieces(Decoder& dec, std::string_view wire, const std::vector<size_t>& cuts) {
  Decoded d;
  size_t at = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(wire.size());
  for (size_t end : ends) {
    std::vector<std::byte> piece(end - at);
    if (end > at) std::memcpy(piece.data(), wire.data() + at, end - at);
    at = end;
    dec.feed(piece);
    Message m;
    while ((d.last = dec.next(m)) == Errc::kOk) d.messages.push_back(ToString(m));
    if (d.last != Errc::kNeedMore) return d;
  }
  return d;
}

inline Decoded DecodeWhole(Decoder& dec, std::string_view wire) {
  return DecodePieces(dec, wire, {});
}

inline Decoded DecodeByteByByte(Decoder& dec, std::string_view wire) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < wire.size(); ++i) cuts.push_back(i);
  return DecodePieces(dec, wire, cuts);
}

}  // namespace shardring::ws::testing_util
