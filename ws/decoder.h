// ws/decoder.h: the RFC 6455 frame decoder, both roles. Stage: after
// tls::Session (plaintext bytes in), before parse::Envelope (messages out).
// Sans-I/O: no sockets, clocks or threads. One decoder per connection, used
// only by the thread that owns that connection.
//
// Copies. A data frame that is a whole message (FIN set, no fragments open)
// and lies entirely inside the fed buffer comes back as a view into that
// buffer: no copy (a server unmasks it in place, which is why feed() takes
// mutable bytes). A fragmented message, or any frame split across reads, is
// copied once into the decoder's own buffer, which always keeps kPadding
// zeroed bytes after the message. Control frames come back in place when
// whole in the fed buffer, else from a small internal buffer.
//
// Lengths. RFC 6455 5.2 says the minimal number of bytes MUST be used to
// encode the payload length; this decoder enforces it: a 16-bit length
// under 126 or a 64-bit length under 65536 fails with kBadLength (1002), as
// does a 64-bit length with the top bit set.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "ws/errc.h"
#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/utf8.h"

namespace shardring::ws {

struct DecoderOptions {
  // Largest message, all fragments together; above it: kMessageTooBig.
  size_t max_message_bytes = kMaxMessageBytes;
  // RSV bits (0x40 RSV1, 0x20 RSV2, 0x10 RSV3) an extension negotiated in
  // the handshake allows; any other set bit fails with kReservedBits.
  // Discord's zlib-stream and zstd-stream compress inside binary messages
  // and need none.
  uint8_t allowed_rsv = 0;
  // RFC 6455 8.1: a text message that is not UTF-8 fails the connection
  // (kInvalidUtf8, close 1007). false leaves that check to the owner, for
  // one that validates every text message anyway (a JSON parser does) and
  // closes with 1007 itself: the bytes are then checked once, not twice.
  bool check_text_utf8 = true;
};

// One decoded message. Which memory `payload` points into, and for how long
// it stays valid:
//  - in_place: into the buffer last passed to feed(). Valid while the
//    caller keeps those bytes alive and unchanged; the decoder never writes
//    to a message's bytes after returning it.
//  - otherwise: into the decoder. Valid until the next call to next() (or
//    release_memory(), or the decoder's destruction).
struct Message {
  MessageKind kind = MessageKind::kBinary;
  std::span<const std::byte> payload;
  // At least kPadding readable bytes follow payload.end(): always for the
  // decoder's own buffer (zeroed); for in-place messages, when the fed
  // buffer (plus the slack declared to feed()) extends that far past it.
  // When false and the consumer needs padding, it must copy.
  bool padded = false;
  bool in_place = false;
  uint8_t rsv = 0;  // RSV bits of the first frame (only allowed ones)
  // kClose only: the status code (CloseCode::kNoStatusReceived when the
  // frame had no payload) and the reason, already checked as UTF-8. The
  // reason points into the same memory as payload.
  uint16_t close_code = 0;
  std::string_view close_reason;

  std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(payload.data()), payload.size()};
  }
};

class Decoder {
 public:
  explicit Decoder(Role role, DecoderOptions options = {}) noexcept;
  Decoder(Decoder&&) noexcept = default;
  Decoder& operator=(Decoder&&) noexcept = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Hands the decoder the next bytes of the stream; any split works, down to
  // one byte at a time. Call only after next() returned kNeedMore (or
  // before the first next()): by then every earlier byte was consumed, a
  // trailing partial frame copied into the decoder, so the caller may reuse
  // the previous buffer (minus in-place messages it still reads). `slack`:
  // readable bytes the caller guarantees after bytes.end(); only used to
  // decide Message::padded. Server role unmasks payloads inside `bytes`.
  void feed(std::span<std::byte> bytes, size_t slack = 0) noexcept;

  // kOk: `out` holds one message (see Message for lifetimes). kNeedMore: all
  // fed bytes are consumed; feed more. kClosed: the peer's Close was the
  // previous message; the stream is over and later bytes are ignored. Any
  // other value is fatal: close with close_code(e). Fatal results and
  // kClosed are sticky: every later call returns the same value.
  //
  // Pings, pongs and closes are returned like data messages, including
  // between the fragments of a message; the owner answers (Encoder::reply()
  // writes the pong, or the echoing Close).
  [[nodiscard]] Errc next(Message& out) noexcept;

  // The sticky result: kOk while the stream is healthy.
  [[nodiscard]] Errc status() const noexcept { return done_; }
  [[nodiscard]] bool close_received() const noexcept { return done_ == Errc::kClosed; }
  [[nodiscard]] Role role() const noexcept { return role_; }
  // Bytes of the decoder's assembly buffer currently allocated.
  [[nodiscard]] size_t buffer_capacity() const noexcept { return cap_; }
  // Frees the assembly buffer if no message is being assembled in it.
  void release_memory() noexcept;

 private:
  Errc fail(Errc e) noexcept { return done_ = e; }
  Errc read_header() noexcept;
  Errc check_first_bytes(uint8_t b0, uint8_t b1) noexcept;
  Errc start_frame(const uint8_t* h) noexcept;
  Errc ensure_capacity(size_t need) noexcept;
  Errc deliver_control(std::span<std::byte> payload, bool in_place, bool padded,
                       Message& out) noexcept;
  Errc deliver_buffer(Message& out) noexcept;
  bool padded_after(const std::byte* end) const noexcept {
    return static_cast<size_t>(in_end_ - end) + slack_ >= kPadding;
  }

  // Input from the latest feed(): [in_, in_end_) is not yet consumed.
  std::byte* in_ = nullptr;
  std::byte* in_end_ = nullptr;
  size_t slack_ = 0;

  // Assembly buffer for messages not returned in place.
  std::unique_ptr<std::byte[]> buf_;
  size_t cap_ = 0;
  size_t msg_size_ = 0;  // bytes of the current message in buf_

  size_t max_message_;
  uint64_t frame_len_ = 0;  // payload length of the current frame
  uint64_t got_ = 0;        // payload bytes of it consumed so far
  Role role_;
  uint8_t allowed_rsv_;
  bool check_utf8_;
  Errc done_ = Errc::kOk;
  // Current frame (valid while in_frame_).
  bool in_frame_ = false;
  bool fin_ = false;
  bool masked_ = false;
  Opcode op_ = Opcode::kContinuation;
  uint8_t rsv_ = 0;
  MaskKey key_{};
  // Current data message.
  bool open_message_ = false;  // a non-FIN text/binary frame was seen
  bool buffering_ = false;     // the current message is going into buf_
  bool reset_buffer_ = false;  // buf_ was handed out; reset on next()
  bool msg_text_ = false;
  uint8_t msg_rsv_ = 0;
  Utf8Validator utf8_;
  // A header split across reads.
  uint8_t hdr_have_ = 0;
  std::array<uint8_t, kMaxFrameHeader> hdr_{};
  // A control frame split across reads, plus padding: made the first time
  // one is (rare: they are at most 125 bytes), so a connection does not
  // carry it otherwise.
  using ControlBuffer = std::array<std::byte, kMaxControlPayload + kPadding>;
  std::unique_ptr<ControlBuffer> ctrl_;
};

}  // namespace shardring::ws
