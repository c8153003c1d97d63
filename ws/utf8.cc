// ws/utf8.cc: see utf8.h. A 9-state DFA over 12 byte classes, entered only
// where the ASCII fast path finds a byte with the top bit set.
#include "ws/utf8.h"

#include <array>
#include <cstring>

namespace shardring::ws {
namespace {

// Byte classes.
//  0: 00-7F  1: 80-8F  2: 90-9F  3: A0-BF  4: C0-C1, F5-FF  5: C2-DF
//  6: E0     7: E1-EC, EE-EF     8: ED     9: F0  10: F1-F3  11: F4
constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> c{};
  for (int b = 0; b < 256; ++b) {
    uint8_t v;
    if (b < 0x80)
      v = 0;
    else if (b < 0x90)
      v = 1;
    else if (b < 0xA0)
      v = 2;
    else if (b < 0xC0)
      v = 3;
    else if (b < 0xC2)
      v = 4;
    else if (b < 0xE0)
      v = 5;
    else if (b == 0xE0)
      v = 6;
    else if (b == 0xED)
      v = 8;
    else if (b < 0xF0)
      v = 7;
    else if (b == 0xF0)
      v = 9;
    else if (b < 0xF4)
      v = 10;
    else if (b == 0xF4)
      v = 11;
    else
      v = 4;
    c[b] = v;
  }
  return c;
}();

// States: 0 accept, 1 reject, 2 need 1, 3 need 2, 4 need 3,
// 5 after E0 (A0-BF), 6 after ED (80-9F), 7 after F0 (90-BF), 8 after F4
// (80-8F).
constexpr uint8_t kAccept = 0, kReject = 1;
constexpr uint8_t R = kReject;
constexpr uint8_t kNext[9][12] = {
    //  0  1  2  3  4  5  6  7  8  9 10 11
    {0, R, R, R, R, 2, 5, 3, 6, 7, 4, 8},  // accept
    {R, R, R, R, R, R, R, R, R, R, R, R},  // reject
    {R, 0, 0, 0, R, R, R, R, R, R, R, R},  // need 1
    {R, 2, 2, 2, R, R, R, R, R, R, R, R},  // need 2
    {R, 3, 3, 3, R, R, R, R, R, R, R, R},  // need 3
    {R, R, R, 2, R, R, R, R, R, R, R, R},  // E0
    {R, 2, 2, R, R, R, R, R, R, R, R, R},  // ED
    {R, R, 3, 3, R, R, R, R, R, R, R, R},  // F0
    {R, 3, R, R, R, R, R, R, R, R, R, R},  // F4
};

constexpr uint64_t kHighBits = 0x8080808080808080ull;

// Runs the DFA from `state` over [p, end); returns the final state.
inline uint8_t run(uint8_t state, const uint8_t* p, const uint8_t* end) noexcept {
  while (p < end) {
    if (state == kAccept) {
      while (end - p >= 16) {
        uint64_t a, b;
        std::memcpy(&a, p, 8);
        std::memcpy(&b, p + 8, 8);
        if (((a | b) & kHighBits) != 0) break;
        p += 16;
      }
      while (p < end && *p < 0x80) ++p;
      if (p == end) break;
    }
    state = kNext[state][kClass[*p++]];
    if (state == kReject) return kReject;
  }
  return state;
}

}  // namespace

bool Utf8Validator::feed(std::span<const std::byte> bytes) noexcept {
  if (state_ == kReject) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  state_ = run(state_, p, p + bytes.size());
  return state_ != kReject;
}

bool is_valid_utf8(std::span<const std::byte> bytes) noexcept {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  return run(kAccept, p, p + bytes.size()) == kAccept;
}

bool is_valid_utf8(std::string_view s) noexcept {
  return is_valid_utf8(std::as_bytes(std::span(s.data(), s.size())));
}

}  // namespace shardring::ws
