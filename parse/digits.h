// parse/digits.h: decimal integers, snowflakes and JSON number syntax as every
// envelope path reads them (internal to parse/: canonical.cc, full_check.cc and
// envelope.cc share it so they give the same answers). Sans-I/O; no allocation.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace shardring::parse::detail {

// Eight ASCII digits at p as a number, or -1 when one is not a digit (SWAR:
// one load, two checks, three multiply-adds).
inline int64_t eight_digits(const char* p) noexcept {
  uint64_t x;
  std::memcpy(&x, p, 8);
  // Each byte 0x30..0x39: high nibble 3, and adding 6 does not carry out.
  if ((x & 0xF0F0F0F0F0F0F0F0ull) != 0x3030303030303030ull ||
      ((x + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) != 0x3030303030303030ull) {
    return -1;
  }
  x -= 0x3030303030303030ull;                         // digits, first at the low byte
  x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFull;    // pairs
  x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFull;  // quads
  x = (x * 10000 + (x >> 32)) & 0xFFFFFFFFull;        // eight
  return static_cast<int64_t>(x);
}

// 1-20 decimal digits in [0, 2^64), leading zeros allowed; nullopt for
// anything else.
inline std::optional<uint64_t> decimal_u64(std::string_view digits) noexcept {
  const size_t n = digits.size();
  if (n == 0 || n > 20) return std::nullopt;
  const char* p = digits.data();
  uint64_t v = 0;
  size_t i = 0;
  // Up to 16 digits eight at a time (19 digits cannot overflow).
  for (; i + 8 <= n && i + 8 <= 16; i += 8) {
    const int64_t eight = eight_digits(p + i);
    if (eight < 0) return std::nullopt;
    v = v * 100'000'000 + static_cast<uint64_t>(eight);
  }
  for (; i < n; ++i) {
    const unsigned digit = static_cast<unsigned char>(p[i]) - '0';
    if (digit > 9) return std::nullopt;
    if (i == 19 && v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

// `"123"`: a JSON string of 1-20 decimal digits, no escapes, as a uint64
// (guild_id, channel_id).
inline std::optional<uint64_t> snowflake(std::string_view tok) noexcept {
  if (tok.size() < 3 || tok.front() != '"' || tok.back() != '"') return std::nullopt;
  return decimal_u64(tok.substr(1, tok.size() - 2));
}

// slot = snowflake(tok), written field by field: storing a whole optional
// built on the stack stalls on store forwarding in the hot loops.
inline void set_snowflake(std::optional<uint64_t>& slot, std::string_view tok) noexcept {
  if (const auto v = snowflake(tok)) {
    slot.emplace(*v);
  } else {
    slot.reset();
  }
}

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
inline bool is_json_number(std::string_view s) noexcept {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && is_digit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    const size_t first = ++i;
    while (i < n && is_digit(s[i])) ++i;
    if (i == first) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    const size_t first = i;
    while (i < n && is_digit(s[i])) ++i;
    if (i == first) return false;
  }
  return i == n;
}

}  // namespace shardring::parse::detail
