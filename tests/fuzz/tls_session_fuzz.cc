// tests/fuzz/tls_session_fuzz.cc: hostile bytes into tls::Session, in chunk
// sizes the fuzzer picks. Byte 0 picks who receives them:
//   0  a server expecting a ClientHello
//   1  a client that has sent its ClientHello, expecting the server's flight
//   2  a client after a real handshake (records, alerts, tickets, key updates)
//   3  a server after a real handshake
// Byte 1 is the chunk size. Whatever arrives, the session must end in
// kWantRead, kClosed or a fatal code, never crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "tests/tls/test_contexts.h"
#include "tests/tls/tls_harness.h"
#include "tls/context.h"
#include "tls/session.h"

namespace {

using shardring::tls::Context;
using shardring::tls::Errc;
using shardring::tls::Session;

const shardring::tls::testing::TestContexts& GetContexts() {
  return shardring::tls::testing::GetTestContexts();
}

void Check(bool ok) {
  if (!ok) std::abort();
}

// Feeds `data` to `to` in `chunk`-byte pieces, running the handshake until
// it finishes and reading plaintext after that.
void Receive(Session& to, std::span<const std::byte> data, size_t chunk) {
  std::vector<std::byte> plain(4096);
  Errc last = shardring::tls::testing::FeedInChunks(to, data, chunk, [&] {
    if (!to.is_handshake_done()) {
      Errc e = to.handshake();
      if (e != Errc::kOk) return e;
    }
    size_t n = 0;
    Errc e;
    while ((e = to.read_plaintext(plain, n)) == Errc::kOk) {
      Check(n == plain.size());
    }
    Check(n <= plain.size());
    return e;
  });
  Check(last == Errc::kWantRead || last == Errc::kOk || last == Errc::kClosed ||
        shardring::tls::is_fatal(last));
  if (shardring::tls::is_fatal(last)) {
    Check(to.last_error() == last);
    Check(!to.error_detail().empty());
  }
  // Whatever the session wants to send (alerts) is well-formed to drain.
  std::vector<std::byte> out;
  to.take_ciphertext(out);
  Check(to.pending_ciphertext().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const shardring::tls::testing::TestContexts& ctx = GetContexts();
  const unsigned mode = data[0] % 4;
  const size_t chunk = data[1] == 0 ? SIZE_MAX : data[1];
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data + 2), size - 2);
  switch (mode) {
    case 0: {
      auto server = Session::server(ctx.server);
      Check(server.ok());
      Receive(*server, input, chunk);
      break;
    }
    case 1: {
      auto client = Session::client(ctx.client, "localhost");
      Check(client.ok());
      Check(client->handshake() == Errc::kWantRead);
      Check(!client->pending_ciphertext().empty());
      Receive(*client, input, chunk);
      break;
    }
    default: {
      auto client = Session::client(ctx.client, "localhost");
      auto server = Session::server(ctx.server);
      Check(client.ok() && server.ok());
      Check(shardring::tls::testing::Handshake(*client, *server).ok());
      Receive(mode == 2 ? *client : *server, input, chunk);
      break;
    }
  }
  return 0;
}
