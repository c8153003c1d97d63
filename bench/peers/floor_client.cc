// bench/peers/floor_client.cc: the floor for bench/peers/compare.sh: what
// no gateway client can beat on this kernel. It does the least a client must
// do to keep the gateway streaming and to know how many dispatches arrived:
// ONE thread, one io_uring (SINGLE_ISSUER | DEFER_TASKRUN where the kernel
// has them), N TCP connections to 127.0.0.1 (ws://, or wss:// below), a
// multishot recv per connection from one provided-buffer ring (256 x 16 KiB,
// as the engine uses), and per connection:
//   - the WebSocket upgrade (GET /?v=10&encoding=json; the 101 status line is
//     checked, Sec-WebSocket-Accept is not);
//   - HELLO (op 10): its heartbeat_interval is read from the first bytes;
//   - IDENTIFY (op 2, a masked client frame, paced like the other peers: one
//     per bucket shard % 16 every 5 ms; op 9 gets another one after 1 s);
//   - then every received buffer is only walked for RFC 6455 frame headers
//     (2/4/10-byte lengths; server frames are unmasked): a text frame whose
//     payload starts with {"t":" (Discord's key order: t is a string exactly
//     when op is 0) is counted as a dispatch, and the rest of its payload is
//     skipped without being read. No JSON parsing, no copy, no hand-off.
// Heartbeats: one io_uring timeout for the whole run sends op 1 (d null: no
// seq is kept) on every identified connection each heartbeat_interval from
// the first HELLO (the gateway's default 41,250 ms means none in a short
// run); they are part of the floor. Server pings are not answered (the
// gateway sends none). Timers (identify pacing, heartbeats, the end) are
// absolute io_uring timeouts, so the wait itself never carries a timeout
// unless batching asks for one.
//
// Two variants (the last arguments):
//   wake   io_uring_submit_and_wait(1): wakes for every completion, the floor
//          at full speed (the default);
//   batch  as the engine's --coalesce-us: after a light pass (1 to 63
//          completions) wait for 64 completions or COALESCE_US (default
//          1000), whichever comes first; otherwise for one: the floor at a
//          real bot's pace.
// Runs SECONDS after the first connection opens (its 101), then prints one
// JSON line like the other peers:
// {"client":"floor","events":N,"cpu_s":S,"seconds":T,"peak_rss_kib":K}
// ("floor-batch" for batch) and exits 0 without closing the connections.
//   floor_client HOST PORT SHARDS SECONDS [wake|batch [COALESCE_US]]
// With `tls CA_FILE` last, every connection is wss://: a TLS client session
// of our wolfSSL build (tls::Session, verifying the gateway's certificate
// against CA_FILE), fed the received ciphertext in place and decrypting into
// one scratch buffer that the frame walk reads; nothing else changes. TLS
// costs every client the same decryption, so this is the floor with TLS.
//   floor_client HOST PORT SHARDS SECONDS [wake|batch [COALESCE_US]] [tls CA_FILE]
// HOST: an IPv4 address. Part of bench/peers/compare.sh; not a shardring
// component.
// Where the kernel has them it uses what the engine uses (see
// engine/uring_ext.h): `min_wait` (batch's wait has the coalescing time as
// its minimum, then sleeps on until the first completion instead of waking
// empty; 6.12) and `bundle` (one receive completion carries every buffer
// the socket's data filled; 6.10). FLOOR_URING (environment) names the ones
// to use, comma-separated, or `none`; what is in use goes to stderr.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bench/peers/floor_wire.h"
#include "engine/uring_ext.h"
#include "tls/context.h"
#include "tls/session.h"

namespace {

using floor_wire::base64;
using floor_wire::parse_header;
using floor_wire::splitmix;
namespace uring_ext = shardring::engine::uring_ext;

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr unsigned kRecvBuffers = 256;  // a power of two
constexpr unsigned kRecvBufferBytes = 16 * 1024;
constexpr uint16_t kBufferGroup = 0;
constexpr int kBuckets = 16;
constexpr milliseconds kIdentifyWindow{5};
constexpr unsigned kBusyCompletions = 64;  // the engine's kCoalesceBusyCompletions
// Bytes of a text payload looked at: the dispatch test needs 6; HELLO's
// heartbeat_interval and op 9 a few more.
constexpr size_t kPeekHello = 96;
constexpr size_t kPeek = 32;
constexpr std::string_view kDispatchPrefix = R"({"t":")";

// user_data: the operation in the top byte, its object below.
enum Op : uint64_t { kConnect = 1, kRecv, kSend, kTick };
constexpr uint64_t pack(Op op, uint64_t v) { return (uint64_t{op} << 56) | v; }

struct Conn {
  int id = 0;
  int fd = -1;
  enum Phase : uint8_t { kConnecting, kHttp, kFrames, kDead } phase = kConnecting;
  bool hello = false;       // HELLO seen: IDENTIFY scheduled
  bool identified = false;  // IDENTIFY sent
  std::string http;         // the upgrade response until its blank line
  // The frame walker's state across buffers.
  unsigned char hdr[14];
  size_t hdr_len = 0;
  unsigned opcode = 0;
  uint64_t left = 0;  // payload bytes of the current frame not yet walked
  size_t peek_want = 0;
  size_t peek_len = 0;
  char peek[kPeekHello];
  std::unique_ptr<shardring::tls::Session> tls;  // wss:// only
};

struct Send {
  std::string bytes;
  size_t off = 0;
  int conn = 0;
};

// A deferred action: IDENTIFY now (kSlot: take a pacing slot first).
struct Pending {
  Clock::time_point at;
  int conn;
  bool slot;
  bool operator>(const Pending& o) const { return at > o.at; }
};

class Floor {
 public:
  Floor(sockaddr_in addr, std::string host_port, int shards, double seconds, bool batch,
        long coalesce_us, const shardring::tls::Context* tls)
      : tls_(tls),
        addr_(addr),
        host_port_(std::move(host_port)),
        shards_(shards),
        seconds_(seconds),
        batch_(batch),
        coalesce_us_(coalesce_us),
        conns_(static_cast<size_t>(shards)) {
    rng_ = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  }

  int run() {
    if (!setup()) return 1;
    getrusage(RUSAGE_SELF, &ru0_);
    start_ = Clock::now();
    for (int i = 0; i < shards_; ++i) {
      conns_[i].id = i;
      connect(conns_[i]);
    }
    // No connection at all within a minute: give up (see tick()).
    arm(start_ + std::chrono::seconds(60));
    unsigned reaped = 0;
    __kernel_timespec coalesce{};
    coalesce.tv_sec = coalesce_us_ / 1'000'000;
    coalesce.tv_nsec = (coalesce_us_ % 1'000'000) * 1000;
    for (;;) {
      io_uring_cqe* cqe = nullptr;
      if (batch_ && reaped > 0 && reaped < kBusyCompletions && coalesce_us_ > 0) {
        if (min_wait_) {  // timers are requests of their own: any limit will do
          uring_ext::submit_and_wait_min(ring_, false, std::chrono::seconds(10), kBusyCompletions,
                                         std::chrono::microseconds(coalesce_us_));
        } else {
          io_uring_submit_and_wait_timeout(&ring_, &cqe, kBusyCompletions, &coalesce, nullptr);
        }
      } else {
        io_uring_submit_and_wait(&ring_, 1);
      }
      reaped = 0;
      unsigned head;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++reaped;
        on_cqe(*cqe);
        if (done_) return finish();
      }
      io_uring_cq_advance(&ring_, reaped);
      if (recycled_ > 0) {
        io_uring_buf_ring_advance(br_, static_cast<int>(recycled_));
        recycled_ = 0;
      }
      for (int id : rearm_) arm_recv(conns_[id]);
      rearm_.clear();
    }
  }

 private:
  bool setup() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    int r = io_uring_queue_init_params(1024, &ring_, &p);
    if (r == -EINVAL) {  // before 6.1
      p = io_uring_params{};
      p.flags = IORING_SETUP_CQSIZE;
      p.cq_entries = 16384;
      r = io_uring_queue_init_params(1024, &ring_, &p);
    }
    if (r != 0) {
      std::fprintf(stderr, "floor: io_uring_queue_init: %s\n", std::strerror(-r));
      return false;
    }
    const char* want = std::getenv("FLOOR_URING");
    const std::string_view asked = want != nullptr ? want : "min_wait,bundle";
    min_wait_ = asked.find("min_wait") != std::string_view::npos &&
                (p.features & uring_ext::kFeatMinTimeout) != 0;
    bundle_ = asked.find("bundle") != std::string_view::npos &&
              (p.features & uring_ext::kFeatRecvSendBundle) != 0;
    std::fprintf(stderr, "floor: io_uring min_wait %s, bundle %s\n", min_wait_ ? "on" : "off",
                 bundle_ ? "on" : "off");
    // liburing 2.3 has no io_uring_setup_buf_ring: map and register by hand.
    const size_t br_bytes = sizeof(io_uring_buf) * kRecvBuffers;
    void* br = mmap(nullptr, br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    void* base = mmap(nullptr, size_t{kRecvBufferBytes} * kRecvBuffers, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED || base == MAP_FAILED) {
      std::fprintf(stderr, "floor: mmap failed\n");
      return false;
    }
    br_ = static_cast<io_uring_buf_ring*>(br);
    bufs_ = static_cast<unsigned char*>(base);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = kRecvBuffers;
    reg.bgid = kBufferGroup;
    if ((r = io_uring_register_buf_ring(&ring_, &reg, 0)) != 0) {
      std::fprintf(stderr, "floor: provided buffer rings unavailable: %s\n", std::strerror(-r));
      return false;
    }
    io_uring_buf_ring_init(br_);
    const int mask = io_uring_buf_ring_mask(kRecvBuffers);
    for (unsigned i = 0; i < kRecvBuffers; ++i) {
      io_uring_buf_ring_add(br_, bufs_ + size_t{i} * kRecvBufferBytes, kRecvBufferBytes,
                            static_cast<unsigned short>(i), mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br_, kRecvBuffers);
    for (unsigned i = 0; i < kRecvBuffers; ++i) next_[i] = (i + 1) % kRecvBuffers;
    last_added_ = kRecvBuffers - 1;
    return true;
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    while (s == nullptr) {
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    return s;
  }

  void fail(Conn& c, const char* what, int err) {
    if (errors_++ < 3) {
      std::fprintf(stderr, "floor: shard %d: %s: %s\n", c.id, what,
                   err ? std::strerror(err) : "connection closed");
    }
    kill(c);
  }

  void kill(Conn& c) {
    if (c.phase == Conn::kDead) return;
    c.phase = Conn::kDead;
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
  }

  // ------------------------------------------------------------ timers

  // One absolute timeout per distinct earliest deadline; armed_ holds them.
  void arm(Clock::time_point at) {
    if (!armed_.empty() && *armed_.begin() <= at) return;
    const int64_t ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    tick_ts_.tv_sec = ns / 1'000'000'000;
    tick_ts_.tv_nsec = ns % 1'000'000'000;
    io_uring_sqe* s = sqe();
    io_uring_prep_timeout(s, &tick_ts_, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(s, pack(kTick, static_cast<uint64_t>(ns)));
    io_uring_submit(&ring_);  // the kernel reads tick_ts_ now
    armed_.insert(at);
  }

  void tick(uint64_t ns) {
    const Clock::time_point fired{std::chrono::nanoseconds(ns)};
    if (auto it = armed_.find(fired); it != armed_.end()) armed_.erase(it);
    const auto now = Clock::now();
    if (!started_ && now - start_ >= std::chrono::seconds(60)) {
      std::fprintf(stderr, "floor: no connection opened in 60 s\n");
      std::fflush(stderr);
      std::_Exit(1);
    }
    if (started_ && now >= end_) {
      done_ = true;
      return;
    }
    while (!pending_.empty() && pending_.top().at <= now) {
      const Pending p = pending_.top();
      pending_.pop();
      if (p.slot) {
        paced_identify(conns_[p.conn], now);
      } else {
        identify(conns_[p.conn]);
      }
    }
    if (heartbeat_ms_ > 0 && now >= next_heartbeat_) {
      for (Conn& c : conns_) {
        if (c.identified && c.phase == Conn::kFrames) send(c, R"({"op":1,"d":null})");
      }
      next_heartbeat_ = now + milliseconds(heartbeat_ms_);
    }
    rearm_timer();
  }

  void rearm_timer() {
    Clock::time_point next = started_ ? end_ : start_ + std::chrono::seconds(60);
    if (!pending_.empty()) next = std::min(next, pending_.top().at);
    if (heartbeat_ms_ > 0) next = std::min(next, next_heartbeat_);
    arm(next);
  }

  // ------------------------------------------------------------ connection

  void connect(Conn& c) {
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return fail(c, "socket", errno);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    io_uring_sqe* s = sqe();
    io_uring_prep_connect(s, c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
    io_uring_sqe_set_data64(s, pack(kConnect, static_cast<uint64_t>(c.id)));
  }

  void on_connect(Conn& c, int res) {
    if (c.phase == Conn::kDead) return;
    if (res < 0) return fail(c, "connect", -res);
    c.phase = Conn::kHttp;
    arm_recv(c);
    if (tls_ != nullptr) {
      auto session = shardring::tls::Session::client(*tls_, "127.0.0.1");
      if (!session.ok()) {
        std::fprintf(stderr, "floor: %s\n", std::string(session.status().message()).c_str());
        return kill(c);
      }
      c.tls = std::make_unique<shardring::tls::Session>(std::move(*session));
      (void)c.tls->handshake();  // the ClientHello
      return flush(c);
    }
    upgrade(c);
  }

  void upgrade(Conn& c) {
    unsigned char key[16];
    const uint64_t a = splitmix(rng_), b = splitmix(rng_);
    std::memcpy(key, &a, 8);
    std::memcpy(key + 8, &b, 8);
    send(c,
         "GET /?v=10&encoding=json HTTP/1.1\r\nHost: " + host_port_ +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
             base64(key, sizeof key) +
             "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: floor-bench\r\n\r\n",
         /*frame=*/false);
  }

  void arm_recv(Conn& c) {
    if (c.phase == Conn::kDead) return;
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
    if (bundle_) s->ioprio |= uring_ext::kRecvSendBundle;
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(s, pack(kRecv, static_cast<uint64_t>(c.id)));
  }

  void on_recv(Conn& c, const io_uring_cqe& cqe) {
    const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
    if (cqe.flags & IORING_CQE_F_BUFFER) {
      // With bundles the bytes run on through the next buffers in the
      // ring's order (next_), each filled whole.
      unsigned bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
      size_t left = cqe.res > 0 ? static_cast<size_t>(cqe.res) : 0;
      do {
        const size_t n = std::min<size_t>(left, kRecvBufferBytes);
        unsigned char* data = bufs_ + size_t{bid} * kRecvBufferBytes;
        if (n > 0 && c.phase != Conn::kDead) {
          if (c.tls) {
            ciphertext(c, data, n);
          } else {
            bytes(c, data, n);
          }
        }
        const unsigned next = next_[bid];
        io_uring_buf_ring_add(br_, data, kRecvBufferBytes, static_cast<unsigned short>(bid),
                              io_uring_buf_ring_mask(kRecvBuffers), static_cast<int>(recycled_));
        ++recycled_;
        next_[last_added_] = static_cast<uint16_t>(bid);
        last_added_ = bid;
        left -= n;
        bid = next;
      } while (left > 0);
    }
    if (more || c.phase == Conn::kDead) return;
    if (cqe.res == 0) return fail(c, "recv", 0);
    if (cqe.res < 0 && cqe.res != -ENOBUFS) return fail(c, "recv", -cqe.res);
    rearm_.push_back(c.id);  // out of buffers or ended: after the recycling
  }

  // TLS: the handshake, then every record decrypted into plain_ and walked.
  // Every fed byte is taken before this returns (the buffer is recycled).
  void ciphertext(Conn& c, const unsigned char* p, size_t n) {
    using shardring::tls::Errc;
    shardring::tls::Session& t = *c.tls;
    if (t.feed_ciphertext({reinterpret_cast<const std::byte*>(p), n}) != Errc::kOk) {
      return fail(c, "tls feed", 0);
    }
    if (!t.is_handshake_done()) {
      const Errc e = t.handshake();
      if (e == Errc::kWantRead) return flush(c);
      if (e != Errc::kOk) {
        std::fprintf(stderr, "floor: shard %d: TLS handshake: %s\n", c.id,
                     t.error_detail().c_str());
        return kill(c);
      }
      flush(c);
      upgrade(c);
    }
    for (;;) {
      size_t produced = 0;
      const Errc e = t.read_plaintext({plain_.data(), plain_.size()}, produced);
      if (produced > 0) bytes(c, reinterpret_cast<const unsigned char*>(plain_.data()), produced);
      if (c.phase == Conn::kDead) return;
      if (e == Errc::kOk) continue;  // plain_ was full
      if (e != Errc::kWantRead) return fail(c, "tls read", 0);
      break;
    }
    flush(c);
  }

  // TLS: sends what the session has queued (handshake flights, records).
  void flush(Conn& c) {
    if (!c.tls || c.tls->pending_ciphertext().empty() || c.phase == Conn::kDead) return;
    auto out = std::make_unique<Send>();
    out->conn = c.id;
    std::vector<std::byte> taken;
    c.tls->take_ciphertext(taken);
    out->bytes.assign(reinterpret_cast<const char*>(taken.data()), taken.size());
    submit_send(out.release());
  }

  void bytes(Conn& c, const unsigned char* p, size_t n) {
    if (c.phase == Conn::kHttp) {
      // The 101 and its headers; what follows the blank line is frames.
      const size_t had = c.http.size();
      c.http.append(reinterpret_cast<const char*>(p), n);
      const size_t end = c.http.find("\r\n\r\n", had >= 3 ? had - 3 : 0);
      if (end == std::string::npos) {
        if (c.http.size() > 8192) fail(c, "upgrade response too long", 0);
        return;
      }
      if (c.http.compare(0, 12, "HTTP/1.1 101") != 0) {
        std::fprintf(stderr, "floor: shard %d: upgrade refused: %.*s\n", c.id,
                     static_cast<int>(std::min<size_t>(c.http.find('\r'), 80)), c.http.c_str());
        return kill(c);
      }
      const size_t used = n - (c.http.size() - (end + 4));
      std::string().swap(c.http);
      c.phase = Conn::kFrames;
      opened();
      p += used;
      n -= used;
    }
    walk(c, p, p + n);
  }

  void opened() {
    if (started_) return;
    started_ = true;
    first_open_ = Clock::now();
    end_ = first_open_ +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_));
    arm(end_);
  }

  // Frame headers only: counts the dispatches, skips every payload.
  void walk(Conn& c, const unsigned char* p, const unsigned char* end) {
    while (p < end && c.phase == Conn::kFrames) {
      if (c.left > 0) {
        const size_t avail = static_cast<size_t>(end - p);
        if (c.peek_want > 0) {
          if (c.peek_len == 0 && avail >= c.peek_want) {
            message(c, reinterpret_cast<const char*>(p), c.peek_want);
          } else {
            const size_t k = std::min(c.peek_want - c.peek_len, avail);
            std::memcpy(c.peek + c.peek_len, p, k);
            c.peek_len += k;
            if (c.peek_len == c.peek_want) message(c, c.peek, c.peek_len);
          }
        }
        const size_t skip = static_cast<size_t>(std::min<uint64_t>(c.left, avail));
        p += skip;
        c.left -= skip;
        continue;
      }
      uint64_t len = 0;
      size_t hsize = 0;
      if (c.hdr_len == 0 &&
          (hsize = parse_header(p, static_cast<size_t>(end - p), &c.opcode, &len)) != 0) {
        p += hsize;
      } else {  // a header split across buffers
        while (p < end && c.hdr_len < sizeof c.hdr) {
          c.hdr[c.hdr_len++] = *p++;
          if ((hsize = parse_header(c.hdr, c.hdr_len, &c.opcode, &len)) != 0) break;
        }
        if (hsize == 0) return;  // the rest comes in the next buffer
        c.hdr_len = 0;
      }
      c.left = len;
      c.peek_len = 0;
      c.peek_want = 0;
      if (c.opcode == 1 || c.opcode == 8) {
        c.peek_want = static_cast<size_t>(std::min<uint64_t>(len, c.hello ? kPeek : kPeekHello));
        if (len == 0) message(c, "", 0);
      }
    }
  }

  // The first bytes of a text (or close) frame.
  void message(Conn& c, const char* data, size_t n) {
    c.peek_want = 0;
    const std::string_view m(data, n);
    if (c.opcode == 8) {
      const unsigned code =
          n >= 2 ? (static_cast<unsigned char>(data[0]) << 8) | static_cast<unsigned char>(data[1])
                 : 0;
      if (errors_++ < 3) {
        std::fprintf(stderr, "floor: shard %d: gateway closed with %u %.*s\n", c.id, code,
                     static_cast<int>(n > 2 ? n - 2 : 0), n > 2 ? data + 2 : "");
      }
      return kill(c);
    }
    if (m.starts_with(kDispatchPrefix)) {
      ++events_;
      return;
    }
    if (!c.hello) {
      if (m.find(R"("op":10)") == std::string_view::npos) return;
      c.hello = true;
      constexpr std::string_view kKey = R"("heartbeat_interval":)";
      if (const size_t at = m.find(kKey); at != std::string_view::npos && heartbeat_ms_ == 0) {
        const long ms = std::strtol(std::string(m.substr(at + kKey.size())).c_str(), nullptr, 10);
        if (ms > 0) {
          heartbeat_ms_ = ms;
          next_heartbeat_ = Clock::now() + milliseconds(ms);
          arm(next_heartbeat_);
        }
      }
      paced_identify(c, Clock::now());
      return;
    }
    if (m.find(R"("op":9)") != std::string_view::npos) {  // invalid session: again in 1 s
      c.identified = false;
      pending_.push(Pending{Clock::now() + std::chrono::seconds(1), c.id, true});
      rearm_timer();
    }
  }

  // IDENTIFY in this shard's bucket's next slot (one per bucket per 5 ms).
  void paced_identify(Conn& c, Clock::time_point now) {
    auto& next = next_identify_[c.id % kBuckets];
    const auto at = std::max(now, next);
    next = at + kIdentifyWindow;
    if (at <= now) return identify(c);
    pending_.push(Pending{at, c.id, false});
    arm(at);
  }

  void identify(Conn& c) {
    if (c.phase != Conn::kFrames) return;
    c.identified = true;
    send(c,
         R"({"op":2,"d":{"token":"x","intents":513,"shard":[)" + std::to_string(c.id) + "," +
             std::to_string(shards_) +
             R"(],"properties":{"os":"linux","browser":"floor-bench","device":"floor-bench"}}})");
  }

  // ------------------------------------------------------------ output

  // A masked text frame of `payload` (or the bytes as they are: the upgrade).
  void send(Conn& c, std::string_view payload, bool frame = true) {
    if (c.phase == Conn::kDead) return;
    auto out = std::make_unique<Send>();
    out->conn = c.id;
    if (!frame) {
      out->bytes.assign(payload);
    } else {
      out->bytes = floor_wire::masked_text_frame(payload, static_cast<uint32_t>(splitmix(rng_)));
    }
    if (c.tls) {
      if (c.tls->write_plaintext({reinterpret_cast<const std::byte*>(out->bytes.data()),
                                  out->bytes.size()}) != shardring::tls::Errc::kOk) {
        return fail(c, "tls write", 0);
      }
      return flush(c);
    }
    submit_send(out.release());
  }

  void submit_send(Send* out) {
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, conns_[out->conn].fd, out->bytes.data() + out->off,
                       out->bytes.size() - out->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, pack(kSend, reinterpret_cast<uint64_t>(out)));
  }

  void on_send(Send* out, int res) {
    std::unique_ptr<Send> owned(out);
    Conn& c = conns_[out->conn];
    if (c.phase == Conn::kDead) return;
    if (res < 0) return fail(c, "send", -res);
    out->off += static_cast<size_t>(res);
    if (out->off < out->bytes.size()) submit_send(owned.release());
  }

  void on_cqe(const io_uring_cqe& cqe) {
    const uint64_t ud = io_uring_cqe_get_data64(&cqe);
    const uint64_t v = ud & ((uint64_t{1} << 56) - 1);
    switch (static_cast<Op>(ud >> 56)) {
      case kConnect:
        return on_connect(conns_[v], cqe.res);
      case kRecv:
        return on_recv(conns_[v], cqe);
      case kSend:  // a pointer: user space addresses stay below 2^56
        return on_send(reinterpret_cast<Send*>(v), cqe.res);
      case kTick:
        return tick(v);
    }
  }

  int finish() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto secs = [](const timeval& a, const timeval& b) {
      return double(a.tv_sec - b.tv_sec) + double(a.tv_usec - b.tv_usec) / 1e6;
    };
    const double cpu = secs(ru.ru_utime, ru0_.ru_utime) + secs(ru.ru_stime, ru0_.ru_stime);
    const double elapsed = std::chrono::duration<double>(Clock::now() - first_open_).count();
    std::printf(
        "{\"client\":\"%s\",\"events\":%llu,\"cpu_s\":%.6f,\"seconds\":%.6f,\"peak_rss_kib\":%ld}"
        "\n",
        batch_ ? "floor-batch" : "floor", static_cast<unsigned long long>(events_), cpu, elapsed,
        ru.ru_maxrss);
    std::fflush(stdout);
    return 0;
  }

  const shardring::tls::Context* tls_;  // null: plain ws://
  std::vector<std::byte> plain_ = std::vector<std::byte>(kRecvBufferBytes);
  sockaddr_in addr_;
  std::string host_port_;
  int shards_;
  double seconds_;
  bool batch_;
  long coalesce_us_;
  std::vector<Conn> conns_;
  io_uring ring_{};
  io_uring_buf_ring* br_ = nullptr;
  unsigned char* bufs_ = nullptr;
  unsigned recycled_ = 0;          // buffers handed back since the last advance
  uint16_t next_[kRecvBuffers]{};  // next_[id]: the buffer added to the ring after id
  unsigned last_added_ = 0;
  bool min_wait_ = false, bundle_ = false;  // FLOOR_URING, where the kernel has them
  std::vector<int> rearm_;                  // connections whose multishot recv ended
  __kernel_timespec tick_ts_{};
  std::multiset<Clock::time_point> armed_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> pending_;
  Clock::time_point next_identify_[kBuckets]{};
  long heartbeat_ms_ = 0;
  Clock::time_point next_heartbeat_{};
  uint64_t rng_ = 0;
  uint64_t events_ = 0;
  uint64_t errors_ = 0;
  bool started_ = false;
  bool done_ = false;
  Clock::time_point start_, first_open_, end_;
  rusage ru0_{};
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string ca_file;
  if (args.size() >= 2 && args[args.size() - 2] == "tls") {
    ca_file = args.back();
    args.resize(args.size() - 2);
  }
  const std::string mode = args.size() > 4 ? args[4] : "wake";
  if (args.size() < 4 || args.size() > 6 || (mode != "wake" && mode != "batch") ||
      (args.size() == 6 && mode != "batch")) {
    std::fprintf(stderr,
                 "usage: %s HOST PORT SHARDS SECONDS [wake|batch [COALESCE_US]] [tls CA_FILE]\n",
                 argv[0]);
    return 2;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  const int port = std::atoi(args[1].c_str());
  const int shards = std::atoi(args[2].c_str());
  const double seconds = std::atof(args[3].c_str());
  const long coalesce_us = args.size() == 6 ? std::atol(args[5].c_str()) : 1000;
  if (inet_pton(AF_INET, args[0].c_str(), &addr.sin_addr) != 1 || port <= 0 || port > 65535 ||
      shards < 1 || seconds <= 0 || coalesce_us < 0 || coalesce_us > 10'000'000) {
    std::fprintf(stderr, "floor: bad arguments (HOST must be an IPv4 address)\n");
    return 2;
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::unique_ptr<shardring::tls::Context> tls;
  if (!ca_file.empty()) {
    shardring::tls::ClientOptions options;
    options.system_ca_file.clear();
    options.ca_file = ca_file;
    auto ctx = shardring::tls::Context::client(options);
    if (!ctx.ok()) {
      std::fprintf(stderr, "floor: %s\n", std::string(ctx.status().message()).c_str());
      return 2;
    }
    tls = std::make_unique<shardring::tls::Context>(std::move(*ctx));
  }
  Floor floor(addr, args[0] + ":" + args[1], shards, seconds, mode == "batch", coalesce_us,
              tls.get());
  const int rc = floor.run();
  // The figures are out; skip tearing down thousands of connections.
  std::fflush(stdout);
  std::_Exit(rc);
}
