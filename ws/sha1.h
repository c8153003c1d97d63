// ws/sha1.h: SHA-1 (RFC 3174), used only to compute Sec-WebSocket-Accept
// (RFC 6455 4.2.2); not for anything that needs collision resistance.
// Stage: ws handshake. Pure functions and a value type: any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace shardring::ws {

using Sha1Digest = std::array<std::byte, 20>;

// Incremental SHA-1: update() any number of times, then final() once.
class Sha1 {
 public:
  Sha1() noexcept;
  void update(std::span<const std::byte> data) noexcept;
  void update(std::string_view data) noexcept;
  [[nodiscard]] Sha1Digest final() noexcept;

 private:
  void block(const uint8_t* p) noexcept;

  uint32_t h_[5];
  uint64_t length_ = 0;  // bytes hashed so far
  uint8_t buf_[64];
  size_t buffered_ = 0;
};

// SHA-1 of `data` in one call.
[[nodiscard]] Sha1Digest sha1(std::string_view data) noexcept;

}  // namespace shardring::ws
