// tools/gateway/server.cc: Server (server.h): start-up (the mix, TLS,
// one listening socket and one Worker per thread), stop, and the counters;
// the shared state's helpers and the gateway's log lines.
#include "tools/gateway/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <thread>
#include <utility>
#include <vector>

#include "base/json.h"
#include "tools/gateway/shared.h"
#include "tools/gateway/text.h"
#include "tools/gateway/worker.h"

namespace shardring::gatewaysrv {
namespace {

bool is_wildcard(std::string_view host) {
  return host == "0.0.0.0" || host == "::" || host.empty();
}

// A Host header we may echo into a URL.
bool is_sane_host(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  for (char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

// The ws decoder's own limit (1009 above it); payloads over
// kMaxClientPayload but under this get Discord's 4002.
constexpr size_t kDecoderMessageLimit = 64 << 10;

GatewayOptions Normalized(GatewayOptions o) {
  if (o.max_concurrency == 0) o.max_concurrency = 1;
  return o;
}

absl::StatusOr<int> bind_listener(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (int r = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); r != 0) {
    return absl::InvalidArgumentError(
        cat("--listen: cannot resolve '", host, "': ", gai_strerror(r)));
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return absl::InternalError(cat("socket: ", std::strerror(errno)));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 4096) != 0) {
    const int err = errno;
    ::freeaddrinfo(res);
    ::close(fd);
    return absl::UnavailableError(
        cat("--listen: cannot listen on ", host, ":", port, ": ", std::strerror(err)));
  }
  ::freeaddrinfo(res);
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace

void log_line(int64_t shard, std::string_view msg) {
  std::string line = "gateway: ";
  if (shard >= 0) append_to(&line, "shard=", shard, " ");
  line.append(msg);
  line.push_back('\n');
  // One write per line so that lines from threads never interleave.
  for (size_t off = 0; off < line.size();) {
    const ssize_t n = ::write(2, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

std::string escaped(std::string_view s) {
  std::string out;
  base::append_json_escaped(out, s);
  return out;
}

Server::Shared::Shared(const GatewayOptions& options, Mix m)
    : opt(Normalized(options)),
      faults(opt),
      mix(std::move(m)),
      start_steady(Clock::now()),
      start_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count()),
      registry(opt.max_concurrency, std::chrono::milliseconds(opt.identify_window_ms),
               std::chrono::seconds(opt.resume_window_s)) {
  conn_options.max_message_bytes = kDecoderMessageLimit;
  conn_options.fragment = faults.fragment;
  conn_options.close_linger = kCloseLinger;
}

std::string Server::Shared::host_for(std::string_view host_header) const {
  if (!url_host.empty()) return url_host;
  if (is_sane_host(host_header)) return std::string(host_header);
  return cat("127.0.0.1:", port);
}

absl::StatusOr<std::unique_ptr<Server>> Server::start(const GatewayOptions& options) {
  Mix mix;
  if (options.mix_file.empty()) {
    mix = Mix::builtin();
  } else {
    auto from_file = Mix::from_file(options.mix_file);
    if (!from_file.ok()) {
      return absl::InvalidArgumentError(cat("--mix: ", from_file.status().message()));
    }
    mix = *std::move(from_file);
  }
  std::unique_ptr<Server> server(new Server());
  server->shared_ = std::make_unique<Shared>(options, std::move(mix));
  Shared& sh = *server->shared_;
  if (options.tls()) {
    tls::ServerOptions to;
    to.cert_file = options.tls_cert;
    to.key_file = options.tls_key;
    auto ctx = tls::Context::server(to);
    if (!ctx.ok()) {
      return absl::InvalidArgumentError(cat("--tls-cert/--tls-key: ", ctx.status().message()));
    }
    sh.tls.emplace(*std::move(ctx));
  }

  uint32_t threads = options.threads;
  if (threads == 0) {
    threads = std::max(1u, std::thread::hardware_concurrency());
  }
  uint16_t port = options.listen_port;
  for (uint32_t i = 0; i < threads; ++i) {
    auto fd = bind_listener(options.listen_host, port);
    if (!fd.ok()) {
      for (int f : sh.listen_fds) ::close(f);
      return fd.status();
    }
    sh.listen_fds.push_back(*fd);
    if (i == 0) port = bound_port(*fd);
  }
  sh.port = port;
  if (!is_wildcard(options.listen_host)) {
    sh.url_host = options.listen_host.find(':') != std::string::npos
                      ? cat("[", options.listen_host, "]:", port)
                      : cat(options.listen_host, ":", port);
  }

  std::vector<std::promise<absl::Status>> ready(threads);
  std::vector<std::future<absl::Status>> started;
  started.reserve(ready.size());
  for (auto& p : ready) started.push_back(p.get_future());
  for (uint32_t i = 0; i < threads; ++i) {
    sh.threads.emplace_back([&sh, i, p = &ready[i]]() mutable {
      Worker w(sh, sh.listen_fds[i], i);
      absl::Status s = w.init();
      const bool ok = s.ok();
      p->set_value(std::move(s));
      if (!ok) {
        ::close(sh.listen_fds[i]);
        return;
      }
      w.run();
    });
  }
  absl::Status first = absl::OkStatus();
  for (auto& f : started) {
    absl::Status s = f.get();
    if (!s.ok() && first.ok()) first = s;
  }
  if (!first.ok()) {
    server->stop();
    return first;
  }
  const std::string shown = sh.url_host.empty() ? cat(options.listen_host, ":", port) : sh.url_host;
  log_line(-1, cat("listening on ", shown, " (", threads, " threads", sh.tls ? ", TLS" : "",
                   "); give clients ", sh.tls ? "https://" : "http://", sh.host_for(""),
                   "/api/v10 or ", sh.scheme_ws(), sh.host_for("")));
  return server;
}

Server::~Server() { stop(); }

uint16_t Server::port() const noexcept { return shared_->port; }

std::string Server::url() const { return cat(shared_->scheme_ws(), shared_->host_for("")); }

void Server::reset_all() {
  if (shared_) shared_->reset_gen.fetch_add(1, std::memory_order_relaxed);
}

void Server::stop() {
  if (!shared_ || shared_->stopped) return;
  shared_->stopped = true;
  shared_->stop.store(true);
  for (std::thread& t : shared_->threads) {
    if (t.joinable()) t.join();
  }
}

Stats Server::stats() const {
  const Counters& n = shared_->counters;
  Stats s;
  s.connections = n.connections.load();
  s.sessions = n.ws_sessions.load();
  s.identifies = n.identifies.load();
  s.resumes = n.resumes.load();
  s.events_sent = n.events_sent.load();
  s.identify_rate_limited = n.rate_limited.load();
  s.identifies_refused = n.identifies_refused.load();
  s.resumes_refused = n.resumes_refused.load();
  s.http_requests = n.http_requests.load();
  s.tls_handshakes = n.tls_handshakes.load();
  s.tls_resumed = n.tls_resumed.load();
  s.shards = shared_->registry.shard_counters();
  return s;
}

std::string Server::stats_json() const {
  const Stats s = stats();
  std::string out =
      cat(R"({"sessions":)", s.sessions, R"(,"identifies":)", s.identifies, R"(,"resumes":)",
          s.resumes, R"(,"events_sent":)", s.events_sent, R"(,"connections":)", s.connections,
          R"(,"identify_rate_limited":)", s.identify_rate_limited, R"(,"identifies_refused":)",
          s.identifies_refused, R"(,"resumes_refused":)", s.resumes_refused, R"(,"http_requests":)",
          s.http_requests, R"(,"tls_handshakes":)", s.tls_handshakes, R"(,"tls_resumed":)",
          s.tls_resumed, R"(,"shards":{)");
  bool first = true;
  for (const auto& [id, c] : s.shards) {
    append_to(&out, first ? "" : ",", "\"", id, R"(":{"identifies":)", c.identifies,
              R"(,"resumes":)", c.resumes, R"(,"events_sent":)", c.events_sent, R"(,"last_seq":)",
              c.last_seq, R"(,"session_id":")", c.session_id, R"(","identifies_refused":)",
              c.identifies_refused, R"(,"resumes_refused":)", c.resumes_refused, "}");
    first = false;
  }
  out += "}}";
  return out;
}

}  // namespace shardring::gatewaysrv
