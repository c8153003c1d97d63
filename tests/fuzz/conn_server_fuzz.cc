// tests/fuzz/conn_server_fuzz.cc: a server connection (conn::ServerConnection)
// fed client bytes in the fuzzer's splits (tests/ws/fuzz_chunks.h). Flags
// (byte 0):
//   bits 0-1  what comes before the fuzzer's bytes: 0 nothing (they are the
//             HTTP request), 1 an upgrade request, 2 one asking for
//             zlib-stream, 3 one asking for zstd-stream
//   bit 2     TLS: a real client handshake first, then the bytes encrypted
//   bit 3     every client text payload is sent back (framing, compression)
//   bit 4     outgoing messages fragmented into 5-byte frames
//   bit 5     the server closes (4000) at the end, then its linger fires
// Whatever arrives: no crash, leak or read out of bounds (payloads are read
// up to their padding); no event after the socket is closed; everything the
// server writes after the upgrade parses as frames for a client, and with
// echoing, carries back exactly the text payloads it read (empty ones are
// not sent).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/conn/server_harness.h"
#include "tests/tls/test_contexts.h"
#include "tests/ws/fuzz_chunks.h"
#include "tls/context.h"

namespace {

using shardring::conn::ServerEventKind;
using shardring::conn::ServerOptions;
using shardring::conn::testing::FakeClient;
using shardring::conn::testing::ServerHarness;
using shardring::parse::Compression;

const shardring::tls::testing::TestContexts& GetContexts() {
  return shardring::tls::testing::GetTestContexts();
}

void Check(bool ok, int line) {
  if (ok) return;
  std::fprintf(stderr, "conn_server_fuzz.cc:%d: check failed\n", line);
  std::abort();
}
#define CHECK(x) Check((x), __LINE__)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const shardring::ws::fuzz::Plan plan = shardring::ws::fuzz::MakePlan(data, size);
  const unsigned prefix = plan.flags & 3;
  const bool use_tls = plan.flags & 4;
  const bool echo = plan.flags & 8;
  const bool fragment = plan.flags & 16;
  const bool close_at_end = plan.flags & 32;
  const Compression compression = prefix == 2   ? Compression::kZlibStream
                                  : prefix == 3 ? Compression::kZstdStream
                                                : Compression::kNone;

  ServerOptions options;
  options.max_message_bytes = 4096;
  options.fragment = fragment ? 5 : 0;
  ServerHarness h(options, use_tls ? &GetContexts().server : nullptr);
  h.echo = echo;
  std::optional<shardring::tls::Session> client_tls;
  if (use_tls) {
    auto s = shardring::tls::Session::client(GetContexts().client, "localhost");
    CHECK(s.ok());
    client_tls.emplace(std::move(*s));
    CHECK(shardring::conn::testing::TlsHandshake(h, *client_tls));
  }
  FakeClient client(compression);
  client.any_key = prefix == 0;
  std::string stream;
  if (prefix == 1) stream = client.upgrade_request();
  if (prefix == 2) stream = client.upgrade_request("/?v=10&encoding=json&compress=zlib-stream");
  if (prefix == 3) stream = client.upgrade_request("/?v=10&encoding=json&compress=zstd-stream");
  stream.append(reinterpret_cast<const char*>(plan.stream.data()), plan.stream.size());
  if (use_tls) stream = shardring::conn::testing::TlsWrite(*client_tls, stream);

  // The same splits as the plan, over the (possibly encrypted) stream.
  std::string written;
  size_t at = 0, k = 0;
  while (at < stream.size()) {
    const size_t len = std::min(plan.sizes[k++ % plan.sizes.size()], stream.size() - at);
    const size_t events_before = h.events.size();
    const bool closed_before = h.sockets_closed > 0;
    h.receive(std::string_view(stream).substr(at, len));
    at += len;
    if (closed_before) CHECK(h.events.size() == events_before);
    written += h.take_written();
  }
  CHECK(h.sockets_closed <= 1);
  if (close_at_end) {
    const bool was_open = h.conn().is_open();
    h.send_close(4000, "fuzz");
    h.fire_linger();
    written += h.take_written();
    if (was_open) CHECK(h.conn().phase() == shardring::conn::ServerPhase::kDone);
  }
  // (HTTP answers before an upgrade in the fuzzer's own bytes are not
  // followed.)
  if (!h.conn().upgraded() || h.events.empty() ||
      h.events[0].kind != ServerEventKind::kUpgradeRequest) {
    return 0;
  }
  std::string plain = written;
  if (use_tls) {
    plain.clear();
    CHECK(shardring::conn::testing::TlsRead(*client_tls, written, &plain));
  }
  CHECK(client.from_server(plain));
  if (echo) {
    std::vector<std::string> read;
    for (const auto& e : h.events) {
      if (e.kind == ServerEventKind::kText && !e.binary && !e.text.empty()) {
        read.push_back(e.text);
      }
    }
    CHECK(client.texts == read);
  }
  return 0;
}
