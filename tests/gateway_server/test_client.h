// tests/gateway_server/test_client.h: a small blocking client for the
// synthetic gateway's tests: raw sockets, optional TLS (tls::Session in the
// client role, no verification), ws::ClientHandshake/Encoder/Decoder.
// One client per test thread; every read has a deadline so a test fails
// instead of hanging.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "parse/inflate.h"
#include "simdjson.h"
#include "tls/context.h"
#include "tls/session.h"
#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/handshake.h"

namespace shardring::gatewaysrv::gwtest {

using namespace std::chrono_literals;

// One received WebSocket message (copied).
struct Received {
  ws::MessageKind kind = ws::MessageKind::kText;
  std::string text;
  uint16_t close_code = 0;
};

class TestClient {
 public:
  // Connects to 127.0.0.1:port; with `tls_context`, runs a TLS handshake.
  bool connect(uint16_t port, const tls::Context* tls_context = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      return false;
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    port_ = port;
    if (tls_context != nullptr) {
      auto s = tls::Session::client(*tls_context, "127.0.0.1");
      if (!s.ok()) return false;
      tls_ = *std::move(s);
      use_tls_ = true;
      tls::Errc e = tls_.handshake();
      while (true) {
        if (!send_ciphertext()) return false;
        if (e == tls::Errc::kOk) break;
        if (e != tls::Errc::kWantRead) return false;
        std::string raw;
        if (!read_raw(raw, 5s)) return false;
        pending_cipher_ = std::move(raw);
        if (tls_.feed_ciphertext(std::as_bytes(std::span<const char>(
                pending_cipher_.data(), pending_cipher_.size()))) != tls::Errc::kOk) {
          return false;
        }
        e = tls_.handshake();
      }
      // Keep bytes that arrived with the last handshake flight.
      drain_tls_plaintext();
    }
    return true;
  }

  ~TestClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Sends raw bytes (through TLS when on).
  bool write(std::string_view bytes) {
    if (!use_tls_) {
      size_t off = 0;
      while (off < bytes.size()) {
        const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
      }
      return true;
    }
    if (tls_.write_plaintext(std::as_bytes(std::span<const char>(bytes.data(), bytes.size()))) !=
        tls::Errc::kOk) {
      return false;
    }
    return send_ciphertext();
  }

  // Reads plaintext bytes into `plain_` until `pred` holds or the deadline.
  // False on EOF/timeout.
  bool read_more(std::chrono::milliseconds timeout) {
    if (!use_tls_) {
      std::string raw;
      if (!read_raw(raw, timeout)) return false;
      plain_ += raw;
      return true;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const size_t before = plain_.size();
    while (plain_.size() == before) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      std::string raw;
      if (!read_raw(raw, left)) return false;
      pending_cipher_ = std::move(raw);
      if (tls_.feed_ciphertext(std::as_bytes(std::span<const char>(
              pending_cipher_.data(), pending_cipher_.size()))) != tls::Errc::kOk) {
        return false;
      }
      if (!drain_tls_plaintext()) return false;
    }
    return true;
  }

  // An HTTP exchange: sends `request`, reads one response (head + body by
  // Content-Length). Returns the status (0 on failure); fills head/body.
  int http(std::string_view request, std::string* head, std::string* body) {
    if (!write(request)) return 0;
    while (true) {
      const size_t end = plain_.find("\r\n\r\n");
      if (end != std::string::npos) {
        *head = plain_.substr(0, end + 4);
        size_t len = 0;
        const std::string key = "Content-Length: ";
        if (size_t p = head->find(key); p != std::string::npos) {
          len = std::stoul(head->substr(p + key.size()));
        }
        while (plain_.size() < end + 4 + len) {
          if (!read_more(5s)) return 0;
        }
        *body = plain_.substr(end + 4, len);
        plain_.erase(0, end + 4 + len);
        return std::stoi(head->substr(9, 3));
      }
      if (!read_more(5s)) return 0;
    }
  }

  // The WebSocket upgrade to `target`; true on 101. Bytes after the head
  // stay buffered for next().
  bool upgrade(std::string_view target = "/?v=10&encoding=json", int* status = nullptr) {
    std::array<std::byte, 16> nonce;
    for (auto& b : nonce) b = static_cast<std::byte>(rng_());
    hs_.emplace(nonce);
    std::string req;
    const std::string host = "127.0.0.1:" + std::to_string(port_);
    if (hs_->write_request(req, host, target) != ws::Errc::kOk) return false;
    if (!write(req)) return false;
    while (true) {
      size_t consumed = 0;
      const ws::Errc e =
          hs_->feed(std::as_bytes(std::span<const char>(plain_.data(), plain_.size())), consumed);
      if (e == ws::Errc::kNeedMore) {
        plain_.clear();
        if (!read_more(5s)) return false;
        continue;
      }
      if (status) *status = hs_->status();
      plain_.erase(0, consumed);
      if (e != ws::Errc::kOk) return false;
      dec_.emplace(ws::Role::kClient);
      fed_ = false;
      return true;
    }
  }

  bool send_text(std::string_view payload) {
    std::string frame;
    if (enc_.text(frame, payload, key()) != ws::Errc::kOk) return false;
    return write(frame);
  }
  bool send_close(uint16_t code) {
    std::string frame;
    if (enc_.close(frame, code, {}, key()) != ws::Errc::kOk) return false;
    return write(frame);
  }
  bool send_ping(std::string_view payload) {
    std::string frame;
    if (enc_.ping(frame, std::as_bytes(std::span<const char>(payload.data(), payload.size())),
                  key()) != ws::Errc::kOk) {
      return false;
    }
    return write(frame);
  }

  // The next message, or nullopt on timeout/EOF/protocol error.
  std::optional<Received> next(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (fed_) {
        ws::Message m;
        const ws::Errc e = dec_->next(m);
        if (e == ws::Errc::kOk) {
          Received r;
          r.kind = m.kind;
          r.text = std::string(m.text());
          r.close_code = m.close_code;
          return r;
        }
        if (e != ws::Errc::kNeedMore) return std::nullopt;
        fed_ = false;
        feed_buf_.clear();
      }
      if (plain_.empty()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !read_more(left)) return std::nullopt;
      }
      feed_buf_ = std::move(plain_);
      plain_.clear();
      dec_->feed(std::as_writable_bytes(std::span<char>(feed_buf_.data(), feed_buf_.size())));
      fed_ = true;
    }
  }

  // The next text message parsed: op, s, t and the whole document.
  struct Payload {
    int64_t op = -1;
    std::optional<uint64_t> s;
    std::string t;
    std::string raw;
  };
  // Connected with compress=: binary messages are inflated (and text
  // messages refused, as the stream must carry every payload).
  void expect_compression(parse::Compression c) { inflater_.emplace(c); }

  std::optional<Payload> next_payload(std::chrono::milliseconds timeout = 5s) {
    const auto want = inflater_ ? ws::MessageKind::kBinary : ws::MessageKind::kText;
    while (true) {
      auto r = next(timeout);
      if (!r || r->kind != want) {
        last_close_ = r && r->kind == ws::MessageKind::kClose ? r->close_code : 0;
        return std::nullopt;
      }
      if (!inflater_) return parse_payload(r->text);
      std::string_view payload;
      const parse::InflateErrc e = inflater_->inflate(
          std::as_bytes(std::span(r->text.data(), r->text.size())), inflated_, &payload);
      if (e == parse::InflateErrc::kNeedMore) continue;
      if (e != parse::InflateErrc::kOk) return std::nullopt;
      return parse_payload(std::string(payload));
    }
  }

  static std::optional<Payload> parse_payload(const std::string& text) {
    simdjson::dom::parser p;
    simdjson::dom::object o;
    if (p.parse(text).get_object().get(o) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    Payload out;
    out.raw = text;
    if (o["op"].get_int64().get(out.op) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    uint64_t s;
    if (o["s"].get_uint64().get(s) == simdjson::SUCCESS) out.s = s;
    std::string_view t;
    if (o["t"].get_string().get(t) == simdjson::SUCCESS) out.t = std::string(t);
    return out;
  }

  // Reads until a close frame; returns its code (0 if none came).
  uint16_t await_close(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = next(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!r) return 0;
      if (r->kind == ws::MessageKind::kClose) return r->close_code;
    }
    return 0;
  }

  // True when the server closed TCP (EOF) within the timeout.
  bool await_eof(std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string raw;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
    return false;
  }

  void close_socket() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  uint16_t last_close() const { return last_close_; }

 private:
  std::optional<parse::Inflater> inflater_;
  parse::InflateBuffer inflated_;
  ws::MaskKey key() {
    ws::MaskKey k;
    for (auto& b : k) b = static_cast<std::byte>(rng_());
    return k;
  }

  bool read_raw(std::string& out, std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    out.append(buf, static_cast<size_t>(n));
    return true;
  }

  bool send_ciphertext() {
    auto pending = tls_.pending_ciphertext();
    std::string bytes(reinterpret_cast<const char*>(pending.data()), pending.size());
    tls_.consume_ciphertext(pending.size());
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  bool drain_tls_plaintext() {
    std::array<std::byte, 16384> buf;
    while (true) {
      size_t produced = 0;
      const tls::Errc e = tls_.read_plaintext(buf, produced);
      plain_.append(reinterpret_cast<const char*>(buf.data()), produced);
      if (e == tls::Errc::kOk) continue;
      send_ciphertext();
      return e == tls::Errc::kWantRead || e == tls::Errc::kClosed;
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  bool use_tls_ = false;
  tls::Session tls_;
  std::string pending_cipher_;
  std::string plain_;     // plaintext received, not yet given to a parser
  std::string feed_buf_;  // bytes the decoder is working through
  bool fed_ = false;
  std::optional<ws::ClientHandshake> hs_;
  std::optional<ws::Decoder> dec_;
  ws::Encoder enc_{ws::Role::kClient};
  std::mt19937 rng_{12345};
  uint16_t last_close_ = 0;
};

}  // namespace shardring::gatewaysrv::gwtest
