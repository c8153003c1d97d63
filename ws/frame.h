// ws/frame.h: RFC 6455 framing vocabulary shared by the decoder and the
// encoder: roles, opcodes, message kinds and the layer's named limits.
// Stage: ws. Constants only: any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/padding.h"

namespace shardring::ws {

// Which end of the connection we are. A client masks what it sends and
// refuses masked frames; a server does the opposite (RFC 6455 5.1).
enum class Role : uint8_t { kClient, kServer };

// Frame opcodes (RFC 6455 5.2). 0x3-0x7 and 0xB-0xF are reserved.
enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

constexpr bool is_control(Opcode op) noexcept { return (static_cast<uint8_t>(op) & 0x8) != 0; }

// What a decoded message is. Fragments are joined: kText and kBinary are
// whole messages.
enum class MessageKind : uint8_t { kText, kBinary, kPing, kPong, kClose };

// Readable bytes kept after every message the decoder assembles, so the JSON
// parser can read wide past the end: the one padding constant (base/).
inline constexpr size_t kPadding = base::kPadding;

// Default largest message (all fragments together) a decoder accepts;
// larger ones fail with Errc::kMessageTooBig (close 1009). Discord's largest
// GUILD_CREATE payloads are several MB. Configurable per decoder.
inline constexpr size_t kMaxMessageBytes = size_t{16} << 20;

// Control frames carry at most 125 payload bytes (RFC 6455 5.5).
inline constexpr size_t kMaxControlPayload = 125;

// Longest frame header: 2 + 8 (64-bit length) + 4 (masking key).
inline constexpr size_t kMaxFrameHeader = 14;

// A decoder keeps its assembly buffer between messages up to this capacity
// (a typical dispatch, which a fast stream splits across reads now and
// then); a larger one is freed once its message has been handed out. Large
// messages come once per connection or rarely (READY lists every guild of
// the shard, ~100 KiB at 2,500 guilds; GUILD_CREATE): kept, the buffer
// would stay with every shard for the connection's life, and allocating per
// such message costs far less than parsing it. At 16 KiB, 2,000 shards at 20
// events/s each held 15 KiB more per shard than at 4 KiB, with no CPU saved.
inline constexpr size_t kRetainedBufferBytes = size_t{4} << 10;

// Bytes a frame header takes for a payload of `n` bytes.
constexpr size_t frame_header_size(uint64_t n, bool masked) noexcept {
  return (n < 126 ? 2 : n <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
}

}  // namespace shardring::ws
