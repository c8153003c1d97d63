// ws/handshake.h: the RFC 6455 opening handshake (section 4), both roles:
// the client's upgrade request and response check, the server's request
// parser (which also recognises plain HTTP requests, so one port can serve
// both) and its responses. Stage: ws, before the first frame. Sans-I/O:
// bytes in (any pieces), bytes out. One object per connection, used only by
// the thread that owns the connection.
//
// Bytes after the end of the head (the first frames may share a read with
// it) are never taken: feed() reports how many bytes of the piece were
// head, and the rest belong to the ws::Decoder.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ws/errc.h"

namespace shardring::ws {

// Largest HTTP head (request or response line plus headers plus the blank
// line) either side accepts; beyond it: Errc::kHeaderTooLarge.
inline constexpr size_t kMaxHandshakeBytes = size_t{16} << 10;

// RFC 6455 1.3: appended to the key before hashing.
inline constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// One header field. Views into the parsed head's storage (or the caller's
// strings when passed in).
struct Header {
  std::string_view name;
  std::string_view value;
};

// Sec-WebSocket-Accept for `key`: base64(SHA-1(key + kWebSocketGuid)),
// always 28 characters.
[[nodiscard]] std::string accept_value(std::string_view key);

// ASCII case-insensitive equality, for header names and tokens.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

// The value of `name` in an application/x-www-form-urlencoded style query
// ("v=10&encoding=json"), not percent-decoded; nullopt if absent. A name
// without '=' has an empty value.
[[nodiscard]] std::optional<std::string_view> query_param(std::string_view query,
                                                          std::string_view name) noexcept;

// Incremental reader of one HTTP/1.x message head (RFC 9112): start line,
// header fields, blank line. Lines end in CRLF; obsolete line folding,
// whitespace before a colon, and control characters in values are refused
// (kMalformed).
class HttpHead {
 public:
  // kNeedMore: all of `bytes` was taken, the head is not complete.
  // kOk: the head is complete and well formed; `consumed` bytes of `bytes`
  // were head, the rest was not looked at. kHeaderTooLarge, kMalformed:
  // fatal. The result is sticky; later calls take nothing.
  [[nodiscard]] Errc feed(std::span<const std::byte> bytes, size_t& consumed) noexcept;

  // Valid after kOk, while this object lives.
  [[nodiscard]] std::string_view start_line() const noexcept { return start_line_; }
  [[nodiscard]] std::span<const Header> headers() const noexcept { return headers_; }
  // The first field named `name` (case-insensitive), trimmed of whitespace.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
  // How many fields are named `name`.
  [[nodiscard]] size_t count(std::string_view name) const noexcept;
  // Whether any field named `name` lists `token` in its comma-separated
  // value (case-insensitive), as Connection and Upgrade do.
  [[nodiscard]] bool has_token(std::string_view name, std::string_view token) const noexcept;

 private:
  Errc parse() noexcept;

  std::string buf_;
  std::string_view start_line_;
  std::vector<Header> headers_;
  Errc done_ = Errc::kNeedMore;
};

// Client side. Usage: write_request(), send it; feed() response bytes until
// kOk; then hand bytes.subspan(consumed) to a Decoder(Role::kClient).
class ClientHandshake {
 public:
  // `nonce`: 16 random bytes the caller drew (RFC 6455 4.1: a fresh
  // unpredictable nonce per connection). Sec-WebSocket-Key is its base64.
  explicit ClientHandshake(std::span<const std::byte, 16> nonce) noexcept;

  // Appends the upgrade request: GET `target` (path and query, e.g.
  // "/?v=10&encoding=json"), Host, Upgrade, Connection, Sec-WebSocket-Key,
  // Sec-WebSocket-Version: 13, then `extra` fields (User-Agent, ...).
  // kMalformed (nothing appended) when a field would break the request:
  // CR, LF or NUL anywhere, a target not starting with '/', an empty host
  // or header name.
  [[nodiscard]] Errc write_request(std::string& out, std::string_view host, std::string_view target,
                                   std::span<const Header> extra = {}) const;

  // kNeedMore: keep feeding. kOk: switched to WebSocket; `consumed` bytes of
  // this piece were the response head, the rest are frames. Errors
  // (sticky): kHeaderTooLarge, kMalformed, kNotSwitching (status() keeps
  // the code), kMissingUpgrade, kMissingConnection, kBadAccept,
  // kUnrequestedExtension, kUnrequestedProtocol.
  [[nodiscard]] Errc feed(std::span<const std::byte> bytes, size_t& consumed) noexcept;

  [[nodiscard]] std::string_view key() const noexcept { return {key_.data(), key_.size()}; }
  [[nodiscard]] std::string_view expected_accept() const noexcept {
    return {accept_.data(), accept_.size()};
  }
  // The response status code, once the status line was parsed (else 0).
  [[nodiscard]] uint16_t status() const noexcept { return status_; }
  // The response head, for headers of a refusal (valid after the head
  // completed, whatever the result).
  [[nodiscard]] const HttpHead& head() const noexcept { return head_; }

 private:
  Errc check() noexcept;

  std::array<char, 24> key_{};
  std::array<char, 28> accept_{};
  HttpHead head_;
  uint16_t status_ = 0;
  Errc done_ = Errc::kNeedMore;
};

// Server side. feed() request bytes until it stops returning kNeedMore:
//  - kOk: a valid WebSocket upgrade (RFC 6455 4.2.1). Answer with
//    write_accept(), then hand bytes.subspan(consumed) to a
//    Decoder(Role::kServer).
//  - kNotUpgrade: a well-formed HTTP/1.x request without an Upgrade:
//    websocket field. Serve it as plain HTTP using method(), path(),
//    query() and header() (check the method: any method lands here).
//  - anything else: answer write_error(e) and close. kBadVersion gets 426
//    with Sec-WebSocket-Version: 13 (RFC 6455 4.2.2).
class ServerHandshake {
 public:
  [[nodiscard]] Errc feed(std::span<const std::byte> bytes, size_t& consumed) noexcept;

  // Valid after the request line was parsed (kOk, kNotUpgrade and the
  // upgrade-specific errors), while this object lives.
  [[nodiscard]] std::string_view method() const noexcept { return method_; }
  [[nodiscard]] std::string_view target() const noexcept { return target_; }
  [[nodiscard]] std::string_view path() const noexcept { return path_; }
  // After '?', without it; empty when there is none.
  [[nodiscard]] std::string_view query() const noexcept { return query_; }
  [[nodiscard]] std::string_view version() const noexcept { return version_; }
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
    return head_.header(name);
  }
  [[nodiscard]] const HttpHead& head() const noexcept { return head_; }
  // Sec-WebSocket-Key as sent (after kOk).
  [[nodiscard]] std::string_view key() const noexcept { return key_; }

  // Appends "101 Switching Protocols" with Upgrade, Connection and
  // Sec-WebSocket-Accept, plus `extra` fields. Call after kOk.
  void write_accept(std::string& out, std::span<const Header> extra = {}) const;
  // Appends the refusal for a failed feed(): 400, 405 (with Allow: GET),
  // 426 (with Sec-WebSocket-Version: 13) or 431; see http_status().
  static void write_error(std::string& out, Errc e);

 private:
  Errc check() noexcept;

  HttpHead head_;
  std::string_view method_, target_, path_, query_, version_, key_;
  Errc done_ = Errc::kNeedMore;
};

// Appends a complete HTTP/1.1 response with Content-Length: status line,
// `headers`, a blank line and `body`. For plain HTTP answers on the same
// port (e.g. GET /api/v10/gateway/bot).
void write_http_response(std::string& out, uint16_t status, std::string_view reason,
                         std::span<const Header> headers, std::string_view body);

}  // namespace shardring::ws
