// tests/tls/tls_harness.h: a client and a server tls::Session talking purely
// in memory, for tests and benchmarks. Single-threaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tls/context.h"
#include "tls/errc.h"
#include "tls/session.h"

namespace shardring::tls::testing {

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Feeds `wire` to `to` in pieces of at most `chunk` bytes, running `op` (a
// call on `to` that returns Errc) after each piece, or once when `wire` is
// empty. Stops at the first fatal
// code, which it returns; otherwise returns the last code. Bytes `to` has not
// consumed are copied into it before `wire` goes away.
template <typename Op>
Errc FeedInChunks(Session& to, std::span<const std::byte> wire, size_t chunk, Op op) {
  if (wire.empty()) return op();
  Errc last = Errc::kWantRead;
  chunk = std::max<size_t>(chunk, 1);
  for (size_t off = 0; off < wire.size(); off += chunk) {
    const auto piece = wire.subspan(off, std::min(chunk, wire.size() - off));
    if (Errc e = to.feed_ciphertext(piece); e != Errc::kOk) return e;
    last = op();
    if (is_fatal(last)) break;
  }
  if (Errc e = to.retain_ciphertext(); e != Errc::kOk) return e;
  return last;
}

// Everything `from` wants sent, as one buffer (drains `from`).
inline std::vector<std::byte> Drain(Session& from) {
  std::vector<std::byte> wire;
  from.take_ciphertext(wire);
  return wire;
}

struct HandshakeResult {
  Errc client = Errc::kWantRead;
  Errc server = Errc::kWantRead;
  bool ok() const { return client == Errc::kOk && server == Errc::kOk; }
};

// Pumps handshake flights between the two sessions, delivering each flight
// in pieces of `chunk` bytes, until both finish or one fails.
inline HandshakeResult Handshake(Session& client, Session& server, size_t chunk = SIZE_MAX) {
  HandshakeResult r;
  r.client = client.handshake();
  for (int round = 0; round < 16 && !is_fatal(r.client); ++round) {
    std::vector<std::byte> to_server = Drain(client);
    if (!to_server.empty() || round == 0) {
      r.server = FeedInChunks(server, to_server, chunk, [&] { return server.handshake(); });
    }
    std::vector<std::byte> to_client = Drain(server);
    if (is_fatal(r.server)) {
      // Let the client see the server's alert.
      FeedInChunks(client, to_client, chunk, [&] { return client.handshake(); });
      break;
    }
    r.client = FeedInChunks(client, to_client, chunk, [&] { return client.handshake(); });
    if (r.ok() && client.pending_ciphertext().empty()) break;
  }
  return r;
}

// Delivers everything `from` has to send to `to` in pieces of `chunk`
// bytes and returns the plaintext `to` reads, reading at most `read_cap`
// bytes per call. `last` receives the final read code.
inline std::string Transfer(Session& from, Session& to, size_t chunk = SIZE_MAX,
                            size_t read_cap = 1 << 16, Errc* last = nullptr) {
  std::string got;
  std::vector<std::byte> buf(read_cap);
  auto read_all = [&] {
    Errc e;
    size_t n = 0;
    do {
      e = to.read_plaintext(buf, n);
      got.append(reinterpret_cast<const char*>(buf.data()), n);
    } while (e == Errc::kOk);
    return e;
  };
  const std::vector<std::byte> wire = Drain(from);
  Errc e = FeedInChunks(to, wire, chunk, read_all);
  if (!is_fatal(e) && e != Errc::kClosed) e = read_all();
  if (last != nullptr) *last = e;
  return got;
}

}  // namespace shardring::tls::testing
