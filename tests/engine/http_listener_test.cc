// tests/engine/http_server_test.cc's other half: HttpListener over loopback
// (GET, HEAD, keep-alive, large bodies, the limits answered with their
// status, IPv6, an address in use), and driven by hand on a clock of the
// test's own (idle and linger timeouts, per-poll caps, running out of file
// descriptors).
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

#include "engine/http_server.h"
#include "engine/metrics.h"

namespace shardring::engine {
namespace {

using Clock = HttpListener::Clock;
using namespace std::chrono_literals;

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
