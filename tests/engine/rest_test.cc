#include "engine/rest.h"

#include <gtest/gtest.h>

namespace shardring::engine {
namespace {

TEST(HttpResponse, ReadsContentLengthBodies) {
  auto r = parse_http_response(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
      true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"a\":1}");
}

TEST(HttpResponse, DecodesChunkedBodies) {
  auto r = parse_http_response(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
      "chunked\r\n\r\n4\r\n{\"a\"\r\nA;ext=1\r\n:12345678}\r\n0\r\n\r\n",
      false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "{\"a\":12345678}");
}

TEST(HttpResponse, KnowsWhenABodyIsNotCompleteYet) {
  EXPECT_FALSE(
      parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", false).ok());
  EXPECT_FALSE(parse_http_response("HTTP/1.1 200 OK\r\nContent-Le", false).ok());
  EXPECT_FALSE(parse_http_response("HTTP/1.1 200 OK\r\n\r\nrest", false).ok());
  auto r = parse_http_response("HTTP/1.1 200 OK\r\n\r\nrest", true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "rest");
}

TEST(HttpResponse, KeepsTheStatusOfRefusals) {
  auto r = parse_http_response(
      "HTTP/1.1 401 Unauthorized\r\nContent-Length: 40\r\n\r\n{\"message\": \"401: Unauthorized\", "
      "\"code\": 0}",
      true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
}

TEST(HttpResponse, RefusesGarbage) {
  EXPECT_FALSE(parse_http_response("SSH-2.0-OpenSSH\r\n\r\n", true).ok());
  EXPECT_FALSE(parse_http_response("HTTP/1.1 abc OK\r\n\r\n", true).ok());
  EXPECT_FALSE(
      parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true)
          .ok());
  EXPECT_FALSE(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", true).ok());
}

}  // namespace
}  // namespace shardring::engine
