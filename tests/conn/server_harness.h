// tests/conn/server_harness.h: drives a conn::ServerConnection the way the
// synthetic gateway's worker does, in memory: socket bytes in (copied into
// a buffer with the padding slack a receive buffer has), events polled and
// copied, requests answered by a simple policy, writes drained at once.
// Beside it, a scripted client (FakeClient) that writes an upgrade request
// and masked frames (ws::Encoder, client role), reads the server's frames
// (ws::Decoder, client role; inflated when compressed) and, when asked,
// speaks TLS through a client tls::Session. Shared by the unit tests and
// the fuzz target. Single-threaded; time is a value the test moves.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conn/server.h"
#include "parse/envelope.h"
#include "parse/inflate.h"
#include "tls/context.h"
#include "tls/session.h"
#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/handshake.h"

namespace shardring::conn::testing {

inline std::span<const std::byte> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// One event as the driver saw it, copied.
struct Seen {
  ServerEventKind kind = ServerEventKind::kText;
  std::string text;  // kText: the payload; requests: the target
  bool binary = false;
  uint16_t code = 0;
  std::string reason;
  bool keep_alive = false;
  std::optional<parse::Compression> compression;
  bool operator==(const Seen&) const = default;
};

class ServerHarness {
 public:
  explicit ServerHarness(ServerOptions options = {}, const tls::Context* tls = nullptr)
      : options_(options), conn_(options_, scratch_, tls) {
    after();
  }

  ServerConnection& conn() { return conn_; }
  Instant now() const { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

  // Policy for requests: HTTP gets 200 {"ok":true} (kept alive when HTTP
  // allows); upgrades are accepted unless `accept_upgrades` is false (then
  // 404), or the compression is unknown (400).
  bool accept_upgrades = true;
  // Each text payload (not binary ones: send_text() sends text, which must
  // be UTF-8) is sent back with send_text() (exercises framing and
  // compression).
  bool echo = false;

  // Socket bytes in, then polled dry and the asks carried out.
  void receive(std::string_view bytes) {
    std::string buf(bytes);
    buf.resize(bytes.size() + ws::kPadding, '\0');
    conn_.receive(std::span<std::byte>(reinterpret_cast<std::byte*>(buf.data()), bytes.size()),
                  ws::kPadding, now_);
    ServerEvent ev;
    while (conn_.poll(ev, now_)) on_event(ev);
    after();
  }
  void fire_linger() {
    if (auto d = conn_.deadline(ServerTimer::kCloseLinger)) {
      if (*d > now_) now_ = *d;
      conn_.on_timer(ServerTimer::kCloseLinger, now_);
      after();
    }
  }
  void send_text(std::string_view json) {
    (void)conn_.send_text(json);
    after();
  }
  void send_close(uint16_t code, std::string_view reason) {
    (void)conn_.send_close(code, reason, now_);
    after();
  }
  // What the driver collects after each input.
  void after() {
    while (true) {
      const std::span<const std::byte> w = conn_.take_write();
      if (w.empty()) break;
      written.append(reinterpret_cast<const char*>(w.data()), w.size());
      conn_.on_write_done(now_);
    }
    for (const auto& n : conn_.notes()) notes.push_back(n.note);
    conn_.notes().clear();
    (void)conn_.take_timer_changes();
    if (conn_.take_close_socket()) ++sockets_closed;
  }
  std::string take_written() { return std::exchange(written, {}); }

  std::vector<Seen> events;
  std::vector<ServerNote> notes;
  std::string written;
  int sockets_closed = 0;

 private:
  void on_event(const ServerEvent& ev) {
    Seen s;
    s.kind = ev.kind;
    switch (ev.kind) {
      case ServerEventKind::kHttpRequest:
      case ServerEventKind::kUpgradeRequest:
        s.text = std::string(ev.request->target());
        s.keep_alive = ev.keep_alive;
        s.compression = ev.compression;
        break;
      case ServerEventKind::kText: {
        s.text = std::string(ev.text);
        s.binary = ev.binary;
        // The padding the parser needs is there (ASan checks the reads).
        unsigned sum = 0;
        for (size_t i = 0; i < parse::kPadding; ++i) {
          sum += static_cast<unsigned char>(ev.text.data()[ev.text.size() + i]);
        }
        pad_sum_ += sum;
        break;
      }
      case ServerEventKind::kClose:
      case ServerEventKind::kProtocolError:
        s.code = ev.code;
        s.reason = std::string(ev.reason);
        break;
    }
    events.push_back(s);
    const ws::Header json[] = {{"Content-Type", "application/json"}};
    if (ev.kind == ServerEventKind::kHttpRequest) {
      conn_.respond(200, "OK", json, R"({"ok":true})", ev.keep_alive);
    } else if (ev.kind == ServerEventKind::kUpgradeRequest) {
      if (!accept_upgrades) {
        conn_.respond(404, "Not Found", json, "{}", false);
      } else if (!ev.compression) {
        conn_.respond(400, "Bad Request", json, "{}", false);
      } else {
        conn_.accept_upgrade();
      }
    } else if (ev.kind == ServerEventKind::kText && !ev.binary && echo) {
      (void)conn_.send_text(ev.text);
    }
  }

  ServerOptions options_;
  ServerScratch scratch_;
  ServerConnection conn_;
  Instant now_{};
  unsigned pad_sum_ = 0;
};

// The client's side, scripted by the test.
class FakeClient {
 public:
  explicit FakeClient(parse::Compression compression = parse::Compression::kNone)
      : handshake_(std::span<const std::byte, 16>(Bytes("0123456789abcdef").data(), 16)) {
    if (compression != parse::Compression::kNone) inflater_.emplace(compression);
  }

  // The upgrade request for `target`.
  std::string upgrade_request(std::string_view target = "/?v=10&encoding=json") const {
    std::string out;
    (void)handshake_.write_request(out, "127.0.0.1:8080", target);
    return out;
  }
  // Masked client frames; the key varies per frame.
  std::string text(std::string_view payload) {
    std::string out;
    (void)encoder_.text(out, payload, key());
    return out;
  }
  std::string frame(ws::Opcode op, bool fin, std::string_view payload) {
    std::string out;
    (void)encoder_.fragment(out, op, fin, Bytes(payload), key());
    return out;
  }
  std::string ping(std::string_view payload) {
    std::string out;
    (void)encoder_.ping(out, Bytes(payload), key());
    return out;
  }
  std::string close(uint16_t code, std::string_view reason = {}) {
    std::string out;
    (void)encoder_.close(out, code, reason, key());
    return out;
  }

  // Server bytes in: the 101 first, then frames (inflated when
  // compressed). False once something did not parse.
  bool from_server(std::string_view bytes) {
    in_.append(bytes);
    if (!upgraded_) {
      size_t consumed = 0;
      ws::Errc e;
      if (any_key) {  // a request this client did not write: any 101
        e = head_.feed(Bytes(in_), consumed);
        if (e == ws::Errc::kOk && !head_.start_line().starts_with("HTTP/1.1 101 ")) return false;
      } else {
        e = handshake_.feed(Bytes(in_), consumed);
      }
      if (e == ws::Errc::kNeedMore) {
        in_.clear();
        return true;
      }
      if (e != ws::Errc::kOk) return false;
      upgraded_ = true;
      in_.erase(0, consumed);
    }
    decoder_.feed(std::span<std::byte>(reinterpret_cast<std::byte*>(in_.data()), in_.size()));
    ws::Message m;
    ws::Errc e;
    while ((e = decoder_.next(m)) == ws::Errc::kOk) {
      switch (m.kind) {
        case ws::MessageKind::kClose:
          closes.push_back(m.close_code);
          break;
        case ws::MessageKind::kPong:
          pongs.emplace_back(m.text());
          break;
        case ws::MessageKind::kText:
          texts.emplace_back(m.text());
          break;
        case ws::MessageKind::kBinary: {
          if (!inflater_) return false;
          std::string_view payload;
          const parse::InflateErrc ie = inflater_->inflate(m.payload, inflated_, &payload);
          if (ie == parse::InflateErrc::kOk) {
            texts.emplace_back(payload);
          } else if (ie != parse::InflateErrc::kNeedMore) {
            return false;
          }
          break;
        }
        case ws::MessageKind::kPing:
          break;
      }
    }
    in_.clear();
    return e == ws::Errc::kNeedMore || e == ws::Errc::kClosed;
  }
  bool upgraded() const { return upgraded_; }
  // Accept the 101 for an upgrade request this client did not write.
  bool any_key = false;

  std::vector<std::string> texts;  // payloads, inflated
  std::vector<std::string> pongs;
  std::vector<uint16_t> closes;

 private:
  ws::MaskKey key() {
    ++key_seed_;
    return ws::MaskKey{static_cast<std::byte>(key_seed_), std::byte{0x5a},
                       static_cast<std::byte>(key_seed_ * 7), std::byte{0xc3}};
  }

  ws::ClientHandshake handshake_;
  ws::HttpHead head_;
  ws::Encoder encoder_{ws::Role::kClient};
  ws::Decoder decoder_{ws::Role::kClient};
  std::optional<parse::Inflater> inflater_;
  parse::InflateBuffer inflated_;
  std::string in_;
  bool upgraded_ = false;
  uint8_t key_seed_ = 0;
};

// A client TLS handshake against the harness's connection, one flight at a
// time. True when the client finished (its last flight may still be in
// `client`'s output: it goes with the next bytes sent).
inline bool TlsHandshake(ServerHarness& h, tls::Session& client) {
  tls::Errc e = client.handshake();
  std::vector<std::byte> out;
  for (int round = 0; round < 8 && e == tls::Errc::kWantRead; ++round) {
    client.take_ciphertext(out);
    h.receive(std::string_view(reinterpret_cast<const char*>(out.data()), out.size()));
    const std::string back = h.take_written();
    if (client.feed_ciphertext(Bytes(back)) != tls::Errc::kOk) return false;
    e = client.handshake();
    if (client.retain_ciphertext() != tls::Errc::kOk) return false;
  }
  return e == tls::Errc::kOk;
}

// `plain` encrypted by `client`, with whatever it still had to send first.
inline std::string TlsWrite(tls::Session& client, std::string_view plain) {
  if (!plain.empty() && client.write_plaintext(Bytes(plain)) != tls::Errc::kOk) return {};
  std::vector<std::byte> out;
  client.take_ciphertext(out);
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

// The server's bytes decrypted by `client`; false on a TLS error.
inline bool TlsRead(tls::Session& client, std::string_view wire, std::string* plain) {
  if (client.feed_ciphertext(Bytes(wire)) != tls::Errc::kOk) return false;
  std::vector<std::byte> buf(1 << 16);
  size_t n = 0;
  tls::Errc e;
  do {
    e = client.read_plaintext(buf, n);
    plain->append(reinterpret_cast<const char*>(buf.data()), n);
  } while (e == tls::Errc::kOk);
  (void)client.retain_ciphertext();
  return e == tls::Errc::kWantRead || e == tls::Errc::kClosed;
}

}  // namespace shardring::conn::testing
