// tests/fuzz/conn_client_fuzz.cc: conn::ClientConnection fed a gateway's
// bytes in the fuzzer's splits, plain or through TLS, with or without
// transport compression. The input (tests/ws/fuzz_chunks.h layout) picks the
// flags and the read sizes; the rest is what the gateway sends after its
// 101 answer and HELLO (bit 3 off: the fuzzer writes the 101 too). Identify
// grants and heartbeat timers are driven as the engine drives them. Checks:
// no crash or sanitizer report; every delivered dispatch is the one the
// session counted last (a resume replays from exactly there); the client
// never queues more than the limit; no note (log text) carries the token.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/conn/client_harness.h"
#include "tests/tls/test_contexts.h"
#include "tests/ws/fuzz_chunks.h"

namespace {

using namespace shardring;
using conn::testing::ClientHarness;
using conn::testing::FakeGateway;

constexpr std::string_view kToken = "FUZZ.TOKEN.Y29ubg";

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ws::fuzz::Plan plan = ws::fuzz::MakePlan(data, size);
  const uint8_t f = plan.flags;
  const auto compression = static_cast<parse::Compression>((f & 3) % 3);
  const bool use_tls = f & 4;
  const bool greet = f & 8;
  const bool beat = f & 16;
  const bool framed = f & 32;  // each piece is one payload, framed (and compressed)

  conn::ClientOptions o;
  o.session.token = std::string(kToken);
  o.session.shard_count = 2;
  o.session.shard_id = 1;
  o.session.gateway_url = "ws://127.0.0.1:1/?v=10&encoding=json";
  o.compression = compression;
  o.validate_d = f & 64;
  if (f & 128) o.filter = *parse::EventFilter::parse("MESSAGE_CREATE,GUILD_CREATE");

  ClientHarness h(o, size, 1);
  const tls::testing::TestContexts* tls_ctx = use_tls ? &tls::testing::GetTestContexts() : nullptr;
  FakeGateway g(compression, use_tls ? &tls_ctx->server : nullptr);
  if (use_tls) h.scratch().tls_context = &tls_ctx->client;
  h.connect(
      conn::Endpoint{use_tls, use_tls ? "localhost" : "127.0.0.1", 1, "/", "v=10&encoding=json"});
  if (use_tls) {
    for (int round = 0; round < 8 && !g.upgraded(); ++round) {
      g.from_client(h.take_written());
      const std::string flight = g.take_tls_out();
      if (flight.empty()) break;
      h.receive(flight);
    }
    if (!g.upgraded()) return 0;
  } else {
    g.from_client(h.take_written());
  }
  auto send = [&](const std::string& plain) { h.receive(g.wire(plain)); };
  if (greet) send(g.accept() + g.frame(conn::testing::Hello(1000)));

  ws::fuzz::ForEachPiece(plan, [&](std::span<std::byte> piece) {
    const std::string_view bytes(reinterpret_cast<const char*>(piece.data()), piece.size());
    send(framed ? g.frame(bytes) : std::string(bytes));
    if (h.identify_requests > 0) {
      h.identify_requests = 0;
      h.grant_identify();
    }
    if (beat && (piece.size() & 1)) (void)h.fire(conn::Timer::kHeartbeat);
    CHECK(h.all_fresh);
    CHECK(h.conn().queued_write_bytes() <= conn::kMaxQueuedOutBytes);
    g.from_client(h.take_written());
    return h.conn().phase() != conn::Phase::kIdle;
  });
  for (const std::string& text : h.note_texts) CHECK(text.find(kToken) == std::string::npos);
  return 0;
}
