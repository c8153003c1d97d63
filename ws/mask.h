// ws/mask.h: RFC 6455 5.3 payload masking (XOR with a 4-byte key, the same
// operation masks and unmasks). Stage: ws encoder (client frames) and
// decoder (server role). Pure functions: any thread.
#pragma once

#include <array>
#include <cstddef>
#include <span>

namespace shardring::ws {

// The masking key of one frame, in wire order. Clients must draw a fresh,
// unpredictable key per frame (RFC 6455 5.3, 10.3): the caller supplies it.
using MaskKey = std::array<std::byte, 4>;

// XORs `data` in place with `key`, where data[0] is payload byte number
// `offset` of its frame (so a payload can be masked in pieces: pass the
// count of bytes already masked). 16 bytes a step with SSE2 on x86-64,
// 8 bytes a step elsewhere.
void mask(std::span<std::byte> data, MaskKey key, size_t offset = 0) noexcept;

// dst[i] = src[i] ^ key[(offset + i) % 4] for i < n: copy and mask in one
// pass. `dst` and `src` may be the same pointer but must not otherwise
// overlap.
void mask_copy(std::byte* dst, const std::byte* src, size_t n, MaskKey key,
               size_t offset = 0) noexcept;

}  // namespace shardring::ws
