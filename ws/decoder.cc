// ws/decoder.cc: see decoder.h.
#include "ws/decoder.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>

namespace shardring::ws {
namespace {

// Header bytes implied by the second header byte: 2, plus the extended
// length, plus the masking key.
constexpr size_t header_size(uint8_t b1) noexcept {
  const uint8_t len7 = b1 & 0x7F;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
}

// Larger limits would overflow the size arithmetic; no memory is that big.
constexpr size_t kLimitCap = size_t{1} << 62;

}  // namespace

Decoder::Decoder(Role role, DecoderOptions options) noexcept
    : max_message_(std::min(options.max_message_bytes, kLimitCap)),
      role_(role),
      allowed_rsv_(options.allowed_rsv & 0x70),
      check_utf8_(options.check_text_utf8) {}

void Decoder::feed(std::span<std::byte> bytes, size_t slack) noexcept {
  // Feeding over unconsumed bytes would lose them: a bug in the caller.
  assert(in_ == in_end_ || done_ != Errc::kOk);
  in_ = bytes.data();
  in_end_ = in_ + bytes.size();
  slack_ = slack;
}

void Decoder::release_memory() noexcept {
  if (buffering_) return;  // a message is being assembled
  buf_.reset();
  cap_ = 0;
  msg_size_ = 0;
  reset_buffer_ = false;
}

Errc Decoder::check_first_bytes(uint8_t b0, uint8_t b1) noexcept {
  const bool fin = (b0 & 0x80) != 0;
  switch (b0 & 0x0F) {
    case 0x0:  // RFC 6455 5.4: continues the open message
      if (!open_message_) return fail(Errc::kUnexpectedContinuation);
      break;
    case 0x1:
    case 0x2:  // a new message may not start inside another
      if (open_message_) return fail(Errc::kExpectedContinuation);
      break;
    case 0x8:
    case 0x9:
    case 0xA:  // RFC 6455 5.5: never fragmented, at most 125 bytes
      if (!fin || (b1 & 0x7F) > kMaxControlPayload) {
        return fail(Errc::kBadControlFrame);
      }
      break;
    default:
      return fail(Errc::kBadOpcode);
  }
  if ((b0 & 0x70 & ~allowed_rsv_) != 0) return fail(Errc::kReservedBits);
  const bool masked = (b1 & 0x80) != 0;
  if (role_ == Role::kClient && masked) return fail(Errc::kMaskedFrame);
  if (role_ == Role::kServer && !masked) return fail(Errc::kUnmaskedFrame);
  return Errc::kOk;
}

Errc Decoder::start_frame(const uint8_t* h) noexcept {
  fin_ = (h[0] & 0x80) != 0;
  rsv_ = h[0] & 0x70;
  op_ = static_cast<Opcode>(h[0] & 0x0F);
  masked_ = (h[1] & 0x80) != 0;
  uint64_t len = h[1] & 0x7F;
  const uint8_t* p = h + 2;
  if (len == 126) {
    len = uint64_t{p[0]} << 8 | p[1];
    p += 2;
    if (len < 126) return fail(Errc::kBadLength);
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = len << 8 | p[i];
    p += 8;
    if ((len >> 63) != 0 || len <= 0xFFFF) return fail(Errc::kBadLength);
  }
  if (masked_) std::memcpy(key_.data(), p, 4);
  frame_len_ = len;
  got_ = 0;
  if (!is_control(op_)) {
    if (op_ != Opcode::kContinuation) {  // first frame of a message
      msg_text_ = op_ == Opcode::kText;
      msg_rsv_ = rsv_;
      utf8_.reset();
    }
    if (len > max_message_ - msg_size_) return fail(Errc::kMessageTooBig);
    open_message_ = !fin_;
  }
  in_frame_ = true;
  return Errc::kOk;
}

Errc Decoder::read_header() noexcept {
  if (hdr_have_ == 0 && in_end_ - in_ >= 2) {  // usual case: all in input
    const auto* p = reinterpret_cast<const uint8_t*>(in_);
    if (Errc e = check_first_bytes(p[0], p[1]); e != Errc::kOk) return e;
    const size_t need = header_size(p[1]);
    if (static_cast<size_t>(in_end_ - in_) >= need) {
      in_ += need;
      return start_frame(p);
    }
  }
  // The header is split across reads: gather it (at most 14 bytes).
  while (in_ < in_end_) {
    hdr_[hdr_have_++] = std::to_integer<uint8_t>(*in_++);
    if (hdr_have_ < 2) continue;
    if (hdr_have_ == 2) {
      if (Errc e = check_first_bytes(hdr_[0], hdr_[1]); e != Errc::kOk) {
        return e;
      }
    }
    if (hdr_have_ == header_size(hdr_[1])) {
      hdr_have_ = 0;
      return start_frame(hdr_.data());
    }
  }
  return Errc::kNeedMore;
}

Errc Decoder::ensure_capacity(size_t need) noexcept {
  if (need <= cap_) return Errc::kOk;
  const size_t cap =
      std::min(std::max({need, cap_ * 2, size_t{1024}}), std::max(need, max_message_ + kPadding));
  auto* p = new (std::nothrow) std::byte[cap];
  if (p == nullptr) return fail(Errc::kNoMemory);
  if (msg_size_ > 0) std::memcpy(p, buf_.get(), msg_size_);
  buf_.reset(p);
  cap_ = cap;
  return Errc::kOk;
}

Errc Decoder::deliver_control(std::span<std::byte> payload, bool in_place, bool padded,
                              Message& out) noexcept {
  out = Message{};
  out.payload = payload;
  out.in_place = in_place;
  out.padded = padded;
  out.rsv = rsv_;
  switch (op_) {
    case Opcode::kPing:
      out.kind = MessageKind::kPing;
      return Errc::kOk;
    case Opcode::kPong:
      out.kind = MessageKind::kPong;
      return Errc::kOk;
    default:
      break;
  }
  // Close (RFC 6455 5.5.1): empty, or a 2-byte code and a UTF-8 reason.
  out.kind = MessageKind::kClose;
  if (payload.size() == 1) return fail(Errc::kBadClosePayload);
  if (payload.empty()) {
    out.close_code = CloseCode::kNoStatusReceived;
  } else {
    out.close_code = static_cast<uint16_t>(std::to_integer<uint16_t>(payload[0]) << 8 |
                                           std::to_integer<uint16_t>(payload[1]));
    if (!is_valid_close_code(out.close_code)) {
      return fail(Errc::kBadCloseCode);
    }
    const auto reason = payload.subspan(2);
    if (!is_valid_utf8(reason)) return fail(Errc::kInvalidUtf8);
    out.close_reason = {reinterpret_cast<const char*>(reason.data()), reason.size()};
  }
  done_ = Errc::kClosed;  // returned by every later next()
  return Errc::kOk;
}

Errc Decoder::deliver_buffer(Message& out) noexcept {
  std::memset(buf_.get() + msg_size_, 0, kPadding);
  out = Message{};
  out.kind = msg_text_ ? MessageKind::kText : MessageKind::kBinary;
  out.payload = {buf_.get(), msg_size_};
  out.padded = true;
  out.in_place = false;
  out.rsv = msg_rsv_;
  buffering_ = false;
  reset_buffer_ = true;
  return Errc::kOk;
}

Errc Decoder::next(Message& out) noexcept {
  if (done_ != Errc::kOk) return done_;
  if (reset_buffer_) {  // the previous message's view into buf_ ends here
    reset_buffer_ = false;
    msg_size_ = 0;
    if (cap_ > kRetainedBufferBytes) {
      buf_.reset();
      cap_ = 0;
    }
  }
  for (;;) {
    if (!in_frame_) {
      if (Errc e = read_header(); e != Errc::kOk) return e;
    }
    const size_t avail = static_cast<size_t>(in_end_ - in_);

    if (is_control(op_)) {
      if (got_ == 0 && avail >= frame_len_) {  // whole in the input
        const std::span<std::byte> p(in_, frame_len_);
        in_ += frame_len_;
        in_frame_ = false;
        if (masked_) mask(p, key_);
        return deliver_control(p, /*in_place=*/true, padded_after(p.data() + p.size()), out);
      }
      const size_t take = std::min<uint64_t>(avail, frame_len_ - got_);
      if (take > 0) {
        if (!ctrl_) {  // the first control frame split across reads
          ctrl_.reset(new (std::nothrow) ControlBuffer);
          if (!ctrl_) return fail(Errc::kNoMemory);
        }
        if (masked_) {
          mask_copy(ctrl_->data() + got_, in_, take, key_, got_);
        } else {
          std::memcpy(ctrl_->data() + got_, in_, take);
        }
      }
      got_ += take;
      in_ += take;
      if (got_ < frame_len_) return Errc::kNeedMore;
      in_frame_ = false;
      assert(ctrl_);  // got_ > 0: a frame with nothing buffered went in place
      return deliver_control({ctrl_->data(), frame_len_}, /*in_place=*/false,
                             /*padded=*/true, out);
    }

    // A whole single-frame message inside the input: return it in place.
    if (fin_ && op_ != Opcode::kContinuation && got_ == 0 && avail >= frame_len_) {
      const std::span<std::byte> p(in_, frame_len_);
      in_ += frame_len_;
      in_frame_ = false;
      if (masked_) mask(p, key_);
      if (msg_text_ && check_utf8_ && !is_valid_utf8(p)) return fail(Errc::kInvalidUtf8);
      out = Message{};
      out.kind = msg_text_ ? MessageKind::kText : MessageKind::kBinary;
      out.payload = p;
      out.padded = padded_after(p.data() + p.size());
      out.in_place = true;
      out.rsv = msg_rsv_;
      return Errc::kOk;
    }

    // Otherwise assemble into buf_, validating UTF-8 as bytes arrive so a
    // bad text message fails fast (RFC 6455 8.1).
    if (got_ == 0) {
      if (Errc e = ensure_capacity(msg_size_ + frame_len_ + kPadding); e != Errc::kOk) {
        return e;
      }
      buffering_ = true;
    }
    const size_t take = std::min<uint64_t>(avail, frame_len_ - got_);
    if (take > 0) {
      std::byte* dst = buf_.get() + msg_size_ + got_;
      if (masked_) {
        mask_copy(dst, in_, take, key_, got_);
      } else {
        std::memcpy(dst, in_, take);
      }
      if (msg_text_ && check_utf8_ && !utf8_.feed({dst, take})) {
        return fail(Errc::kInvalidUtf8);
      }
      got_ += take;
      in_ += take;
    }
    if (got_ < frame_len_) return Errc::kNeedMore;
    in_frame_ = false;
    msg_size_ += frame_len_;
    if (!fin_) continue;
    if (msg_text_ && check_utf8_ && !utf8_.complete()) return fail(Errc::kInvalidUtf8);
    return deliver_buffer(out);
  }
}

std::string_view describe(Errc e) noexcept {
  switch (e) {
    case Errc::kOk:
      return "ok";
    case Errc::kNeedMore:
      return "need more bytes";
    case Errc::kClosed:
      return "closed by peer";
    case Errc::kReservedBits:
      return "reserved bits set";
    case Errc::kBadOpcode:
      return "reserved opcode";
    case Errc::kBadControlFrame:
      return "fragmented or oversize control frame";
    case Errc::kMaskedFrame:
      return "masked frame from server";
    case Errc::kUnmaskedFrame:
      return "unmasked frame from client";
    case Errc::kBadLength:
      return "non-minimal or oversize length";
    case Errc::kUnexpectedContinuation:
      return "continuation without a message";
    case Errc::kExpectedContinuation:
      return "new message inside a fragmented one";
    case Errc::kBadClosePayload:
      return "one-byte close payload";
    case Errc::kBadCloseCode:
      return "invalid close code";
    case Errc::kInvalidUtf8:
      return "invalid UTF-8";
    case Errc::kMessageTooBig:
      return "message too big";
    case Errc::kNoMemory:
      return "out of memory";
    case Errc::kHeaderTooLarge:
      return "handshake header too large";
    case Errc::kMalformed:
      return "malformed HTTP head";
    case Errc::kNotSwitching:
      return "status is not 101";
    case Errc::kMissingUpgrade:
      return "no Upgrade: websocket";
    case Errc::kMissingConnection:
      return "no Connection: Upgrade";
    case Errc::kBadAccept:
      return "wrong Sec-WebSocket-Accept";
    case Errc::kUnrequestedExtension:
      return "extension not requested";
    case Errc::kUnrequestedProtocol:
      return "subprotocol not requested";
    case Errc::kNotUpgrade:
      return "HTTP request without upgrade";
    case Errc::kBadMethod:
      return "upgrade with a method other than GET";
    case Errc::kMissingHost:
      return "no Host header";
    case Errc::kBadKey:
      return "bad Sec-WebSocket-Key";
    case Errc::kBadVersion:
      return "Sec-WebSocket-Version is not 13";
  }
  return "unknown";
}

}  // namespace shardring::ws
