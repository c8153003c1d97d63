// ws/handshake.cc: see handshake.h.
#include "ws/handshake.h"

#include <algorithm>

#include "ws/base64.h"
#include "ws/sha1.h"

namespace shardring::ws {
namespace {

constexpr char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

constexpr bool is_tchar(unsigned char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Control characters other than horizontal tab, and DEL.
constexpr bool is_ctl(unsigned char c) noexcept { return (c < 0x20 && c != '\t') || c == 0x7F; }

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool has_crlf_or_nul(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string accept_value(std::string_view key) {
  Sha1 h;
  h.update(key);
  h.update(kWebSocketGuid);
  const Sha1Digest d = h.final();
  std::string out;
  base64_encode(d, out);
  return out;
}

std::optional<std::string_view> query_param(std::string_view query,
                                            std::string_view name) noexcept {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// ---- HttpHead ---------------------------------------------------------------

Errc HttpHead::feed(std::span<const std::byte> bytes, size_t& consumed) noexcept {
  consumed = 0;
  if (done_ != Errc::kNeedMore) return done_;
  const size_t old = buf_.size();
  const size_t take = std::min(bytes.size(), kMaxHandshakeBytes - old);
  if (take > 0) buf_.append(reinterpret_cast<const char*>(bytes.data()), take);
  // The terminator may straddle the previous piece: look 3 bytes back.
  const size_t end = buf_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
  if (end == std::string::npos) {
    consumed = take;
    if (buf_.size() >= kMaxHandshakeBytes) {
      buf_.clear();
      buf_.shrink_to_fit();
      return done_ = Errc::kHeaderTooLarge;
    }
    return Errc::kNeedMore;
  }
  const size_t head_len = end + 4;
  consumed = head_len - old;
  buf_.resize(head_len);
  return done_ = parse();
}

Errc HttpHead::parse() noexcept {
  const std::string_view all(buf_);
  size_t pos = all.find("\r\n");
  start_line_ = all.substr(0, pos);
  if (start_line_.empty()) return Errc::kMalformed;
  for (char c : start_line_) {
    if (is_ctl(static_cast<unsigned char>(c))) return Errc::kMalformed;
  }
  pos += 2;
  for (;;) {
    const size_t eol = all.find("\r\n", pos);
    const std::string_view line = all.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;  // the blank line that ends the head
    // Obsolete line folding (RFC 9112 5.2) is refused.
    if (is_ows(line.front())) return Errc::kMalformed;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Errc::kMalformed;
    const std::string_view name = line.substr(0, colon);
    // No whitespace between name and colon (RFC 9112 5.1).
    if (!is_token(name)) return Errc::kMalformed;
    const std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      if (is_ctl(static_cast<unsigned char>(c))) return Errc::kMalformed;
    }
    headers_.push_back({name, value});
  }
  return Errc::kOk;
}

std::optional<std::string_view> HttpHead::header(std::string_view name) const noexcept {
  for (const Header& h : headers_) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

size_t HttpHead::count(std::string_view name) const noexcept {
  return static_cast<size_t>(std::count_if(headers_.begin(), headers_.end(),
                                           [&](const Header& h) { return iequals(h.name, name); }));
}

bool HttpHead::has_token(std::string_view name, std::string_view token) const noexcept {
  for (const Header& h : headers_) {
    if (!iequals(h.name, name)) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const size_t comma = v.find(',');
      if (iequals(trim(v.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

// ---- ClientHandshake --------------------------------------------------------

ClientHandshake::ClientHandshake(std::span<const std::byte, 16> nonce) noexcept {
  base64_encode(nonce, key_.data());
  // Computed here so feed() only compares.
  Sha1 h;
  h.update(std::string_view(key_.data(), key_.size()));
  h.update(kWebSocketGuid);
  base64_encode(h.final(), accept_.data());
}

Errc ClientHandshake::write_request(std::string& out, std::string_view host,
                                    std::string_view target, std::span<const Header> extra) const {
  if (host.empty() || has_crlf_or_nul(host) || target.empty() || target.front() != '/' ||
      has_crlf_or_nul(target) || target.find(' ') != std::string_view::npos) {
    return Errc::kMalformed;
  }
  for (const Header& h : extra) {
    if (!is_token(h.name) || has_crlf_or_nul(h.value)) return Errc::kMalformed;
  }
  out.append("GET ");
  out.append(target);
  out.append(" HTTP/1.1\r\n");
  append_header(out, "Host", host);
  append_header(out, "Upgrade", "websocket");
  append_header(out, "Connection", "Upgrade");
  append_header(out, "Sec-WebSocket-Key", key());
  append_header(out, "Sec-WebSocket-Version", "13");
  for (const Header& h : extra) append_header(out, h.name, h.value);
  out.append("\r\n");
  return Errc::kOk;
}

Errc ClientHandshake::feed(std::span<const std::byte> bytes, size_t& consumed) noexcept {
  consumed = 0;
  if (done_ != Errc::kNeedMore) return done_;
  const Errc e = head_.feed(bytes, consumed);
  if (e == Errc::kNeedMore) return e;
  return done_ = (e == Errc::kOk ? check() : e);
}

Errc ClientHandshake::check() noexcept {
  // Status line (RFC 9112 4): HTTP/1.x SP 3DIGIT [SP reason].
  const std::string_view line = head_.start_line();
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    return Errc::kMalformed;
  }
  uint16_t status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return Errc::kMalformed;
    status = static_cast<uint16_t>(status * 10 + (line[i] - '0'));
  }
  status_ = status;
  // RFC 6455 4.1, the client's checks of the server's handshake, in order.
  if (status_ != 101) return Errc::kNotSwitching;
  if (!head_.has_token("Upgrade", "websocket")) return Errc::kMissingUpgrade;
  if (!head_.has_token("Connection", "upgrade")) {
    return Errc::kMissingConnection;
  }
  if (head_.count("Sec-WebSocket-Accept") != 1 ||
      *head_.header("Sec-WebSocket-Accept") != expected_accept()) {
    return Errc::kBadAccept;
  }
  // We offer no extension and no subprotocol; a server naming one fails.
  if (head_.header("Sec-WebSocket-Extensions")) {
    return Errc::kUnrequestedExtension;
  }
  if (head_.header("Sec-WebSocket-Protocol")) {
    return Errc::kUnrequestedProtocol;
  }
  return Errc::kOk;
}

// ---- ServerHandshake --------------------------------------------------------

Errc ServerHandshake::feed(std::span<const std::byte> bytes, size_t& consumed) noexcept {
  consumed = 0;
  if (done_ != Errc::kNeedMore) return done_;
  const Errc e = head_.feed(bytes, consumed);
  if (e == Errc::kNeedMore) return e;
  return done_ = (e == Errc::kOk ? check() : e);
}

Errc ServerHandshake::check() noexcept {
  // Request line (RFC 9112 3): method SP request-target SP HTTP-version.
  const std::string_view line = head_.start_line();
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Errc::kMalformed;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Errc::kMalformed;
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target.front() != '/' ||
      (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return Errc::kMalformed;
  }
  for (char c : target) {
    if (static_cast<unsigned char>(c) >= 0x7F) return Errc::kMalformed;
  }
  method_ = method;
  target_ = target;
  version_ = version;
  const size_t q = target.find('?');
  path_ = target.substr(0, q);
  query_ = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  const size_t hosts = head_.count("Host");
  if (hosts > 1) return Errc::kMalformed;  // RFC 9112 3.2: 400
  if (!head_.has_token("Upgrade", "websocket")) {
    if (version_ == "HTTP/1.1" && hosts == 0) return Errc::kMissingHost;
    return Errc::kNotUpgrade;
  }
  // RFC 6455 4.2.1, the server's checks of the client's handshake.
  if (method_ != "GET") return Errc::kBadMethod;
  if (version_ != "HTTP/1.1") return Errc::kMalformed;
  if (hosts == 0) return Errc::kMissingHost;
  if (!head_.has_token("Connection", "upgrade")) {
    return Errc::kMissingConnection;
  }
  if (head_.count("Sec-WebSocket-Version") != 1 || *head_.header("Sec-WebSocket-Version") != "13") {
    return Errc::kBadVersion;
  }
  if (head_.count("Sec-WebSocket-Key") != 1) return Errc::kBadKey;
  const std::string_view key = *head_.header("Sec-WebSocket-Key");
  std::byte nonce[18];
  size_t n = 0;
  if (key.size() != 24 || !base64_decode(key, nonce, n) || n != 16) {
    return Errc::kBadKey;
  }
  key_ = key;
  return Errc::kOk;
}

void ServerHandshake::write_accept(std::string& out, std::span<const Header> extra) const {
  out.append("HTTP/1.1 101 Switching Protocols\r\n");
  append_header(out, "Upgrade", "websocket");
  append_header(out, "Connection", "Upgrade");
  append_header(out, "Sec-WebSocket-Accept", accept_value(key_));
  for (const Header& h : extra) append_header(out, h.name, h.value);
  out.append("\r\n");
}

void ServerHandshake::write_error(std::string& out, Errc e) {
  switch (http_status(e)) {
    case 426: {
      const Header h[] = {{"Sec-WebSocket-Version", "13"}, {"Connection", "close"}};
      write_http_response(out, 426, "Upgrade Required", h, {});
      return;
    }
    case 405: {
      const Header h[] = {{"Allow", "GET"}, {"Connection", "close"}};
      write_http_response(out, 405, "Method Not Allowed", h, {});
      return;
    }
    case 431: {
      const Header h[] = {{"Connection", "close"}};
      write_http_response(out, 431, "Request Header Fields Too Large", h, {});
      return;
    }
    default: {
      const Header h[] = {{"Connection", "close"}};
      write_http_response(out, 400, "Bad Request", h, {});
      return;
    }
  }
}

void write_http_response(std::string& out, uint16_t status, std::string_view reason,
                         std::span<const Header> headers, std::string_view body) {
  out.append("HTTP/1.1 ");
  out.append(std::to_string(status));
  out.push_back(' ');
  out.append(reason);
  out.append("\r\n");
  for (const Header& h : headers) append_header(out, h.name, h.value);
  append_header(out, "Content-Length", std::to_string(body.size()));
  out.append("\r\n");
  out.append(body);
}

}  // namespace shardring::ws
