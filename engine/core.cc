#include "engine/core.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <future>
#include <optional>
#include <random>
#include <variant>

#include "base/fifo.h"
#include "engine/log.h"
#include "engine/text.h"
#include "engine/timer_wheel.h"
#include "engine/uring.h"
#include "gateway/session.h"
#include "parse/envelope.h"
#include "tls/session.h"
#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/handshake.h"

namespace shardring::engine {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Timers a connection can have; the first three are gateway::TimerId.
enum class TimerKind : uint8_t {
  kHeartbeat = 0,
  kHelloTimeout = 1,
  kSendWindow = 2,
  kConnectTimeout,
  kReconnect,
  kIdentifyRetry,
  kResolvePoll,
  kUnpause,
  kCloseLinger,
  kCount,
};
static_assert(static_cast<int>(gateway::TimerId::kHeartbeat) == 0);
static_assert(static_cast<int>(gateway::TimerId::kHelloTimeout) == 1);
static_assert(static_cast<int>(gateway::TimerId::kSendWindow) == 2);

enum class Phase : uint8_t {
  kIdle,        // no socket; waiting for a reconnect timer or the first dial
  kResolving,
  kConnecting,  // TCP connect submitted
  kTls,         // TLS handshake
  kUpgrade,     // WebSocket request sent, waiting for 101
  kOpen,        // WebSocket open: the gateway session runs
  kClosing,     // close frame queued; the socket closes once it is sent and
                // the peer's close frame (or EOF) came, or after kCloseLinger
};

// xoshiro256**: mask keys and jitter. Seeded from getrandom(); the nonce of
// each WebSocket handshake comes from getrandom() directly.
class Rng {
 public:
  Rng() {
    if (getrandom(s_, sizeof s_, 0) != sizeof s_) {
      std::random_device rd;
      for (auto& x : s_) x = (uint64_t{rd()} << 32) ^ rd();
    }
  }
  uint64_t next() noexcept {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

int64_t SteadyNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct Conn {
  uint32_t shard = 0;
  uint32_t slot = 0;
  uint32_t gen = 1;
  uint32_t consumer = 0;
  int fd = -1;
  Phase phase = Phase::kIdle;
  gateway::Session session;
  Url url;
  std::string next_url;  // from the last Reconnect
  SocketAddress addr;
  std::optional<tls::Session> tls;
  std::optional<ws::ClientHandshake> hs;
  ws::Decoder decoder{ws::Role::kClient};
  ws::Encoder encoder{ws::Role::kClient};
  // Transport compression: a new stream per connection (reset on upgrade).
  std::optional<parse::Inflater> inflater;
  std::vector<std::byte> out;       // plain: frames waiting for the socket
  std::vector<std::byte> inflight;  // the send in flight
  size_t inflight_off = 0;
  bool send_inflight = false;
  bool close_received = false;  // the peer's close frame (kClosing: close when sent)
  bool recv_armed = false;
  bool want_connect = false;  // dial once the old socket's ops are done
  bool dialing = false;       // counted in Loop::dialing
  bool dial_queued = false;   // in Loop::dial_queue
  bool ready = false;         // counted in CoreCounters::ready
  bool ever_ready = false;    // counted in Shared::ever_ready
  bool counted_connected = false;
  Clock::time_point heartbeat_due{};  // the armed heartbeat's deadline
  uint64_t zombies_seen = 0;
  int ops = 0;                // io_uring requests in flight, any generation
  // Backpressure: receive buffers (id, length) held while the event
  // channel is full, oldest first.
  base::Fifo<std::pair<uint16_t, uint32_t>> held;
  bool paused = false;
  Clock::time_point paused_since{};
  std::array<TimerId, static_cast<size_t>(TimerKind::kCount)> timers{};

  Conn(uint32_t shard_id, gateway::Config cfg, double jitter)
      : shard(shard_id), session(std::move(cfg), jitter) {}
};

uint64_t Cookie(uint32_t slot, TimerKind kind) {
  return uint64_t{slot} << 8 | static_cast<uint8_t>(kind);
}

}  // namespace

struct CoreThread::Loop {
  Loop(uint32_t index, Shared& shared, const std::vector<uint32_t>& shards, int wake_fd,
       UserSends& sends)
      : index(index), shared(shared), s(shared.settings), wake_fd(wake_fd),
        counters(*shared.counters[index]), sends(sends),
        inline_handlers(shared.settings.consumers == 0) {
    for (uint32_t shard : shards) {
      gateway::Config cfg;
      cfg.token = s.token;
      cfg.intents = s.intents;
      cfg.shard_id = shard;
      cfg.shard_count = s.total_shards;
      cfg.gateway_url = s.gateway.to_string();
      cfg.large_threshold = s.large_threshold;
      cfg.presence_json = s.presence_json;
      auto c = std::make_unique<Conn>(shard, std::move(cfg), rng.unit());
      c->slot = static_cast<uint32_t>(conns.size());
      c->consumer = shared.consumer_of(shard);
      c->url = s.gateway;
      c->decoder = ws::Decoder(ws::Role::kClient, DecoderOptions());
      conns.push_back(std::move(c));
    }
  }

  absl::Status init() {
    auto u = Uring::create(4096);
    if (!u.ok()) return u.status();
    ring = std::move(*u);
    if (absl::Status st = bufs.init(ring->raw(), 0, kRecvBuffers, kRecvBufferBytes,
                                    parse::kPadding);
        !st.ok()) {
      return st;
    }
    if (s.gateway.is_tls()) {
      auto ctx = tls::Context::client(s.tls);
      if (!ctx.ok()) return ctx.status();
      tls_ctx.emplace(std::move(*ctx));
    }
    plain.resize(kPlaintextChunk + parse::kPadding);
    return absl::OkStatus();
  }

  // ---------------------------------------------------------------- timers
  void arm(Conn& c, TimerKind kind, Clock::time_point deadline) {
    auto& id = c.timers[static_cast<size_t>(kind)];
    if (id.is_valid()) wheel.cancel(id);
    id = wheel.schedule(deadline, Cookie(c.slot, kind));
    if (kind == TimerKind::kHeartbeat) c.heartbeat_due = deadline;
  }
  void disarm(Conn& c, TimerKind kind) {
    auto& id = c.timers[static_cast<size_t>(kind)];
    if (id.is_valid()) wheel.cancel(id);
    id = TimerId();
  }

  void on_timer(uint64_t cookie) {
    Conn& c = *conns[cookie >> 8];
    const auto kind = static_cast<TimerKind>(cookie & 0xFF);
    c.timers[static_cast<size_t>(kind)] = TimerId();
    switch (kind) {
      case TimerKind::kHeartbeat:
        // A heartbeat sent from here is measured against its deadline.
        heartbeat_timer_conn = &c;
        c.session.set_jitter(rng.unit());
        perform(c, c.session.on_timer(gateway::TimerId::kHeartbeat, now));
        heartbeat_timer_conn = nullptr;
        break;
      case TimerKind::kHelloTimeout:
      case TimerKind::kSendWindow:
        c.session.set_jitter(rng.unit());
        perform(c, c.session.on_timer(static_cast<gateway::TimerId>(kind), now));
        break;
      case TimerKind::kConnectTimeout:
        Log::write(Level::kWarn, c.shard, "connect timed out",
                   cat("\"phase\":", static_cast<int>(c.phase), ",\"after_ms\":",
                       s.connect_timeout.count(), ",\"url\":\"", c.url.authority(), "\""));
        connect_failed(c);
        break;
      case TimerKind::kReconnect:
        dial(c);
        break;
      case TimerKind::kIdentifyRetry:
        request_identify(c);
        break;
      case TimerKind::kResolvePoll:
        if (c.phase == Phase::kResolving) resolve_and_connect(c);
        break;
      case TimerKind::kUnpause:
        unpause(c);
        break;
      case TimerKind::kCloseLinger:
        if (c.phase == Phase::kClosing) close_socket(c);
        break;
      case TimerKind::kCount:
        break;
    }
  }

  // ------------------------------------------------------------ connecting
  void dial(Conn& c) {
    if (shared.stopping.load(std::memory_order_relaxed)) return;
    if (c.ops > 0 || c.fd >= 0) {  // the last socket is still winding down
      c.want_connect = true;
      if (c.fd >= 0) close_socket(c);
      return;
    }
    c.want_connect = false;
    if (!c.dialing) {
      if (dialing >= kMaxDialsInFlight) {  // wait for a set-up to end
        if (!c.dial_queued) {
          c.dial_queued = true;
          dial_queue.push(c.slot);
        }
        return;
      }
      c.dialing = true;
      c.dial_queued = false;  // dialled another way first: admit_dials skips it
      ++dialing;
    }
    if (!c.next_url.empty()) {
      auto u = parse_url(c.next_url);
      if (u.ok() && (u->scheme == Scheme::kWs || u->scheme == Scheme::kWss) &&
          (u->scheme == Scheme::kWss || is_loopback_host(u->host))) {
        Url url = *u;
        if (url.query.empty() || url.query.find("v=") == std::string::npos) {
          url.query = s.gateway.query;
        }
        if (url.path.empty()) url.path = "/";
        c.url = std::move(url);
      } else {
        Log::write(Level::kWarn, c.shard, "unusable reconnect url; using the gateway url",
                   cat("\"reason\":\"",
                                u.ok() ? "ws:// only on loopback" : std::string(u.status().message()),
                                "\""));
        c.url = s.gateway;
      }
    }
    c.phase = Phase::kResolving;
    arm(c, TimerKind::kConnectTimeout, now + s.connect_timeout);
    resolve_and_connect(c);
  }

  void resolve_and_connect(Conn& c) {
    std::string error;
    switch (shared.resolver.lookup(c.url.host, c.url.port, &c.addr, &error)) {
      case Resolver::Result::kPending:
        arm(c, TimerKind::kResolvePoll, now + kResolvePoll);
        return;
      case Resolver::Result::kFailed:
        Log::write(Level::kWarn, c.shard, "resolve failed",
                   cat("\"error\":\"", error, "\""));
        connect_failed(c);
        return;
      case Resolver::Result::kReady:
        break;
    }
    const int fd = ::socket(c.addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      Log::write(Level::kError, c.shard, "socket() failed",
                 cat("\"error\":\"", std::strerror(errno), "\""));
      connect_failed(c);
      return;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.fd = fd;
    ++c.gen;
    c.phase = Phase::kConnecting;
    c.close_received = false;
    io_uring_sqe* sqe = ring->sqe();
    io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&c.addr.storage), c.addr.len);
    io_uring_sqe_set_data64(sqe, OpTag{Op::kConnect, c.slot, c.gen}.pack());
    ++c.ops;
  }

  // Every text message goes to the parser, which checks its UTF-8 (and
  // closes 1007 when it is not): the decoder need not check it first.
  static ws::DecoderOptions DecoderOptions() {
    ws::DecoderOptions opts;
    opts.max_message_bytes = parse::kMaxMessageBytes;
    opts.check_text_utf8 = false;
    return opts;
  }

  void on_connected_tcp(Conn& c) {
    // Fresh per-connection protocol state.
    c.decoder = ws::Decoder(ws::Role::kClient, DecoderOptions());
    c.encoder = ws::Encoder(ws::Role::kClient);
    c.out.clear();
    arm_recv(c);
    if (c.url.is_tls()) {
      auto t = tls::Session::client(*tls_ctx, c.url.host, &tls_cache);
      if (!t.ok()) {
        Log::write(Level::kError, c.shard, "TLS session set-up failed",
                   cat("\"error\":\"", std::string(t.status().message()), "\""));
        connect_failed(c);
        return;
      }
      c.tls.emplace(std::move(*t));
      c.phase = Phase::kTls;
      drive_tls_handshake(c);
    } else {
      c.tls.reset();
      start_upgrade(c);
    }
  }

  void drive_tls_handshake(Conn& c) {
    const tls::Errc e = c.tls->handshake();
    try_send(c);
    if (e == tls::Errc::kWantRead) return;
    if (e != tls::Errc::kOk) {
      Log::write(Level::kWarn, c.shard, "TLS handshake failed",
                 cat("\"host\":\"", c.url.host, "\",\"error\":\"",
                              JsonEscaped(c.tls->error_detail()), "\""));
      connect_failed(c);
      return;
    }
    counters.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
    if (c.tls->is_resumed()) counters.tls_resumed.fetch_add(1, std::memory_order_relaxed);
    start_upgrade(c);
  }

  void start_upgrade(Conn& c) {
    std::array<std::byte, 16> nonce;
    if (getrandom(nonce.data(), nonce.size(), 0) != static_cast<ssize_t>(nonce.size())) {
      for (auto& b : nonce) b = static_cast<std::byte>(rng.next());
    }
    c.hs.emplace(std::span<const std::byte, 16>(nonce));
    std::string req;
    const bool default_port = c.url.port == (c.url.is_tls() ? 443 : 80);
    std::string host = c.url.host.find(':') != std::string::npos
                           ? cat("[", c.url.host, "]")
                           : c.url.host;
    if (!default_port) shardring::append(host, ":", c.url.port);
    const ws::Header extra[] = {{"User-Agent", "shardring (https://github.com/shardring, 0.1)"}};
    if (c.hs->write_request(req, host, c.url.target(), extra) != ws::Errc::kOk) {
      Log::write(Level::kError, c.shard, "bad gateway url for a WebSocket request");
      connect_failed(c);
      return;
    }
    c.phase = Phase::kUpgrade;
    queue_bytes(c, std::as_bytes(std::span(req)));
  }

  // The set-up of c's connection is over (open, failed or dropped): the
  // oldest waiting shard may dial (admit_dials(), between loop passes).
  void dial_ended(Conn& c) {
    if (!c.dialing) return;
    c.dialing = false;
    --dialing;
  }

  void admit_dials() {
    while (dialing < kMaxDialsInFlight && !dial_queue.empty()) {
      Conn& c = *conns[dial_queue.pop()];
      if (!c.dial_queued) continue;
      c.dial_queued = false;
      dial(c);
    }
  }

  void connect_failed(Conn& c) {
    disarm(c, TimerKind::kConnectTimeout);
    disarm(c, TimerKind::kResolvePoll);
    close_socket(c);
    c.session.set_jitter(rng.unit());
    perform(c, c.session.on_connect_failed(now));
  }

  // Drops the socket now. In-flight requests finish with stale tags (the
  // generation moves on) and only then may the slot dial again.
  void close_socket(Conn& c) {
    disarm(c, TimerKind::kCloseLinger);
    disarm(c, TimerKind::kUnpause);
    for (const auto& h : c.held.waiting()) bufs.recycle(h.first);
    c.held.release();
    if (c.paused) end_pause(c);
    if (c.fd >= 0) {
      ::shutdown(c.fd, SHUT_RDWR);
      ::close(c.fd);
      c.fd = -1;
    }
    ++c.gen;
    c.recv_armed = false;
    dial_ended(c);
    c.phase = Phase::kIdle;
    c.tls.reset();
    c.hs.reset();
    c.out.clear();
    c.decoder.release_memory();
    if (c.counted_connected) {
      c.counted_connected = false;
      counters.connected.fetch_sub(1, std::memory_order_relaxed);
    }
    set_ready(c, false);
  }

  void set_ready(Conn& c, bool ready) {
    if (c.ready == ready) return;
    c.ready = ready;
    if (ready) {
      counters.ready.fetch_add(1, std::memory_order_relaxed);
      if (!c.ever_ready) {
        c.ever_ready = true;
        if (shared.ever_ready.fetch_add(1, std::memory_order_acq_rel) + 1 == shared.shards_here) {
          shared.all_ready_ns.store(SteadyNs(Clock::now()), std::memory_order_release);
        }
      }
    } else {
      counters.ready.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // ---------------------------------------------------------------- send
  void queue_bytes(Conn& c, std::span<const std::byte> bytes) {
    if (c.fd < 0) return;
    if (c.tls) {
      const tls::Errc e = c.tls->write_plaintext(bytes);
      if (e != tls::Errc::kOk) {
        Log::write(Level::kWarn, c.shard, "TLS write failed",
                   cat("\"error\":\"", JsonEscaped(c.tls->error_detail()), "\""));
        lost(c);
        return;
      }
    } else {
      c.out.insert(c.out.end(), bytes.begin(), bytes.end());
    }
    const size_t queued = c.tls ? c.tls->pending_ciphertext().size() : c.out.size();
    if (queued > kMaxQueuedOutBytes) {  // the peer stopped reading our frames
      Log::write(Level::kWarn, c.shard, "gateway is not reading; dropping the connection",
                 cat("\"queued_bytes\":", queued));
      lost(c);
      return;
    }
    try_send(c);
  }

  void send_frame_text(Conn& c, std::string_view json) {
    frame.clear();
    const ws::MaskKey key = mask_key();
    (void)c.encoder.text(frame, json, key);
    queue_bytes(c, std::as_bytes(std::span(frame)));
  }

  ws::MaskKey mask_key() {
    const uint32_t r = static_cast<uint32_t>(rng.next());
    ws::MaskKey key;
    static_assert(sizeof key == sizeof r);
    std::memcpy(key.data(), &r, sizeof r);
    return key;
  }

  void try_send(Conn& c) {
    if (c.send_inflight || c.fd < 0) return;
    if (c.tls) {
      if (c.tls->pending_ciphertext().empty()) return;
      c.tls->take_ciphertext(c.inflight);
    } else {
      if (c.out.empty()) return;
      std::swap(c.out, c.inflight);
      c.out.clear();
    }
    c.inflight_off = 0;
    submit_send(c);
  }

  void submit_send(Conn& c) {
    io_uring_sqe* sqe = ring->sqe();
    io_uring_prep_send(sqe, c.fd, c.inflight.data() + c.inflight_off,
                       c.inflight.size() - c.inflight_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, OpTag{Op::kSend, c.slot, c.gen}.pack());
    c.send_inflight = true;
    ++c.ops;
  }

  void on_send(Conn& c, const io_uring_cqe& cqe, bool stale) {
    c.send_inflight = false;
    if (stale) {
      c.inflight.clear();
      return;
    }
    if (cqe.res < 0) {
      Log::write(Level::kInfo, c.shard, "send failed",
                 cat("\"error\":\"", std::strerror(-cqe.res), "\""));
      lost(c);
      return;
    }
    c.inflight_off += static_cast<size_t>(cqe.res);
    if (c.inflight_off < c.inflight.size()) {
      submit_send(c);
      return;
    }
    c.inflight.clear();
    c.inflight_off = 0;
    try_send(c);
    if (c.phase == Phase::kClosing && !c.send_inflight && c.close_received) close_socket(c);
  }

  // ---------------------------------------------------------------- recv
  void arm_recv(Conn& c) {
    if (c.fd < 0 || c.recv_armed || c.paused) return;
    io_uring_sqe* sqe = ring->sqe();
    io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bufs.group();
    io_uring_sqe_set_data64(sqe, OpTag{Op::kRecv, c.slot, c.gen}.pack());
    c.recv_armed = true;
    ++c.ops;
  }

  void on_recv(Conn& c, const io_uring_cqe& cqe, bool stale) {
    const bool more = cqe.flags & IORING_CQE_F_MORE;
    const bool has_buf = cqe.flags & IORING_CQE_F_BUFFER;
    const uint16_t bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    if (!more) {
      --c.ops;
      if (!stale) c.recv_armed = false;
    }
    if (stale) {
      if (has_buf) bufs.recycle(bid);
      return;
    }
    if (cqe.res == -ENOBUFS) {  // the buffer ring ran dry: re-arm
      ++enobufs;
      if (!more) arm_recv(c);
      return;
    }
    if (cqe.res == -ECANCELED) {  // our own cancel (backpressure)
      // The shard may have been unpaused before the cancel landed.
      if (!more && !c.paused) arm_recv(c);
      return;
    }
    if (cqe.res <= 0) {
      if (has_buf) bufs.recycle(bid);
      if (cqe.res == 0) {
        Log::write(Level::kInfo, c.shard, "connection closed by peer (EOF)");
      } else {
        Log::write(Level::kInfo, c.shard, "recv failed",
                   cat("\"error\":\"", std::strerror(-cqe.res), "\""));
      }
      lost(c);
      return;
    }
    if (!has_buf) return;
    if (!inline_handlers && (c.paused || !channel(c).has_headroom())) {
      hold(c, bid, static_cast<uint32_t>(cqe.res));
      return;
    }
    process(c, bid, static_cast<uint32_t>(cqe.res));
    if (!more && c.fd >= 0) arm_recv(c);
  }

  void process(Conn& c, uint16_t bid, uint32_t len) {
    std::span<std::byte> bytes(bufs.data(bid), len);
    const uint32_t gen = c.gen;
    if (c.tls) {
      if (c.tls->feed_ciphertext(bytes) != tls::Errc::kOk) {
        bufs.recycle(bid);
        lost(c);
        return;
      }
      if (c.phase == Phase::kTls) drive_tls_handshake(c);
      while (c.gen == gen && c.tls && c.tls->is_handshake_done()) {
        size_t produced = 0;
        const tls::Errc e = c.tls->read_plaintext(
            std::span<std::byte>(plain.data(), kPlaintextChunk), produced);
        if (produced > 0) plaintext(c, std::span<std::byte>(plain.data(), produced), parse::kPadding);
        if (c.gen != gen) break;
        if (e == tls::Errc::kOk) continue;
        if (e == tls::Errc::kWantRead) break;
        if (e == tls::Errc::kClosed) {
          Log::write(Level::kInfo, c.shard, "TLS close_notify from peer");
        } else {
          ++counters.protocol_errors;
          Log::write(Level::kWarn, c.shard, "TLS record error",
                     cat("\"error\":\"", JsonEscaped(c.tls->error_detail()), "\""));
        }
        lost(c);
        break;
      }
      if (c.gen == gen && c.tls && c.tls->unread_ciphertext() > 0) {
        (void)c.tls->retain_ciphertext();
      }
    } else {
      plaintext(c, bytes, parse::kPadding);
    }
    bufs.recycle(bid);
  }

  void plaintext(Conn& c, std::span<std::byte> bytes, size_t slack) {
    const uint32_t gen = c.gen;
    if (c.phase == Phase::kUpgrade) {
      size_t consumed = 0;
      const ws::Errc e = c.hs->feed(bytes, consumed);
      if (e == ws::Errc::kNeedMore) return;
      if (e != ws::Errc::kOk) {
        Log::write(Level::kWarn, c.shard, "WebSocket upgrade refused",
                   cat("\"status\":", c.hs->status(), ",\"error\":", static_cast<int>(e)));
        connect_failed(c);
        return;
      }
      disarm(c, TimerKind::kConnectTimeout);
      dial_ended(c);
      c.phase = Phase::kOpen;
      c.hs.reset();  // the request and the answer's head: not needed again
      if (s.compression != parse::Compression::kNone) {
        if (c.inflater) {
          c.inflater->reset();
        } else {
          c.inflater.emplace(s.compression);
        }
      }
      c.counted_connected = true;
      counters.connected.fetch_add(1, std::memory_order_relaxed);
      Log::write(Level::kDebug, c.shard, "connected",
                 cat("\"url\":\"", c.url.authority(), "\",\"tls\":", c.tls ? "true" : "false"));
      c.session.set_jitter(rng.unit());
      perform(c, c.session.on_connected(now));
      if (c.gen != gen) return;
      bytes = bytes.subspan(consumed);
      if (bytes.empty()) return;
    }
    if (c.phase != Phase::kOpen && c.phase != Phase::kClosing) return;
    c.decoder.feed(bytes, slack);
    ws::Message msg;
    while (c.gen == gen) {
      const ws::Errc e = c.decoder.next(msg);
      if (e == ws::Errc::kOk) {
        on_message(c, msg);
        continue;
      }
      if (e == ws::Errc::kNeedMore || e == ws::Errc::kClosed) break;
      if (c.phase == Phase::kClosing) {  // garbage after our close: stop waiting
        close_socket(c);
        break;
      }
      ++counters.protocol_errors;
      Log::write(Level::kWarn, c.shard, "bad WebSocket frame from gateway; closing and resuming",
                 cat("\"error\":", static_cast<int>(e),
                              ",\"close_code\":", ws::close_code(e)));
      close_resumable(c, ws::close_code(e));
      break;
    }
  }

  // Our side found the peer at fault: close with `code` and let the session
  // resume (codes other than 1000/1001 keep the Discord session alive).
  void close_resumable(Conn& c, uint16_t code) {
    if (c.phase == Phase::kClosing) return;  // already closing: the session knows
    if (c.phase == Phase::kOpen) {
      frame.clear();
      (void)c.encoder.close(frame, code, {}, mask_key());
      queue_bytes(c, std::as_bytes(std::span(frame)));
      begin_close(c);  // the socket closes once the close frame is sent
    }
    c.session.set_jitter(rng.unit());
    perform(c, c.session.on_connection_lost(now));
  }

  void lost(Conn& c) {
    if (c.phase == Phase::kIdle) return;
    if (c.phase == Phase::kClosing) {  // EOF or an error after our close: the end
      close_socket(c);                 // we were waiting for; the session knows
      return;
    }
    const bool was_open = c.phase == Phase::kOpen || c.phase == Phase::kClosing;
    close_socket(c);
    c.session.set_jitter(rng.unit());
    if (was_open) {
      perform(c, c.session.on_connection_lost(now));
    } else {
      disarm(c, TimerKind::kConnectTimeout);
      perform(c, c.session.on_connect_failed(now));
    }
  }

  void on_message(Conn& c, const ws::Message& msg) {
    // After our close frame only the peer's close matters: a dispatch read
    // now is not counted, so the resume replays it.
    if (c.phase == Phase::kClosing && msg.kind != ws::MessageKind::kClose) return;
    switch (msg.kind) {
      case ws::MessageKind::kPing: {
        frame.clear();
        (void)c.encoder.reply(frame, msg, mask_key());
        queue_bytes(c, std::as_bytes(std::span(frame)));
        return;
      }
      case ws::MessageKind::kPong:
        return;
      case ws::MessageKind::kClose: {
        c.close_received = true;
        if (c.phase == Phase::kClosing) {  // the answer to our close
          if (!c.send_inflight) close_socket(c);
          return;
        }
        Log::write(Level::kInfo, c.shard, "gateway closed the connection",
                   cat("\"code\":", msg.close_code, ",\"reason\":\"",
                                JsonEscaped(msg.close_reason), "\""));
        if (!c.encoder.close_sent()) {
          frame.clear();
          (void)c.encoder.reply(frame, msg, mask_key());
          queue_bytes(c, std::as_bytes(std::span(frame)));
        }
        const uint16_t code = msg.close_code;
        begin_close(c);
        c.session.set_jitter(rng.unit());
        perform(c, c.session.on_close(code, now));
        return;
      }
      case ws::MessageKind::kBinary:
        if (c.inflater) {
          inflate(c, msg);
          return;
        }
        [[fallthrough]];
      case ws::MessageKind::kText:
        on_payload(c, msg.text(), msg.padded);
        return;
    }
  }

  // One binary message of the compressed stream: inflated into the core's
  // shared buffer (padded) and parsed in place. A broken stream closes the
  // connection and resumes: the next connection starts a new stream, and the
  // gateway replays what this one lost.
  void inflate(Conn& c, const ws::Message& msg) {
    const std::string_view m = msg.text();
    std::string_view payload;
    const parse::InflateErrc e =
        c.inflater->inflate(std::as_bytes(std::span(m.data(), m.size())), inflated, &payload);
    if (e == parse::InflateErrc::kOk) {
      on_payload(c, payload, true);
      return;
    }
    if (e == parse::InflateErrc::kNeedMore) return;
    ++counters.protocol_errors;
    Log::write(Level::kWarn, c.shard, "bad compressed stream from gateway; closing and resuming",
               cat("\"error\":\"", parse::to_string(e), "\",\"compress\":\"",
                   parse::to_string(s.compression), "\""));
    close_resumable(c, e == parse::InflateErrc::kCorrupt ? ws::CloseCode::kInvalidPayload
                                                         : ws::CloseCode::kMessageTooBig);
  }

  // The close frames are queued. The socket closes when they are sent and,
  // for a close we started on an open WebSocket, once the peer's close frame
  // or EOF came (RFC 6455 7.1.1: the server closes the TCP connection
  // first), or after kCloseLinger whatever the peer does.
  void begin_close(Conn& c) {
    if (c.phase != Phase::kOpen && c.phase != Phase::kUpgrade && c.phase != Phase::kTls) return;
    if (c.phase != Phase::kOpen) c.close_received = true;  // no WebSocket to close
    if (c.tls) (void)c.tls->shutdown();
    try_send(c);
    c.phase = Phase::kClosing;
    if (!c.send_inflight && c.close_received) {
      close_socket(c);
    } else {
      arm(c, TimerKind::kCloseLinger, now + kCloseLinger);
      arm_recv(c);
    }
  }

  void on_payload(Conn& c, std::string_view text, bool padded) {
    if (!padded) {  // rare: copy into a padded buffer once
      padbuf.assign(text.begin(), text.end());
      padbuf.resize(text.size() + parse::kPadding, '\0');
      text = std::string_view(padbuf.data(), text.size());
    }
    // --events: an unwanted dispatch is dropped once its envelope is read
    // (its seq still counts for heartbeats and resume). With --validate-d
    // the t-only read picks those out first, so the full check of d runs
    // only for events that are delivered.
    const bool filtering = !s.filter.allows_all();
    if (filtering && s.validate_d) {
      parse::EventName name;
      if (parser.event_type(text, name) == parse::Errc::kOk && name.t &&
          !wanted(name.type, *name.t)) {
        parse::Envelope env;
        if (parser.parse(text, env, {.check = parse::Check::kEnvelope}) == parse::Errc::kOk &&
            drop_unwanted(c, env)) {
          return;
        }
      }
    }
    parse::Envelope env;
    const parse::Errc pe = parser.parse(
        text, env,
        {.check = s.validate_d ? parse::Check::kFull : parse::Check::kEnvelope,
         .routing_keys = s.routing_keys});
    if (pe != parse::Errc::kOk) {
      ++counters.protocol_errors;
      Log::write(Level::kWarn, c.shard, "bad gateway payload; closing and resuming",
                 cat("\"error\":\"", parse::to_string(pe), "\",\"bytes\":", text.size()));
      close_resumable(c, ws::CloseCode::kInvalidPayload);
      return;
    }
    if (filtering && !s.validate_d && drop_unwanted(c, env)) return;
    switch (env.op) {
      case 0:
        on_dispatch(c, env);
        return;
      case 1:
        perform(c, c.session.on_heartbeat_request(now));
        return;
      case 7:
        Log::write(Level::kInfo, c.shard, "gateway asked to reconnect (op 7)");
        c.session.set_jitter(rng.unit());
        perform(c, c.session.on_reconnect(now));
        return;
      case 9: {
        bool resumable = false;
        if (parse::invalid_session_resumable(env.d, resumable) != parse::Errc::kOk) resumable = false;
        Log::write(Level::kInfo, c.shard, "invalid session (op 9)",
                   cat("\"resumable\":", resumable ? "true" : "false"));
        c.session.set_jitter(rng.unit());
        perform(c, c.session.on_invalid_session(resumable, now));
        return;
      }
      case 10: {
        uint64_t interval = 0;
        if (parser.hello_interval(env.d, interval) != parse::Errc::kOk) {
          ++counters.protocol_errors;
          Log::write(Level::kWarn, c.shard, "HELLO without a valid heartbeat_interval");
          close_resumable(c, ws::CloseCode::kInvalidPayload);
          return;
        }
        c.session.set_jitter(rng.unit());
        perform(c, c.session.on_hello(milliseconds(interval), now));
        return;
      }
      case 11:
        perform(c, c.session.on_heartbeat_ack(now));
        return;
      default:
        Log::write(Level::kDebug, c.shard, "ignoring unknown opcode",
                   cat("\"op\":", env.op));
        return;
    }
  }

  // READY and RESUMED always reach the session and the sink.
  bool wanted(parse::EventType type, std::string_view t) const {
    return type == parse::EventType::kReady || type == parse::EventType::kResumed ||
           s.filter.allows(type, t);
  }

  // A dispatch --events does not want: its seq is counted, nothing else.
  bool drop_unwanted(Conn& c, const parse::Envelope& env) {
    if (env.op != 0 || !env.s || !env.t || wanted(env.type, *env.t)) return false;
    (void)c.session.on_dispatch(*env.s);
    ++counters.filtered;
    return true;
  }

  void on_dispatch(Conn& c, const parse::Envelope& env) {
    if (!env.s) {
      Log::write(Level::kDebug, c.shard, "dispatch without a seq; ignored");
      return;
    }
    const uint64_t seq = *env.s;
    if (env.type == parse::EventType::kReady) {
      parse::ReadyInfo info;
      if (parser.ready_info(env.d, info) != parse::Errc::kOk) {
        ++counters.protocol_errors;
        Log::write(Level::kWarn, c.shard, "READY without a session_id; closing");
        close_resumable(c, ws::CloseCode::kInvalidPayload);
        return;
      }
      auto outcome = c.session.on_ready(seq, info.session_id, info.resume_gateway_url, now);
      Log::write(Level::kInfo, c.shard, "ready", cat("\"seq\":", seq));
      set_ready(c, true);
      if (outcome.deliver) deliver(c, env, seq);
      perform(c, std::move(outcome.actions));
      return;
    }
    if (env.type == parse::EventType::kResumed) {
      auto outcome = c.session.on_resumed(seq, now);
      Log::write(Level::kInfo, c.shard, "resumed", cat("\"seq\":", c.session.last_seq()));
      set_ready(c, true);
      if (outcome.deliver) deliver(c, env, seq);
      perform(c, std::move(outcome.actions));
      return;
    }
    if (seq <= c.session.last_seq()) {  // a replay already delivered
      (void)c.session.on_dispatch(seq);
      return;
    }
    deliver(c, env, seq);
    (void)c.session.on_dispatch(seq);
  }

  EventChannel& channel(Conn& c) { return *shared.channels[index][c.consumer]; }

  void deliver(Conn& c, const parse::Envelope& env, uint64_t seq) {
    ChannelEvent e{};
    e.shard = c.shard;
    e.type = static_cast<uint16_t>(env.type);
    e.seq = seq;
    e.guild_id = env.routing.guild_id.value_or(0);
    e.channel_id = env.routing.channel_id.value_or(0);
    e.t = env.t.value_or(std::string_view());
    e.d = env.d;
    e.recv_ns = SteadyNs(now);
    e.sent_ns = static_cast<int64_t>(env.stamp_ns);
    if (inline_handlers) {  // the handler runs here; d is read in place
      if (shared.deliver_inline) shared.deliver_inline(e);
      ++delivered_inline;
      return;
    }
    EventChannel& ch = channel(c);
    if (ch.try_push(e)) {
      pushed_consumers |= uint64_t{1} << (c.consumer & 63);
      return;
    }
    // The read was admitted with headroom, so this is one burst larger than
    // half the channel: wait for the consumer rather than lose the event.
    const auto t0 = Clock::now();
    shared.wakers[c.consumer]->notify();
    for (int spins = 0; !ch.try_push(e); ++spins) {
      if (shared.stopping.load(std::memory_order_relaxed) && spins > 200'000) {
        Log::write(Level::kError, c.shard, "consumer stuck at shutdown; event not delivered",
                   cat("\"seq\":", seq));
        return;
      }
      shared.wakers[c.consumer]->notify();
      if (spins > 64) std::this_thread::yield();
    }
    counters.backpressure_ms.fetch_add(static_cast<uint64_t>(
        std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count()),
        std::memory_order_relaxed);
    pushed_consumers |= uint64_t{1} << (c.consumer & 63);
  }

  // ----------------------------------------------------------- backpressure
  void hold(Conn& c, uint16_t bid, uint32_t len) {
    c.held.push({bid, len});
    if (!c.paused) {
      c.paused = true;
      c.paused_since = now;
      if (c.recv_armed) {  // stop the multishot recv: TCP pushes back
        io_uring_sqe* sqe = ring->sqe();
        io_uring_prep_cancel64(sqe, OpTag{Op::kRecv, c.slot, c.gen}.pack(), 0);
        io_uring_sqe_set_data64(sqe, OpTag{Op::kCancel, c.slot, c.gen}.pack());
      }
      shared.wakers[c.consumer]->notify();
    }
    arm(c, TimerKind::kUnpause, now + kBackpressurePoll);
  }

  void end_pause(Conn& c) {
    c.paused = false;
    counters.backpressure_ms.fetch_add(static_cast<uint64_t>(
        std::chrono::duration_cast<milliseconds>(now - c.paused_since).count()),
        std::memory_order_relaxed);
  }

  void unpause(Conn& c) {
    if (!c.paused) return;
    const uint32_t gen = c.gen;
    while (!c.held.empty() && channel(c).has_headroom()) {
      const auto [bid, len] = c.held.pop();
      process(c, bid, len);  // may hold more
      if (c.gen != gen) return;
    }
    if (!c.held.empty()) {
      shared.wakers[c.consumer]->notify();
      arm(c, TimerKind::kUnpause, now + kBackpressurePoll);
      return;
    }
    c.held.release();
    end_pause(c);
    arm_recv(c);
  }

  // ---------------------------------------------------------------- actions
  void perform(Conn& c, gateway::Actions actions) {
    for (auto& a : actions) {
      std::visit([&](auto& x) { act(c, x); }, a);
    }
  }
  void act(Conn& c, gateway::SendText& x) {
    if (c.phase != Phase::kOpen) return;
    switch (x.kind) {
      case gateway::SendKind::kHeartbeat:
        ++counters.heartbeats;
        if (heartbeat_timer_conn == &c) {
          // Lateness: deadline to the frame queued for the socket.
          const auto late = Clock::now() - c.heartbeat_due;
          counters.heartbeat_late.record(static_cast<uint64_t>(std::max<int64_t>(
              0, std::chrono::duration_cast<std::chrono::nanoseconds>(late).count())));
        }
        break;
      case gateway::SendKind::kIdentify:
        ++counters.identifies;
        Log::write(Level::kInfo, c.shard, "identifying");
        break;
      case gateway::SendKind::kResume:
        ++counters.resumes;
        Log::write(Level::kInfo, c.shard, "resuming", cat("\"seq\":", c.session.last_seq()));
        break;
      case gateway::SendKind::kUser: break;
    }
    send_frame_text(c, x.json);
  }
  void act(Conn& c, gateway::StartTimer& x) {
    arm(c, static_cast<TimerKind>(x.id), x.deadline);
  }
  void act(Conn& c, gateway::CancelTimer& x) { disarm(c, static_cast<TimerKind>(x.id)); }
  void act(Conn& c, gateway::RequestIdentify&) { request_identify(c); }
  void act(Conn& c, gateway::CloseConnection& x) {
    if (c.session.stats().zombies > c.zombies_seen) {
      c.zombies_seen = c.session.stats().zombies;
      ++counters.zombies;
      Log::write(Level::kWarn, c.shard, "no heartbeat ACK: zombie connection, resuming");
    }
    if (c.phase == Phase::kOpen) {
      frame.clear();
      (void)c.encoder.close(frame, x.code, {}, mask_key());
      queue_bytes(c, std::as_bytes(std::span(frame)));
    }
    set_ready(c, false);
    begin_close(c);
  }
  void act(Conn& c, gateway::Reconnect& x) {
    ++counters.reconnects;
    set_ready(c, false);
    if (c.phase != Phase::kClosing && c.phase != Phase::kIdle) close_socket(c);
    c.next_url = x.url;
    Log::write(Level::kDebug, c.shard, "reconnecting",
               cat("\"delay_ms\":", x.delay.count(), ",\"mode\":\"",
                            gateway::to_string(x.mode), "\""));
    arm(c, TimerKind::kReconnect, now + x.delay);
  }
  void act(Conn& c, gateway::Fatal& x) {
    Log::write(Level::kError, c.shard, x.message, cat("\"code\":", x.code));
    {
      std::lock_guard lock(shared.fatal_mu);
      if (shared.fatal_code.load() == 0) {
        shared.fatal_message = x.message;
        shared.fatal_code.store(x.code);
      }
    }
    close_socket(c);
    if (shared.on_fatal) shared.on_fatal();
  }

  void request_identify(Conn& c) {
    Clock::time_point retry;
    // A fresh clock: the loop's `now` may be a busy iteration old, and the
    // gateway times the window from the IDENTIFY it receives.
    if (shared.gate.try_acquire(c.shard, Clock::now(), &retry)) {
      perform(c, c.session.on_identify_granted(now));
    } else {
      arm(c, TimerKind::kIdentifyRetry, retry);
    }
  }

  // ---------------------------------------------------------------- loop
  void on_cqe(const io_uring_cqe& cqe) {
    const OpTag tag = OpTag::unpack(cqe.user_data);
    if (tag.op == Op::kWake) {
      wake_armed = false;
      return;
    }
    if (tag.op == Op::kCancel || tag.op == Op::kNone || tag.slot >= conns.size()) return;
    Conn& c = *conns[tag.slot];
    const bool stale = (c.gen & 0xFF'FFFF) != tag.generation;
    switch (tag.op) {
      case Op::kConnect:
        --c.ops;
        if (stale) break;
        if (cqe.res < 0) {
          Log::write(Level::kWarn, c.shard, "connect failed",
                     cat("\"addr\":\"", c.addr.to_string(), "\",\"error\":\"",
                                  std::strerror(-cqe.res), "\""));
          connect_failed(c);
        } else {
          on_connected_tcp(c);
        }
        break;
      case Op::kRecv:
        on_recv(c, cqe, stale);
        break;
      case Op::kSend:
        --c.ops;
        on_send(c, cqe, stale);
        break;
      default:
        break;
    }
    if (c.want_connect && c.ops == 0 && c.fd < 0) dial(c);
  }

  void arm_wake() {
    if (wake_armed) return;
    io_uring_sqe* sqe = ring->sqe();
    io_uring_prep_read(sqe, wake_fd, &wake_buf, sizeof wake_buf, 0);
    io_uring_sqe_set_data64(sqe, OpTag{Op::kWake, 0, 0}.pack());
    wake_armed = true;
  }

  void take_user_sends() {
    std::vector<std::pair<uint32_t, std::string>> batch;
    {
      std::lock_guard lock(sends.mu);
      batch.swap(sends.queue);
    }
    for (auto& [slot, payload] : batch) {
      Conn& c = *conns[slot];
      gateway::Actions out;
      const gateway::Errc e = c.session.queue_send(std::move(payload), now, out);
      if (e != gateway::Errc::kOk) {
        Log::write(Level::kWarn, c.shard, "user send refused",
                   cat("\"error\":\"", gateway::to_string(e), "\""));
      }
      perform(c, std::move(out));
    }
  }

  void start_shutdown() {
    shutting_down = true;
    for (auto& cp : conns) {
      Conn& c = *cp;
      disarm(c, TimerKind::kReconnect);
      disarm(c, TimerKind::kIdentifyRetry);
      shared.gate.withdraw(c.shard);
      c.want_connect = false;
      if (c.phase == Phase::kOpen) {
        perform(c, c.session.shutdown(now));
        if (c.phase == Phase::kOpen) begin_close(c);
      } else if (c.phase != Phase::kClosing) {
        close_socket(c);
      }
    }
    shutdown_deadline = now + milliseconds(1500);
  }

  bool all_quiet() const {
    for (const auto& c : conns) {
      if (c->ops > 0 || c->fd >= 0) return false;
    }
    return true;
  }

  void run() {
    now = Clock::now();
    // Stagger the first dials a little so thousands of sockets do not open
    // in one burst; identifies are paced by the gate anyway.
    for (auto& c : conns) {
      arm(*c, TimerKind::kReconnect, now + milliseconds(c->slot / 64));
    }
    unsigned reaped = 0;
    while (true) {
      arm_wake();
      bufs.flush();
      std::chrono::microseconds wait(shutting_down ? 10'000 : 1'000'000);
      // Coalescing (Settings::coalesce): after a light pass, wait for a busy
      // pass's worth of completions or the coalescing time, whichever comes
      // first. With DEFER_TASKRUN the kernel runs arriving completions only
      // when this thread waits, and (Linux 6.8+) wakes it only when enough
      // are there; older kernels wake it per completion in the kernel, which
      // still saves the trip to user space and the consumer's wake-ups.
      unsigned want = 1;
      if (reaped > 0 && reaped < kCoalesceBusyCompletions && s.coalesce.count() > 0 &&
          !shutting_down) {
        want = kCoalesceBusyCompletions;
        wait = s.coalesce;
      }
      if (auto next = wheel.next_deadline()) {
        const auto until = std::chrono::duration_cast<std::chrono::microseconds>(*next - Clock::now());
        if (until < wait) wait = std::max(until, std::chrono::microseconds(0));
      }
      if (wait.count() > 0) {
        ring->submit_and_wait(wait, want);
      } else {
        ring->submit();
      }
      now = Clock::now();
      pushed_consumers = 0;
      reaped = ring->reap([&](const io_uring_cqe& cqe) { on_cqe(cqe); });
      bufs.flush();
      wheel.advance(now, [&](uint64_t cookie) { on_timer(cookie); });
      if (sends.pending.exchange(false, std::memory_order_acquire)) take_user_sends();
      admit_dials();
      publish_inline();
      for (uint64_t m = pushed_consumers; m != 0; m &= m - 1) {
        const unsigned bit = static_cast<unsigned>(__builtin_ctzll(m));
        for (size_t k = bit; k < shared.wakers.size(); k += 64) shared.wakers[k]->notify();
      }
      if (!shutting_down && shared.stopping.load(std::memory_order_acquire)) start_shutdown();
      if (shutting_down && (all_quiet() || now >= shutdown_deadline)) break;
    }
    publish_inline();
    for (auto& c : conns) {
      if (c->fd >= 0) {
        ::close(c->fd);
        c->fd = -1;
      }
    }
  }

  // Inline handlers: after a pass that delivered, the count for stats and
  // the idle call (a sink flushes what the pass wrote).
  void publish_inline() {
    if (delivered_inline == published_inline) return;
    published_inline = delivered_inline;
    counters.delivered_inline.store(delivered_inline, std::memory_order_relaxed);
    if (shared.idle_inline) shared.idle_inline();
  }

  static std::string JsonEscaped(std::string_view s) {
    std::string out;
    Log::append_json_escaped(&out, s);
    return out;
  }

  uint32_t index;
  Shared& shared;
  const Settings& s;
  int wake_fd;
  CoreCounters& counters;
  std::unique_ptr<Uring> ring;
  BufferRing bufs;
  TimerWheel wheel{Clock::now(), 4096};
  parse::Parser parser;
  std::optional<tls::Context> tls_ctx;
  tls::SessionCache tls_cache;
  std::vector<std::unique_ptr<Conn>> conns;
  // Connections being set up now (Conn::dialing), and the slots of shards
  // waiting for one of those to end (kMaxDialsInFlight).
  uint32_t dialing = 0;
  base::Fifo<uint32_t> dial_queue;
  std::vector<std::byte> plain;
  std::string frame;
  std::string padbuf;
  parse::InflateBuffer inflated;  // every connection's inflated payload, in turn
  Rng rng;
  Clock::time_point now{};
  const Conn* heartbeat_timer_conn = nullptr;  // set while a heartbeat timer runs
  uint64_t enobufs = 0;
  uint64_t pushed_consumers = 0;
  bool shutting_down = false;
  Clock::time_point shutdown_deadline{};
  uint64_t wake_buf = 0;
  bool wake_armed = false;
  UserSends& sends;
  const bool inline_handlers;  // Settings::consumers == 0
  uint64_t delivered_inline = 0, published_inline = 0;
};

CoreThread::CoreThread(uint32_t index, Shared& shared, std::vector<uint32_t> shards)
    : index_(index), shared_(shared), shards_(std::move(shards)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
}

CoreThread::~CoreThread() {
  join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

absl::Status CoreThread::start(int cpu) {
  std::promise<absl::Status> ready;
  auto fut = ready.get_future();
  thread_ = std::thread([this, cpu, &ready] {
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    std::string name = "shardring-io" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    loop_ = std::make_unique<Loop>(index_, shared_, shards_, wake_fd_, sends_);
    absl::Status st = loop_->init();
    ready.set_value(st);
    if (!st.ok()) return;
    loop_->run();
  });
  absl::Status st = fut.get();
  if (!st.ok()) join();
  return st;
}

void CoreThread::join() {
  if (thread_.joinable()) thread_.join();
}

void CoreThread::wake() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

bool CoreThread::queue_send(uint32_t shard, std::string payload) {
  // shards_ is fixed at construction, and slots follow its order.
  const auto it = std::find(shards_.begin(), shards_.end(), shard);
  if (it == shards_.end()) return false;
  {
    std::lock_guard lock(sends_.mu);
    sends_.queue.emplace_back(static_cast<uint32_t>(it - shards_.begin()), std::move(payload));
  }
  sends_.pending.store(true, std::memory_order_release);
  wake();
  return true;
}

}  // namespace shardring::engine
