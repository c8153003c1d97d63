// ws/mask.cc: see mask.h.
#include "ws/mask.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace shardring::ws {
namespace {

// The key rotated so that byte 0 applies to payload offset `offset`,
// repeated to fill 8 bytes in memory order.
inline uint64_t key_word(MaskKey key, size_t offset) noexcept {
  uint8_t k[8];
  for (size_t i = 0; i < 8; ++i) {
    k[i] = std::to_integer<uint8_t>(key[(offset + i) & 3]);
  }
  uint64_t w;
  std::memcpy(&w, k, 8);
  return w;
}

}  // namespace

void mask_copy(std::byte* dst, const std::byte* src, size_t n, MaskKey key,
               size_t offset) noexcept {
  const uint64_t kw = key_word(key, offset);
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i kv = _mm_set1_epi64x(static_cast<long long>(kw));
  for (; i + 64 <= n; i += 64) {
    const auto* s = reinterpret_cast<const __m128i*>(src + i);
    auto* d = reinterpret_cast<__m128i*>(dst + i);
    const __m128i a = _mm_loadu_si128(s);
    const __m128i b = _mm_loadu_si128(s + 1);
    const __m128i c = _mm_loadu_si128(s + 2);
    const __m128i e = _mm_loadu_si128(s + 3);
    _mm_storeu_si128(d, _mm_xor_si128(a, kv));
    _mm_storeu_si128(d + 1, _mm_xor_si128(b, kv));
    _mm_storeu_si128(d + 2, _mm_xor_si128(c, kv));
    _mm_storeu_si128(d + 3, _mm_xor_si128(e, kv));
  }
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_xor_si128(a, kv));
  }
#endif
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, src + i, 8);
    w ^= kw;
    std::memcpy(dst + i, &w, 8);
  }
  // i is a multiple of 4 here, so the key phase is still `offset`.
  for (; i < n; ++i) dst[i] = src[i] ^ key[(offset + i) & 3];
}

void mask(std::span<std::byte> data, MaskKey key, size_t offset) noexcept {
  mask_copy(data.data(), data.data(), data.size(), key, offset);
}

}  // namespace shardring::ws
