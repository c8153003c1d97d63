// engine/http_server.h: the HTTP/1.1 server behind /metrics, /shards and
// /healthz, for scrapes and probes: GET and HEAD, small requests, no bodies.
//
// Three layers, the first two sans-I/O:
//   HttpRequestParser  bytes in, one request head (or an error status) out
//   HttpConnection     a parser, the route callback and the bytes to write
//                      for one connection: keep-alive, pipelining, errors
//   HttpListener       the sockets, driven with poll(2) from one thread: the
//                      engine's control loop polls its fds beside its own
//
// Nothing here starts a thread; HttpListener never blocks (every socket is
// non-blocking) and its work per on_poll() is bounded.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shardring::engine {

// A request head (request line, headers, the empty line) longer than this
// is answered 431 and the connection closed: scrapers send a few hundred
// bytes, and the limit bounds what a connection buffers.
inline constexpr size_t kMaxRequestBytes = 8 * 1024;
// Connections open at once; one more is accepted and closed at once, so the
// listen queue does not fill with clients that would wait for nothing.
inline constexpr size_t kMaxConnections = 64;
// Connections accepted per on_poll(): a flood of connects cannot hold the
// control loop, and the rest wait in the listen queue for the next pass.
inline constexpr size_t kMaxAcceptsPerPoll = 16;
// Requests answered per connection per on_poll() (HttpConnection::
// set_answer_budget): the rest of a long pipeline waits for the next pass.
inline constexpr size_t kMaxAnswersPerPoll = 4;
// A connection is closed this long after its last progress: accepted, a
// whole request head read, or response bytes written. Bytes of an
// unfinished head do not count, so a head sent a byte at a time has this
// long in all.
inline constexpr std::chrono::seconds kIdleTimeout{10};
// After the last response of a connection: our side is shut and what the
// peer still sends is read and dropped until it closes, for at most this
// long. Closing at once with its bytes unread would send a reset, which can
// destroy the response (a 431 above all) before the peer has read it.
inline constexpr std::chrono::milliseconds kLingerTimeout{2000};
// accept() out of file descriptors (EMFILE and the like): the listener is
// left out of the poll set this long, else poll() would report it ready
// again at once and the loop would spin.
inline constexpr std::chrono::milliseconds kAcceptBackoff{100};

enum class HttpMethod : uint8_t { kGet, kHead };

struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  // The target's path, as received (no percent-decoding): the query is
  // dropped, and an absolute-form target ("http://host/x") gives "/x".
  std::string path;
  uint8_t minor_version = 1;  // HTTP/1.0 or 1.1 (1.2 and later: 1)
  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 with "Connection:
  // keep-alive" only.
  bool keep_alive = true;
};

// What the server answers (engine/rest.h's HttpResponse is what the REST
// client reads).
struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Per connection: feed() the bytes read, then next() until kNeedMore.
// Lines may end in CRLF or a bare LF (RFC 9112 2.2); a bare CR is an error.
// Requests may be pipelined: bytes after one head are the next request.
class HttpRequestParser {
 public:
  enum class Result : uint8_t {
    kNeedMore,  // no whole head yet
    kRequest,   // request() holds the next request
    // error_status() holds the status to answer before closing: 400 (bad
    // syntax, a missing Host in HTTP/1.1, a body), 405 (a method other than
    // GET and HEAD), 431 (over kMaxRequestBytes), 505 (not HTTP/1.x). The
    // parser stays in error: the connection cannot be read further.
    kError,
  };

  void feed(std::string_view bytes);
  Result next();
  const HttpRequest& request() const { return request_; }
  int error_status() const { return error_; }
  // Bytes fed and not yet consumed by a request.
  size_t buffered() const { return buf_.size() - start_; }

 private:
  Result fail(int status);
  // One whole line of the head, without its line ending.
  Result on_line(std::string_view line);
  Result on_request_line(std::string_view line);
  Result on_header(std::string_view line);
  Result on_head_end();

  std::string buf_;
  size_t start_ = 0;  // the current head's first byte
  size_t line_ = 0;   // the current line's first byte
  bool have_request_line_ = false;
  bool method_ok_ = false;  // GET or HEAD: else 405 once the line is checked
  int hosts_ = 0;
  bool conn_close_ = false, conn_keep_alive_ = false;
  int error_ = 0;
  HttpRequest request_;
};

// The reason phrase of `status` ("" for one we never send).
std::string_view http_reason(int status);
// The bytes of a response: status line, Content-Type, Content-Length,
// Connection (keep-alive or close), Cache-Control: no-store (a scrape is
// always current), Allow for a 405, then the body unless `head`.
std::string build_http_reply(const HttpReply& reply, bool head, bool keep_alive);
// The response to a parser error: the reason as a plain-text body.
HttpReply http_error_reply(int status);

// The route callback: a path in, a response out. Called on the thread that
// drives the connection, once per request (HEAD too: its body is dropped).
using HttpHandler = std::function<HttpReply(std::string_view path)>;

// One connection's HTTP, sans-I/O: socket bytes in, bytes to write out.
// Answers one request at a time: the next pipelined one is read once the
// previous response is written, so at most one response is buffered.
class HttpConnection {
 public:
  // `handler` must outlive the connection.
  explicit HttpConnection(const HttpHandler& handler) : handler_(handler) {}

  void on_read(std::string_view bytes);
  // The peer shut its side: complete requests read so far are answered.
  void on_read_eof();
  // What to write now; empty when nothing.
  std::string_view output() const { return std::string_view(out_).substr(out_pos_); }
  void on_written(size_t n);

  // Whether reading more is useful: nothing waiting to be written, no
  // error, no end of input, and less than a head's limit buffered.
  bool wants_read() const;
  // Nothing more will be answered and everything answered was written:
  // the connection can be shut.
  bool done() const;
  // Request heads read whole (errors not counted).
  uint64_t requests() const { return requests_; }

  // At most `n` more requests are answered until the next call (none
  // counted before it); unlimited until first called. A driver sets it once
  // per pass: a few hundred tiny requests pipelined in one read, each
  // answered by a render of the whole metrics page, would otherwise hold
  // its loop for as long as the client reads fast. Answers what it can now.
  void set_answer_budget(size_t n);
  // A request may be waiting that the budget left unanswered: the driver
  // must come back (when the socket can take more) even with nothing to
  // read or write.
  bool held_by_budget() const;

 private:
  // Answers what the buffer holds while nothing is waiting to be written.
  void pump();

  const HttpHandler& handler_;
  HttpRequestParser parser_;
  std::string out_;
  size_t out_pos_ = 0;
  bool closing_ = false;  // the last response is queued
  bool eof_ = false;
  uint64_t requests_ = 0;
  size_t budget_ = SIZE_MAX;
};

// "HOST:PORT" split and checked: HOST an IPv4 literal or a bracketed IPv6
// literal ("[::1]:9100"), no names (nothing is resolved); PORT 0..65535,
// 0 for any free port.
struct ListenAddress {
  std::string host;  // without brackets
  uint16_t port = 0;
  bool ipv6 = false;
};
absl::StatusOr<ListenAddress> parse_listen_address(std::string_view s);

// A listening TCP socket and its connections, driven by the caller's poll:
//
//   std::vector<pollfd> fds = my_fds;
//   const size_t mine = fds.size();
//   listener->fill_pollfds(fds);
//   int wait = my_wait_ms;  // -1: none
//   const int http_wait = listener->poll_timeout_ms(Clock::now());
//   if (http_wait >= 0 && (wait < 0 || http_wait < wait)) wait = http_wait;
//   poll(fds.data(), fds.size(), wait);
//   listener->on_poll(std::span(fds).subspan(mine), Clock::now());
//
// on_poll() must run after every poll(), a timeout (0) included: idle
// connections are closed and a paused accept resumes there, with no event
// of their own. One thread; every call is non-blocking.
class HttpListener {
 public:
  using Clock = std::chrono::steady_clock;

  struct Counters {
    uint64_t accepted = 0;   // connections taken on
    uint64_t refused = 0;    // accepted and closed at once (kMaxConnections)
    uint64_t timed_out = 0;  // closed by kIdleTimeout
    uint64_t requests = 0;   // request heads read whole
  };

  // Binds and listens on "HOST:PORT" (parse_listen_address).
  static absl::StatusOr<std::unique_ptr<HttpListener>> open(std::string_view host_port,
                                                            HttpHandler handler);
  ~HttpListener();  // closes the listening socket and every connection
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  uint16_t port() const { return port_; }
  int fd() const { return listen_fd_; }  // the listening socket
  size_t connections() const { return conns_.size(); }
  const Counters& counters() const { return counters_; }

  // Appends one pollfd per socket to watch (the listener unless accepting
  // is backing off, and each connection with what it waits for).
  void fill_pollfds(std::vector<pollfd>& fds) const;
  // Handles the entries fill_pollfds() appended (matched by fd; entries of
  // other fds are ignored), then closes connections past their deadlines.
  void on_poll(std::span<const pollfd> fds, Clock::time_point now);
  // Milliseconds until on_poll() has a deadline to keep (rounded up), -1
  // when none: the longest the caller's poll() should wait.
  int poll_timeout_ms(Clock::time_point now) const;

 private:
  struct Conn;
  HttpListener(int fd, uint16_t port, HttpHandler handler);
  void accept_some(Clock::time_point now);
  // Reads, answers and writes what it can; false when `c` is to be closed.
  bool serve(Conn& c, short revents, Clock::time_point now);
  void close_at(size_t i);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  HttpHandler handler_;
  std::vector<std::unique_ptr<Conn>> conns_;
  bool accept_paused_ = false;
  Clock::time_point accept_resume_{};
  Counters counters_;
};

}  // namespace shardring::engine
