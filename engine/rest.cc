#include "engine/rest.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "engine/resolver.h"
#include "engine/text.h"
#include "tls/session.h"

namespace shardring::engine {
namespace {
using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status WaitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("REST request timed out");
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0) return absl::OkStatus();
    if (r < 0 && errno != EINTR) return absl::UnavailableError(std::strerror(errno));
  }
}

absl::Status SendAll(int fd, std::span<const std::byte> bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes = bytes.subspan(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (absl::Status s = WaitFor(fd, POLLOUT, deadline); !s.ok()) return s;
      continue;
    }
    return absl::UnavailableError(cat("send: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Reads some bytes; 0 at EOF.
absl::StatusOr<size_t> RecvSome(int fd, std::span<std::byte> buf, Clock::time_point deadline) {
  while (true) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN || errno == EINTR) {
      if (absl::Status s = WaitFor(fd, POLLIN, deadline); !s.ok()) return s;
      continue;
    }
    return absl::UnavailableError(cat("recv: ", std::strerror(errno)));
  }
}

template <class T>
bool ParseDecimal(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether `raw` already holds a whole response (so keep-alive servers do not
// make us wait for EOF).
bool Complete(std::string_view raw) {
  auto r = parse_http_response(raw, false);
  return r.ok();
}
}  // namespace

absl::StatusOr<HttpResponse> parse_http_response(std::string_view raw, bool complete) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    return absl::UnavailableError("incomplete or malformed HTTP response head");
  }
  std::string_view head = raw.substr(0, head_end);
  std::string_view body = raw.substr(head_end + 4);
  const size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (status_line.substr(0, 7) != "HTTP/1." || status_line.size() < 12 || status_line[8] != ' ') {
    return absl::InvalidArgumentError("not an HTTP/1.x response");
  }
  int status = 0;
  if (!ParseDecimal(status_line.substr(9, 3), &status) || status < 100 || status > 599) {
    return absl::InvalidArgumentError("bad HTTP status line");
  }
  std::optional<size_t> content_length;
  bool chunked = false;
  std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? "" : rest.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(std::string(line.substr(0, colon)));
    std::string value(Trim(line.substr(colon + 1)));
    if (name == "content-length") {
      size_t n = 0;
      if (!ParseDecimal(value, &n)) return absl::InvalidArgumentError("bad Content-Length");
      content_length = n;
    } else if (name == "transfer-encoding") {
      chunked = absl::AsciiStrToLower(value).find("chunked") != std::string::npos;
    }
  }
  HttpResponse out;
  out.status = status;
  if (chunked) {
    std::string_view in = body;
    while (true) {
      const size_t eol = in.find("\r\n");
      if (eol == std::string_view::npos) return absl::UnavailableError("truncated chunked body");
      std::string_view size_text = in.substr(0, in.find_first_of(";\r"));
      size_t n = 0;
      if (size_text.empty() || size_text.size() > 8)
        return absl::InvalidArgumentError("bad chunk size");
      for (char c : size_text) {
        const int v = absl::ascii_isdigit(static_cast<unsigned char>(c)) ? c - '0'
                      : (c >= 'a' && c <= 'f')                           ? c - 'a' + 10
                      : (c >= 'A' && c <= 'F')                           ? c - 'A' + 10
                                                                         : -1;
        if (v < 0) return absl::InvalidArgumentError("bad chunk size");
        n = n * 16 + static_cast<size_t>(v);
      }
      in = in.substr(eol + 2);
      if (n == 0) break;
      if (in.size() < n + 2) return absl::UnavailableError("truncated chunked body");
      out.body.append(in.substr(0, n));
      if (out.body.size() > kMaxRestResponseBytes)
        return absl::ResourceExhaustedError("REST response too large");
      in = in.substr(n + 2);
    }
  } else if (content_length) {
    if (body.size() < *content_length) return absl::UnavailableError("truncated body");
    out.body = std::string(body.substr(0, *content_length));
  } else {
    if (!complete) return absl::UnavailableError("body runs to EOF");
    out.body = std::string(body);
  }
  return out;
}

absl::StatusOr<HttpResponse> http_get(const Url& url, std::string_view authorization,
                                      const tls::ClientOptions& tls_options,
                                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Resolver resolver;
  SocketAddress addr;
  std::string error;
  if (resolver.resolve_now(url.host, url.port, &addr, &error) != Resolver::Result::kReady) {
    return absl::UnavailableError(error);
  }
  Fd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return absl::UnavailableError(cat("socket: ", std::strerror(errno)));
  if (::connect(fd.get(), addr.sockaddr_ptr(), addr.len) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(
          cat("connect to ", addr.to_string(), ": ", std::strerror(errno)));
    }
    if (absl::Status s = WaitFor(fd.get(), POLLOUT, deadline); !s.ok()) return s;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return absl::UnavailableError(cat("connect to ", addr.to_string(), ": ", std::strerror(err)));
    }
  }
  const bool default_port = url.port == (url.is_tls() ? 443 : 80);
  std::string host = url.host.find(':') != std::string::npos ? cat("[", url.host, "]") : url.host;
  if (!default_port) shardring::append(host, ":", url.port);
  std::string request = cat("GET ", url.target(), " HTTP/1.1\r\nHost: ", host,
                            "\r\nUser-Agent: DiscordBot (shardring, 0.1)\r\n"
                            "Accept: application/json\r\nConnection: close\r\n");
  if (!authorization.empty()) shardring::append(request, "Authorization: ", authorization, "\r\n");
  request += "\r\n";

  std::string raw;
  std::vector<std::byte> buf(16 * 1024);
  if (!url.is_tls()) {
    if (absl::Status s = SendAll(fd.get(), std::as_bytes(std::span(request)), deadline); !s.ok())
      return s;
    while (true) {
      auto n = RecvSome(fd.get(), buf, deadline);
      if (!n.ok()) return n.status();
      if (*n == 0) break;
      raw.append(reinterpret_cast<const char*>(buf.data()), *n);
      if (raw.size() > kMaxRestResponseBytes)
        return absl::ResourceExhaustedError("REST response too large");
      if (Complete(raw)) break;
    }
    return parse_http_response(raw, true);
  }

  auto ctx = tls::Context::client(tls_options);
  if (!ctx.ok()) return ctx.status();
  auto session = tls::Session::client(*ctx, url.host);
  if (!session.ok()) return session.status();
  tls::Session& t = *session;
  auto flush = [&]() -> absl::Status {
    auto pending = t.pending_ciphertext();
    if (pending.empty()) return absl::OkStatus();
    absl::Status s = SendAll(fd.get(), pending, deadline);
    t.consume_ciphertext(pending.size());
    return s;
  };
  bool eof = false;
  auto read_more = [&]() -> absl::Status {
    auto n = RecvSome(fd.get(), buf, deadline);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      eof = true;
      return absl::OkStatus();
    }
    if (t.feed_ciphertext(std::span<const std::byte>(buf.data(), *n)) != tls::Errc::kOk ||
        t.retain_ciphertext() != tls::Errc::kOk) {
      return absl::InternalError("TLS buffer");
    }
    return absl::OkStatus();
  };
  while (true) {
    const tls::Errc e = t.handshake();
    if (absl::Status s = flush(); !s.ok()) return s;
    if (e == tls::Errc::kOk) break;
    if (e != tls::Errc::kWantRead) {
      return absl::UnavailableError(
          cat("TLS handshake with ", url.host, " failed: ", t.error_detail()));
    }
    if (absl::Status s = read_more(); !s.ok()) return s;
    if (eof) return absl::UnavailableError("connection closed during the TLS handshake");
  }
  if (t.write_plaintext(std::as_bytes(std::span(request))) != tls::Errc::kOk) {
    return absl::InternalError("TLS write failed");
  }
  if (absl::Status s = flush(); !s.ok()) return s;
  std::vector<std::byte> plain(16 * 1024);
  while (!eof) {
    while (true) {
      size_t produced = 0;
      const tls::Errc e = t.read_plaintext(plain, produced);
      raw.append(reinterpret_cast<const char*>(plain.data()), produced);
      if (raw.size() > kMaxRestResponseBytes)
        return absl::ResourceExhaustedError("REST response too large");
      if (e == tls::Errc::kOk) continue;
      if (e == tls::Errc::kClosed)
        eof = true;
      else if (e != tls::Errc::kWantRead)
        return absl::UnavailableError(cat("TLS read: ", t.error_detail()));
      break;
    }
    if (eof || Complete(raw)) break;
    if (absl::Status s = read_more(); !s.ok()) return s;
  }
  return parse_http_response(raw, true);
}

}  // namespace shardring::engine
