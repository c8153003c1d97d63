#include "engine/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.h"

namespace shardring::engine {
namespace {

using Result = HttpRequestParser::Result;
using Clock = HttpListener::Clock;
using namespace std::chrono_literals;

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

// ---- HttpListener over loopback

// A blocking client socket with a receive timeout, so a test that goes
// wrong fails instead of hanging.
int dial(uint16_t port, bool ipv6 = false) {
  const int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int rc;
  if (ipv6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_loopback;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  EXPECT_EQ(rc, 0) << std::strerror(errno);
  return fd;
}

void send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << std::strerror(errno);
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// Bytes read past a reply, per client socket: pipelined replies can come
// in one read.
std::map<int, std::string> unread;

// Closes a client socket and forgets what it had read ahead.
void hang_up(int fd) {
  unread.erase(fd);
  close(fd);
}

struct Reply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

// Reads one response; `head_only` for an answer to HEAD. status 0: the
// connection ended (or was reset) first.
Reply read_reply(int fd, bool head_only = false) {
  Reply r;
  std::string buf = std::move(unread[fd]);
  unread.erase(fd);
  char chunk[65536];
  size_t head_end;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return r;
    buf.append(chunk, static_cast<size_t>(n));
  }
  r.head = buf.substr(0, head_end + 4);
  r.status = std::stoi(r.head.substr(9, 3));
  const size_t cl = r.head.find("Content-Length: ");
  const size_t length =
      head_only || cl == std::string::npos ? 0 : std::stoul(r.head.substr(cl + 16));
  buf.erase(0, head_end + 4);
  while (buf.size() < length) {
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
  }
  r.body = buf.substr(0, length);
  if (buf.size() > length) unread[fd] = buf.substr(length);
  return r;
}

// True when the peer has closed: recv returns 0 (or a reset).
bool closed_by_peer(int fd) {
  if (unread.contains(fd)) return false;
  char c;
  const ssize_t n = recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

// The listener driven by a poll loop on a thread of its own, as the
// engine's control loop would.
class Served {
 public:
  explicit Served(HttpHandler handler, std::string_view address = "127.0.0.1:0") {
    auto l = HttpListener::open(address, std::move(handler));
    if (!l.ok()) {
      error_ = std::string(l.status().message());
      return;
    }
    listener_ = std::move(*l);
    port_ = listener_->port();
    thread_ = std::thread([this] { loop(); });
  }
  ~Served() { stop(); }
  // Stops the loop; the listener's counters may be read after this.
  const HttpListener& stop() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
    }
    return *listener_;
  }
  uint16_t port() const { return port_; }
  const std::string& error() const { return error_; }

 private:
  void loop() {
    std::vector<pollfd> fds;
    while (!stop_.load()) {
      fds.clear();
      listener_->fill_pollfds(fds);
      const int wait = listener_->poll_timeout_ms(Clock::now());
      ::poll(fds.data(), fds.size(), wait < 0 || wait > 10 ? 10 : wait);
      listener_->on_poll(fds, Clock::now());
    }
  }

  std::unique_ptr<HttpListener> listener_;
  uint16_t port_ = 0;
  std::string error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

HttpReply metrics_site(std::string_view path) {
  HttpReply r;
  if (path == "/metrics") {
    ProcessMetrics p;
    p.identifies = 3;
    std::vector<ShardMetrics> shards(3);
    for (uint32_t i = 0; i < 3; ++i) shards[i].shard = i;
    r.content_type = std::string(kPrometheusContentType);
    r.body = render_metrics(p, shards);
  } else if (path == "/big") {
    r.body = std::string(8 << 20, 'b');  // past any socket buffer: written over many polls
  } else {
    r.status = 404;
    r.body = "not found\n";
  }
  return r;
}

TEST(HttpListener, ServesGetHeadAnd404) {
  Served s(metrics_site);
  ASSERT_EQ(s.error(), "");
  ASSERT_NE(s.port(), 0);

  int fd = dial(s.port());
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  Reply r = read_reply(fd);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(r.body.find("shardring_identifies_total 3\n"), std::string::npos);
  EXPECT_NE(r.body.find("shardring_shard_state{shard=\"2\"} 0\n"), std::string::npos);
  const size_t length = r.body.size();

  send_all(fd, "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  r = read_reply(fd, /*head_only=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Length: " + std::to_string(length) + "\r\n"), std::string::npos);
  EXPECT_NE(r.head.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(r.body, "");
  EXPECT_TRUE(closed_by_peer(fd));  // and no body came before the end
  hang_up(fd);

  fd = dial(s.port());
  send_all(fd, "GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n");
  r = read_reply(fd);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "not found\n");
  hang_up(fd);

  const HttpListener& l = s.stop();
  EXPECT_EQ(l.counters().accepted, 2u);
  EXPECT_EQ(l.counters().requests, 3u);
}

TEST(HttpListener, KeepAliveServesTwoRequestsOnOneConnection) {
  Served s(metrics_site);
  ASSERT_EQ(s.error(), "");
  const int fd = dial(s.port());
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_reply(fd).status, 200);
  send_all(fd, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_reply(fd).status, 404);
  // Pipelined: both sent before either answer is read.
  send_all(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_reply(fd).status, 404);
  EXPECT_EQ(read_reply(fd).status, 200);
  hang_up(fd);
  const HttpListener& l = s.stop();
  EXPECT_EQ(l.counters().accepted, 1u);
  EXPECT_EQ(l.counters().requests, 4u);
}

TEST(HttpListener, WritesALargeBodyAcrossPolls) {
  Served s(metrics_site);
  ASSERT_EQ(s.error(), "");
  const int fd = dial(s.port());
  send_all(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  const Reply r = read_reply(fd);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), size_t{8} << 20);
  hang_up(fd);
}

TEST(HttpListener, TooLongHeadIsAnswered431ThenClosed) {
  Served s(metrics_site);
  ASSERT_EQ(s.error(), "");
  const int fd = dial(s.port());
  send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(3 * kMaxRequestBytes, 'a'));
  const Reply r = read_reply(fd);
  EXPECT_EQ(r.status, 431);
  EXPECT_NE(r.head.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(closed_by_peer(fd));
  hang_up(fd);
}

TEST(HttpListener, BadMethodIsAnswered405) {
  Served s(metrics_site);
  ASSERT_EQ(s.error(), "");
  const int fd = dial(s.port());
  send_all(fd, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody");
  const Reply r = read_reply(fd);
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.head.find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_TRUE(closed_by_peer(fd));
  hang_up(fd);
}

TEST(HttpListener, ConnectionPastTheMaximumIsClosedAtOnce) {
  Served s(metrics_site);
  ASSERT_EQ(s.error(), "");
  std::vector<int> open;
  for (size_t i = 0; i < kMaxConnections; ++i) {
    open.push_back(dial(s.port()));
    // Answered: the listener holds this connection (keep-alive).
    send_all(open.back(), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(read_reply(open.back()).status, 404) << i;
  }
  const int extra = dial(s.port());  // the kernel completes the handshake
  send_all(extra, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_reply(extra).status, 0);  // closed, never answered
  hang_up(extra);
  // The 64 are still served; and one closed makes room for another.
  send_all(open[0], "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_reply(open[0]).status, 200);
  send_all(open[1], "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(read_reply(open[1]).status, 404);
  EXPECT_TRUE(closed_by_peer(open[1]));
  hang_up(open[1]);
  // The server drops the closed connection in its next pass; retry until.
  int status = 0;
  for (int tries = 0; tries < 100 && status == 0; ++tries) {
    const int again = dial(s.port());
    send_all(again, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    status = read_reply(again).status;
    hang_up(again);
    if (status == 0) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(status, 404);
  const HttpListener& l = s.stop();
  EXPECT_GE(l.counters().refused, 1u);
  EXPECT_EQ(l.counters().accepted, kMaxConnections + 1);
  for (size_t i = 0; i < open.size(); ++i) {
    if (i != 1) hang_up(open[i]);
  }
}

TEST(HttpListener, ServesIpv6Loopback) {
  Served s(metrics_site, "[::1]:0");
  if (!s.error().empty()) GTEST_SKIP() << "no IPv6 loopback: " << s.error();
  const int fd = dial(s.port(), /*ipv6=*/true);
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: [::1]\r\n\r\n");
  EXPECT_EQ(read_reply(fd).status, 200);
  hang_up(fd);
}

TEST(HttpListener, RefusesAnAddressInUse) {
  auto a = HttpListener::open("127.0.0.1:0", metrics_site);
  ASSERT_TRUE(a.ok());
  auto b = HttpListener::open("127.0.0.1:" + std::to_string((*a)->port()), metrics_site);
  EXPECT_FALSE(b.ok());
  EXPECT_FALSE(HttpListener::open("localhost:0", metrics_site).ok());
}

// ---- HttpListener driven by hand, on a clock of the test's own

// One pass of a control loop at `now`: poll without waiting, then on_poll.
void pass(HttpListener& l, Clock::time_point now, int wait_ms = 0) {
  std::vector<pollfd> fds;
  l.fill_pollfds(fds);
  ::poll(fds.data(), fds.size(), wait_ms);
  l.on_poll(fds, now);
}

TEST(HttpListener, ClosesIdleConnections) {
  auto l = HttpListener::open("127.0.0.1:0", metrics_site);
  ASSERT_TRUE(l.ok());
  HttpListener& h = **l;
  const Clock::time_point t0 = Clock::now();
  const int quiet = dial(h.port());
  const int trickle = dial(h.port());
  pass(h, t0, 100);
  ASSERT_EQ(h.connections(), 2u);
  EXPECT_EQ(h.poll_timeout_ms(t0), 10'000);
  // Bytes of a head that never ends do not keep a connection open.
  send_all(trickle, "GET /metrics HTTP/1.1\r\n");
  pass(h, t0 + 5s, 100);
  send_all(trickle, "Host: x\r\n");
  pass(h, t0 + kIdleTimeout - 1ms, 100);
  EXPECT_EQ(h.connections(), 2u);
  EXPECT_EQ(h.poll_timeout_ms(t0 + kIdleTimeout - 1ms), 1);
  pass(h, t0 + kIdleTimeout);
  EXPECT_EQ(h.connections(), 0u);
  EXPECT_EQ(h.counters().timed_out, 2u);
  EXPECT_EQ(h.poll_timeout_ms(t0), -1);
  EXPECT_TRUE(closed_by_peer(quiet));
  EXPECT_TRUE(closed_by_peer(trickle));
  hang_up(quiet);
  hang_up(trickle);
}

TEST(HttpListener, AnAnswerRestartsTheIdleTimeout) {
  auto l = HttpListener::open("127.0.0.1:0", metrics_site);
  ASSERT_TRUE(l.ok());
  HttpListener& h = **l;
  const Clock::time_point t0 = Clock::now();
  const int fd = dial(h.port());
  pass(h, t0, 100);
  send_all(fd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  pass(h, t0 + 9s, 100);
  EXPECT_EQ(read_reply(fd).status, 404);
  pass(h, t0 + 9s + kIdleTimeout - 1ms);
  EXPECT_EQ(h.connections(), 1u);
  pass(h, t0 + 9s + kIdleTimeout);
  EXPECT_EQ(h.connections(), 0u);
  hang_up(fd);
}

TEST(HttpListener, AcceptsAtMostMaxAcceptsPerPoll) {
  auto l = HttpListener::open("127.0.0.1:0", metrics_site);
  ASSERT_TRUE(l.ok());
  HttpListener& h = **l;
  std::vector<int> clients;
  for (size_t i = 0; i < kMaxAcceptsPerPoll + 4; ++i) clients.push_back(dial(h.port()));
  const Clock::time_point now = Clock::now();
  pass(h, now, 100);
  EXPECT_EQ(h.connections(), kMaxAcceptsPerPoll);
  pass(h, now, 100);
  EXPECT_EQ(h.connections(), kMaxAcceptsPerPoll + 4);
  for (const int fd : clients) hang_up(fd);
}

TEST(HttpListener, AnswersAtMostMaxAnswersPerPollPerConnection) {
  auto l = HttpListener::open("127.0.0.1:0", metrics_site);
  ASSERT_TRUE(l.ok());
  HttpListener& h = **l;
  const int fd = dial(h.port());
  std::string pipeline;
  for (size_t i = 0; i < kMaxAnswersPerPoll + 2; ++i) {
    pipeline += "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  send_all(fd, pipeline);
  const Clock::time_point now = Clock::now();
  pass(h, now, 100);  // accepted, and the pipeline read at once or in a pass
  if (h.counters().requests == 0) pass(h, now, 100);
  EXPECT_EQ(h.counters().requests, kMaxAnswersPerPoll);
  // The rest is taken up in the next pass, with nothing new to read.
  pass(h, now, 100);
  EXPECT_EQ(h.counters().requests, kMaxAnswersPerPoll + 2);
  for (size_t i = 0; i < kMaxAnswersPerPoll + 2; ++i) EXPECT_EQ(read_reply(fd).status, 404);
  hang_up(fd);
}

TEST(HttpListener, LingersAfterTheLastAnswerForAtMostTheLingerTimeout) {
  auto l = HttpListener::open("127.0.0.1:0", metrics_site);
  ASSERT_TRUE(l.ok());
  HttpListener& h = **l;
  const Clock::time_point t0 = Clock::now();
  const int fd = dial(h.port());
  send_all(fd, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nmore bytes");
  pass(h, t0, 100);
  pass(h, t0, 100);
  EXPECT_EQ(read_reply(fd).status, 404);
  EXPECT_TRUE(closed_by_peer(fd));  // our side is shut
  EXPECT_EQ(h.connections(), 1u);   // reading the client's until it closes
  EXPECT_EQ(h.poll_timeout_ms(t0), 2000);
  pass(h, t0 + kLingerTimeout - 1ms);
  EXPECT_EQ(h.connections(), 1u);
  pass(h, t0 + kLingerTimeout);
  EXPECT_EQ(h.connections(), 0u);
  EXPECT_EQ(h.counters().timed_out, 0u);
  hang_up(fd);

  // A client that closes ends the linger at once.
  const int polite = dial(h.port());
  send_all(polite, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  pass(h, t0, 100);
  EXPECT_EQ(read_reply(polite).status, 404);
  hang_up(polite);
  pass(h, t0, 100);
  EXPECT_EQ(h.connections(), 0u);
}

TEST(HttpListener, BacksOffWhenOutOfFileDescriptors) {
  auto l = HttpListener::open("127.0.0.1:0", metrics_site);
  ASSERT_TRUE(l.ok());
  HttpListener& h = **l;
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(h.port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  // The lowest free descriptor is what accept() would take: a limit there
  // makes it fail with EMFILE.
  const int lowest = dup(0);
  ASSERT_GE(lowest, 0);
  close(lowest);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(lowest);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  const Clock::time_point t0 = Clock::now();
  pass(h, t0, 100);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(h.connections(), 0u);
  std::vector<pollfd> fds;
  h.fill_pollfds(fds);
  EXPECT_TRUE(fds.empty());  // the listener is out of the poll set
  EXPECT_EQ(h.poll_timeout_ms(t0), 100);
  pass(h, t0 + kAcceptBackoff - 1ms);
  EXPECT_EQ(h.connections(), 0u);
  pass(h, t0 + kAcceptBackoff);
  EXPECT_EQ(h.connections(), 1u);
  fds.clear();
  h.fill_pollfds(fds);
  EXPECT_EQ(fds.size(), 2u);
  hang_up(client);
}

}  // namespace
}  // namespace shardring::engine
