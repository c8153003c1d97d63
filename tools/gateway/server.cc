#include "tools/gateway/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tools/gateway/text.h"
#include "engine/timer_wheel.h"
#include "engine/uring.h"
#include "gateway/close_codes.h"
#include "parse/envelope.h"
#include "parse/inflate.h"
#include "simdjson.h"
#include "tls/context.h"
#include "tls/session.h"
#include "tools/gateway/mix.h"
#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/handshake.h"

namespace shardring::gatewaysrv {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

namespace {

// Receive buffers per thread (provided-buffer ring): a connection's bytes
// are consumed (or copied by the decoder) before its buffer goes back.
constexpr uint16_t kRecvBuffers = 512;
constexpr uint32_t kRecvBufferBytes = 16 << 10;
constexpr unsigned kRingEntries = 4096;
// The ws decoder's own limit (1009 above it); payloads over
// kMaxClientPayload but under this get Discord's 4002.
constexpr size_t kDecoderMessageLimit = 64 << 10;
// Identify's intents: every bit Discord defines (1 << 0 .. 1 << 25).
constexpr int64_t kAllIntents = (int64_t{1} << 26) - 1;
constexpr uint32_t kMaxShardTotal = 1 << 20;
// zstd-stream window (2^17 = 128 KiB): each client keeps a window this big
// per connection for its life, so the gateway asks for a modest one.
constexpr int kZstdWindowLog = 17;
// Discord's epoch (2015-01-01) for the snowflakes we mint.
constexpr int64_t kDiscordEpochMs = 1'420'070'400'000;
constexpr std::string_view kBotUserId = "1099512211042828288";
constexpr std::string_view kApplicationId = "1099512211042828288";
constexpr std::string_view kTrace = R"(["shardring-gateway"])";
constexpr auto kHousekeepingEvery = std::chrono::seconds(5);
constexpr auto kStopDeadline = milliseconds(1500);

// Non-dispatch payloads, in Discord's key order.
constexpr std::string_view kHeartbeatAck =
    R"({"t":null,"s":null,"op":11,"d":null})";
constexpr std::string_view kReconnect = R"({"t":null,"s":null,"op":7,"d":null})";
constexpr std::string_view kInvalidSessionFalse =
    R"({"t":null,"s":null,"op":9,"d":false})";
constexpr std::string_view kInvalidSessionTrue =
    R"({"t":null,"s":null,"op":9,"d":true})";

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

uint64_t ns_of(Clock::time_point t) {
  return static_cast<uint64_t>(
      duration_cast<nanoseconds>(t.time_since_epoch()).count());
}

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool is_wildcard(std::string_view host) {
  return host == "0.0.0.0" || host == "::" || host.empty();
}

// A Host header we may echo into a URL.
bool is_sane_host(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  for (char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                    c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out.append(buf);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

struct ShardStats {
  std::atomic<uint64_t> identifies{0}, resumes{0}, events_sent{0},
      last_seq{0};
  std::string session_id;  // under Shared::mu
};

// A dispatch that is not regenerated from a template (READY, RESUMED,
// GUILD_MEMBERS_CHUNK): kept for replay.
struct Kept {
  uint64_t seq;
  std::string payload;
};

// One Discord session. While `attached`, only the I/O thread of the
// connection that holds it touches the fields below the line; handing it
// to another connection goes through Shared::mu.
struct SessionState {
  std::string id, token;
  uint32_t shard = 0, total = 1, guilds = 0;
  uint64_t seed = 0;
  uint64_t snowflake_base = 0;
  ShardStats* stats = nullptr;
  bool attached = false;  // under Shared::mu
  Clock::time_point detached_at;  // under Shared::mu
  // ----
  uint64_t last_seq = 0;
  uint64_t generated = 0;     // template events (for --events)
  uint64_t replay_floor = 0;  // kept dispatches before this were dropped
  std::deque<Kept> kept;
};

enum class TimerKind : uint8_t {
  kGenerate = 1,
  kReconnect,
  kInvalidSession,
  kLinger,
  kDelay,
  kHousekeeping,
};

uint64_t timer_cookie(TimerKind k, uint32_t slot, uint32_t gen) {
  return uint64_t{static_cast<uint8_t>(k)} << 56 |
         uint64_t{gen & 0xFF'FFFF} << 32 | slot;
}

enum class Phase : uint8_t { kHttp, kWebSocket, kDead };

struct Conn {
  int fd = -1;
  uint32_t slot = 0, gen = 0;
  Phase phase = Phase::kHttp;
  bool use_tls = false;
  bool send_inflight = false;
  bool recv_armed = false;
  bool draining = false;           // input ignored; close once flushed
  bool closing = false;            // our close frame is queued
  bool peer_closed = false;        // the client's close frame arrived
  bool identified = false;
  bool gen_blocked = false;        // generation paused on a full queue
  tls::Session tls;
  std::unique_ptr<ws::ServerHandshake> hs =
      std::make_unique<ws::ServerHandshake>();
  ws::Decoder dec{ws::Role::kServer,
                  ws::DecoderOptions{.max_message_bytes = kDecoderMessageLimit}};
  ws::Encoder enc{ws::Role::kServer};
  // compress= from the upgrade URL: one stream for the connection's life.
  std::optional<parse::Deflater> deflater;
  std::string out;                  // bytes waiting to be sent (plaintext)
  std::string inflight;             // plain: the batch being sent
  std::vector<std::byte> inflight_tls;  // TLS: the ciphertext being sent
  size_t inflight_off = 0, inflight_len = 0;
  std::string host;                 // Host header of the upgrade
  std::shared_ptr<SessionState> session;
  uint64_t conn_events = 0;         // template events on this connection
  uint64_t acks = 0;
  Clock::time_point window_start;
  uint32_t window_count = 0;
  Clock::time_point gen_epoch;
  uint64_t gen_count = 0;
  engine::TimerId t_gen, t_reconnect, t_invalid, t_linger, t_delay;

  const char* inflight_data() const {
    return use_tls ? reinterpret_cast<const char*>(inflight_tls.data())
                   : inflight.data();
  }
};

}  // namespace

struct Server::Shared {
  GatewayOptions opt;
  Mix mix;
  std::optional<tls::Context> tls;
  uint16_t port = 0;
  std::string url_host;  // HOST:PORT for URLs (empty when listening on all)
  std::unique_ptr<std::atomic<int64_t>[]> buckets;  // next identify, ns

  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<SessionState>> sessions;
  std::map<uint32_t, std::unique_ptr<ShardStats>> shard_stats;

  std::atomic<uint64_t> connections{0}, ws_sessions{0}, identifies{0},
      resumes{0}, events_sent{0}, rate_limited{0}, http_requests{0},
      tls_handshakes{0}, tls_resumed{0};
  std::atomic<bool> stop{false};
  std::vector<int> listen_fds;
  std::vector<std::thread> threads;
  bool stopped = false;

  ShardStats* stats_for(uint32_t shard) {  // under mu
    auto& p = shard_stats[shard];
    if (!p) p = std::make_unique<ShardStats>();
    return p.get();
  }
  std::string scheme_ws() const { return tls ? "wss://" : "ws://"; }
  std::string host_for(std::string_view host_header) const {
    if (!url_host.empty()) return url_host;
    if (is_sane_host(host_header)) return std::string(host_header);
    return cat("127.0.0.1:", port);
  }
};

namespace {

class Worker {
 public:
  Worker(Server::Shared& sh, int listen_fd, uint32_t index)
      : sh_(sh), listen_fd_(listen_fd), index_(index) {}

  absl::Status init() {
    auto ring = engine::Uring::create(kRingEntries);
    if (!ring.ok()) return ring.status();
    ring_ = *std::move(ring);
    bufs_ = std::make_unique<engine::BufferRing>();
    if (absl::Status s = bufs_->init(ring_->raw(), 0, kRecvBuffers,
                                     kRecvBufferBytes, ws::kPadding);
        !s.ok()) {
      return s;
    }
    tls_scratch_.resize(kRecvBufferBytes + ws::kPadding);
    wheel_.emplace(Clock::now());
    return absl::OkStatus();
  }

  void run() {
    arm_accept();
    if (index_ == 0) {
      wheel_->schedule(Clock::now() + kHousekeepingEvery,
                       timer_cookie(TimerKind::kHousekeeping, 0, 0));
    }
    while (true) {
      const Clock::time_point now = Clock::now();
      now_ = now;
      wheel_->advance(now, [&](uint64_t cookie) { on_timer(cookie); });
      if (!stopping_ && sh_.stop.load(std::memory_order_relaxed)) {
        begin_stop();
      }
      if (stopping_ && (live_ == 0 || now >= stop_deadline_)) break;
      auto wait = std::chrono::microseconds(20'000);
      if (auto next = wheel_->next_deadline()) {
        wait = std::min(wait, duration_cast<std::chrono::microseconds>(
                                  *next - now) +
                                  std::chrono::microseconds(50));
      }
      if (wait.count() <= 0) {
        ring_->submit();
      } else {
        ring_->submit_and_wait(wait);
      }
      now_ = Clock::now();
      ring_->reap([&](const io_uring_cqe& cqe) { on_cqe(cqe); });
      bufs_->flush();
      for (auto [slot, gen] : rearm_) {
        Conn* c = lookup(slot, gen);
        if (c != nullptr && c->phase != Phase::kDead && !c->recv_armed) {
          arm_recv(*c);
        }
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

 private:
  // ---------------------------------------------------------------- ring
  void arm_accept() {
    io_uring_sqe* sqe = ring_->sqe();
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr,
                                   SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, engine::OpTag{engine::Op::kAccept, 0, 0}.pack());
  }

  void arm_recv(Conn& c) {
    io_uring_sqe* sqe = ring_->sqe();
    io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bufs_->group();
    io_uring_sqe_set_data64(
        sqe, engine::OpTag{engine::Op::kRecv, c.slot, c.gen}.pack());
    c.recv_armed = true;
  }

  void submit_send(Conn& c) {
    size_t n = c.inflight_len - c.inflight_off;
    if (sh_.opt.segment > 0) n = std::min<size_t>(n, sh_.opt.segment);
    io_uring_sqe* sqe = ring_->sqe();
    io_uring_prep_send(sqe, c.fd, c.inflight_data() + c.inflight_off, n,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(
        sqe, engine::OpTag{engine::Op::kSend, c.slot, c.gen}.pack());
    c.send_inflight = true;
  }

  Conn* lookup(uint32_t slot, uint32_t gen) {
    if (slot >= conns_.size() || !conns_[slot]) return nullptr;
    Conn* c = conns_[slot].get();
    return (c->gen & 0xFF'FFFF) == (gen & 0xFF'FFFF) ? c : nullptr;
  }

  void on_cqe(const io_uring_cqe& cqe) {
    const engine::OpTag tag = engine::OpTag::unpack(cqe.user_data);
    switch (tag.op) {
      case engine::Op::kAccept:
        on_accept(cqe);
        return;
      case engine::Op::kRecv: {
        Conn* c = lookup(tag.slot, tag.generation);
        if (c == nullptr) {
          if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
            bufs_->recycle(
                static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
          }
          return;
        }
        on_recv(*c, cqe);
        maybe_release(*c);
        return;
      }
      case engine::Op::kSend: {
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

  void on_accept(const io_uring_cqe& cqe) {
    if (!(cqe.flags & IORING_CQE_F_MORE) && !stopping_) arm_accept();
    if (cqe.res < 0) {
      if (cqe.res != -ECANCELED) {
        log_line(-1, cat("accept failed: ", std::strerror(-cqe.res)));
      }
      return;
    }
    const int fd = cqe.res;
    if (stopping_) {
      ::close(fd);
      return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<uint32_t>(conns_.size());
      conns_.emplace_back();
      gens_.push_back(0);
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->slot = slot;
    c->gen = ++gens_[slot] & 0xFF'FFFF;
    if (sh_.tls) {
      c->use_tls = true;
      auto s = tls::Session::server(*sh_.tls);
      if (!s.ok()) {
        log_line(-1, cat("TLS session: ", s.status().message()));
        ::close(fd);
        free_.push_back(slot);
        return;
      }
      c->tls = *std::move(s);
    }
    sh_.connections.fetch_add(1, std::memory_order_relaxed);
    ++live_;
    arm_recv(*c);
    conns_[slot] = std::move(c);
  }

  void on_recv(Conn& c, const io_uring_cqe& cqe) {
    if (!(cqe.flags & IORING_CQE_F_MORE)) c.recv_armed = false;
    if (cqe.res > 0) {
      const uint16_t bid =
          static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      if (c.phase != Phase::kDead && !c.draining) {
        std::span<std::byte> bytes(bufs_->data(bid),
                                   static_cast<size_t>(cqe.res));
        on_bytes(c, bytes, kRecvBufferBytes - cqe.res + ws::kPadding);
      }
      bufs_->recycle(bid);
      if (!c.recv_armed && c.phase != Phase::kDead) {
        rearm_.emplace_back(c.slot, c.gen);
      }
      return;
    }
    if (cqe.res == -ENOBUFS) {
      if (!c.recv_armed && c.phase != Phase::kDead) {
        rearm_.emplace_back(c.slot, c.gen);
      }
      return;
    }
    if (c.phase != Phase::kDead) {
      terminate(c, cqe.res == 0 ? "peer closed the connection"
                                : cat("recv: ",
                                               std::strerror(-cqe.res)));
    }
  }

  void on_send(Conn& c, int res) {
    c.send_inflight = false;
    if (c.phase == Phase::kDead) return;
    if (res < 0) {
      terminate(c, cat("send: ", std::strerror(-res)));
      return;
    }
    c.inflight_off += static_cast<size_t>(res);
    if (c.inflight_off < c.inflight_len) {
      submit_send(c);
      return;
    }
    c.inflight_len = c.inflight_off = 0;
    if (c.gen_blocked && queued(c) < kSendQueueBytes / 2) {
      c.gen_blocked = false;
      generate(c);
    } else if (sh_.opt.rate == 0 && !c.gen_blocked) {
      generate(c);
    }
    if (c.phase == Phase::kDead) return;
    flush(c);
    check_done(c);
  }

  // -------------------------------------------------------------- send path
  size_t queued(const Conn& c) const {
    size_t n = c.out.size() + (c.inflight_len - c.inflight_off);
    if (c.use_tls) n += c.tls.pending_ciphertext().size();
    return n;
  }

  // Moves what is queued towards the socket.
  void flush(Conn& c) {
    if (c.phase == Phase::kDead) return;
    if (c.use_tls && !c.out.empty() && c.tls.is_handshake_done()) {
      const tls::Errc e = c.tls.write_plaintext(std::as_bytes(
          std::span<const char>(c.out.data(), c.out.size())));
      c.out.clear();
      if (e != tls::Errc::kOk) {
        terminate(c, cat("TLS write: ", tls::to_string(e)));
        return;
      }
    }
    if (c.send_inflight) return;
    if (sh_.opt.delay_ms > 0) {
      if (!c.t_delay.is_valid() && has_wire_bytes(c)) {
        c.t_delay = wheel_->schedule(
            now_ + milliseconds(sh_.opt.delay_ms),
            timer_cookie(TimerKind::kDelay, c.slot, c.gen));
      }
      return;
    }
    start_send(c);
  }

  bool has_wire_bytes(const Conn& c) const {
    return c.use_tls ? !c.tls.pending_ciphertext().empty() : !c.out.empty();
  }

  void start_send(Conn& c) {
    if (c.send_inflight || c.phase == Phase::kDead) return;
    if (c.use_tls) {
      if (c.tls.pending_ciphertext().empty()) return;
      c.tls.take_ciphertext(c.inflight_tls);
      c.inflight_len = c.inflight_tls.size();
    } else {
      if (c.out.empty()) return;
      std::swap(c.out, c.inflight);
      c.out.clear();
      c.inflight_len = c.inflight.size();
    }
    c.inflight_off = 0;
    submit_send(c);
  }

  // Terminates once everything queued is sent, when asked to.
  void check_done(Conn& c) {
    if (c.phase == Phase::kDead || c.send_inflight || queued(c) != 0) return;
    if (c.draining || (c.closing && c.peer_closed)) {
      terminate(c, c.closing ? "close handshake done" : "response sent");
    }
  }

  void send_text(Conn& c, std::string_view payload) {
    if (c.deflater) {
      send_compressed(c, payload);
      return;
    }
    if (sh_.opt.fragment > 0 && payload.size() > sh_.opt.fragment) {
      const size_t step = sh_.opt.fragment;
      for (size_t off = 0; off < payload.size(); off += step) {
        const size_t n = std::min(step, payload.size() - off);
        (void)c.enc.fragment(
            c.out, off == 0 ? ws::Opcode::kText : ws::Opcode::kContinuation,
            off + n == payload.size(),
            std::as_bytes(std::span<const char>(payload.data() + off, n)));
      }
      return;
    }
    (void)c.enc.text(c.out, payload);
  }

  // Transport compression: the payload onto the connection's stream, sent as
  // binary. With --fragment N, a zlib-stream payload goes out as several
  // messages of N compressed bytes (a client joins them until the 00 00 ff ff
  // suffix, as Discord documents); zstd-stream keeps one payload per message
  // and fragments it into WebSocket continuation frames instead.
  void send_compressed(Conn& c, std::string_view payload) {
    compressed_.clear();
    if (!c.deflater->compress(payload, compressed_)) {
      terminate(c, "compression failed (out of memory)");
      return;
    }
    const size_t step = sh_.opt.fragment;
    const auto bytes = std::as_bytes(std::span<const char>(compressed_));
    if (step == 0 || compressed_.size() <= step) {
      (void)c.enc.binary(c.out, bytes);
      return;
    }
    const bool zlib = c.deflater->compression() == parse::Compression::kZlibStream;
    for (size_t off = 0; off < bytes.size(); off += step) {
      const size_t n = std::min(step, bytes.size() - off);
      if (zlib) {
        (void)c.enc.binary(c.out, bytes.subspan(off, n));
      } else {
        (void)c.enc.fragment(c.out, off == 0 ? ws::Opcode::kBinary : ws::Opcode::kContinuation,
                             off + n == bytes.size(), bytes.subspan(off, n));
      }
    }
  }

  void send_templated(Conn& c, const Template& t, const Splice& s) {
    if (sh_.opt.fragment > 0 || c.deflater) {
      scratch_.clear();
      append_payload(scratch_, t, s);
      send_text(c, scratch_);
      return;
    }
    append_frame(c.out, t, s);
  }

  // Closes with `code` (Discord's close codes, or RFC 6455's): close frame,
  // then the TCP connection once the client answers or kCloseLinger passes.
  void send_close(Conn& c, uint16_t code, std::string_view reason) {
    if (c.phase == Phase::kDead || c.closing) return;
    const int64_t shard = c.session ? int64_t{c.session->shard} : -1;
    log_line(shard, cat("closing with ", code, " (", reason, ")"));
    if (c.session && gateway::classify_close(code) ==
                         gateway::CloseDecision::kIdentify) {
      invalidate_session(c);
    }
    (void)c.enc.close(c.out, code, reason);
    c.closing = true;
    wheel_->cancel(c.t_gen);
    c.t_linger = wheel_->schedule(now_ + kCloseLinger,
                                  timer_cookie(TimerKind::kLinger, c.slot, c.gen));
    flush(c);
    check_done(c);
  }

  // Ends the connection now (no close frame). The Conn is freed by
  // maybe_release() once no operation refers to it.
  void terminate(Conn& c, std::string_view why) {
    if (c.phase == Phase::kDead) return;
    if (c.phase == Phase::kWebSocket && c.session) {
      log_line(c.session->shard, cat("disconnected: ", why));
    }
    detach_session(c);
    for (engine::TimerId* t :
         {&c.t_gen, &c.t_reconnect, &c.t_invalid, &c.t_linger, &c.t_delay}) {
      wheel_->cancel(*t);
      *t = {};
    }
    c.phase = Phase::kDead;
    ::shutdown(c.fd, SHUT_RDWR);
    if (c.recv_armed) {
      io_uring_sqe* sqe = ring_->sqe();
      io_uring_prep_cancel64(
          sqe, engine::OpTag{engine::Op::kRecv, c.slot, c.gen}.pack(), 0);
      io_uring_sqe_set_data64(sqe,
                              engine::OpTag{engine::Op::kCancel, 0, 0}.pack());
    }
  }

  void maybe_release(Conn& c) {
    if (c.phase != Phase::kDead || c.recv_armed || c.send_inflight) return;
    ::close(c.fd);
    const uint32_t slot = c.slot;
    conns_[slot].reset();
    free_.push_back(slot);
    --live_;
  }

  // ---------------------------------------------------------------- input
  void on_bytes(Conn& c, std::span<std::byte> bytes, size_t slack) {
    if (!c.use_tls) {
      on_plain(c, bytes, slack);
    } else {
      if (c.tls.feed_ciphertext(bytes) != tls::Errc::kOk) {
        terminate(c, "TLS: out of memory");
        return;
      }
      if (!c.tls.is_handshake_done()) {
        const tls::Errc e = c.tls.handshake();
        if (tls::is_fatal(e)) {
          start_send(c);  // the alert, best effort
          terminate(c, cat("TLS handshake: ", tls::to_string(e)));
          return;
        }
        if (e != tls::Errc::kOk) {
          flush(c);
          return;
        }
        sh_.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
        if (c.tls.is_resumed()) sh_.tls_resumed.fetch_add(1, std::memory_order_relaxed);
      }
      while (c.phase != Phase::kDead && !c.draining) {
        size_t produced = 0;
        const tls::Errc e = c.tls.read_plaintext(
            std::span<std::byte>(tls_scratch_.data(), kRecvBufferBytes),
            produced);
        if (produced > 0) {
          on_plain(c, std::span<std::byte>(tls_scratch_.data(), produced),
                   tls_scratch_.size() - produced);
        }
        if (e == tls::Errc::kOk) continue;
        if (e == tls::Errc::kWantRead) break;
        if (e == tls::Errc::kClosed) {
          c.draining = true;
          break;
        }
        terminate(c, cat("TLS: ", tls::to_string(e)));
        return;
      }
      // The session may hold bytes we stopped reading; it must not borrow
      // the receive buffer past this call.
      if (c.phase != Phase::kDead && c.tls.unread_ciphertext() > 0) {
        (void)c.tls.retain_ciphertext();
      }
    }
    flush(c);
    check_done(c);
  }

  void on_plain(Conn& c, std::span<std::byte> bytes, size_t slack) {
    while (c.phase == Phase::kHttp && !c.draining && !bytes.empty()) {
      size_t consumed = 0;
      const ws::Errc e = c.hs->feed(bytes, consumed);
      if (e == ws::Errc::kNeedMore) return;
      bytes = bytes.subspan(consumed);
      if (e == ws::Errc::kNotUpgrade) {
        serve_http(c);
        if (c.draining) return;
        c.hs = std::make_unique<ws::ServerHandshake>();
        continue;
      }
      if (e == ws::Errc::kOk) {
        upgrade(c);
        break;
      }
      ws::ServerHandshake::write_error(c.out, e);
      c.draining = true;
      return;
    }
    if (c.phase == Phase::kWebSocket && !c.draining && !bytes.empty()) {
      c.dec.feed(bytes, slack);
      pump_ws(c);
    }
  }

  void http_reply(Conn& c, uint16_t status, std::string_view reason,
                  std::string_view body, bool keep_alive) {
    const ws::Header headers[] = {
        {"Content-Type", "application/json"},
        {"Connection", keep_alive ? "keep-alive" : "close"},
    };
    ws::write_http_response(c.out, status, reason, headers, body);
    if (!keep_alive) c.draining = true;
  }

  void serve_http(Conn& c) {
    sh_.http_requests.fetch_add(1, std::memory_order_relaxed);
    const ws::ServerHandshake& hs = *c.hs;
    bool keep_alive = hs.version() == "HTTP/1.1"
                          ? !hs.head().has_token("Connection", "close")
                          : hs.head().has_token("Connection", "keep-alive");
    // We read no request bodies: answer, then close.
    if (auto cl = hs.header("Content-Length"); cl && *cl != "0") {
      keep_alive = false;
    }
    if (hs.header("Transfer-Encoding")) keep_alive = false;
    if (hs.method() != "GET") {
      const ws::Header headers[] = {{"Allow", "GET"},
                                    {"Content-Type", "application/json"},
                                    {"Connection", "close"}};
      ws::write_http_response(c.out, 405, "Method Not Allowed", headers,
                              R"({"message": "405: Method Not Allowed", "code": 0})");
      c.draining = true;
      return;
    }
    const std::string_view path = hs.path();
    const std::string url = sh_.scheme_ws() +
                            sh_.host_for(hs.header("Host").value_or(""));
    if (path == "/api/v10/gateway/bot" || path == "/api/gateway/bot") {
      if (sh_.opt.token) {
        const auto auth = hs.header("Authorization");
        if (!auth || *auth != cat("Bot ", *sh_.opt.token)) {
          http_reply(c, 401, "Unauthorized",
                     R"({"message": "401: Unauthorized", "code": 0})",
                     keep_alive);
          return;
        }
      }
      std::string body = R"({"url":)";
      append_json_string(body, url);
      // Discord grants large bots more daily starts than 1000; never fewer
      // than the shards it recommends.
      const int64_t starts = std::max<int64_t>(1000, int64_t{sh_.opt.shards} * 2);
      append_to(&body, R"(,"shards":)", sh_.opt.shards,
                R"(,"session_start_limit":{"total":)", starts, R"(,"remaining":)", starts,
                R"(,"reset_after":0,"max_concurrency":)", sh_.opt.max_concurrency, "}}");
      http_reply(c, 200, "OK", body, keep_alive);
      return;
    }
    if (path == "/api/v10/gateway" || path == "/api/gateway") {
      std::string body = R"({"url":)";
      append_json_string(body, url);
      body += "}";
      http_reply(c, 200, "OK", body, keep_alive);
      return;
    }
    http_reply(c, 404, "Not Found", R"({"message": "404: Not Found", "code": 0})",
               keep_alive);
  }

  void upgrade(Conn& c) {
    const ws::ServerHandshake& hs = *c.hs;
    if (hs.path() != "/") {
      http_reply(c, 404, "Not Found",
                 R"({"message": "404: Not Found", "code": 0})", false);
      return;
    }
    const std::string_view q = hs.query();
    if (auto comp = ws::query_param(q, "compress"); comp && !comp->empty()) {
      const auto kind = parse::compression_from_name(*comp);
      if (!kind) {
        const std::string body = cat(
            R"({"message": "compress must be zlib-stream or zstd-stream, not )", *comp,
            R"(", "code": 0})");
        http_reply(c, 400, "Bad Request", body, false);
        return;
      }
      if (*kind != parse::Compression::kNone) {
        c.deflater.emplace(*kind, 0, *kind == parse::Compression::kZstdStream ? kZstdWindowLog : 0);
      }
    }
    hs.write_accept(c.out);
    c.host = std::string(hs.header("Host").value_or(""));
    c.phase = Phase::kWebSocket;
    sh_.ws_sessions.fetch_add(1, std::memory_order_relaxed);
    const auto v = ws::query_param(q, "v");
    const auto enc = ws::query_param(q, "encoding");
    const bool bad_version = v && *v != "10";
    const bool bad_encoding = enc && *enc != "json";
    c.hs.reset();  // q, v and enc pointed into it
    if (bad_version) {
      send_close(c, 4012, "Invalid API version");
      return;
    }
    if (bad_encoding) {
      send_close(c, 4002, "Only encoding=json is supported");
      return;
    }
    send_text(c, cat(R"({"t":null,"s":null,"op":10,"d":{"heartbeat_interval":)",
                              sh_.opt.heartbeat_ms, R"(,"_trace":)", kTrace, "}}"));
  }

  void pump_ws(Conn& c) {
    ws::Message m;
    while (c.phase == Phase::kWebSocket && !c.draining) {
      const ws::Errc e = c.dec.next(m);
      if (e == ws::Errc::kNeedMore || e == ws::Errc::kClosed) return;
      if (e != ws::Errc::kOk) {
        send_close(c, ws::close_code(e), ws::describe(e));
        return;
      }
      on_message(c, m);
    }
  }

  void on_message(Conn& c, const ws::Message& m) {
    switch (m.kind) {
      case ws::MessageKind::kPing:
        if (!c.closing) (void)c.enc.reply(c.out, m);
        return;
      case ws::MessageKind::kPong:
        return;
      case ws::MessageKind::kClose:
        c.peer_closed = true;
        // Discord ends the session when the client closes with 1000/1001.
        if (m.close_code == 1000 || m.close_code == 1001) invalidate_session(c);
        if (!c.enc.close_sent()) {
          (void)c.enc.reply(c.out, m);
          c.closing = true;
          wheel_->cancel(c.t_gen);
        }
        return;
      case ws::MessageKind::kText:
      case ws::MessageKind::kBinary:
        on_payload(c, m);
        return;
    }
  }

  // ------------------------------------------------------------- protocol
  void on_payload(Conn& c, const ws::Message& m) {
    if (c.closing) return;
    if (c.window_count == 0 || now_ - c.window_start >= kClientSendWindow) {
      c.window_start = now_;
      c.window_count = 0;
    }
    if (++c.window_count > kClientSendLimit) {
      send_close(c, 4008, "Rate limited.");
      return;
    }
    if (m.payload.size() > kMaxClientPayload) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    std::string_view text = m.text();
    if (!m.padded) {
      pad_.assign(text);
      pad_.append(parse::kPadding, '\0');
      text = std::string_view(pad_.data(), m.payload.size());
    }
    parse::Envelope env;
    if (parser_.parse(text, env) != parse::Errc::kOk) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    switch (env.op) {
      case 1:
        on_heartbeat(c, env);
        return;
      case 2:
        on_identify(c, env);
        return;
      case 6:
        on_resume(c, env);
        return;
      case 3:
      case 4:
      case 8:
        if (!c.identified) {
          send_close(c, 4003, "Not authenticated.");
          return;
        }
        if (env.d_kind != parse::JsonKind::kObject) {
          send_close(c, 4002, "Error while decoding payload.");
          return;
        }
        if (env.op == 8) on_request_members(c, env.d);
        return;
      default:
        send_close(c, 4001, "Unknown opcode.");
        return;
    }
  }

  void on_heartbeat(Conn& c, const parse::Envelope& env) {
    if (env.d_kind != parse::JsonKind::kNull &&
        env.d_kind != parse::JsonKind::kNumber &&
        env.d_kind != parse::JsonKind::kAbsent) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    if (sh_.opt.no_ack_after > 0 && c.acks >= sh_.opt.no_ack_after) return;
    ++c.acks;
    send_text(c, kHeartbeatAck);
  }

  // d of IDENTIFY/RESUME as a DOM object; false after closing with 4002.
  bool d_object(Conn& c, std::string_view d, simdjson::dom::object& obj) {
    // d lies inside a padded message: parse it in place.
    if (d.empty() ||
        dom_.parse(d.data(), d.size(), false).get_object().get(obj) !=
            simdjson::SUCCESS) {
      send_close(c, 4002, "Error while decoding payload.");
      return false;
    }
    return true;
  }

  void on_identify(Conn& c, const parse::Envelope& env) {
    if (c.identified) {
      send_close(c, 4005, "Already authenticated.");
      return;
    }
    simdjson::dom::object d;
    if (!d_object(c, env.d, d)) return;
    std::string_view token;
    simdjson::dom::object props;
    simdjson::dom::element intents_el;
    if (d["token"].get_string().get(token) != simdjson::SUCCESS ||
        d["properties"].get_object().get(props) != simdjson::SUCCESS ||
        d["intents"].get(intents_el) != simdjson::SUCCESS) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    if (sh_.opt.token && token != *sh_.opt.token) {
      send_close(c, 4004, "Authentication failed.");
      return;
    }
    int64_t intents = -1;
    if (intents_el.get_int64().get(intents) != simdjson::SUCCESS ||
        intents < 0 || intents > kAllIntents) {
      send_close(c, 4013, "Invalid intent(s).");
      return;
    }
    int64_t shard_id = 0, shard_total = 1;
    simdjson::dom::element shard_el;
    if (d["shard"].get(shard_el) == simdjson::SUCCESS && !shard_el.is_null()) {
      simdjson::dom::array arr;
      if (shard_el.get_array().get(arr) != simdjson::SUCCESS ||
          arr.size() != 2 ||
          arr.at(0).get_int64().get(shard_id) != simdjson::SUCCESS ||
          arr.at(1).get_int64().get(shard_total) != simdjson::SUCCESS) {
        send_close(c, 4002, "Error while decoding payload.");
        return;
      }
      if (shard_total < 1 || shard_total > kMaxShardTotal || shard_id < 0 ||
          shard_id >= shard_total) {
        send_close(c, 4010, "Invalid shard.");
        return;
      }
    }
    simdjson::dom::element el;
    if (d["large_threshold"].get(el) == simdjson::SUCCESS) {
      int64_t lt = 0;
      if (el.get_int64().get(lt) != simdjson::SUCCESS || lt < 50 || lt > 250) {
        send_close(c, 4002, "Error while decoding payload.");
        return;
      }
    }
    if (d["presence"].get(el) == simdjson::SUCCESS && !el.is_null() &&
        !el.is_object()) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    const uint32_t shard = static_cast<uint32_t>(shard_id);
    const uint32_t total = static_cast<uint32_t>(shard_total);
    // The identify gate: one per bucket (shard_id % max_concurrency) per
    // window; a faster one gets op 9 d=false, as Discord answers.
    const uint32_t bucket = shard % sh_.opt.max_concurrency;
    // A fresh clock read: the loop's cached now_ may trail another
    // thread's, which would refuse an identify that is in fact on time.
    const int64_t now_ns = static_cast<int64_t>(ns_of(Clock::now()));
    std::atomic<int64_t>& next = sh_.buckets[bucket];
    int64_t allowed = next.load(std::memory_order_relaxed);
    while (sh_.opt.identify_window_ms > 0) {
      if (now_ns < allowed) {
        sh_.rate_limited.fetch_add(1, std::memory_order_relaxed);
        log_line(shard, cat("identify too fast for bucket ", bucket, " (",
                            static_cast<double>(allowed - now_ns) / 1e6,
                            " ms early): op 9"));
        send_text(c, kInvalidSessionFalse);
        return;
      }
      if (next.compare_exchange_weak(
              allowed, now_ns + sh_.opt.identify_window_ms * 1'000'000,
              std::memory_order_relaxed)) {
        break;
      }
    }
    auto s = std::make_shared<SessionState>();
    s->token = std::string(token);
    s->shard = shard;
    s->total = total;
    s->guilds = sh_.opt.guilds_per_shard;
    s->seed = rng_();
    s->id.resize(32);
    for (int i = 0; i < 32; i += 16) {
      uint64_t r = rng_();
      for (int k = 0; k < 16; ++k, r >>= 4) {
        s->id[i + k] = "0123456789abcdef"[r & 15];
      }
    }
    const int64_t wall_ms =
        duration_cast<milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count();
    s->snowflake_base = static_cast<uint64_t>(wall_ms - kDiscordEpochMs) << 22;
    {
      std::lock_guard<std::mutex> lock(sh_.mu);
      s->stats = sh_.stats_for(shard);
      s->stats->session_id = s->id;
      s->attached = true;
      sh_.sessions[s->id] = s;
    }
    c.session = s;
    c.identified = true;
    s->stats->identifies.fetch_add(1, std::memory_order_relaxed);
    sh_.identifies.fetch_add(1, std::memory_order_relaxed);

    // READY, then a GUILD_CREATE per guild, then the stream.
    std::string ready = R"({"t":"READY","s":1,"op":0,"d":{"v":10,"user_settings":{},"user":{"verified":true,"username":"shardring-bot","mfa_enabled":false,"id":")";
    append_to(&ready, kBotUserId,
                    R"(","global_name":null,"flags":0,"email":null,"discriminator":"0","bot":true,"avatar":null},"session_type":"normal","session_id":")",
                    s->id, R"(","resume_gateway_url":)");
    append_json_string(ready, sh_.scheme_ws() + sh_.host_for(c.host));
    ready += R"(,"relationships":[],"private_channels":[],"presences":[],"guilds":[)";
    for (uint32_t g = 0; g < s->guilds; ++g) {
      append_to(&ready, g ? "," : "", R"({"unavailable":true,"id":")",
                      guild_id(shard, total, g), R"("})");
    }
    append_to(&ready,
                    R"(],"guild_join_requests":[],"geo_ordered_rtc_regions":["us-east","us-central"],"auth":{},"application":{"id":")",
                    kApplicationId, R"(","flags":565248},"_trace":)", kTrace,
                    R"(,"shard":[)", shard, ",", total, "]}}");
    s->last_seq = 1;
    keep(*s, 1, ready);
    send_text(c, ready);
    const uint64_t ts = ns_of(now_);
    for (uint32_t g = 0; g < s->guilds; ++g) {
      send_templated(c, sh_.mix.guild_create(g == 0),
                     Splice{++s->last_seq, ts, guild_id(shard, total, g), 0});
    }
    count_sent(c, 1 + s->guilds);
    log_line(shard, cat("identified: shard [", shard, ",", total,
                                 "] session ", s->id, " intents ", intents));
    start_session(c);
  }

  void on_resume(Conn& c, const parse::Envelope& env) {
    if (c.identified) {
      send_close(c, 4005, "Already authenticated.");
      return;
    }
    simdjson::dom::object d;
    if (!d_object(c, env.d, d)) return;
    std::string_view token, session_id;
    simdjson::dom::element seq_el;
    if (d["token"].get_string().get(token) != simdjson::SUCCESS ||
        d["session_id"].get_string().get(session_id) != simdjson::SUCCESS ||
        d["seq"].get(seq_el) != simdjson::SUCCESS) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    uint64_t seq = 0;
    if (!seq_el.is_null() &&
        seq_el.get_uint64().get(seq) != simdjson::SUCCESS) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    if (sh_.opt.token && token != *sh_.opt.token) {
      send_close(c, 4004, "Authentication failed.");
      return;
    }
    std::shared_ptr<SessionState> s;
    std::string_view refusal;  // op 9 d=false unless in_use
    bool in_use = false, bad_seq = false;
    {
      std::lock_guard<std::mutex> lock(sh_.mu);
      auto it = sh_.sessions.find(std::string(session_id));
      if (it == sh_.sessions.end()) {
        refusal = "unknown session";
      } else if (it->second->token != token) {
        refusal = "token does not match the session";
      } else if (it->second->attached) {
        in_use = true;
      } else if (now_ - it->second->detached_at > kSessionResumeWindow) {
        refusal = "session expired";
        sh_.sessions.erase(it);
      } else if (seq > it->second->last_seq) {
        bad_seq = true;
      } else if (it->second->last_seq - seq > kReplayBufferEvents ||
                 seq + 1 < it->second->replay_floor) {
        refusal = "seq too old to replay";
        sh_.sessions.erase(it);
      } else {
        s = it->second;
        s->attached = true;
      }
    }
    if (s) catch_up(*s, seq);
    if (bad_seq) {
      send_close(c, 4007, "Invalid seq.");
      return;
    }
    if (in_use) {
      // Still held by a connection we have not seen end: try again soon.
      log_line(-1, "resume of a session still attached: op 9 d=true");
      send_text(c, kInvalidSessionTrue);
      return;
    }
    if (!s) {
      log_line(-1, cat("resume refused (", refusal, "): op 9"));
      send_text(c, kInvalidSessionFalse);
      return;
    }
    c.session = s;
    c.identified = true;
    // Replay every dispatch after `seq`: regenerated from the seed, or
    // kept ones as they were.
    const uint64_t ts = ns_of(now_);
    auto kept = s->kept.begin();
    uint64_t replayed = 0;
    for (uint64_t q = seq + 1; q <= s->last_seq; ++q, ++replayed) {
      while (kept != s->kept.end() && kept->seq < q) ++kept;
      if (kept != s->kept.end() && kept->seq == q) {
        send_text(c, kept->payload);
      } else if (q >= 2 && q < 2 + uint64_t{s->guilds}) {
        const uint32_t g = static_cast<uint32_t>(q - 2);
        send_templated(c, sh_.mix.guild_create(g == 0),
                       Splice{q, ts, guild_id(s->shard, s->total, g), 0});
      } else {
        emit_event(c, *s, q, ts);
      }
    }
    const uint64_t resumed_seq = ++s->last_seq;
    std::string resumed = cat(R"({"t":"RESUMED","s":)", resumed_seq,
                                       R"(,"op":0,"d":{"_trace":)", kTrace,
                                       "}}");
    keep(*s, resumed_seq, resumed);
    send_text(c, resumed);
    count_sent(c, replayed + 1);
    s->stats->resumes.fetch_add(1, std::memory_order_relaxed);
    sh_.resumes.fetch_add(1, std::memory_order_relaxed);
    log_line(s->shard, cat("resumed session ", s->id, " from seq ",
                                    seq, ": replayed ", replayed));
    start_session(c);
  }

  // The stream went on while the session had no connection, as Discord's
  // does: the events of that gap (at --rate, within the replay window and
  // --events) get their seqs now and are replayed with the rest.
  void catch_up(SessionState& s, uint64_t resume_seq) {
    const GatewayOptions& o = sh_.opt;
    if (o.rate <= 0) return;
    const double gap = std::chrono::duration<double>(now_ - s.detached_at).count();
    uint64_t missed = static_cast<uint64_t>(std::max(0.0, gap * o.rate));
    const uint64_t behind = s.last_seq - resume_seq;
    missed = std::min(missed, kReplayBufferEvents - std::min(behind, kReplayBufferEvents));
    const uint64_t limit = o.events.value_or(UINT64_MAX);
    missed = std::min(missed, limit - std::min(s.generated, limit));
    s.last_seq += missed;
    s.generated += missed;
  }

  void on_request_members(Conn& c, std::string_view d_json) {
    simdjson::dom::object d;
    if (!d_object(c, d_json, d)) return;
    std::vector<std::string_view> guilds;
    simdjson::dom::element gel;
    if (d["guild_id"].get(gel) != simdjson::SUCCESS) {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    std::string_view one;
    simdjson::dom::array arr;
    if (gel.get_string().get(one) == simdjson::SUCCESS) {
      guilds.push_back(one);
    } else if (gel.get_array().get(arr) == simdjson::SUCCESS) {
      for (auto e : arr) {
        if (e.get_string().get(one) != simdjson::SUCCESS) {
          send_close(c, 4002, "Error while decoding payload.");
          return;
        }
        guilds.push_back(one);
      }
    } else {
      send_close(c, 4002, "Error while decoding payload.");
      return;
    }
    for (std::string_view g : guilds) {
      if (g.empty() || g.size() > 20 ||
          g.find_first_not_of("0123456789") != std::string_view::npos) {
        send_close(c, 4002, "Error while decoding payload.");
        return;
      }
    }
    std::string_view nonce;
    const bool has_nonce =
        d["nonce"].get_string().get(nonce) == simdjson::SUCCESS &&
        nonce.size() <= 32;
    SessionState& s = *c.session;
    for (std::string_view g : guilds) {
      const uint64_t seq = ++s.last_seq;
      std::string p = cat(R"({"t":"GUILD_MEMBERS_CHUNK","s":)", seq,
                                   R"(,"op":0,"d":{"guild_id":")", g,
                                   R"(","members":[)");
      for (int i = 0; i < 3; ++i) {
        append_to(
            &p, i ? "," : "",
            R"({"user":{"username":"member_)", i,
            R"(","public_flags":0,"id":"22884696177455)", 1000 + i,
            R"(","global_name":"Member )", i,
            R"( ✨","discriminator":"0","avatar":null},"roles":[],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2020-04-04T04:04:04.000000+00:00","flags":0,"deaf":false,"avatar":null})");
      }
      p += R"(],"chunk_index":0,"chunk_count":1,"not_found":[])";
      if (has_nonce) {
        p += R"(,"nonce":)";
        append_json_string(p, nonce);
      }
      p += "}}";
      keep(s, seq, p);
      send_text(c, p);
      count_sent(c, 1);
    }
  }

  void keep(SessionState& s, uint64_t seq, std::string payload) {
    s.kept.push_back({seq, std::move(payload)});
    while (!s.kept.empty() &&
           (s.kept.size() > kMaxKeptDispatches ||
            s.kept.front().seq + kReplayBufferEvents < s.last_seq)) {
      s.replay_floor = std::max(s.replay_floor, s.kept.front().seq + 1);
      s.kept.pop_front();
    }
  }

  void count_sent(Conn& c, uint64_t n) {
    SessionState& s = *c.session;
    s.stats->events_sent.fetch_add(n, std::memory_order_relaxed);
    s.stats->last_seq.store(s.last_seq, std::memory_order_relaxed);
    sh_.events_sent.fetch_add(n, std::memory_order_relaxed);
  }

  // After READY or RESUMED: the event stream and the periodic faults.
  void start_session(Conn& c) {
    c.gen_epoch = now_;
    c.gen_count = 0;
    const GatewayOptions& o = sh_.opt;
    if (o.reconnect_every_s > 0) {
      c.t_reconnect = wheel_->schedule(
          now_ + duration_cast<nanoseconds>(
                     std::chrono::duration<double>(o.reconnect_every_s)),
          timer_cookie(TimerKind::kReconnect, c.slot, c.gen));
    }
    if (o.invalid_session_every_s > 0) {
      c.t_invalid = wheel_->schedule(
          now_ + duration_cast<nanoseconds>(
                     std::chrono::duration<double>(o.invalid_session_every_s)),
          timer_cookie(TimerKind::kInvalidSession, c.slot, c.gen));
    }
    generate(c);
  }

  void emit_event(Conn& c, const SessionState& s, uint64_t seq, uint64_t ts) {
    const uint64_t h = splitmix(s.seed ^ (seq * 0x9E3779B97F4A7C15ull));
    const Template& t = sh_.mix.pick(h);
    const uint32_t g =
        s.guilds == 0 ? 0 : static_cast<uint32_t>((h >> 40) % s.guilds);
    send_templated(c, t,
                   Splice{seq, ts, guild_id(s.shard, s.total, g),
                          s.snowflake_base + seq * 16});
  }

  // The hot loop: appends the events that are due (or, at --rate 0, as many
  // as fit under kDrainTopUpBytes) to the connection's queue.
  void generate(Conn& c) {
    if (c.phase != Phase::kWebSocket || c.closing || c.draining ||
        !c.session) {
      return;
    }
    SessionState& s = *c.session;
    const GatewayOptions& o = sh_.opt;
    const uint64_t limit = o.events.value_or(UINT64_MAX);
    if (s.generated >= limit) return;
    uint64_t want = UINT64_MAX;
    if (o.rate > 0) {
      const double due =
          std::chrono::duration<double>(now_ - c.gen_epoch).count() * o.rate;
      const uint64_t due_n = static_cast<uint64_t>(due);
      want = due_n > c.gen_count ? due_n - c.gen_count : 0;
    }
    const size_t cap = o.rate == 0 ? kDrainTopUpBytes : kSendQueueBytes;
    const uint64_t stop_at_conn =
        std::min(o.close_every ? o.close_every : UINT64_MAX,
                 o.close_after ? o.close_after : UINT64_MAX);
    const uint64_t ts = ns_of(now_);
    uint64_t n = 0;
    while (n < want && s.generated < limit && c.conn_events < stop_at_conn) {
      if (queued(c) >= cap) {
        c.gen_blocked = true;
        break;
      }
      emit_event(c, s, ++s.last_seq, ts);
      ++s.generated;
      ++c.conn_events;
      ++n;
    }
    if (n > 0) count_sent(c, n);
    if (o.rate > 0) {
      c.gen_count += n;
      if (c.gen_blocked) {
        // The client is not reading: forget the backlog instead of
        // buffering it; generation resumes when the queue drains.
        c.gen_epoch = now_;
        c.gen_count = 0;
      }
    }
    if (o.close_every && c.conn_events >= o.close_every) {
      log_line(s.shard, cat("fault: closing TCP after ",
                                     c.conn_events, " events"));
      c.draining = true;  // terminate() once these events are sent
      wheel_->cancel(c.t_gen);
      flush(c);
      check_done(c);
      return;
    }
    if (o.close_after && c.conn_events >= o.close_after) {
      flush(c);
      send_close(c, o.close_code, "fault --close-after");
      return;
    }
    if (o.rate > 0 && !c.gen_blocked && s.generated < limit) {
      const auto next =
          c.gen_epoch + duration_cast<nanoseconds>(std::chrono::duration<double>(
                            static_cast<double>(c.gen_count + 1) / o.rate));
      wheel_->cancel(c.t_gen);
      c.t_gen = wheel_->schedule(std::max(next, now_ + milliseconds(1)),
                                 timer_cookie(TimerKind::kGenerate, c.slot, c.gen));
    }
    flush(c);
  }

  // --------------------------------------------------------------- timers
  void on_timer(uint64_t cookie) {
    const auto kind = static_cast<TimerKind>(cookie >> 56);
    if (kind == TimerKind::kHousekeeping) {
      expire_sessions();
      wheel_->schedule(now_ + kHousekeepingEvery, cookie);
      return;
    }
    Conn* c = lookup(static_cast<uint32_t>(cookie),
                     static_cast<uint32_t>(cookie >> 32));
    if (c == nullptr || c->phase == Phase::kDead) return;
    switch (kind) {
      case TimerKind::kGenerate:
        c->t_gen = {};
        generate(*c);
        break;
      case TimerKind::kReconnect:
        c->t_reconnect = {};
        if (!c->closing) {
          log_line(c->session ? int64_t{c->session->shard} : -1, "fault: op 7");
          send_text(*c, kReconnect);
          flush(*c);
          c->t_reconnect = wheel_->schedule(
              now_ + duration_cast<nanoseconds>(
                         std::chrono::duration<double>(sh_.opt.reconnect_every_s)),
              cookie);
        }
        break;
      case TimerKind::kInvalidSession:
        c->t_invalid = {};
        if (!c->closing) {
          log_line(c->session ? int64_t{c->session->shard} : -1,
                   "fault: op 9 d=true");
          send_text(*c, kInvalidSessionTrue);
          flush(*c);
          c->t_invalid = wheel_->schedule(
              now_ + duration_cast<nanoseconds>(std::chrono::duration<double>(
                         sh_.opt.invalid_session_every_s)),
              cookie);
        }
        break;
      case TimerKind::kLinger:
        c->t_linger = {};
        terminate(*c, "no close frame from the client in time");
        break;
      case TimerKind::kDelay:
        c->t_delay = {};
        start_send(*c);
        break;
      default:
        break;
    }
    maybe_release(*c);
  }

  void expire_sessions() {
    std::lock_guard<std::mutex> lock(sh_.mu);
    for (auto it = sh_.sessions.begin(); it != sh_.sessions.end();) {
      if (!it->second->attached &&
          now_ - it->second->detached_at > kSessionResumeWindow) {
        it = sh_.sessions.erase(it);
      } else {
        ++it;
      }
    }
  }

  void detach_session(Conn& c) {
    if (!c.session) return;
    std::lock_guard<std::mutex> lock(sh_.mu);
    c.session->attached = false;
    c.session->detached_at = now_;
    c.session.reset();
  }

  void invalidate_session(Conn& c) {
    if (!c.session) return;
    std::lock_guard<std::mutex> lock(sh_.mu);
    sh_.sessions.erase(c.session->id);
  }

  void begin_stop() {
    stopping_ = true;
    stop_deadline_ = now_ + kStopDeadline;
    io_uring_sqe* sqe = ring_->sqe();
    io_uring_prep_cancel64(sqe, engine::OpTag{engine::Op::kAccept, 0, 0}.pack(),
                           0);
    io_uring_sqe_set_data64(sqe, engine::OpTag{engine::Op::kCancel, 0, 0}.pack());
    for (auto& p : conns_) {
      if (!p || p->phase == Phase::kDead) continue;
      Conn& c = *p;
      if (c.phase == Phase::kWebSocket) {
        send_close(c, 1001, "gateway shutting down");
      } else {
        terminate(c, "gateway shutting down");
      }
    }
    for (auto& p : conns_) {
      if (p) maybe_release(*p);
    }
  }

  Server::Shared& sh_;
  int listen_fd_;
  uint32_t index_;
  std::unique_ptr<engine::Uring> ring_;
  std::unique_ptr<engine::BufferRing> bufs_;
  std::optional<engine::TimerWheel> wheel_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> gens_;
  std::vector<uint32_t> free_;
  std::vector<std::pair<uint32_t, uint32_t>> rearm_;
  size_t live_ = 0;
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
  Clock::time_point now_;
  std::vector<std::byte> tls_scratch_;
  std::string scratch_;  // a payload being fragmented
  std::string compressed_;  // a payload's compressed bytes
  std::string pad_;      // a client message copied for padding
  parse::Parser parser_;
  simdjson::dom::parser dom_{kMaxClientPayload + 64};
  std::mt19937_64 rng_{std::random_device{}()};
};

absl::StatusOr<int> bind_listener(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (int r = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res);
      r != 0) {
    return absl::InvalidArgumentError(cat(
        "--listen: cannot resolve '", host, "': ", gai_strerror(r)));
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return absl::InternalError(cat("socket: ", std::strerror(errno)));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
      ::listen(fd, 4096) != 0) {
    const int err = errno;
    ::freeaddrinfo(res);
    ::close(fd);
    return absl::UnavailableError(cat(
        "--listen: cannot listen on ", host, ":", port, ": ",
        std::strerror(err)));
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

absl::StatusOr<std::unique_ptr<Server>> Server::start(
    const GatewayOptions& options) {
  std::unique_ptr<Server> server(new Server());
  server->shared_ = std::make_unique<Shared>();
  Shared& sh = *server->shared_;
  sh.opt = options;
  if (sh.opt.max_concurrency == 0) sh.opt.max_concurrency = 1;
  if (options.mix_file.empty()) {
    sh.mix = Mix::builtin();
  } else {
    auto mix = Mix::from_file(options.mix_file);
    if (!mix.ok()) {
      return absl::InvalidArgumentError(
          cat("--mix: ", mix.status().message()));
    }
    sh.mix = *std::move(mix);
  }
  if (options.tls()) {
    tls::ServerOptions to;
    to.cert_file = options.tls_cert;
    to.key_file = options.tls_key;
    auto ctx = tls::Context::server(to);
    if (!ctx.ok()) {
      return absl::InvalidArgumentError(
          cat("--tls-cert/--tls-key: ", ctx.status().message()));
    }
    sh.tls.emplace(*std::move(ctx));
  }
  sh.buckets =
      std::make_unique<std::atomic<int64_t>[]>(sh.opt.max_concurrency);
  for (uint32_t i = 0; i < sh.opt.max_concurrency; ++i) sh.buckets[i] = 0;

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
    sh.url_host =
        options.listen_host.find(':') != std::string::npos
            ? cat("[", options.listen_host, "]:", port)
            : cat(options.listen_host, ":", port);
  }

  std::vector<std::promise<absl::Status>> ready(threads);
  std::vector<std::future<absl::Status>> started;
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
  const std::string shown = sh.url_host.empty()
                                ? cat(options.listen_host, ":", port)
                                : sh.url_host;
  log_line(-1, cat("listening on ", shown, " (", threads,
                            " threads", sh.tls ? ", TLS" : "",
                            "); give clients ", sh.tls ? "https://" : "http://",
                            sh.host_for(""), "/api/v10 or ", sh.scheme_ws(),
                            sh.host_for("")));
  return server;
}

Server::~Server() { stop(); }

uint16_t Server::port() const noexcept { return shared_->port; }

std::string Server::url() const {
  return shared_->scheme_ws() + shared_->host_for("");
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
  const Shared& sh = *shared_;
  Stats s;
  s.connections = sh.connections.load();
  s.sessions = sh.ws_sessions.load();
  s.identifies = sh.identifies.load();
  s.resumes = sh.resumes.load();
  s.events_sent = sh.events_sent.load();
  s.identify_rate_limited = sh.rate_limited.load();
  s.http_requests = sh.http_requests.load();
  s.tls_handshakes = sh.tls_handshakes.load();
  s.tls_resumed = sh.tls_resumed.load();
  std::lock_guard<std::mutex> lock(shared_->mu);
  for (const auto& [id, st] : sh.shard_stats) {
    ShardCounters c;
    c.identifies = st->identifies.load();
    c.resumes = st->resumes.load();
    c.events_sent = st->events_sent.load();
    c.last_seq = st->last_seq.load();
    c.session_id = st->session_id;
    s.shards.emplace_back(id, std::move(c));
  }
  return s;
}

std::string Server::stats_json() const {
  const Stats s = stats();
  std::string out = cat(
      R"({"sessions":)", s.sessions, R"(,"identifies":)", s.identifies,
      R"(,"resumes":)", s.resumes, R"(,"events_sent":)", s.events_sent,
      R"(,"connections":)", s.connections, R"(,"identify_rate_limited":)",
      s.identify_rate_limited, R"(,"http_requests":)", s.http_requests,
      R"(,"tls_handshakes":)", s.tls_handshakes, R"(,"tls_resumed":)", s.tls_resumed,
      R"(,"shards":{)");
  bool first = true;
  for (const auto& [id, c] : s.shards) {
    append_to(&out, first ? "" : ",", "\"", id,
                    R"(":{"identifies":)", c.identifies, R"(,"resumes":)",
                    c.resumes, R"(,"events_sent":)", c.events_sent,
                    R"(,"last_seq":)", c.last_seq, R"(,"session_id":")",
                    c.session_id, "\"}");
    first = false;
  }
  out += "}}";
  return out;
}

}  // namespace shardring::gatewaysrv
