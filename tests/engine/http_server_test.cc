// tests/engine/http_server_test.cc: the HTTP server's sans-I/O parts: the
// request parser (limits, pipelining, every split), replies, one connection's
// answers, and listen addresses. The listener over loopback is in
// http_listener_test.cc.
#include "engine/http_server.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/metrics.h"

namespace shardring::engine {
namespace {

using Result = HttpRequestParser::Result;

// ---- HttpRequestParser

constexpr std::string_view kGet =
    "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: Prometheus/2.45\r\n"
    "Accept: text/plain;version=0.0.4\r\n\r\n";

// Feeds `text` in pieces cut at `cuts` and collects what next() says after
// each piece: the paths of the requests, or "!" and the error status.
std::vector<std::string> parse_in_pieces(std::string_view text, std::vector<size_t> cuts) {
  HttpRequestParser p;
  std::vector<std::string> got;
  size_t at = 0;
  cuts.push_back(text.size());
  for (const size_t cut : cuts) {
    p.feed(text.substr(at, cut - at));
    at = cut;
    for (Result r = p.next(); r != Result::kNeedMore; r = p.next()) {
      if (r == Result::kError) {
        got.push_back("!" + std::to_string(p.error_status()));
        return got;
      }
      got.push_back(p.request().path);
    }
  }
  return got;
}

Result parse_one(std::string_view text, HttpRequestParser& p) {
  p.feed(text);
  return p.next();
}

int error_of(std::string_view text) {
  HttpRequestParser p;
  return parse_one(text, p) == Result::kError ? p.error_status() : 0;
}

TEST(HttpParser, ParsesAGet) {
  HttpRequestParser p;
  ASSERT_EQ(parse_one(kGet, p), Result::kRequest);
  EXPECT_EQ(p.request().method, HttpMethod::kGet);
  EXPECT_EQ(p.request().path, "/metrics");
  EXPECT_EQ(p.request().minor_version, 1);
  EXPECT_TRUE(p.request().keep_alive);
  EXPECT_EQ(p.buffered(), 0u);
  EXPECT_EQ(p.next(), Result::kNeedMore);
}

TEST(HttpParser, SplitAtEveryByte) {
  for (size_t cut = 0; cut <= kGet.size(); ++cut) {
    EXPECT_EQ(parse_in_pieces(kGet, {cut}), std::vector<std::string>{"/metrics"}) << cut;
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < kGet.size(); ++i) every.push_back(i);
  EXPECT_EQ(parse_in_pieces(kGet, every), std::vector<std::string>{"/metrics"});
  // Nothing before the last byte.
  HttpRequestParser p;
  for (size_t i = 0; i + 1 < kGet.size(); ++i) {
    p.feed(kGet.substr(i, 1));
    ASSERT_EQ(p.next(), Result::kNeedMore) << i;
  }
  p.feed(kGet.substr(kGet.size() - 1));
  EXPECT_EQ(p.next(), Result::kRequest);
}

TEST(HttpParser, PipelinedRequestsSplitAnywhere) {
  const std::string two = std::string(kGet) + "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::vector<std::string> want = {"/metrics", "/healthz"};
  for (size_t cut = 0; cut <= two.size(); ++cut) {
    EXPECT_EQ(parse_in_pieces(two, {cut}), want) << cut;
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < two.size(); ++i) every.push_back(i);
  EXPECT_EQ(parse_in_pieces(two, every), want);

  HttpRequestParser p;
  p.feed(two);
  ASSERT_EQ(p.next(), Result::kRequest);
  EXPECT_EQ(p.request().method, HttpMethod::kGet);
  EXPECT_GT(p.buffered(), 0u);
  ASSERT_EQ(p.next(), Result::kRequest);
  EXPECT_EQ(p.request().method, HttpMethod::kHead);
  EXPECT_EQ(p.next(), Result::kNeedMore);
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(HttpParser, BareLineFeedsAndLeadingEmptyLines) {
  HttpRequestParser p;
  ASSERT_EQ(parse_one("\r\n\nGET /a HTTP/1.1\nHost: x\n\n", p), Result::kRequest);
  EXPECT_EQ(p.request().path, "/a");
}

TEST(HttpParser, KeepAliveRules) {
  const auto keep = [](std::string_view text) {
    HttpRequestParser p;
    EXPECT_EQ(parse_one(text, p), Result::kRequest) << text;
    return p.request().keep_alive;
  };
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: x\r\nconnection: TE, Close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
  // A later minor version is answered as 1.1.
  HttpRequestParser p;
  ASSERT_EQ(parse_one("GET / HTTP/1.7\r\nHost: x\r\n\r\n", p), Result::kRequest);
  EXPECT_EQ(p.request().minor_version, 1);
}

TEST(HttpParser, TargetForms) {
  const auto path = [](std::string_view target) {
    HttpRequestParser p;
    const std::string text = "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    return parse_one(text, p) == Result::kRequest ? p.request().path
                                                  : "!" + std::to_string(p.error_status());
  };
  EXPECT_EQ(path("/metrics"), "/metrics");
  EXPECT_EQ(path("/metrics?name[]=up"), "/metrics");
  EXPECT_EQ(path("/shards#x"), "/shards");
  EXPECT_EQ(path("/a%20b"), "/a%20b");
  EXPECT_EQ(path("http://host:9100/healthz?x"), "/healthz");
  EXPECT_EQ(path("HTTP://host"), "/");
  EXPECT_EQ(path("http://host?q"), "/");
  EXPECT_EQ(path("http:///x"), "!400");
  EXPECT_EQ(path("*"), "!400");
  EXPECT_EQ(path("metrics"), "!400");
}

TEST(HttpParser, HeadOfExactlyTheLimitPassesOneByteMoreIs431) {
  const std::string start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  const std::string at_limit =
      start + std::string(kMaxRequestBytes - start.size() - end.size(), 'a') + end;
  ASSERT_EQ(at_limit.size(), kMaxRequestBytes);
  HttpRequestParser p;
  EXPECT_EQ(parse_one(at_limit, p), Result::kRequest);
  const std::string over =
      start + std::string(kMaxRequestBytes - start.size() - end.size() + 1, 'a') + end;
  EXPECT_EQ(error_of(over), 431);
  // The same, fed a byte at a time.
  std::vector<size_t> every;
  for (size_t i = 1; i < over.size(); ++i) every.push_back(i);
  EXPECT_EQ(parse_in_pieces(over, every), std::vector<std::string>{"!431"});
  // A head with no end is refused as soon as it is past the limit.
  HttpRequestParser q;
  q.feed(std::string(kMaxRequestBytes, 'G'));
  EXPECT_EQ(q.next(), Result::kNeedMore);
  q.feed("G");
  EXPECT_EQ(q.next(), Result::kError);
  EXPECT_EQ(q.error_status(), 431);
}

TEST(HttpParser, LimitIsPerRequestNotPerConnection) {
  const std::string pad(kMaxRequestBytes / 2, 'a');
  const std::string one = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + "\r\n\r\n";
  HttpRequestParser p;
  for (int i = 0; i < 5; ++i) {
    p.feed(one);
    ASSERT_EQ(p.next(), Result::kRequest) << i;
  }
}

TEST(HttpParser, OtherMethodsAre405) {
  EXPECT_EQ(error_of("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), 405);
  EXPECT_EQ(error_of("DELETE / HTTP/1.1\r\n"), 405);  // known at the request line
  EXPECT_EQ(error_of("OPTIONS * HTTP/1.1\r\n"), 405);
  EXPECT_EQ(error_of("get / HTTP/1.1\r\n"), 405);  // methods are case-sensitive
}

TEST(HttpParser, BadSyntaxIs400) {
  for (const char* text : {
           "GET\r\n",
           "GET /\r\n",                                                // HTTP/0.9
           "GET  / HTTP/1.1\r\n",                                      // two spaces
           "GET / HTTP/1.1 \r\n",                                      // trailing space
           "G(T / HTTP/1.1\r\n",                                       // not a token
           "GET / HTTP/1\r\n",                                         // short version
           "GET / HTTP/1.1x\r\n",                                      // long version
           "GET / http/1.1\r\n",                                       // case
           "GET /\x01 HTTP/1.1\r\n",                                   // control in the target
           "GET / HTTP/1.1\r\nHost x\r\n\r\n",                         // no colon
           "GET / HTTP/1.1\r\nHost : x\r\n\r\n",                       // space before the colon
           "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",             // obsolete line folding
           "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",                     // bare CR
           "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",                    // control in a value
           "GET / HTTP/1.1\r\n\r\n",                                   // 1.1 without Host
           "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",             // two Hosts
           "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",             // two Hosts in 1.0
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",   // a body
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -0\r\n\r\n",  // not a number
           "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
       }) {
    EXPECT_EQ(error_of(text), 400) << text;
  }
  HttpRequestParser p;
  EXPECT_EQ(parse_one("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\n", p),
            Result::kRequest);
}

TEST(HttpParser, OtherMajorVersionsAre505) {
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
  EXPECT_EQ(error_of("GET / HTTP/0.9\r\n"), 505);
}

TEST(HttpParser, StaysInErrorAndReadsNoMore) {
  HttpRequestParser p;
  ASSERT_EQ(parse_one("BREW / HTTP/1.1\r\n", p), Result::kError);
  p.feed(kGet);
  EXPECT_EQ(p.next(), Result::kError);
  EXPECT_EQ(p.error_status(), 405);
}

// ---- responses

TEST(HttpReply, StatusLineHeadersAndBody) {
  HttpReply r;
  r.status = 404;
  r.body = "not here\n";
  EXPECT_EQ(build_http_reply(r, false, true),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 9\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\n"
            "not here\n");
}

TEST(HttpReply, HeadHasTheLengthButNoBody) {
  HttpReply r;
  r.content_type = std::string(kPrometheusContentType);
  r.body = std::string(1000, 'x');
  EXPECT_EQ(build_http_reply(r, true, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 1000\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
}

TEST(HttpReply, MethodNotAllowedSaysWhatIs) {
  const std::string out = build_http_reply(http_error_reply(405), false, false);
  EXPECT_NE(out.find("HTTP/1.1 405 Method Not Allowed\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\n\r\nMethod Not Allowed\n"), std::string::npos);
  EXPECT_EQ(http_reason(431), "Request Header Fields Too Large");
  EXPECT_EQ(http_reason(299), "");
}

// ---- HttpConnection

HttpReply echo_path(std::string_view path) {
  HttpReply r;
  r.status = path == "/missing" ? 404 : 200;
  r.body = std::string(path);
  return r;
}

TEST(HttpConnection, AnswersPipelinedRequestsOneAtATime) {
  const HttpHandler handler = echo_path;
  HttpConnection c(handler);
  c.on_read("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.requests(), 1u);
  EXPECT_FALSE(c.wants_read());  // the first answer is still to be written
  const std::string first(c.output());
  EXPECT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(first.ends_with("\r\n\r\n/one"));
  // Written in two goes: the second request waits for the whole first answer.
  c.on_written(5);
  EXPECT_EQ(c.output(), first.substr(5));
  c.on_written(first.size() - 5);
  EXPECT_EQ(c.requests(), 2u);
  EXPECT_TRUE(std::string(c.output()).starts_with("HTTP/1.1 404 Not Found\r\n"));
  c.on_written(c.output().size());
  EXPECT_TRUE(c.output().empty());
  EXPECT_TRUE(c.wants_read());
  EXPECT_FALSE(c.done());
}

TEST(HttpConnection, ConnectionCloseEndsAfterTheAnswer) {
  const HttpHandler handler = echo_path;
  HttpConnection c(handler);
  c.on_read("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n");
  EXPECT_NE(c.output().find("Connection: close\r\n"), std::string_view::npos);
  EXPECT_FALSE(c.done());
  c.on_written(c.output().size());
  EXPECT_TRUE(c.done());
  EXPECT_FALSE(c.wants_read());
  EXPECT_EQ(c.requests(), 1u);
}

TEST(HttpConnection, ErrorIsAnsweredThenClosed) {
  const HttpHandler handler = echo_path;
  HttpConnection c(handler);
  c.on_read("PUT /a HTTP/1.1\r\n");
  EXPECT_TRUE(std::string(c.output()).starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_NE(c.output().find("Connection: close\r\n"), std::string_view::npos);
  c.on_read(kGet);  // ignored
  c.on_written(c.output().size());
  EXPECT_TRUE(c.done());
  EXPECT_TRUE(c.output().empty());
  EXPECT_EQ(c.requests(), 0u);
}

TEST(HttpConnection, HeadGetsNoBody) {
  const HttpHandler handler = echo_path;
  HttpConnection c(handler);
  c.on_read("HEAD /abc HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(std::string(c.output())
                  .ends_with("Content-Length: 4\r\nCache-Control: "
                             "no-store\r\nConnection: keep-alive\r\n\r\n"));
}

TEST(HttpConnection, EndOfInputAnswersWhatIsWhole) {
  const HttpHandler handler = echo_path;
  HttpConnection c(handler);
  c.on_read("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c");
  c.on_read_eof();
  EXPECT_FALSE(c.done());
  c.on_written(c.output().size());
  EXPECT_FALSE(c.done());  // /b is answered too
  EXPECT_TRUE(c.output().ends_with("/b"));
  c.on_written(c.output().size());
  EXPECT_TRUE(c.done());  // /c never ended
  EXPECT_EQ(c.requests(), 2u);
}

TEST(HttpConnection, AnswerBudgetHoldsThePipeline) {
  const HttpHandler handler = echo_path;
  HttpConnection c(handler);
  EXPECT_FALSE(c.held_by_budget());
  c.set_answer_budget(1);
  c.on_read("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(c.output().ends_with("/a"));
  c.on_written(c.output().size());
  EXPECT_TRUE(c.output().empty());
  EXPECT_TRUE(c.held_by_budget());
  EXPECT_EQ(c.requests(), 1u);
  c.set_answer_budget(1);
  EXPECT_TRUE(c.output().ends_with("/b"));
  c.on_written(c.output().size());
  EXPECT_FALSE(c.held_by_budget());  // nothing more is waiting
  // With the budget spent a part of a head "may" be a request: one more
  // pass finds it is not, and then it is not held.
  c.on_read("GET /c HTTP/1.1\r\n");
  c.set_answer_budget(1);
  EXPECT_TRUE(c.output().empty());
  EXPECT_FALSE(c.held_by_budget());
}

// ---- addresses

TEST(ListenAddress, Parses) {
  auto a = parse_listen_address("127.0.0.1:9100");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9100);
  EXPECT_FALSE(a->ipv6);
  a = parse_listen_address("[::1]:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  EXPECT_TRUE(a->ipv6);
  EXPECT_TRUE(parse_listen_address("0.0.0.0:65535").ok());
  EXPECT_TRUE(parse_listen_address("[::]:80").ok());
  for (const char* bad : {"", "9100", ":9100", "localhost:9100", "127.0.0.1", "127.0.0.1:",
                          "127.0.0.1:65536", "127.0.0.1:12a", "127.0.0.1:-1", "::1:9100", "[::1]",
                          "[::1]9100", "[127.0.0.1]:80", "1.2.3:80", "[::1:80"}) {
    EXPECT_FALSE(parse_listen_address(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace shardring::engine
