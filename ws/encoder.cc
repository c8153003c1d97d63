// ws/encoder.cc: see encoder.h.
#include "ws/encoder.h"

#include <cstring>

#include "ws/decoder.h"
#include "ws/utf8.h"

namespace shardring::ws {
namespace {

std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace

size_t Encoder::write_frame(std::byte* dst, Opcode op, bool fin, std::span<const std::byte> payload,
                            MaskKey key, uint8_t rsv) const noexcept {
  const bool masked = role_ == Role::kClient;
  const uint64_t n = payload.size();
  std::byte* p = dst;
  *p++ = std::byte((fin ? 0x80 : 0) | (rsv & 0x70) | static_cast<uint8_t>(op));
  const std::byte mask_bit{static_cast<uint8_t>(masked ? 0x80 : 0)};
  if (n < 126) {
    *p++ = mask_bit | std::byte(n);
  } else if (n <= 0xFFFF) {
    *p++ = mask_bit | std::byte{126};
    *p++ = std::byte(n >> 8);
    *p++ = std::byte(n);
  } else {
    *p++ = mask_bit | std::byte{127};
    for (int i = 7; i >= 0; --i) *p++ = std::byte(n >> (8 * i));
  }
  if (masked) {
    std::memcpy(p, key.data(), 4);
    p += 4;
    mask_copy(p, payload.data(), n, key);
  } else if (n > 0) {
    std::memcpy(p, payload.data(), n);
  }
  return static_cast<size_t>(p - dst) + n;
}

Errc Encoder::append(std::string& out, Opcode op, bool fin, std::span<const std::byte> payload,
                     MaskKey key) noexcept {
  if (close_sent_) return Errc::kClosed;
  if (is_control(op) && payload.size() > kMaxControlPayload) {
    return Errc::kBadControlFrame;
  }
  const size_t at = out.size();
  out.resize(at + frame_size(payload.size()));
  write_frame(reinterpret_cast<std::byte*>(out.data() + at), op, fin, payload, key);
  return Errc::kOk;
}

Errc Encoder::text(std::string& out, std::string_view payload, MaskKey key) noexcept {
  return append(out, Opcode::kText, true, as_bytes(payload), key);
}

Errc Encoder::binary(std::string& out, std::span<const std::byte> payload, MaskKey key) noexcept {
  return append(out, Opcode::kBinary, true, payload, key);
}

Errc Encoder::ping(std::string& out, std::span<const std::byte> payload, MaskKey key) noexcept {
  return append(out, Opcode::kPing, true, payload, key);
}

Errc Encoder::pong(std::string& out, std::span<const std::byte> payload, MaskKey key) noexcept {
  return append(out, Opcode::kPong, true, payload, key);
}

Errc Encoder::fragment(std::string& out, Opcode op, bool fin, std::span<const std::byte> payload,
                       MaskKey key) noexcept {
  if (is_control(op)) return Errc::kBadControlFrame;
  return append(out, op, fin, payload, key);
}

Errc Encoder::close(std::string& out, uint16_t code, std::string_view reason,
                    MaskKey key) noexcept {
  if (close_sent_) return Errc::kClosed;
  std::byte body[kMaxControlPayload];
  size_t n = 0;
  if (code == CloseCode::kNoStatusReceived) {
    if (!reason.empty()) return Errc::kBadCloseCode;  // a reason needs a code
  } else {
    if (!is_valid_close_code(code)) return Errc::kBadCloseCode;
    if (reason.size() > kMaxControlPayload - 2) return Errc::kBadControlFrame;
    if (!is_valid_utf8(reason)) return Errc::kInvalidUtf8;
    body[0] = std::byte(code >> 8);
    body[1] = std::byte(code);
    if (!reason.empty()) std::memcpy(body + 2, reason.data(), reason.size());
    n = 2 + reason.size();
  }
  const Errc e = append(out, Opcode::kClose, true, {body, n}, key);
  if (e == Errc::kOk) close_sent_ = true;
  return e;
}

Errc Encoder::reply(std::string& out, const Message& received, MaskKey key) noexcept {
  switch (received.kind) {
    case MessageKind::kPing:
      return pong(out, received.payload, key);
    case MessageKind::kClose:
      if (close_sent_) return Errc::kOk;  // theirs answers ours: done
      return close(out, received.close_code, {}, key);
    default:
      return Errc::kOk;
  }
}

}  // namespace shardring::ws
