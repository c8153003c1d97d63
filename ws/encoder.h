// ws/encoder.h: RFC 6455 frame encoder, both roles. Stage: send path,
// between gateway::Session and tls::Session. Sans-I/O: appends frames to a
// caller's buffer; no allocation per frame once that buffer's capacity is
// warm. One encoder per connection, used only by its owning thread.
//
// Client frames are masked with a key the caller draws per frame (RFC 6455
// 5.3 wants it unpredictable: a fresh key from a CSPRNG-seeded generator);
// server frames are never masked and the key argument is ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ws/errc.h"
#include "ws/frame.h"
#include "ws/mask.h"

namespace shardring::ws {

struct Message;

class Encoder {
 public:
  explicit Encoder(Role role) noexcept : role_(role) {}

  // Bytes one frame with `n` payload bytes takes in this role.
  [[nodiscard]] size_t frame_size(size_t n) const noexcept {
    return frame_header_size(n, role_ == Role::kClient) + n;
  }

  // Writes one frame into `dst`, which must hold frame_size(payload.size())
  // bytes; returns the bytes written. No checks: the checked calls below
  // use it. `rsv`: RSV bits (0x70 mask) an extension asks for, else 0.
  size_t write_frame(std::byte* dst, Opcode op, bool fin, std::span<const std::byte> payload,
                     MaskKey key, uint8_t rsv = 0) const noexcept;

  // Each call appends one frame to `out` and returns kOk, or appends
  // nothing and returns: kClosed once a Close was encoded (RFC 6455 5.5.1:
  // nothing follows it), kBadControlFrame for a control payload over 125
  // bytes (or a close reason over 123), kBadCloseCode for a code that may
  // not be sent, kInvalidUtf8 for a reason that is not UTF-8.
  // Text payloads are not re-validated: the caller sends UTF-8.
  [[nodiscard]] Errc text(std::string& out, std::string_view payload, MaskKey key = {}) noexcept;
  [[nodiscard]] Errc binary(std::string& out, std::span<const std::byte> payload,
                            MaskKey key = {}) noexcept;
  [[nodiscard]] Errc ping(std::string& out, std::span<const std::byte> payload,
                          MaskKey key = {}) noexcept;
  [[nodiscard]] Errc pong(std::string& out, std::span<const std::byte> payload,
                          MaskKey key = {}) noexcept;
  // A Close with `code` and `reason`; CloseCode::kNoStatusReceived sends an
  // empty Close (no code). Marks the encoder closed.
  [[nodiscard]] Errc close(std::string& out, uint16_t code, std::string_view reason = {},
                           MaskKey key = {}) noexcept;
  // One frame of a fragmented message: op is kText or kBinary for the first
  // fragment, kContinuation after; `fin` on the last.
  [[nodiscard]] Errc fragment(std::string& out, Opcode op, bool fin,
                              std::span<const std::byte> payload, MaskKey key = {}) noexcept;

  // The answer a received control message needs: a Pong with the Ping's
  // payload (RFC 6455 5.5.2), or, for a Close when we have not sent ours, a
  // Close echoing its status code (5.5.1). Appends nothing for other
  // messages and for a Close that answers ours (handshake complete).
  [[nodiscard]] Errc reply(std::string& out, const Message& received, MaskKey key = {}) noexcept;

  [[nodiscard]] bool close_sent() const noexcept { return close_sent_; }
  [[nodiscard]] Role role() const noexcept { return role_; }

 private:
  Errc append(std::string& out, Opcode op, bool fin, std::span<const std::byte> payload,
              MaskKey key) noexcept;

  Role role_;
  bool close_sent_ = false;
};

}  // namespace shardring::ws
