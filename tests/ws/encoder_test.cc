// tests/ws/encoder_test.cc: ws::Encoder byte for byte against RFC 6455 5.7,
// the close handshake (5.5.1, 7.1), and round trips through ws::Decoder.
#include "ws/encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/ws/ws_test_util.h"
#include "ws/decoder.h"

namespace shardring::ws {
namespace {

using namespace testing_util;

constexpr MaskKey kRfcKey = {std::byte{0x37}, std::byte{0xfa}, std::byte{0x21}, std::byte{0x3d}};

TEST(WsEncoder, WritesTheRfcUnmaskedTextExampleAsAServer) {
  Encoder enc(Role::kServer);
  std::string out;
  ASSERT_EQ(enc.text(out, "Hello"), Errc::kOk);
  EXPECT_EQ(out, Bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

TEST(WsEncoder, WritesTheRfcMaskedTextExampleAsAClient) {
  Encoder enc(Role::kClient);
  std::string out;
  ASSERT_EQ(enc.text(out, "Hello", kRfcKey), Errc::kOk);
  EXPECT_EQ(out, Bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(WsEncoder, WritesTheRfcFragmentedTextExample) {
  Encoder enc(Role::kServer);
  std::string out;
  ASSERT_EQ(enc.fragment(out, Opcode::kText, false, AsBytes("Hel")), Errc::kOk);
  ASSERT_EQ(enc.fragment(out, Opcode::kContinuation, true, AsBytes("lo")), Errc::kOk);
  EXPECT_EQ(out, Bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}));
  EXPECT_EQ(enc.fragment(out, Opcode::kPing, true, {}), Errc::kBadControlFrame);
}

TEST(WsEncoder, WritesTheRfcPingAndMaskedPongExamples) {
  Encoder server(Role::kServer);
  std::string ping;
  ASSERT_EQ(server.ping(ping, AsBytes("Hello")), Errc::kOk);
  EXPECT_EQ(ping, Bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  Encoder client(Role::kClient);
  std::string pong;
  ASSERT_EQ(client.pong(pong, AsBytes("Hello"), kRfcKey), Errc::kOk);
  EXPECT_EQ(pong, Bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(WsEncoder, WritesTheRfc256ByteAnd64KiBBinaryHeaders) {
  Encoder enc(Role::kServer);
  std::string out;
  const std::string p256(256, 'q');
  ASSERT_EQ(enc.binary(out, AsBytes(p256)), Errc::kOk);
  EXPECT_EQ(out.substr(0, 4), Bytes({0x82, 0x7E, 0x01, 0x00}));
  EXPECT_EQ(out.substr(4), p256);
  out.clear();
  const std::string p64k(65536, 'r');
  ASSERT_EQ(enc.binary(out, AsBytes(p64k)), Errc::kOk);
  EXPECT_EQ(out.substr(0, 10), Bytes({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
  EXPECT_EQ(out.size(), 10u + 65536u);
}

TEST(WsEncoder, UsesTheShortestLengthFormAtEachBoundary) {
  Encoder enc(Role::kServer);
  for (size_t n : {0, 125, 126, 65535, 65536}) {
    std::string out;
    ASSERT_EQ(enc.binary(out, AsBytes(std::string(n, 'a'))), Errc::kOk);
    EXPECT_EQ(out.size() - n, n < 126 ? 2u : n <= 65535 ? 4u : 10u) << n;
    EXPECT_EQ(enc.frame_size(n), out.size());
  }
  Encoder client(Role::kClient);
  EXPECT_EQ(client.frame_size(0), 6u);
  EXPECT_EQ(client.frame_size(70000), 14u + 70000u);
}

TEST(WsEncoder, RoundTripsThroughTheDecoderInBothRoles) {
  std::mt19937 rng(99);
  for (Role from : {Role::kClient, Role::kServer}) {
    Encoder enc(from);
    for (size_t n : {0, 1, 3, 7, 8, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70001}) {
      std::string p(n, '\0');
      for (char& c : p) c = static_cast<char>(rng());
      MaskKey key;
      for (auto& b : key) b = std::byte(rng());
      std::string wire;
      ASSERT_EQ(enc.binary(wire, AsBytes(p), key), Errc::kOk);
      Decoder dec(from == Role::kClient ? Role::kServer : Role::kClient);
      const Decoded d = DecodeWhole(dec, wire);
      ASSERT_EQ(d.messages.size(), 1u);
      EXPECT_EQ(d.messages[0], "binary:" + p) << n;
    }
  }
}

TEST(WsEncoder, DoesNotReallocateOnceTheOutputCapacityIsWarm) {
  Encoder enc(Role::kClient);
  std::string out;
  out.reserve(4096);
  const char* data = out.data();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    ASSERT_EQ(enc.text(out, std::string(1000, 'j'), kRfcKey), Errc::kOk);
    ASSERT_EQ(out.data(), data);
  }
}

TEST(WsEncoder, WritesCloseWithCodeAndReason) {
  Encoder enc(Role::kServer);
  std::string out;
  ASSERT_EQ(enc.close(out, 4000, "zombie"), Errc::kOk);
  EXPECT_EQ(out, Bytes({0x88, 0x08, 0x0F, 0xA0}) + "zombie");
  EXPECT_TRUE(enc.close_sent());
}

TEST(WsEncoder, WritesAnEmptyCloseForNoStatus) {
  Encoder enc(Role::kServer);
  std::string out;
  ASSERT_EQ(enc.close(out, CloseCode::kNoStatusReceived), Errc::kOk);
  EXPECT_EQ(out, Bytes({0x88, 0x00}));
}

TEST(WsEncoder, RefusesCloseCodesAndReasonsThatMayNotBeSent) {
  Encoder enc(Role::kServer);
  std::string out;
  EXPECT_EQ(enc.close(out, 1006), Errc::kBadCloseCode);
  EXPECT_EQ(enc.close(out, 1015), Errc::kBadCloseCode);
  EXPECT_EQ(enc.close(out, 5000), Errc::kBadCloseCode);
  EXPECT_EQ(enc.close(out, CloseCode::kNoStatusReceived, "why"), Errc::kBadCloseCode);
  EXPECT_EQ(enc.close(out, 1000, std::string(124, 'r')), Errc::kBadControlFrame);
  EXPECT_EQ(enc.close(out, 1000, "\xC3"), Errc::kInvalidUtf8);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(enc.close_sent());
  EXPECT_EQ(enc.close(out, 1000, std::string(123, 'r')), Errc::kOk);
  EXPECT_EQ(out.size(), 2u + 125u);
}

TEST(WsEncoder, RefusesControlPayloadsOver125Bytes) {
  Encoder enc(Role::kClient);
  std::string out;
  EXPECT_EQ(enc.ping(out, AsBytes(std::string(126, 'p'))), Errc::kBadControlFrame);
  EXPECT_EQ(enc.pong(out, AsBytes(std::string(126, 'p'))), Errc::kBadControlFrame);
  EXPECT_TRUE(out.empty());
}

TEST(WsEncoder, SendsNothingAfterItsClose) {
  Encoder enc(Role::kClient);
  std::string out;
  ASSERT_EQ(enc.close(out, 1000, "", kRfcKey), Errc::kOk);
  const size_t size = out.size();
  EXPECT_EQ(enc.text(out, "late"), Errc::kClosed);
  EXPECT_EQ(enc.ping(out, {}), Errc::kClosed);
  EXPECT_EQ(enc.close(out, 1000), Errc::kClosed);
  EXPECT_EQ(out.size(), size);
}

TEST(WsEncoder, AnswersAPingWithAPongCarryingTheSamePayload) {
  std::string wire = Frame("beat-42", 0x9, true, false);
  Decoder dec(Role::kClient);
  dec.feed(AsMutableBytes(wire));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  Encoder enc(Role::kClient);
  std::string out;
  ASSERT_EQ(enc.reply(out, m, kRfcKey), Errc::kOk);
  Decoder server(Role::kServer);
  EXPECT_THAT(DecodeWhole(server, out).messages, testing::ElementsAre("pong:beat-42"));
}

TEST(WsEncoder, AnswersDataAndPongsWithNothing) {
  Encoder enc(Role::kServer);
  std::string out;
  Message m;
  m.kind = MessageKind::kText;
  EXPECT_EQ(enc.reply(out, m), Errc::kOk);
  m.kind = MessageKind::kPong;
  EXPECT_EQ(enc.reply(out, m), Errc::kOk);
  EXPECT_TRUE(out.empty());
}

// RFC 6455 7.1.2-7.1.4 from both ends: the client starts the close, the
// server echoes the code, and after that neither side sends data.
TEST(WsEncoder, CompletesTheCloseHandshakeFromEitherSide) {
  Encoder client_tx(Role::kClient), server_tx(Role::kServer);
  Decoder client_rx(Role::kClient), server_rx(Role::kServer);

  std::string c2s;
  ASSERT_EQ(client_tx.close(c2s, 4000, "resume later", kRfcKey), Errc::kOk);
  server_rx.feed(AsMutableBytes(c2s));
  Message got;
  ASSERT_EQ(server_rx.next(got), Errc::kOk);
  ASSERT_EQ(got.kind, MessageKind::kClose);
  EXPECT_EQ(got.close_code, 4000);
  EXPECT_EQ(got.close_reason, "resume later");

  std::string s2c;
  ASSERT_EQ(server_tx.reply(s2c, got), Errc::kOk);  // echoes 4000
  EXPECT_EQ(s2c, Bytes({0x88, 0x02, 0x0F, 0xA0}));
  EXPECT_TRUE(server_tx.close_sent());
  EXPECT_TRUE(server_rx.close_received());
  EXPECT_EQ(server_tx.text(s2c, "no"), Errc::kClosed);

  client_rx.feed(AsMutableBytes(s2c));
  ASSERT_EQ(client_rx.next(got), Errc::kOk);
  EXPECT_EQ(got.close_code, 4000);
  std::string nothing;
  ASSERT_EQ(client_tx.reply(nothing, got), Errc::kOk);  // ours came first
  EXPECT_TRUE(nothing.empty());
  EXPECT_TRUE(client_tx.close_sent() && client_rx.close_received());
  EXPECT_EQ(client_rx.next(got), Errc::kClosed);
}

TEST(WsEncoder, EchoesAnEmptyCloseWithAnEmptyClose) {
  std::string wire = Frame("", 0x8, true, false);
  Decoder dec(Role::kClient);
  dec.feed(AsMutableBytes(wire));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  Encoder enc(Role::kClient);
  std::string out;
  ASSERT_EQ(enc.reply(out, m, kRfcKey), Errc::kOk);
  EXPECT_EQ(out, Bytes({0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d}));
}

TEST(WsEncoder, WriteFrameFillsACallerBufferExactly) {
  Encoder enc(Role::kClient);
  std::byte buf[64];
  std::memset(buf, 0xEE, sizeof buf);
  const size_t n = enc.write_frame(buf, Opcode::kText, true, AsBytes("Hello"), kRfcKey);
  ASSERT_EQ(n, 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf), n),
            Bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  EXPECT_EQ(buf[n], std::byte{0xEE});
}

}  // namespace
}  // namespace shardring::ws
