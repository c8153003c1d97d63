#include "engine/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "engine/text.h"

namespace shardring::engine {
namespace {

// Reads of a lingering connection per pass (4 KiB each, dropped): a peer
// that keeps sending cannot hold the loop, and kLingerTimeout ends it.
constexpr int kLingerReadsPerPass = 16;

// RFC 9110 5.6.2: the characters of a token (method, header name).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A field value's characters (RFC 9110 5.5): visible ASCII, SP, HT and
// bytes past ASCII; no other control character.
bool is_field_value(std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  return true;
}

// The path of a request target, or "" when it is no form a GET may use.
std::string_view target_path(std::string_view target) {
  if (target.front() != '/') {
    // Absolute form (RFC 9112 3.2.2): a server must accept it.
    size_t skip = 0;
    if (istarts_with(target, "http://")) {
      skip = 7;
    } else if (istarts_with(target, "https://")) {
      skip = 8;
    } else {
      return {};
    }
    target.remove_prefix(skip);
    const size_t end = target.find_first_of("/?#");
    if (end == 0) return {};  // no authority
    if (end == std::string_view::npos || target[end] != '/') return "/";
    target.remove_prefix(end);
  }
  return target.substr(0, target.find_first_of("?#"));
}

}  // namespace

// ---- HttpRequestParser

void HttpRequestParser::feed(std::string_view bytes) {
  if (error_ != 0) return;  // nothing past an error is read
  if (start_ > 0) {
    // Drop the heads already answered; what is left is at most one head
    // and the bytes past it, so this moves little.
    buf_.erase(0, start_);
    line_ -= start_;
    start_ = 0;
  }
  buf_.append(bytes);
}

HttpRequestParser::Result HttpRequestParser::fail(int status) {
  error_ = status;
  return Result::kError;
}

HttpRequestParser::Result HttpRequestParser::next() {
  if (error_ != 0) return Result::kError;
  for (;;) {
    const size_t lf = buf_.find('\n', line_);
    if (lf == std::string::npos) {
      // Every byte from start_ on belongs to this head: past the limit it
      // cannot fit any more.
      return buf_.size() - start_ > kMaxRequestBytes ? fail(431) : Result::kNeedMore;
    }
    if (lf + 1 - start_ > kMaxRequestBytes) return fail(431);
    std::string_view line(buf_.data() + line_, lf - line_);
    line_ = lf + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const Result r = on_line(line);
    if (r != Result::kNeedMore) return r;
  }
}

HttpRequestParser::Result HttpRequestParser::on_line(std::string_view line) {
  // A CR that does not end a line could make another parser on the path
  // see different lines (RFC 9112 2.2).
  if (line.find('\r') != std::string_view::npos) return fail(400);
  if (!have_request_line_) {
    // Empty lines before a request are allowed (RFC 9112 2.2); they count
    // towards the head's limit.
    if (line.empty()) return Result::kNeedMore;
    return on_request_line(line);
  }
  if (line.empty()) return on_head_end();
  return on_header(line);
}

HttpRequestParser::Result HttpRequestParser::on_request_line(std::string_view line) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return fail(400);
  const std::string_view method = line.substr(0, sp1);
  const std::string_view rest = line.substr(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return fail(400);  // HTTP/0.9: no version
  const std::string_view target = rest.substr(0, sp2);
  const std::string_view version = rest.substr(sp2 + 1);
  if (!is_token(method) || target.empty()) return fail(400);
  for (const char ch : target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return fail(400);
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return fail(400);
  }
  if (version[5] != '1') return fail(505);
  // Methods are case-sensitive (RFC 9110 9.1).
  if (method == "GET") {
    request_.method = HttpMethod::kGet;
  } else if (method == "HEAD") {
    request_.method = HttpMethod::kHead;
  } else {
    return fail(405);
  }
  const std::string_view path = target_path(target);
  if (path.empty()) return fail(400);
  request_.path.assign(path);
  request_.minor_version = version[7] == '0' ? 0 : 1;
  have_request_line_ = true;
  return Result::kNeedMore;
}

HttpRequestParser::Result HttpRequestParser::on_header(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400);
  // A name must be a token: this also refuses whitespace before the colon
  // and obsolete line folding (a line that starts with SP or HT).
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (!is_token(name) || !is_field_value(value)) return fail(400);
  if (iequals(name, "host")) {
    ++hosts_;
  } else if (iequals(name, "connection")) {
    std::string_view list = value;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view option = trim_ows(list.substr(0, comma));
      if (iequals(option, "close")) conn_close_ = true;
      if (iequals(option, "keep-alive")) conn_keep_alive_ = true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  } else if (iequals(name, "content-length")) {
    // No body is read, so one that is announced could not be skipped and
    // would be taken for the next request.
    if (value.empty() || value.find_first_not_of('0') != std::string_view::npos) return fail(400);
  } else if (iequals(name, "transfer-encoding")) {
    return fail(400);
  }
  return Result::kNeedMore;
}

HttpRequestParser::Result HttpRequestParser::on_head_end() {
  // RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in 1.0.
  if (hosts_ > 1 || (request_.minor_version == 1 && hosts_ == 0)) return fail(400);
  request_.keep_alive =
      request_.minor_version == 1 ? !conn_close_ : conn_keep_alive_ && !conn_close_;
  start_ = line_;
  have_request_line_ = false;
  hosts_ = 0;
  conn_close_ = conn_keep_alive_ = false;
  return Result::kRequest;
}

// ---- responses

std::string_view http_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

std::string build_http_reply(const HttpReply& r, bool head, bool keep_alive) {
  std::string out;
  out.reserve(160 + r.content_type.size() + (head ? 0 : r.body.size()));
  append(out, "HTTP/1.1 ", r.status, " ", http_reason(r.status),
         "\r\nContent-Type: ", r.content_type, "\r\nContent-Length: ", r.body.size(),
         "\r\nCache-Control: no-store\r\nConnection: ", keep_alive ? "keep-alive" : "close",
         "\r\n");
  if (r.status == 405) out.append("Allow: GET, HEAD\r\n");
  out.append("\r\n");
  if (!head) out.append(r.body);
  return out;
}

HttpReply http_error_reply(int status) {
  HttpReply r;
  r.status = status;
  r.body = cat(http_reason(status), "\n");
  return r;
}

// ---- HttpConnection

void HttpConnection::on_read(std::string_view bytes) {
  if (closing_ || eof_) return;
  parser_.feed(bytes);
  pump();
}

void HttpConnection::on_read_eof() {
  eof_ = true;
  pump();
}

void HttpConnection::on_written(size_t n) {
  out_pos_ = std::min(out_.size(), out_pos_ + n);
  if (out_pos_ < out_.size()) return;
  out_.clear();
  out_pos_ = 0;
  pump();  // a pipelined request may be waiting
}

bool HttpConnection::wants_read() const {
  return !closing_ && !eof_ && out_pos_ == out_.size() && parser_.buffered() <= kMaxRequestBytes;
}

bool HttpConnection::done() const { return out_pos_ == out_.size() && (closing_ || eof_); }

void HttpConnection::set_answer_budget(size_t n) {
  budget_ = n;
  pump();
}

bool HttpConnection::held_by_budget() const {
  return budget_ == 0 && !closing_ && out_pos_ == out_.size() && parser_.buffered() > 0;
}

void HttpConnection::pump() {
  while (!closing_ && out_pos_ == out_.size() && budget_ > 0) {
    const HttpRequestParser::Result r = parser_.next();
    if (r == HttpRequestParser::Result::kNeedMore) return;
    if (r == HttpRequestParser::Result::kError) {
      out_ = build_http_reply(http_error_reply(parser_.error_status()), false, false);
      closing_ = true;
      return;
    }
    --budget_;
    ++requests_;
    const HttpRequest& q = parser_.request();
    out_ = build_http_reply(handler_(q.path), q.method == HttpMethod::kHead, q.keep_alive);
    if (!q.keep_alive) closing_ = true;
  }
}

// ---- addresses

absl::StatusOr<ListenAddress> parse_listen_address(std::string_view s) {
  ListenAddress a;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return absl::InvalidArgumentError(cat("bad listen address \"", s, "\": want [IPv6]:PORT"));
    }
    a.host.assign(s.substr(1, close - 1));
    a.ipv6 = true;
    port = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || s.substr(0, colon).find(':') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          cat("bad listen address \"", s, "\": want IPv4:PORT or [IPv6]:PORT"));
    }
    a.host.assign(s.substr(0, colon));
    port = s.substr(colon + 1);
  }
  unsigned char probe[sizeof(in6_addr)];
  if (inet_pton(a.ipv6 ? AF_INET6 : AF_INET, a.host.c_str(), probe) != 1) {
    return absl::InvalidArgumentError(
        cat("bad listen address \"", s, "\": the host must be an IP literal"));
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos) {
    return absl::InvalidArgumentError(cat("bad listen address \"", s, "\": bad port"));
  }
  unsigned value = 0;
  for (const char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value > 65535) {
    return absl::InvalidArgumentError(cat("bad listen address \"", s, "\": bad port"));
  }
  a.port = static_cast<uint16_t>(value);
  return a;
}

// ---- HttpListener

struct HttpListener::Conn {
  Conn(int f, const HttpHandler& handler, Clock::time_point now)
      : fd(f), http(handler), progress(now) {}
  int fd;
  HttpConnection http;
  Clock::time_point progress;  // the last progress (kIdleTimeout)
  bool peer_eof = false;
  bool lingering = false;  // our side shut; reading the peer's to its end
  Clock::time_point linger_until{};
};

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::open(std::string_view host_port,
                                                                 HttpHandler handler) {
  auto addr = parse_listen_address(host_port);
  if (!addr.ok()) return addr.status();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (addr->ipv6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(addr->port);
    inet_pton(AF_INET6, addr->host.c_str(), &sin6->sin6_addr);
    len = sizeof(sockaddr_in6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(addr->port);
    inet_pton(AF_INET, addr->host.c_str(), &sin->sin_addr);
    len = sizeof(sockaddr_in);
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(cat("socket: ", std::strerror(errno)));
  // A restarted process binds its port again while the last one's
  // connections sit in TIME_WAIT.
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 || listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::UnavailableError(cat("listen on ", host_port, ": ", std::strerror(err)));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::InternalError(cat("getsockname: ", std::strerror(err)));
  }
  const uint16_t port = ntohs(addr->ipv6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<HttpListener>(new HttpListener(fd, port, std::move(handler)));
}

HttpListener::HttpListener(int fd, uint16_t port, HttpHandler handler)
    : listen_fd_(fd), port_(port), handler_(std::move(handler)) {}

HttpListener::~HttpListener() {
  for (const auto& c : conns_) ::close(c->fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void HttpListener::fill_pollfds(std::vector<pollfd>& fds) const {
  if (!accept_paused_) fds.push_back({listen_fd_, POLLIN, 0});
  for (const auto& c : conns_) {
    short events = 0;
    if (c->lingering || c->http.wants_read()) events |= POLLIN;
    // A request held by the answer budget is taken up once the socket can
    // take its answer: POLLOUT, which also wakes the loop for it.
    if (!c->lingering && (!c->http.output().empty() || c->http.held_by_budget())) {
      events |= POLLOUT;
    }
    fds.push_back({c->fd, events, 0});
  }
}

void HttpListener::on_poll(std::span<const pollfd> fds, Clock::time_point now) {
  if (accept_paused_ && now >= accept_resume_) {
    accept_paused_ = false;
    accept_some(now);
  }
  for (const pollfd& p : fds) {
    if (p.revents == 0) continue;
    if (p.fd == listen_fd_) {
      if (!accept_paused_ && (p.revents & POLLIN) != 0) accept_some(now);
      continue;
    }
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (conns_[i]->fd != p.fd) continue;
      if (!serve(*conns_[i], p.revents, now)) close_at(i);
      break;
    }
  }
  for (size_t i = conns_.size(); i-- > 0;) {
    const Conn& c = *conns_[i];
    if (c.lingering) {
      if (now >= c.linger_until) close_at(i);
    } else if (now - c.progress >= kIdleTimeout) {
      ++counters_.timed_out;
      close_at(i);
    }
  }
}

int HttpListener::poll_timeout_ms(Clock::time_point now) const {
  bool any = accept_paused_;
  Clock::time_point first = accept_resume_;
  for (const auto& c : conns_) {
    const Clock::time_point due = c->lingering ? c->linger_until : c->progress + kIdleTimeout;
    if (!any || due < first) first = due;
    any = true;
  }
  if (!any) return -1;
  if (first <= now) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(first - now).count();
  return static_cast<int>(std::min<int64_t>(ms, INT32_MAX));
}

void HttpListener::accept_some(Clock::time_point now) {
  for (size_t k = 0; k < kMaxAcceptsPerPoll; ++k) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_ = true;
        accept_resume_ = now + kAcceptBackoff;
      }
      return;  // EAGAIN: the queue is empty
    }
    if (conns_.size() >= kMaxConnections) {
      ::close(fd);
      ++counters_.refused;
      continue;
    }
    ++counters_.accepted;
    // A response goes out in one send; nothing is gained by holding it.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conns_.push_back(std::make_unique<Conn>(fd, handler_, now));
    // The request often arrives with the connection: answer it now rather
    // than a poll later.
    if (!serve(*conns_.back(), POLLIN, now)) close_at(conns_.size() - 1);
  }
}

bool HttpListener::serve(Conn& c, short revents, Clock::time_point now) {
  char buf[4096];
  if (c.lingering) {
    // Drop what the peer still sends until it closes.
    for (int reads = 0; reads < kLingerReadsPerPass; ++reads) {
      const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
  }
  if ((revents & (POLLERR | POLLNVAL)) != 0) return false;
  const uint64_t requests_before = c.http.requests();
  c.http.set_answer_budget(kMaxAnswersPerPoll);
  if ((revents & (POLLIN | POLLHUP)) != 0) {
    while (c.http.wants_read()) {
      const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.http.on_read({buf, static_cast<size_t>(n)});
        continue;
      }
      if (n == 0) {
        c.peer_eof = true;
        c.http.on_read_eof();
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;  // reset by the peer
    }
  }
  while (!c.http.output().empty()) {
    const std::string_view out = c.http.output();
    const ssize_t n = send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.http.on_written(static_cast<size_t>(n));
      c.progress = now;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  // A whole head read is progress; the bytes of one still coming are not
  // (kIdleTimeout).
  if (c.http.requests() != requests_before) {
    counters_.requests += c.http.requests() - requests_before;
    c.progress = now;
  }
  if (c.http.done()) {
    if (c.peer_eof) return false;  // nothing of the peer's left to read
    shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    c.linger_until = now + kLingerTimeout;
  }
  return true;
}

void HttpListener::close_at(size_t i) {
  ::close(conns_[i]->fd);
  conns_[i] = std::move(conns_.back());
  conns_.pop_back();
}

}  // namespace shardring::engine
