// ws/base64.cc: see base64.h.
#include "ws/base64.h"

#include <array>
#include <cstdint>

namespace shardring::ws {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0-63 for alphabet characters, 0xFF for everything else.
constexpr std::array<uint8_t, 256> kDecode = [] {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = 0xFF;
  for (uint8_t i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = i;
  return t;
}();

}  // namespace

void base64_encode(std::span<const std::byte> in, char* out) noexcept {
  size_t i = 0;
  const size_t n = in.size();
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = uint32_t{std::to_integer<uint8_t>(in[i])} << 16 |
                       uint32_t{std::to_integer<uint8_t>(in[i + 1])} << 8 |
                       std::to_integer<uint8_t>(in[i + 2]);
    *out++ = kAlphabet[v >> 18];
    *out++ = kAlphabet[(v >> 12) & 63];
    *out++ = kAlphabet[(v >> 6) & 63];
    *out++ = kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{std::to_integer<uint8_t>(in[i])} << 16;
    *out++ = kAlphabet[v >> 18];
    *out++ = kAlphabet[(v >> 12) & 63];
    *out++ = '=';
    *out++ = '=';
  } else if (n - i == 2) {
    const uint32_t v = uint32_t{std::to_integer<uint8_t>(in[i])} << 16 |
                       uint32_t{std::to_integer<uint8_t>(in[i + 1])} << 8;
    *out++ = kAlphabet[v >> 18];
    *out++ = kAlphabet[(v >> 12) & 63];
    *out++ = kAlphabet[(v >> 6) & 63];
    *out++ = '=';
  }
}

void base64_encode(std::span<const std::byte> in, std::string& out) {
  const size_t at = out.size();
  out.resize(at + base64_encoded_size(in.size()));
  base64_encode(in, out.data() + at);
}

bool base64_decode(std::string_view in, std::byte* out, size_t& written) noexcept {
  written = 0;
  if (in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const uint8_t a = kDecode[static_cast<uint8_t>(in[i])];
    const uint8_t b = kDecode[static_cast<uint8_t>(in[i + 1])];
    if ((a | b) == 0xFF) return false;
    const char c3 = in[i + 2], c4 = in[i + 3];
    if (last && c4 == '=') {
      if (c3 == '=') {  // one byte; the low 4 bits of b must be zero
        if ((b & 0x0F) != 0) return false;
        out[written++] = std::byte(a << 2 | b >> 4);
        return true;
      }
      const uint8_t c = kDecode[static_cast<uint8_t>(c3)];
      if (c == 0xFF || (c & 0x03) != 0) return false;  // two bytes
      out[written++] = std::byte(a << 2 | b >> 4);
      out[written++] = std::byte((b & 0x0F) << 4 | c >> 2);
      return true;
    }
    const uint8_t c = kDecode[static_cast<uint8_t>(c3)];
    const uint8_t d = kDecode[static_cast<uint8_t>(c4)];
    if ((c | d) == 0xFF) return false;
    out[written++] = std::byte(a << 2 | b >> 4);
    out[written++] = std::byte((b & 0x0F) << 4 | c >> 2);
    out[written++] = std::byte((c & 0x03) << 6 | d);
  }
  return true;
}

}  // namespace shardring::ws
