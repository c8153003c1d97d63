// ws/errc.h: the error values and close codes of the RFC 6455 layer.
// Stage: ws (between tls::Session and parse::Envelope). Plain constants and
// constexpr functions: any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace shardring::ws {

// Close status codes (RFC 6455 7.4.1). 1005, 1006 and 1015 are reserved for
// reporting and never appear on the wire.
struct CloseCode {
  static constexpr uint16_t kNormal = 1000;
  static constexpr uint16_t kGoingAway = 1001;
  static constexpr uint16_t kProtocolError = 1002;
  static constexpr uint16_t kUnsupportedData = 1003;
  static constexpr uint16_t kNoStatusReceived = 1005;  // reporting only
  static constexpr uint16_t kAbnormalClosure = 1006;   // reporting only
  static constexpr uint16_t kInvalidPayload = 1007;
  static constexpr uint16_t kPolicyViolation = 1008;
  static constexpr uint16_t kMessageTooBig = 1009;
  static constexpr uint16_t kMandatoryExtension = 1010;
  static constexpr uint16_t kInternalError = 1011;
  static constexpr uint16_t kTlsHandshake = 1015;  // reporting only
};

// Whether `code` may be sent in, or accepted from, a Close frame (RFC 6455
// 7.4.1 and 7.4.2, IANA registry): 1000-1003 and 1007-1011 are defined;
// 1004, 1005, 1006 and 1015 are reserved; below 1000 and 1016-2999 are
// unassigned protocol codes; 3000-4999 belong to libraries and applications
// (Discord's 4000-4014 among them); 5000 and up do not exist. 1012-1014 were
// registered with IANA after RFC 6455 and are refused here too, as the
// Autobahn test suite (case 7.9) expects.
constexpr bool is_valid_close_code(uint16_t code) noexcept {
  if (code >= 3000) return code <= 4999;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
}

// Everything the ws layer reports. kOk and kNeedMore are flow control.
// kClosed ends the stream without a fault. Every later value is a failure:
// for frame errors, the connection is closed with close_code(e); handshake
// errors happen before there is a WebSocket to close (the server answers
// with http_status(e), the client drops the connection).
enum class Errc : uint8_t {
  kOk,
  kNeedMore,
  kClosed,  // the peer's Close frame was delivered; nothing follows it

  // Frames (RFC 6455 5.x). All of them close the connection.
  kReservedBits,            // RSV1-3 set, no extension negotiated  -> 1002
  kBadOpcode,               // opcode 3-7 or 11-15                  -> 1002
  kBadControlFrame,         // fragmented, or payload over 125      -> 1002
  kMaskedFrame,             // a server never masks (5.1)           -> 1002
  kUnmaskedFrame,           // a client always masks (5.1)          -> 1002
  kBadLength,               // non-minimal or 64-bit top bit set    -> 1002
  kUnexpectedContinuation,  // continuation with no message open    -> 1002
  kExpectedContinuation,    // text/binary while a message is open  -> 1002
  kBadClosePayload,         // Close payload of exactly one byte    -> 1002
  kBadCloseCode,            // Close code not allowed on the wire   -> 1002
  kInvalidUtf8,             // text or close reason not UTF-8       -> 1007
  kMessageTooBig,           // over the decoder's message limit     -> 1009
  kNoMemory,                // could not grow the message buffer    -> 1011

  // Opening handshake (RFC 6455 4.x).
  kHeaderTooLarge,        // no end of headers within kMaxHandshakeBytes
  kMalformed,             // not a well-formed HTTP/1.1 message head
  kNotSwitching,          // client: status is not 101 (status() keeps it)
  kMissingUpgrade,        // no "Upgrade: websocket"
  kMissingConnection,     // no "upgrade" token in Connection
  kBadAccept,             // client: Sec-WebSocket-Accept missing or wrong
  kUnrequestedExtension,  // client: server chose an extension we never offered
  kUnrequestedProtocol,   // client: server chose a subprotocol we never offered
  kNotUpgrade,            // server: a valid HTTP request, not an upgrade
  kBadMethod,             // server: an upgrade that is not a GET
  kMissingHost,           // server: no Host header
  kBadKey,                // server: Sec-WebSocket-Key missing or not 16 bytes
  kBadVersion,            // server: Sec-WebSocket-Version is not 13 -> 426
};

// True for every value that ends the connection (or the handshake).
constexpr bool is_fatal(Errc e) noexcept { return e > Errc::kNeedMore; }
// True for failures, as opposed to flow control and the orderly kClosed.
constexpr bool is_error(Errc e) noexcept { return e > Errc::kClosed; }

// The close code to send when the decoder fails with `e` (RFC 6455 7.4.1).
constexpr uint16_t close_code(Errc e) noexcept {
  switch (e) {
    case Errc::kOk:
    case Errc::kNeedMore:
    case Errc::kClosed:
      return CloseCode::kNormal;
    case Errc::kInvalidUtf8:
      return CloseCode::kInvalidPayload;
    case Errc::kMessageTooBig:
      return CloseCode::kMessageTooBig;
    case Errc::kNoMemory:
      return CloseCode::kInternalError;
    default:
      return CloseCode::kProtocolError;
  }
}

// The HTTP status a server answers a failed upgrade request with: 426 (with
// Sec-WebSocket-Version: 13) for a version we do not speak (RFC 6455 4.2.2),
// 431 for an oversize head, 405 for an upgrade that is not a GET, else 400.
constexpr uint16_t http_status(Errc e) noexcept {
  switch (e) {
    case Errc::kBadVersion:
      return 426;
    case Errc::kHeaderTooLarge:
      return 431;
    case Errc::kBadMethod:
      return 405;
    default:
      return 400;
  }
}

// A short constant name for logs: "kBadOpcode" -> "bad opcode".
std::string_view describe(Errc e) noexcept;

}  // namespace shardring::ws
