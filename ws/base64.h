// ws/base64.h: base64 (RFC 4648 section 4, standard alphabet, '=' padding),
// for Sec-WebSocket-Key and Sec-WebSocket-Accept. Stage: ws handshake.
// Pure functions: any thread.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace shardring::ws {

// Characters base64 needs for `n` input bytes (with padding).
constexpr size_t base64_encoded_size(size_t n) noexcept { return (n + 2) / 3 * 4; }

// Appends the padded encoding of `in` to `out`.
void base64_encode(std::span<const std::byte> in, std::string& out);
// Writes exactly base64_encoded_size(in.size()) characters to `out`.
void base64_encode(std::span<const std::byte> in, char* out) noexcept;

// Decodes canonical padded base64 into `out` (which must hold at least
// in.size() / 4 * 3 bytes) and sets `written`. False for any character
// outside the alphabet, a length that is not a multiple of 4, misplaced
// '=' or non-zero bits under the padding.
[[nodiscard]] bool base64_decode(std::string_view in, std::byte* out, size_t& written) noexcept;

}  // namespace shardring::ws
