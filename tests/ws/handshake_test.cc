// tests/ws/handshake_test.cc: the opening handshake of RFC 6455 section 4,
// both roles, fed in arbitrary pieces, with every failure named.
#include "ws/handshake.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/ws/ws_test_util.h"
#include "ws/decoder.h"

namespace shardring::ws {
namespace {

using namespace testing_util;

// RFC 6455 4.1's sample nonce: its base64 is dGhlIHNhbXBsZSBub25jZQ==.
std::span<const std::byte, 16> SampleNonce() {
  static const std::string nonce = "the sample nonce";
  return std::span<const std::byte, 16>(AsBytes(nonce).data(), 16);
}

const std::string kRfcResponse =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

const std::string kRfcRequest =
    "GET /chat?v=10&encoding=json&compress=zlib-stream HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

// Feeds `wire` split at `cut`; returns the result and the bytes left over.
template <typename H>
Errc FeedSplit(H& h, const std::string& wire, size_t cut, std::string* leftover = nullptr) {
  Errc e = Errc::kNeedMore;
  for (std::string_view piece :
       {std::string_view(wire).substr(0, cut), std::string_view(wire).substr(cut)}) {
    size_t consumed = 0;
    e = h.feed(AsBytes(piece), consumed);
    if (e != Errc::kNeedMore) {
      EXPECT_LE(consumed, piece.size());
      if (leftover) *leftover = std::string(piece.substr(consumed));
      return e;
    }
    EXPECT_EQ(consumed, piece.size());
  }
  return e;
}

template <typename H>
Errc FeedAll(H& h, const std::string& wire) {
  return FeedSplit(h, wire, wire.size());
}

std::string Response(std::string_view headers) {
  return "HTTP/1.1 101 Switching Protocols\r\n" + std::string(headers) + "\r\n";
}

// ---- Client ------------------------------------------------------------------

TEST(WsClientHandshake, WritesTheUpgradeRequestWithTheCallersNonce) {
  ClientHandshake hs(SampleNonce());
  EXPECT_EQ(hs.key(), "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(hs.expected_accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  std::string out;
  const Header extra[] = {{"User-Agent", "shardring/0.1"}};
  ASSERT_EQ(hs.write_request(out, "gateway.discord.gg", "/?v=10&encoding=json", extra), Errc::kOk);
  EXPECT_EQ(out,
            "GET /?v=10&encoding=json HTTP/1.1\r\n"
            "Host: gateway.discord.gg\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "User-Agent: shardring/0.1\r\n"
            "\r\n");
}

TEST(WsClientHandshake, RefusesToWriteARequestThatInjectsHeaders) {
  ClientHandshake hs(SampleNonce());
  std::string out;
  EXPECT_EQ(hs.write_request(out, "h\r\nX: 1", "/"), Errc::kMalformed);
  EXPECT_EQ(hs.write_request(out, "h", "no-slash"), Errc::kMalformed);
  EXPECT_EQ(hs.write_request(out, "h", "/a b"), Errc::kMalformed);
  const Header bad[] = {{"X-Evil", "a\nb"}};
  EXPECT_EQ(hs.write_request(out, "h", "/", bad), Errc::kMalformed);
  const Header bad_name[] = {{"Bad Name", "v"}};
  EXPECT_EQ(hs.write_request(out, "h", "/", bad_name), Errc::kMalformed);
  EXPECT_TRUE(out.empty());
}

TEST(WsClientHandshake, AcceptsTheRfcResponseFedInAnyTwoPieces) {
  for (size_t cut = 0; cut <= kRfcResponse.size(); ++cut) {
    ClientHandshake hs(SampleNonce());
    std::string left;
    ASSERT_EQ(FeedSplit(hs, kRfcResponse, cut, &left), Errc::kOk) << cut;
    EXPECT_EQ(hs.status(), 101);
    EXPECT_TRUE(left.empty());
  }
}

TEST(WsClientHandshake, AcceptsTheResponseOneByteAtATime) {
  ClientHandshake hs(SampleNonce());
  for (size_t i = 0; i < kRfcResponse.size(); ++i) {
    size_t consumed = 0;
    const Errc e = hs.feed(AsBytes(kRfcResponse).subspan(i, 1), consumed);
    ASSERT_EQ(consumed, 1u);
    ASSERT_EQ(e, i + 1 == kRfcResponse.size() ? Errc::kOk : Errc::kNeedMore);
  }
}

TEST(WsClientHandshake, HandsBackTheFramesThatShareTheLastRead) {
  const std::string hello =
      Frame("{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}", 0x1, true, false);
  const std::string wire = kRfcResponse + hello;
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    ClientHandshake hs(SampleNonce());
    std::string left;
    ASSERT_EQ(FeedSplit(hs, wire, cut, &left), Errc::kOk);
    // What came after the head in the completing read, plus any later
    // read, is exactly the frame.
    const std::string rest = cut >= kRfcResponse.size() ? left + wire.substr(cut) : left;
    EXPECT_EQ(rest, hello) << cut;
    Decoder dec(Role::kClient);
    EXPECT_THAT(DecodeWhole(dec, hello).messages,
                testing::ElementsAre("text:{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}"));
  }
}

TEST(WsClientHandshake, MatchesUpgradeAndConnectionCaseInsensitively) {
  ClientHandshake hs(SampleNonce());
  EXPECT_EQ(FeedAll(hs, Response("upgrade: WebSocket\r\n"
                                 "CONNECTION: keep-alive, UPGRADE\r\n"
                                 "sec-websocket-accept: "
                                 "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")),
            Errc::kOk);
}

TEST(WsClientHandshake, KeepsTheStatusOfARefusal) {
  ClientHandshake hs(SampleNonce());
  EXPECT_EQ(FeedAll(hs, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
            Errc::kNotSwitching);
  EXPECT_EQ(hs.status(), 401);
  EXPECT_EQ(hs.head().header("content-length"), "0");
  ClientHandshake ok_status(SampleNonce());
  EXPECT_EQ(FeedAll(ok_status, "HTTP/1.1 200 OK\r\n\r\n"), Errc::kNotSwitching);
  EXPECT_EQ(ok_status.status(), 200);
}

TEST(WsClientHandshake, NamesEachMissingOrWrongHeader) {
  const std::string accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
  const std::string up = "Upgrade: websocket\r\n";
  const std::string conn = "Connection: Upgrade\r\n";
  struct Case {
    std::string headers;
    Errc want;
  } cases[] = {
      {conn + accept, Errc::kMissingUpgrade},
      {"Upgrade: h2c\r\n" + conn + accept, Errc::kMissingUpgrade},
      {up + accept, Errc::kMissingConnection},
      {up + "Connection: close\r\n" + accept, Errc::kMissingConnection},
      {up + conn, Errc::kBadAccept},
      {up + conn + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n", Errc::kBadAccept},
      {up + conn + accept + accept, Errc::kBadAccept},
      {up + conn + accept + "Sec-WebSocket-Extensions: permessage-deflate\r\n",
       Errc::kUnrequestedExtension},
      {up + conn + accept + "Sec-WebSocket-Protocol: chat\r\n", Errc::kUnrequestedProtocol},
  };
  for (const Case& c : cases) {
    ClientHandshake hs(SampleNonce());
    EXPECT_EQ(FeedAll(hs, Response(c.headers)), c.want) << c.headers;
    EXPECT_TRUE(is_fatal(c.want));
  }
}

TEST(WsClientHandshake, RefusesMalformedHeads) {
  for (std::string bad :
       {std::string("HTTP/1.1 1O1 Switching\r\n\r\n"), std::string("HTTP/1.1\r\n\r\n"),
        std::string("ICY 101 x\r\n\r\n"), std::string("\r\n\r\n"),
        Response("Upgrade: websocket\r\n folded\r\n"), Response("Upgrade : websocket\r\n"),
        Response("NoColonHere\r\n"), Response("X: a\x01z\r\n"), Response("X: a\nb\r\n")}) {
    ClientHandshake hs(SampleNonce());
    EXPECT_EQ(FeedAll(hs, bad), Errc::kMalformed) << testing::PrintToString(bad);
  }
}

TEST(WsClientHandshake, RefusesAHeadLargerThanTheLimit) {
  ClientHandshake hs(SampleNonce());
  std::string big = "HTTP/1.1 101 Switching Protocols\r\n";
  while (big.size() < kMaxHandshakeBytes) big += "X-Filler: aaaaaaaaaaaaaaaa\r\n";
  size_t consumed = 0;
  Errc e = Errc::kNeedMore;
  for (size_t at = 0; at < big.size() && e == Errc::kNeedMore; at += 1000) {
    e = hs.feed(AsBytes(big).subspan(at, std::min<size_t>(1000, big.size() - at)), consumed);
  }
  EXPECT_EQ(e, Errc::kHeaderTooLarge);
  EXPECT_EQ(hs.feed(AsBytes("\r\n\r\n"), consumed), Errc::kHeaderTooLarge);
}

TEST(WsClientHandshake, AcceptsAHeadOfExactlyTheLimit) {
  std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Accept: "
      "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Pad: ";
  head += std::string(kMaxHandshakeBytes - head.size() - 4, 'p') + "\r\n\r\n";
  ASSERT_EQ(head.size(), kMaxHandshakeBytes);
  ClientHandshake hs(SampleNonce());
  EXPECT_EQ(FeedAll(hs, head + "extra"), Errc::kOk);
}

// ---- Server ------------------------------------------------------------------

TEST(WsServerHandshake, ParsesTheRfcRequestFedInAnyTwoPieces) {
  for (size_t cut = 0; cut <= kRfcRequest.size(); ++cut) {
    ServerHandshake hs;
    ASSERT_EQ(FeedSplit(hs, kRfcRequest, cut), Errc::kOk) << cut;
    EXPECT_EQ(hs.method(), "GET");
    EXPECT_EQ(hs.path(), "/chat");
    EXPECT_EQ(hs.query(), "v=10&encoding=json&compress=zlib-stream");
    EXPECT_EQ(hs.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    EXPECT_EQ(hs.header("origin"), "http://example.com");
  }
}

TEST(WsServerHandshake, ExposesTheGatewayQueryParameters) {
  ServerHandshake hs;
  ASSERT_EQ(FeedAll(hs, kRfcRequest), Errc::kOk);
  EXPECT_EQ(query_param(hs.query(), "v"), "10");
  EXPECT_EQ(query_param(hs.query(), "encoding"), "json");
  EXPECT_EQ(query_param(hs.query(), "compress"), "zlib-stream");
  EXPECT_EQ(query_param(hs.query(), "missing"), std::nullopt);
  EXPECT_EQ(query_param("flag&v=1", "flag"), "");
  EXPECT_EQ(query_param("vv=1&v=2", "v"), "2");
}

TEST(WsServerHandshake, WritesThe101WithTheAcceptValue) {
  ServerHandshake hs;
  ASSERT_EQ(FeedAll(hs, kRfcRequest), Errc::kOk);
  std::string out;
  hs.write_accept(out);
  EXPECT_EQ(out, kRfcResponse);
}

TEST(WsServerHandshake, ReportsAPlainGetAsNotAnUpgrade) {
  ServerHandshake hs;
  const std::string req =
      "GET /api/v10/gateway/bot HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
      "Authorization: Bot abc\r\n\r\n";
  EXPECT_EQ(FeedAll(hs, req), Errc::kNotUpgrade);
  EXPECT_EQ(hs.method(), "GET");
  EXPECT_EQ(hs.path(), "/api/v10/gateway/bot");
  EXPECT_EQ(hs.query(), "");
  EXPECT_EQ(hs.header("authorization"), "Bot abc");
  ServerHandshake post;
  EXPECT_EQ(FeedAll(post, "POST /x HTTP/1.1\r\nHost: h\r\n\r\n"), Errc::kNotUpgrade);
  EXPECT_EQ(post.method(), "POST");
  ServerHandshake http10;
  EXPECT_EQ(FeedAll(http10, "GET / HTTP/1.0\r\n\r\n"), Errc::kNotUpgrade);
}

TEST(WsServerHandshake, NamesEachBadUpgradeAndPicksItsStatus) {
  auto req = [](std::string_view method, std::string_view version, std::string_view headers) {
    return std::string(method) + " / " + std::string(version) + "\r\n" + std::string(headers) +
           "\r\n";
  };
  const std::string host = "Host: h\r\n";
  const std::string up = "Upgrade: websocket\r\n";
  const std::string conn = "Connection: keep-alive, Upgrade\r\n";
  const std::string ver = "Sec-WebSocket-Version: 13\r\n";
  const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  struct Case {
    std::string wire;
    Errc want;
    int status;
  } cases[] = {
      {req("GET", "HTTP/1.1", host + up + conn + ver + key), Errc::kOk, 0},
      {req("POST", "HTTP/1.1", host + up + conn + ver + key), Errc::kBadMethod, 405},
      {req("GET", "HTTP/1.0", host + up + conn + ver + key), Errc::kMalformed, 400},
      {req("GET", "HTTP/1.1", up + conn + ver + key), Errc::kMissingHost, 400},
      {req("GET", "HTTP/1.1", host + host + up + conn + ver + key), Errc::kMalformed, 400},
      {req("GET", "HTTP/1.1", host + up + ver + key), Errc::kMissingConnection, 400},
      {req("GET", "HTTP/1.1", host + up + conn + key), Errc::kBadVersion, 426},
      {req("GET", "HTTP/1.1", host + up + conn + "Sec-WebSocket-Version: 8\r\n" + key),
       Errc::kBadVersion, 426},
      {req("GET", "HTTP/1.1", host + up + conn + ver), Errc::kBadKey, 400},
      {req("GET", "HTTP/1.1", host + up + conn + ver + "Sec-WebSocket-Key: c2hvcnQ=\r\n"),
       Errc::kBadKey, 400},
      {req("GET", "HTTP/1.1",
           host + up + conn + ver + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n"),
       Errc::kBadKey, 400},
      {req("GET", "HTTP/1.1", host + up + conn + ver + key + key), Errc::kBadKey, 400},
      {"GET /x HTTP/1.1 extra\r\n\r\n", Errc::kMalformed, 400},
      {"GET x HTTP/1.1\r\nHost: h\r\n\r\n", Errc::kMalformed, 400},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", Errc::kMalformed, 400},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.wire);
    ServerHandshake hs;
    ASSERT_EQ(FeedAll(hs, c.wire), c.want);
    if (c.want == Errc::kOk) continue;
    std::string out;
    ServerHandshake::write_error(out, c.want);
    EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 " + std::to_string(c.status));
    EXPECT_EQ(out.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos, c.status == 426);
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
  }
}

TEST(WsServerHandshake, Answers426WithTheVersionWeSpeak) {
  std::string out;
  ServerHandshake::write_error(out, Errc::kBadVersion);
  EXPECT_EQ(out,
            "HTTP/1.1 426 Upgrade Required\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Connection: close\r\n"
            "Content-Length: 0\r\n\r\n");
}

TEST(WsServerHandshake, RefusesARequestHeadLargerThanTheLimit) {
  ServerHandshake hs;
  std::string big = "GET / HTTP/1.1\r\n" + std::string(kMaxHandshakeBytes, 'a');
  EXPECT_EQ(FeedAll(hs, big), Errc::kHeaderTooLarge);
  std::string out;
  ServerHandshake::write_error(out, Errc::kHeaderTooLarge);
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 431");
}

TEST(WsServerHandshake, LeavesTheFirstClientFrameToTheDecoder) {
  const std::string frame = Frame("{\"op\":2}", 0x1, true, true);
  const std::string wire = kRfcRequest + frame;
  ServerHandshake hs;
  std::string left;
  ASSERT_EQ(FeedSplit(hs, wire, wire.size(), &left), Errc::kOk);
  EXPECT_EQ(left, frame);
  Decoder dec(Role::kServer);
  EXPECT_THAT(DecodeWhole(dec, left).messages, testing::ElementsAre("text:{\"op\":2}"));
}

TEST(WsHandshake, ClientAndServerAgreeEndToEnd) {
  std::string nonce_bytes = "0123456789abcdef";
  ClientHandshake client(std::span<const std::byte, 16>(AsBytes(nonce_bytes).data(), 16));
  std::string request;
  ASSERT_EQ(client.write_request(request, "127.0.0.1:8080", "/?v=10&encoding=json"), Errc::kOk);
  ServerHandshake server;
  ASSERT_EQ(FeedAll(server, request), Errc::kOk);
  EXPECT_EQ(query_param(server.query(), "encoding"), "json");
  std::string response;
  server.write_accept(response);
  EXPECT_EQ(FeedAll(client, response), Errc::kOk);
}

TEST(WsHandshake, WritesAPlainHttpResponseWithContentLength) {
  std::string out;
  const Header h[] = {{"Content-Type", "application/json"}};
  write_http_response(out, 200, "OK", h, "{\"shards\":1}");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "Content-Length: 12\r\n\r\n{\"shards\":1}");
}

}  // namespace
}  // namespace shardring::ws
