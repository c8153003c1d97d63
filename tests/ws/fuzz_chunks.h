// tests/ws/fuzz_chunks.h: lets a fuzz input choose how the stream is split
// into reads. Layout: byte 0 = flags; byte 1 = n (0-15 used); the next n
// bytes are read sizes (each 1-256, cycled); the rest is the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace shardring::ws::fuzz {

struct Plan {
  uint8_t flags = 0;
  std::vector<size_t> sizes;  // never empty
  std::span<const uint8_t> stream;
};

inline Plan MakePlan(const uint8_t* data, size_t size) {
  Plan p;
  size_t at = 0;
  if (size > 0) p.flags = data[at++];
  size_t n = 0;
  if (at < size) n = data[at++] % 16;
  for (size_t i = 0; i < n && at < size; ++i) p.sizes.push_back(data[at++] + 1u);
  if (p.sizes.empty()) p.sizes.push_back(size_t{1} << 30);  // one read
  p.stream = std::span<const uint8_t>(data + at, size - at);
  return p;
}

// Calls fn(piece) for consecutive pieces of the stream, each a fresh heap
// copy of exactly its size (so ASan sees any read past a piece).
template <typename Fn>
void ForEachPiece(const Plan& p, Fn&& fn) {
  size_t at = 0, k = 0;
  while (at < p.stream.size()) {
    const size_t len = std::min(p.sizes[k++ % p.sizes.size()], p.stream.size() - at);
    std::vector<std::byte> piece(len);
    for (size_t i = 0; i < len; ++i) piece[i] = std::byte(p.stream[at + i]);
    at += len;
    if (!fn(std::span<std::byte>(piece))) return;
  }
}

}  // namespace shardring::ws::fuzz
