#include "tools/gateway/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "tools/gateway/http.h"
#include "tools/gateway/text.h"

namespace shardring::gatewaysrv {
namespace {

using engine::Op;
using engine::OpTag;
using std::chrono::duration_cast;

// Receive buffers per thread (provided-buffer ring): a connection's bytes
// are consumed (or copied by the decoder or TLS) before its buffer goes back.
constexpr uint16_t kRecvBuffers = 512;
constexpr uint32_t kRecvBufferBytes = 16 << 10;
constexpr unsigned kRingEntries = 4096;
constexpr auto kHousekeepingEvery = std::chrono::seconds(5);
constexpr auto kStopDeadline = std::chrono::milliseconds(1500);

uint64_t TimerCookie(uint32_t slot, TimerKind kind) {
  return OpTag{Op::kTimer, slot, static_cast<uint32_t>(kind)}.pack();
}

uint64_t RandomSeed() {
  std::random_device rd;
  return uint64_t{rd()} << 32 ^ rd();
}

}  // namespace

Worker::Conn::Conn(Server::Shared& sh, conn::ServerScratch& cs, DiscordScratch& ds)
    : conn(sh.conn_options, cs, sh.tls ? &*sh.tls : nullptr), discord(sh, ds, conn) {}

Worker::Worker(Server::Shared& sh, int listen_fd, uint32_t index)
    : sh_(sh), listen_fd_(listen_fd), index_(index), discord_scratch_(RandomSeed()) {}

Worker::~Worker() = default;

absl::Status Worker::init() {
  auto ring = engine::Uring::create(kRingEntries);
  if (!ring.ok()) return ring.status();
  ring_ = *std::move(ring);
  bufs_ = std::make_unique<engine::BufferRing>();
  if (absl::Status s = bufs_->init(ring_->raw(), 0, kRecvBuffers, kRecvBufferBytes, ws::kPadding);
      !s.ok()) {
    return s;
  }
  wheel_.emplace(Clock::now());
  return absl::OkStatus();
}

void Worker::run() {
  arm_accept();
  if (index_ == 0) {
    wheel_->schedule(Clock::now() + kHousekeepingEvery, TimerCookie(0, TimerKind::kHousekeeping));
  }
  arrival_.emplace(Clock::now());
  const std::chrono::microseconds longest = longest_wait(sh_.registry.identify_window());
  while (true) {
    now_ = Clock::now();
    wheel_->advance(now_, [&](uint64_t cookie) { on_timer(cookie); });
    if (!stopping_ && sh_.stop.load(std::memory_order_relaxed)) begin_stop();
    if (const uint64_t g = sh_.reset_gen.load(std::memory_order_relaxed); g != reset_seen_) {
      reset_seen_ = g;
      if (!stopping_) reset_all();
    }
    if (stopping_ && (live_ == 0 || now_ >= stop_deadline_)) break;
    auto wait = longest;
    if (auto next = wheel_->next_deadline()) {
      wait = std::min(wait, duration_cast<std::chrono::microseconds>(*next - now_) +
                                std::chrono::microseconds(50));
    }
    // What the reap below reads arrived after the beginning of the last
    // full wait before this one (gateway::ArrivalBound): a bare submit, or
    // a wait a signal cut short (a stop, a debugger), may not have looked.
    const Instant wait_began = Clock::now();
    bool waited = false;
    if (wait.count() <= 0) {
      ring_->submit();
    } else {
      const int r = ring_->submit_and_wait(wait);
      waited = r >= 0 || r == -ETIME;
    }
    now_ = Clock::now();
    arrival_->on_wait(wait_began, waited);
    ring_->reap([&](const io_uring_cqe& cqe) { on_cqe(cqe); });
    bufs_->flush();
    for (auto [slot, gen] : rearm_) {
      Conn* c = lookup(slot, gen);
      if (c != nullptr && !c->dead && !c->recv_armed) arm_recv(*c);
    }
    rearm_.clear();
  }
  // Whatever is left after the deadline is closed hard.
  for (auto& c : conns_) {
    if (c && c->fd >= 0) ::close(c->fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  bufs_.reset();
  ring_.reset();
  conns_.clear();
}

// -------------------------------------------------------------------- ring

void Worker::arm_accept() {
  io_uring_sqe* sqe = ring_->sqe();
  io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, OpTag{Op::kAccept, 0, 0}.pack());
}

void Worker::arm_recv(Conn& c) {
  io_uring_sqe* sqe = ring_->sqe();
  io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bufs_->group();
  io_uring_sqe_set_data64(sqe, OpTag{Op::kRecv, c.slot, c.gen}.pack());
  c.recv_armed = true;
}

void Worker::submit_send(Conn& c) {
  size_t n = c.inflight.size() - c.inflight_off;
  if (sh_.faults.segment > 0) n = std::min<size_t>(n, sh_.faults.segment);  // --segment
  io_uring_sqe* sqe = ring_->sqe();
  io_uring_prep_send(sqe, c.fd, c.inflight.data() + c.inflight_off, n, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, OpTag{Op::kSend, c.slot, c.gen}.pack());
  c.send_inflight = true;
}

Worker::Conn* Worker::lookup(uint32_t slot, uint32_t gen) {
  if (slot >= conns_.size() || !conns_[slot]) return nullptr;
  Conn* c = conns_[slot].get();
  return (c->gen & 0xFF'FFFF) == (gen & 0xFF'FFFF) ? c : nullptr;
}

void Worker::on_cqe(const io_uring_cqe& cqe) {
  const OpTag tag = OpTag::unpack(cqe.user_data);
  switch (tag.op) {
    case Op::kAccept:
      on_accept(cqe);
      return;
    case Op::kRecv: {
      Conn* c = lookup(tag.slot, tag.generation);
      if (c == nullptr) {
        if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
          bufs_->recycle(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
        }
        return;
      }
      on_recv(*c, cqe);
      maybe_release(*c);
      return;
    }
    case Op::kSend: {
      Conn* c = lookup(tag.slot, tag.generation);
      if (c == nullptr) return;
      on_send(*c, cqe.res);
      maybe_release(*c);
      return;
    }
    default:
      return;
  }
}

void Worker::on_accept(const io_uring_cqe& cqe) {
  if (!(cqe.flags & IORING_CQE_F_MORE) && !stopping_) arm_accept();
  if (cqe.res < 0) {
    if (cqe.res != -ECANCELED) log_line(-1, cat("accept failed: ", std::strerror(-cqe.res)));
    return;
  }
  const int fd = cqe.res;
  if (stopping_) {
    ::close(fd);
    return;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<Conn>(sh_, conn_scratch_, discord_scratch_);
  if (c->conn.phase() == conn::ServerPhase::kDone) {  // no TLS session
    const auto& notes = c->conn.notes();
    log_line(-1, cat("TLS session: ", notes.empty() ? "" : escaped(notes.back().text)));
    ::close(fd);
    return;
  }
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<uint32_t>(conns_.size());
    conns_.emplace_back();
    gens_.push_back(0);
  }
  c->fd = fd;
  c->slot = slot;
  c->gen = ++gens_[slot] & 0xFF'FFFF;
  sh_.counters.connections.fetch_add(1, std::memory_order_relaxed);
  ++live_;
  arm_recv(*c);
  conns_[slot] = std::move(c);
}

void Worker::on_recv(Conn& c, const io_uring_cqe& cqe) {
  if (!(cqe.flags & IORING_CQE_F_MORE)) c.recv_armed = false;
  if (cqe.res > 0) {
    const auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    if (!c.dead) {
      // A fresh clock: the loop's may be a busy pass old, and an identify
      // is timed against its bucket's window (other threads' clocks too).
      now_ = Clock::now();
      process(c, std::span<std::byte>(bufs_->data(bid), static_cast<size_t>(cqe.res)),
              kRecvBufferBytes - static_cast<size_t>(cqe.res) + ws::kPadding);
    }
    bufs_->recycle(bid);
    if (!c.recv_armed && !c.dead) rearm_.emplace_back(c.slot, c.gen);
    return;
  }
  if (cqe.res == -ENOBUFS) {
    if (!c.recv_armed && !c.dead) rearm_.emplace_back(c.slot, c.gen);
    return;
  }
  if (!c.dead) {
    c.conn.on_transport_lost(now_);
    terminate(c,
              cqe.res == 0 ? "peer closed the connection" : cat("recv: ", std::strerror(-cqe.res)));
  }
}

void Worker::on_send(Conn& c, int res) {
  c.send_inflight = false;
  if (c.dead) return;
  if (res < 0) {
    c.conn.on_transport_lost(now_);
    terminate(c, cat("send: ", std::strerror(-res)));
    return;
  }
  c.inflight_off += static_cast<size_t>(res);
  if (c.inflight_off < c.inflight.size()) {
    submit_send(c);
    return;
  }
  c.inflight = {};
  c.inflight_off = 0;
  c.conn.on_write_done(now_);
  c.discord.on_written(now_);
  sync(c);
}

// ---------------------------------------------------------- the connection

void Worker::process(Conn& c, std::span<std::byte> bytes, size_t slack) {
  c.conn.receive(bytes, slack, now_);
  conn::ServerEvent ev;
  while (c.conn.poll(ev, now_)) on_event(c, ev);
  sync(c);
}

void Worker::on_event(Conn& c, const conn::ServerEvent& ev) {
  switch (ev.kind) {
    case conn::ServerEventKind::kHttpRequest:
      sh_.counters.http_requests.fetch_add(1, std::memory_order_relaxed);
      serve_http(sh_, *ev.request, ev.keep_alive, c.conn);
      return;
    case conn::ServerEventKind::kUpgradeRequest:
      if (!admit_upgrade(*ev.request, ev.compression, c.conn)) return;
      c.conn.accept_upgrade();
      c.discord.on_open(ev.request->query(), ev.request->header("Host").value_or(""), now_);
      return;
    case conn::ServerEventKind::kText:
      c.discord.on_payload(ev.text, now_, arrival_->bound());
      return;
    case conn::ServerEventKind::kClose:
      c.discord.on_client_close(ev.code, now_);
      return;
    case conn::ServerEventKind::kProtocolError:
      c.discord.on_protocol_error(ev.code, ev.reason, now_);
      return;
  }
}

void Worker::set_timer(Conn& c, TimerKind kind, std::optional<Instant> deadline) {
  engine::TimerId& id = c.timers[static_cast<size_t>(kind)];
  wheel_->cancel(id);
  id = deadline ? wheel_->schedule(*deadline, TimerCookie(c.slot, kind)) : engine::TimerId();
}

void Worker::sync(Conn& c) {
  if (c.dead) return;
  std::string tls_error;
  for (const conn::ServerNoteRecord& n : c.conn.notes()) {
    switch (n.note) {
      case conn::ServerNote::kTlsHandshakeDone:
        sh_.counters.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
        if (n.value != 0) sh_.counters.tls_resumed.fetch_add(1, std::memory_order_relaxed);
        break;
      case conn::ServerNote::kTlsError:
        tls_error = cat("TLS: ", escaped(n.text));
        break;
      case conn::ServerNote::kTlsClosedByPeer:
      case conn::ServerNote::kBadRequest:
      case conn::ServerNote::kCompressionFailed:
        break;
    }
  }
  c.conn.notes().clear();
  for (const LogNote& n : c.discord.notes()) log_line(n.shard, n.text);
  c.discord.notes().clear();
  if (c.conn.take_timer_changes()) {
    set_timer(c, TimerKind::kCloseLinger, c.conn.deadline(conn::ServerTimer::kCloseLinger));
  }
  if (const uint32_t changed = c.discord.take_timer_changes()) {
    for (size_t k = 0; k < kDiscordTimerCount; ++k) {
      if (!(changed >> k & 1)) continue;
      const auto t = static_cast<DiscordTimer>(k);
      set_timer(c, static_cast<TimerKind>(conn::kServerTimerCount + k), c.discord.deadline(t));
    }
  }
  if (c.conn.take_close_socket()) {
    terminate(c, tls_error.empty() ? std::string(c.conn.close_reason()) : tls_error);
    return;
  }
  if (c.send_inflight) return;
  if (sh_.faults.delay.count() > 0) {  // --delay-ms: each batch waits
    if (!c.timers[static_cast<size_t>(TimerKind::kDelay)].is_valid() && c.conn.queued_bytes() > 0) {
      set_timer(c, TimerKind::kDelay, now_ + sh_.faults.delay);
    }
    return;
  }
  start_send(c);
}

void Worker::start_send(Conn& c) {
  if (c.send_inflight || c.dead) return;
  c.inflight = c.conn.take_write();
  if (c.inflight.empty()) return;
  c.inflight_off = 0;
  submit_send(c);
}

void Worker::on_timer(uint64_t cookie) {
  const OpTag tag = OpTag::unpack(cookie);
  const auto kind = static_cast<TimerKind>(tag.generation);
  if (kind == TimerKind::kHousekeeping) {
    sh_.registry.expire(now_);
    wheel_->schedule(now_ + kHousekeepingEvery, cookie);
    return;
  }
  if (tag.slot >= conns_.size() || !conns_[tag.slot]) return;
  Conn& c = *conns_[tag.slot];
  if (c.dead) return;
  c.timers[static_cast<size_t>(kind)] = engine::TimerId();
  switch (kind) {
    case TimerKind::kCloseLinger:
      c.conn.on_timer(conn::ServerTimer::kCloseLinger, now_);
      break;
    case TimerKind::kGenerate:
    case TimerKind::kReconnect:
    case TimerKind::kInvalidSession:
      c.discord.on_timer(
          static_cast<DiscordTimer>(static_cast<size_t>(kind) - conn::kServerTimerCount), now_);
      break;
    case TimerKind::kDelay:
      start_send(c);
      break;
    case TimerKind::kHousekeeping:
    case TimerKind::kCount:
      break;
  }
  sync(c);
  maybe_release(c);
}

// ----------------------------------------------------------------- ending

void Worker::terminate(Conn& c, std::string_view why, bool reset) {
  if (c.dead) return;
  c.discord.on_disconnect(why, now_);
  for (const LogNote& n : c.discord.notes()) log_line(n.shard, n.text);
  c.discord.notes().clear();
  for (engine::TimerId& t : c.timers) {
    wheel_->cancel(t);
    t = engine::TimerId();
  }
  c.dead = true;
  if (reset) {
    // The close in maybe_release() then sends RST, not FIN.
    const linger l{1, 0};
    ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  } else {
    ::shutdown(c.fd, SHUT_RDWR);
  }
  if (c.recv_armed) {
    io_uring_sqe* sqe = ring_->sqe();
    io_uring_prep_cancel64(sqe, OpTag{Op::kRecv, c.slot, c.gen}.pack(), 0);
    io_uring_sqe_set_data64(sqe, OpTag{Op::kCancel, 0, 0}.pack());
  }
}

void Worker::maybe_release(Conn& c) {
  if (!c.dead || c.recv_armed || c.send_inflight) return;
  ::close(c.fd);
  const uint32_t slot = c.slot;
  conns_[slot].reset();
  free_.push_back(slot);
  --live_;
}

void Worker::reset_all() {
  size_t n = 0;
  for (auto& p : conns_) {
    if (!p || p->dead) continue;
    terminate(*p, "fault: node reset (SIGUSR1)", true);
    ++n;
  }
  for (auto& p : conns_) {
    if (p) maybe_release(*p);
  }
  if (n > 0) log_line(-1, cat("fault: reset ", n, " connections on thread ", index_));
}

void Worker::begin_stop() {
  stopping_ = true;
  stop_deadline_ = now_ + kStopDeadline;
  io_uring_sqe* sqe = ring_->sqe();
  io_uring_prep_cancel64(sqe, OpTag{Op::kAccept, 0, 0}.pack(), 0);
  io_uring_sqe_set_data64(sqe, OpTag{Op::kCancel, 0, 0}.pack());
  for (auto& p : conns_) {
    if (!p || p->dead) continue;
    Conn& c = *p;
    switch (c.conn.phase()) {
      case conn::ServerPhase::kOpen:  // close 1001, then the client's answer
        c.discord.shutdown(now_);
        sync(c);
        break;
      case conn::ServerPhase::kClosing:   // already closing
      case conn::ServerPhase::kFlushing:  // already ending
        break;
      case conn::ServerPhase::kTls:
      case conn::ServerPhase::kHttp:
      case conn::ServerPhase::kDone:
        terminate(c, "gateway shutting down");
        break;
    }
  }
  for (auto& p : conns_) {
    if (p) maybe_release(*p);
  }
}

}  // namespace shardring::gatewaysrv
