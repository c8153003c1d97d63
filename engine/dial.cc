// engine/dial.cc: getting a shard's socket up: admission (at most
// kMaxDialsInFlight set-ups per core thread, the rest wait in order), the
// URL to dial (the session's resume URL when it is usable), resolving,
// the TCP connect, and the connect timeout that covers the whole set-up
// (TLS and the WebSocket upgrade included). The connection takes over once
// TCP is up.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/core_loop.h"
#include "engine/log.h"
#include "engine/text.h"

namespace shardring::engine {
// The URL a reconnect asks for, when it is one we may use: wss://, or ws://
// on loopback; the configured query (v=10&encoding=json...) when it has none.
static std::optional<Url> UsableReconnectUrl(const std::string& text, const Url& gateway,
                                             uint32_t shard) {
  auto u = parse_url(text);
  if (u.ok() && (u->scheme == Scheme::kWs || u->scheme == Scheme::kWss) &&
      (u->scheme == Scheme::kWss || is_loopback_host(u->host))) {
    Url url = *u;
    if (url.query.empty() || url.query.find("v=") == std::string::npos) url.query = gateway.query;
    if (url.path.empty()) url.path.assign(1, '/');
    return url;
  }
  std::string reason = "ws:// only on loopback";
  if (!u.ok()) reason = sv(u.status().message());
  Log::write(Level::kWarn, shard, "unusable reconnect url; using the gateway url",
             {{"reason", reason}});
  return std::nullopt;
}

void CoreThread::Loop::dial(Shard& sh) {
  if (shared.stopping.load(std::memory_order_relaxed)) return;
  if (sh.ops > 0 || sh.fd >= 0) {  // the last socket is still winding down
    sh.want_connect = true;
    return;
  }
  sh.want_connect = false;
  if (!sh.dialing) {
    if (dialing >= kMaxDialsInFlight) {  // wait for a set-up to end
      if (!sh.dial_queued) {
        sh.dial_queued = true;
        dial_queue.push(sh.slot);
      }
      return;
    }
    sh.dialing = true;
    sh.dial_queued = false;  // dialled another way first: admit_dials skips it
    ++dialing;
  }
  const std::string& next = sh.conn.dial_url();
  if (next.empty()) {
    sh.url = s.gateway;
  } else if (auto u = UsableReconnectUrl(next, s.gateway, sh.conn.shard())) {
    sh.url = std::move(*u);
  } else {
    sh.url = s.gateway;
  }
  sh.conn.on_dial_started(now);
  arm(sh, TimerKind(DriverTimer::kConnectTimeout), now + s.connect_timeout);
  resolve_and_connect(sh);
}

void CoreThread::Loop::resolve_and_connect(Shard& sh) {
  std::string error;
  switch (shared.resolver.lookup(sh.url.host, sh.url.port, &sh.addr, &error)) {
    case Resolver::Result::kPending:
      arm(sh, TimerKind(DriverTimer::kResolvePoll), now + kResolvePoll);
      return;
    case Resolver::Result::kFailed:
      Log::write(Level::kWarn, sh.conn.shard(), "resolve failed", {{"error", error}});
      connect_failed(sh);
      return;
    case Resolver::Result::kReady:
      break;
  }
  const int fd = ::socket(sh.addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Log::write(Level::kError, sh.conn.shard(), "socket() failed",
               {{"error", std::strerror(errno)}});
    connect_failed(sh);
    return;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sh.fd = fd;
  ++sh.gen;
  io_uring_sqe* sqe = ring->sqe();
  io_uring_prep_connect(sqe, fd, sh.addr.sockaddr_ptr(), sh.addr.len);
  io_uring_sqe_set_data64(sqe, OpTag{Op::kConnect, sh.slot, sh.gen}.pack());
  ++sh.ops;
}

void CoreThread::Loop::on_connected_tcp(Shard& sh) {
  arm_recv(sh);
  sh.conn.on_transport_open(
      conn::Endpoint{sh.url.is_tls(), sh.url.host, sh.url.port, sh.url.path, sh.url.query}, now);
  sync(sh);
}

void CoreThread::Loop::connect_failed(Shard& sh) {
  disarm(sh, TimerKind(DriverTimer::kConnectTimeout));
  disarm(sh, TimerKind(DriverTimer::kResolvePoll));
  sh.conn.on_dial_failed(now);
  sync(sh);
  // A set-up that failed before the connection had a socket to drop.
  if (sh.fd >= 0) close_socket(sh);
  dial_ended(sh);
}

// The set-up of sh's connection is over (open, failed or dropped): the
// oldest waiting shard may dial (admit_dials(), between loop passes).
void CoreThread::Loop::dial_ended(Shard& sh) {
  if (!sh.dialing) return;
  sh.dialing = false;
  --dialing;
}

void CoreThread::Loop::admit_dials() {
  while (dialing < kMaxDialsInFlight && !dial_queue.empty()) {
    Shard& sh = *shards[dial_queue.pop()];
    if (!sh.dial_queued) continue;
    sh.dial_queued = false;
    dial(sh);
  }
}

}  // namespace shardring::engine
