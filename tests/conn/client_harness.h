// tests/conn/client_harness.h: drives a conn::ClientConnection the way the
// engine's core thread does, in memory, against a scripted gateway peer
// (FakeGateway) that answers the upgrade with ws::ServerHandshake, reads the
// client's frames with a server-role ws::Decoder, and writes server frames
// (compressed with parse::Deflater, encrypted by a server tls::Session when
// asked). Time is a value the test moves; randomness is a seeded base::Rng.
// Shared by the unit tests and the fuzz target. Single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conn/client.h"
#include "parse/inflate.h"
#include "tls/context.h"
#include "tls/session.h"
#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/handshake.h"

namespace shardring::conn::testing {

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// One delivered dispatch, copied.
struct Delivered {
  uint64_t seq = 0;
  std::string t;
  std::string d;
  uint64_t guild_id = 0;
  bool operator==(const Delivered&) const = default;
};

// The client side, driven as the engine drives it.
class ClientHarness {
 public:
  ClientHarness(ClientOptions options, uint64_t seed, uint32_t shard = 0)
      : options_(std::move(options)), scratch_(seed), conn_(options_, scratch_, shard) {}

  ClientConnection& conn() { return conn_; }
  ClientScratch& scratch() { return scratch_; }
  Instant now() const { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }
  void set_now(Instant t) { now_ = t; }

  // Dials at once and reports TCP up to `endpoint`.
  void connect(const Endpoint& endpoint) {
    conn_.schedule_dial(now_);
    after();
    fire(Timer::kDial);
    dials_ = 0;
    conn_.on_dial_started(now_);
    conn_.on_transport_open(endpoint, now_);
    after();
  }
  // Fires a timer now if it is armed (at its deadline, when that is later).
  bool fire(Timer t) {
    auto d = conn_.deadline(t);
    if (!d) return false;
    if (*d > now_) now_ = *d;
    conn_.on_timer(t, now_);
    after();
    return true;
  }
  // Socket bytes in: copied into a padded buffer, then polled dry.
  void receive(std::string_view bytes) {
    std::string buf(bytes);
    buf.resize(bytes.size() + parse::kPadding, '\0');
    conn_.receive(std::span<std::byte>(reinterpret_cast<std::byte*>(buf.data()), bytes.size()),
                  parse::kPadding, now_);
    Dispatch ev;
    while (conn_.poll(ev, now_)) {
      // What is delivered is what the session counted: a resume replays
      // from exactly there.
      if (ev.seq != conn_.session().last_seq()) all_fresh = false;
      delivered.push_back({ev.seq, std::string(ev.t), std::string(ev.d), ev.guild_id});
    }
    after();
  }
  void grant_identify() {
    conn_.on_identify_granted(now_);
    after();
  }
  void lose_transport() {
    conn_.on_transport_lost(now_);
    after();
  }

  // What the driver collects after each input.
  void after() {
    std::vector<std::byte> out;
    while (conn_.take_write(out)) {
      written.append(reinterpret_cast<const char*>(out.data()), out.size());
      conn::ClientConnection::recycle_write(out);
      conn_.on_write_done(now_);
    }
    for (auto& n : conn_.notes()) {
      notes.push_back(n.note);
      note_texts.push_back(n.text);
    }
    conn_.notes().clear();
    (void)conn_.take_timer_changes();
    if (conn_.take_identify_request()) ++identify_requests;
    if (conn_.take_dial()) ++dials_;
    if (conn_.take_close_socket()) ++sockets_closed;
    if (auto f = conn_.take_fatal()) fatal = f->code;
  }
  // Bytes written since the last call.
  std::string take_written() { return std::exchange(written, {}); }
  int dials() const { return dials_; }
  bool noted(Note n) const {
    for (Note x : notes) {
      if (x == n) return true;
    }
    return false;
  }

  std::vector<Delivered> delivered;
  std::vector<Note> notes;
  std::vector<std::string> note_texts;
  bool all_fresh = true;
  std::string written;
  int identify_requests = 0;
  int sockets_closed = 0;
  std::optional<uint16_t> fatal;

 private:
  ClientOptions options_;
  ClientScratch scratch_;
  ClientConnection conn_;
  Instant now_{};
  int dials_ = 0;
};

// The gateway's side of one connection, scripted by the test.
class FakeGateway {
 public:
  explicit FakeGateway(parse::Compression compression = parse::Compression::kNone,
                       const tls::Context* tls_server = nullptr) {
    if (compression != parse::Compression::kNone) deflater_.emplace(compression);
    if (tls_server != nullptr) {
      auto s = tls::Session::server(*tls_server);
      if (s.ok()) tls_.emplace(std::move(*s));
    }
  }

  bool tls_failed() const { return tls_ && tls_->last_error() != tls::Errc::kOk; }

  // Client bytes in (ciphertext with TLS). Answers handshakes itself; the
  // 101 answer is kept in pending() for the test to send when it likes.
  void from_client(std::string_view wire) {
    std::string plain;
    if (tls_) {
      (void)tls_->feed_ciphertext(AsBytes(wire));
      if (!tls_->is_handshake_done()) {
        if (tls_->handshake() != tls::Errc::kOk) {
          flush_tls();
          return;
        }
      }
      std::vector<std::byte> buf(1 << 16);
      size_t n = 0;
      tls::Errc e;
      do {
        e = tls_->read_plaintext(buf, n);
        plain.append(reinterpret_cast<const char*>(buf.data()), n);
      } while (e == tls::Errc::kOk);
      (void)tls_->retain_ciphertext();
      flush_tls();
    } else {
      plain.assign(wire);
    }
    request_.append(plain);
    if (!upgraded_) {
      size_t consumed = 0;
      const ws::Errc e = hs_.feed(AsBytes(request_), consumed);
      if (e == ws::Errc::kNeedMore) return;
      if (e != ws::Errc::kOk) return;
      upgraded_ = true;
      target = std::string(hs_.target());
      accept_.clear();
      hs_.write_accept(accept_);
      request_.erase(0, consumed);
    }
    decoder_.feed(
        std::span<std::byte>(reinterpret_cast<std::byte*>(request_.data()), request_.size()));
    ws::Message m;
    while (decoder_.next(m) == ws::Errc::kOk) {
      if (m.kind == ws::MessageKind::kClose) {
        closes.push_back(m.close_code);
      } else if (m.kind == ws::MessageKind::kText) {
        texts.emplace_back(m.text());
      } else if (m.kind == ws::MessageKind::kPong) {
        ++pongs;
      }
    }
    request_.clear();
  }

  bool upgraded() const { return upgraded_; }
  // The 101 answer (plaintext), once the request was read.
  const std::string& accept() const { return accept_; }
  // A gateway payload as one frame: text, or binary on the compressed stream.
  std::string frame(std::string_view json) {
    std::string out;
    if (deflater_) {
      std::string z;
      (void)deflater_->compress(json, z);
      (void)encoder_.binary(out, AsBytes(z));
    } else {
      (void)encoder_.text(out, json);
    }
    return out;
  }
  std::string close_frame(uint16_t code) {
    std::string out;
    (void)encoder_.close(out, code, "");
    return out;
  }
  // Plaintext for the client, as the wire carries it (ciphertext with TLS).
  std::string wire(std::string_view plain) {
    if (!tls_) return std::string(plain);
    (void)tls_->write_plaintext(AsBytes(plain));
    flush_tls();
    return take_tls_out();
  }
  // Ciphertext the server's TLS produced on its own (handshake flights).
  std::string take_tls_out() { return std::exchange(tls_out_, {}); }

  std::string target;
  std::vector<std::string> texts;  // the client's text payloads, in order
  std::vector<uint16_t> closes;    // close codes the client sent
  int pongs = 0;

 private:
  void flush_tls() {
    std::vector<std::byte> out;
    tls_->take_ciphertext(out);
    tls_out_.append(reinterpret_cast<const char*>(out.data()), out.size());
  }

  std::optional<parse::Deflater> deflater_;
  std::optional<tls::Session> tls_;
  std::string tls_out_;
  ws::ServerHandshake hs_;
  bool upgraded_ = false;
  std::string request_;
  std::string accept_;
  ws::Decoder decoder_{ws::Role::kServer};
  ws::Encoder encoder_{ws::Role::kServer};
};

// Payloads the tests use (Discord's own key order and fields).
inline std::string Hello(int interval_ms = 41250) {
  return R"({"t":null,"s":null,"op":10,"d":{"heartbeat_interval":)" + std::to_string(interval_ms) +
         "}}";
}
inline std::string Ready(uint64_t seq, std::string_view session_id, std::string_view resume_url) {
  return R"({"t":"READY","s":)" + std::to_string(seq) +
         R"(,"op":0,"d":{"v":10,"user":{"id":"80351110224678912","username":"bot"},"session_id":")" +
         std::string(session_id) + R"(","resume_gateway_url":")" + std::string(resume_url) +
         R"(","guilds":[]}})";
}
inline std::string Message(uint64_t seq, uint64_t guild_id = 41771983423143937) {
  return R"({"t":"MESSAGE_CREATE","s":)" + std::to_string(seq) + R"(,"op":0,"d":{"id":")" +
         std::to_string(1000 + seq) + R"(","guild_id":")" + std::to_string(guild_id) +
         R"(","channel_id":"7","content":"h\u00e9llo #)" + std::to_string(seq) + R"("}})";
}
inline std::string Resumed(uint64_t seq) {
  return R"({"t":"RESUMED","s":)" + std::to_string(seq) + R"(,"op":0,"d":{}})";
}
// d of a payload built above (the text after "d": up to the last brace).
inline std::string DOf(std::string_view json) {
  const size_t at = json.find(R"("d":)");
  return std::string(json.substr(at + 4, json.size() - at - 5));
}

}  // namespace shardring::conn::testing
