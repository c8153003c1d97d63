// bench/peers/floor_wire.h: the floor client's few wire helpers (the
// upgrade key's randomness and base64, RFC 6455 frame headers), kept apart
// from its loop. Part of bench/peers; not a shardring component.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace floor_wire {

inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::string base64(const unsigned char* p, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= uint32_t{p[i + 1]} << 8;
    if (i + 2 < n) v |= p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// A frame header at h (avail bytes): its size, or 0 when incomplete.
inline size_t parse_header(const unsigned char* h, size_t avail, unsigned* opcode, uint64_t* len) {
  if (avail < 2) return 0;
  const bool masked = (h[1] & 0x80) != 0;
  const unsigned len7 = h[1] & 0x7f;
  size_t size = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
  if (avail < size) return 0;
  *opcode = h[0] & 0x0f;
  if (len7 < 126) {
    *len = len7;
  } else if (len7 == 126) {
    *len = (uint64_t{h[2]} << 8) | h[3];
  } else {
    uint64_t v = 0;
    for (int i = 2; i < 10; ++i) v = (v << 8) | h[i];
    *len = v;
  }
  return size;
}

// A client's text frame of `payload` (below 64 KiB), masked with `mask`.
inline std::string masked_text_frame(std::string_view payload, uint32_t mask) {
  const size_t n = payload.size();
  std::string out;
  out.reserve(n + 8);
  out.push_back(static_cast<char>(0x81));
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  }
  char key[4];
  std::memcpy(key, &mask, 4);
  out.append(key, 4);
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
  return out;
}

}  // namespace floor_wire
