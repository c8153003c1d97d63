// ws/sha1.cc: see sha1.h. Straight from RFC 3174 section 6.1.
#include "ws/sha1.h"

#include <cstring>

namespace shardring::ws {
namespace {

constexpr uint32_t rotl(uint32_t v, int n) noexcept { return v << n | v >> (32 - n); }

}  // namespace

Sha1::Sha1() noexcept : h_{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0} {}

void Sha1::block(const uint8_t* p) noexcept {
  uint32_t w[80];
  for (int t = 0; t < 16; ++t) {
    w[t] = uint32_t{p[4 * t]} << 24 | uint32_t{p[4 * t + 1]} << 16 | uint32_t{p[4 * t + 2]} << 8 |
           p[4 * t + 3];
  }
  for (int t = 16; t < 80; ++t) {
    w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
  for (int t = 0; t < 80; ++t) {
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDC;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6;
    }
    const uint32_t temp = rotl(a, 5) + f + e + w[t] + k;
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = temp;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
}

void Sha1::update(std::span<const std::byte> data) noexcept {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  length_ += n;
  if (buffered_ > 0) {
    const size_t take = n < 64 - buffered_ ? n : 64 - buffered_;
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    n -= take;
    if (buffered_ < 64) return;
    block(buf_);
    buffered_ = 0;
  }
  for (; n >= 64; n -= 64, p += 64) block(p);
  if (n > 0) std::memcpy(buf_, p, n);
  buffered_ = n;
}

void Sha1::update(std::string_view data) noexcept {
  update(std::as_bytes(std::span(data.data(), data.size())));
}

Sha1Digest Sha1::final() noexcept {
  const uint64_t bits = length_ * 8;
  uint8_t pad[72] = {0x80};
  const size_t pad_len = buffered_ < 56 ? 56 - buffered_ : 120 - buffered_;  // to 56 mod 64
  for (int i = 0; i < 8; ++i) {
    pad[pad_len + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  }
  update(std::as_bytes(std::span(pad, pad_len + 8)));
  Sha1Digest out;
  for (int i = 0; i < 5; ++i) {
    out[4 * i] = std::byte(h_[i] >> 24);
    out[4 * i + 1] = std::byte(h_[i] >> 16);
    out[4 * i + 2] = std::byte(h_[i] >> 8);
    out[4 * i + 3] = std::byte(h_[i]);
  }
  return out;
}

Sha1Digest sha1(std::string_view data) noexcept {
  Sha1 s;
  s.update(data);
  return s.final();
}

}  // namespace shardring::ws
