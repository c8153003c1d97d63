// tests/conn/server_test.cc: conn::ServerConnection as byte strings: plain
// HTTP requests answered (kept alive, pipelined, closed); an upgrade, then
// masked client frames read as payloads, the same whatever the split of the
// client's bytes; pings, closes and bad frames with their close codes;
// compression negotiated from the upgrade URL; fragmenting; and all of it
// through TLS.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/conn/server_harness.h"
#include "tests/tls/test_contexts.h"

namespace shardring::conn {
namespace {

using ::testing::ElementsAre;
using testing::FakeClient;
using ::testing::HasSubstr;
using testing::Seen;
using testing::ServerHarness;
using ::testing::StartsWith;

Seen Text(std::string text) {
  Seen s;
  s.kind = ServerEventKind::kText;
  s.text = std::move(text);
  return s;
}
Seen Upgrade(std::string target, parse::Compression c = parse::Compression::kNone) {
  Seen s;
  s.kind = ServerEventKind::kUpgradeRequest;
  s.text = std::move(target);
  s.compression = c;
  return s;
}

// ------------------------------------------------------------------- HTTP

TEST(ServerConnection, HttpGetIsAnsweredAndTheConnectionKeptAlive) {
  ServerHarness h;
  h.receive("GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, ServerEventKind::kHttpRequest);
  EXPECT_EQ(h.events[0].text, "/api/v10/gateway/bot");
  EXPECT_TRUE(h.events[0].keep_alive);
  const std::string answer = h.take_written();
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Connection: keep-alive\r\n"));
  EXPECT_THAT(answer, HasSubstr("\r\n\r\n{\"ok\":true}"));
  EXPECT_EQ(h.sockets_closed, 0);
  // A second request on the same connection, split across reads.
  h.receive("GET /a HTTP/1.1\r\nHo");
  h.receive("st: x\r\n\r\n");
  ASSERT_EQ(h.events.size(), 2u);
  EXPECT_EQ(h.events[1].text, "/a");
  EXPECT_THAT(h.take_written(), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(ServerConnection, PipelinedRequestsAreAnsweredInOrder) {
  ServerHarness h;
  h.receive(
      "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
      "GET /three HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(h.events.size(), 2u);  // nothing is read after "close"
  EXPECT_EQ(h.events[0].text, "/one");
  EXPECT_TRUE(h.events[0].keep_alive);
  EXPECT_EQ(h.events[1].text, "/two");
  EXPECT_FALSE(h.events[1].keep_alive);
  const std::string answers = h.take_written();
  EXPECT_THAT(answers, HasSubstr("Connection: close\r\n"));
  EXPECT_EQ(h.sockets_closed, 1);
  EXPECT_EQ(h.conn().close_reason(), "response sent");
}

TEST(ServerConnection, ARequestWithABodyIsAnsweredThenClosed) {
  ServerHarness h;
  h.receive("GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_FALSE(h.events[0].keep_alive);
  EXPECT_EQ(h.sockets_closed, 1);
}

TEST(ServerConnection, AMalformedRequestGets400AndTheSocketCloses) {
  ServerHarness h;
  h.receive("GARBAGE\r\n\r\n");
  EXPECT_TRUE(h.events.empty());
  EXPECT_THAT(h.take_written(), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(h.notes, ElementsAre(ServerNote::kBadRequest));
  EXPECT_EQ(h.sockets_closed, 1);
}

TEST(ServerConnection, ARefusedUpgradeIsAnsweredAndClosed) {
  ServerHarness h;
  h.accept_upgrades = false;
  FakeClient c;
  h.receive(c.upgrade_request("/elsewhere"));
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, ServerEventKind::kUpgradeRequest);
  EXPECT_THAT(h.take_written(), StartsWith("HTTP/1.1 404"));
  EXPECT_EQ(h.sockets_closed, 1);
  EXPECT_FALSE(h.conn().upgraded());
}

// ----------------------------------------------------------------- frames

// The client's side of a session: the upgrade, then frames of every kind a
// gateway client sends (a ping and a fragmented message among them).
std::string ClientStream(FakeClient& c) {
  std::string s = c.upgrade_request();
  s += c.text(R"({"op":2,"d":{"token":"t"}})");
  s += c.ping("hi");
  s += c.frame(ws::Opcode::kText, false, R"({"op":1,)");
  s += c.ping("");
  s += c.frame(ws::Opcode::kContinuation, true, R"("d":null})");
  s += c.text(std::string(3000, 'x'));  // a 16-bit length
  s += c.text("é ✨");
  return s;
}

std::vector<Seen> ExpectedEvents() {
  return {Upgrade("/?v=10&encoding=json"), Text(R"({"op":2,"d":{"token":"t"}})"),
          Text(R"({"op":1,"d":null})"), Text(std::string(3000, 'x')), Text("é ✨")};
}

TEST(ServerConnection, AnUpgradeThenMaskedClientFramesAreReadAsPayloads) {
  ServerHarness h;
  FakeClient c;
  h.receive(ClientStream(c));
  EXPECT_EQ(h.events, ExpectedEvents());
  EXPECT_TRUE(h.conn().is_open());
  ASSERT_TRUE(c.from_server(h.take_written()));
  EXPECT_TRUE(c.upgraded());
  EXPECT_THAT(c.pongs, ElementsAre("hi", ""));
  h.send_text(R"({"op":10})");
  ASSERT_TRUE(c.from_server(h.take_written()));
  EXPECT_THAT(c.texts, ElementsAre(R"({"op":10})"));
}

TEST(ServerConnection, TheClientsBytesSplitAtEveryOffsetGiveTheSamePayloads) {
  FakeClient c0;
  const std::string stream = ClientStream(c0);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ServerHarness h;
    h.receive(std::string_view(stream).substr(0, cut));
    h.receive(std::string_view(stream).substr(cut));
    ASSERT_EQ(h.events, ExpectedEvents()) << "cut=" << cut;
    FakeClient c;
    ASSERT_TRUE(c.from_server(h.take_written())) << "cut=" << cut;
    ASSERT_THAT(c.pongs, ElementsAre("hi", "")) << "cut=" << cut;
  }
  ServerHarness h;  // and one byte at a time
  for (char ch : stream) h.receive(std::string_view(&ch, 1));
  EXPECT_EQ(h.events, ExpectedEvents());
}

TEST(ServerConnection, TheClientsCloseIsEchoedAndTheSocketClosed) {
  ServerHarness h;
  FakeClient c;
  h.receive(c.upgrade_request() + c.close(4000, "bye") + c.text("after"));
  ASSERT_EQ(h.events.size(), 2u);
  EXPECT_EQ(h.events[1].kind, ServerEventKind::kClose);
  EXPECT_EQ(h.events[1].code, 4000);
  EXPECT_EQ(h.events[1].reason, "bye");
  ASSERT_TRUE(c.from_server(h.take_written()));
  EXPECT_THAT(c.closes, ElementsAre(4000));
  EXPECT_EQ(h.sockets_closed, 1);
  EXPECT_EQ(h.conn().close_reason(), "close handshake done");
}

TEST(ServerConnection, OurCloseWaitsForTheClientsThenForTheLinger) {
  {
    ServerHarness h;
    FakeClient c;
    h.receive(c.upgrade_request());
    h.send_close(4004, "Authentication failed.");
    EXPECT_FALSE(h.conn().is_open());
    ASSERT_TRUE(h.conn().deadline(ServerTimer::kCloseLinger));
    h.receive(c.text("ignored after our close"));
    EXPECT_EQ(h.events.size(), 1u);
    EXPECT_EQ(h.sockets_closed, 0);
    h.receive(c.close(4004));
    EXPECT_EQ(h.sockets_closed, 1);
    ASSERT_TRUE(c.from_server(h.take_written()));
    EXPECT_THAT(c.closes, ElementsAre(4004));
  }
  {
    ServerHarness h;
    FakeClient c;
    h.receive(c.upgrade_request());
    h.send_close(1001, "going away");
    h.fire_linger();
    EXPECT_EQ(h.sockets_closed, 1);
    EXPECT_EQ(h.conn().close_reason(), "no close frame from the client in time");
  }
}

struct BadFrame {
  const char* name;
  std::string bytes;
  uint16_t code;
};

TEST(ServerConnection, ABadFrameClosesWithItsCode) {
  FakeClient c;
  ws::Encoder unmasked(ws::Role::kServer);
  std::string plain_frame;
  (void)unmasked.text(plain_frame, "not masked");
  const std::vector<BadFrame> cases = {
      {"unmasked", plain_frame, ws::CloseCode::kProtocolError},
      {"bad utf-8", c.text("\xff\xfe"), ws::CloseCode::kInvalidPayload},
      {"too big", c.text(std::string(2000, 'a')), ws::CloseCode::kMessageTooBig},
      {"reserved opcode", c.frame(static_cast<ws::Opcode>(3), true, "x"),
       ws::CloseCode::kProtocolError},
  };
  for (const BadFrame& b : cases) {
    SCOPED_TRACE(b.name);
    ServerOptions o;
    o.max_message_bytes = 1024;
    ServerHarness h(o);
    FakeClient client;
    h.receive(client.upgrade_request() + b.bytes + client.text("never read"));
    ASSERT_EQ(h.events.size(), 2u);
    EXPECT_EQ(h.events[1].kind, ServerEventKind::kProtocolError);
    EXPECT_EQ(h.events[1].code, b.code);
    ASSERT_TRUE(client.from_server(h.take_written()));
    EXPECT_THAT(client.closes, ElementsAre(b.code));
    EXPECT_EQ(h.sockets_closed, 0);  // waits for the client's close
    h.fire_linger();
    EXPECT_EQ(h.sockets_closed, 1);
  }
}

// ------------------------------------------------------------ compression

TEST(ServerConnection, CompressionIsNegotiatedFromTheQuery) {
  for (auto [name, kind] : {std::pair{"zlib-stream", parse::Compression::kZlibStream},
                            std::pair{"zstd-stream", parse::Compression::kZstdStream}}) {
    SCOPED_TRACE(name);
    ServerHarness h;
    h.echo = true;
    FakeClient c(kind);
    const std::string target = std::string("/?v=10&encoding=json&compress=") + name;
    h.receive(c.upgrade_request(target) + c.text(R"({"op":1,"d":null})"));
    ASSERT_GE(h.events.size(), 1u);
    EXPECT_EQ(h.events[0], Upgrade(target, kind));
    EXPECT_EQ(h.conn().compression(), kind);
    EXPECT_EQ(h.conn().raw_frame_buffer(), nullptr);  // payloads must be compressed
    h.send_text(R"({"op":10,"d":{"heartbeat_interval":41250}})");
    ASSERT_TRUE(c.from_server(h.take_written()));
    EXPECT_THAT(c.texts, ElementsAre(R"({"op":1,"d":null})",
                                     R"({"op":10,"d":{"heartbeat_interval":41250}})"));
  }
  ServerHarness plain;
  FakeClient c;
  plain.receive(c.upgrade_request("/?compress="));
  EXPECT_EQ(plain.conn().compression(), parse::Compression::kNone);
  EXPECT_NE(plain.conn().raw_frame_buffer(), nullptr);

  ServerHarness unknown;
  unknown.receive(c.upgrade_request("/?compress=gzip"));
  ASSERT_EQ(unknown.events.size(), 1u);
  EXPECT_EQ(unknown.events[0].compression, std::nullopt);
  EXPECT_THAT(unknown.take_written(), StartsWith("HTTP/1.1 400"));
}

TEST(ServerConnection, FragmentingSplitsMessagesTheClientJoins) {
  for (auto kind : {parse::Compression::kNone, parse::Compression::kZlibStream,
                    parse::Compression::kZstdStream}) {
    SCOPED_TRACE(static_cast<int>(kind));
    ServerOptions o;
    o.fragment = 7;
    ServerHarness h(o);
    FakeClient c(kind);
    h.receive(c.upgrade_request(kind == parse::Compression::kNone ? "/"
                                : kind == parse::Compression::kZlibStream
                                    ? "/?compress=zlib-stream"
                                    : "/?compress=zstd-stream"));
    const std::string big =
        R"({"op":0,"t":"X","s":1,"d":{"text":")" + std::string(500, 'q') + "\"}}";
    h.send_text(big);
    h.send_text(R"({"op":11})");
    const std::string wire = h.take_written();
    ASSERT_TRUE(c.from_server(wire));
    EXPECT_THAT(c.texts, ElementsAre(big, R"({"op":11})"));
  }
}

// -------------------------------------------------------------------- TLS

TEST(ServerConnection, EverythingWorksThroughTls) {
  const tls::testing::TestContexts& ctx = tls::testing::GetTestContexts();
  ServerHarness h({}, &ctx.server);
  auto client = tls::Session::client(ctx.client, "localhost");
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(testing::TlsHandshake(h, *client));
  // The client's last flight goes with the request and the frames, in
  // 100-byte reads.
  FakeClient c;
  const std::string wire = testing::TlsWrite(*client, ClientStream(c));
  ASSERT_FALSE(wire.empty());
  for (size_t off = 0; off < wire.size(); off += 100) {
    h.receive(std::string_view(wire).substr(off, 100));
  }
  EXPECT_EQ(h.events, ExpectedEvents());
  EXPECT_THAT(h.notes, ElementsAre(ServerNote::kTlsHandshakeDone));
  // The answers come back encrypted.
  h.send_text(R"({"op":11})");
  std::string got;
  ASSERT_TRUE(testing::TlsRead(*client, h.take_written(), &got));
  ASSERT_TRUE(c.from_server(got));
  EXPECT_THAT(c.pongs, ElementsAre("hi", ""));
  EXPECT_THAT(c.texts, ElementsAre(R"({"op":11})"));
}

TEST(ServerConnection, TlsGarbageEndsTheConnection) {
  ServerHarness h({}, &tls::testing::GetTestContexts().server);
  h.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // plaintext on a TLS port
  EXPECT_TRUE(h.events.empty());
  EXPECT_EQ(h.sockets_closed, 1);
  ASSERT_FALSE(h.notes.empty());
  EXPECT_EQ(h.notes.back(), ServerNote::kTlsError);
}

}  // namespace
}  // namespace shardring::conn
