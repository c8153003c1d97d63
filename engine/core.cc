// engine/core.cc: the core thread's io_uring loop, a thin driver of its
// shards' conn::ClientConnection objects: submit and reap, hand socket bytes
// to the connection, then carry out what it asks (sync()): write, arm
// timers, ask the identify gate, dial, drop the socket, stop on a fatal
// close. Dialing is in dial.cc, delivery and backpressure in deliver.cc.
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <random>

#include "engine/core_loop.h"
#include "engine/log.h"
#include "engine/text.h"
#include "engine/uring_ext.h"

namespace shardring::engine {
namespace {

using std::chrono::milliseconds;

int64_t SteadyNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

uint64_t RandomSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != sizeof seed) {
    std::random_device rd;
    seed = (uint64_t{rd()} << 32) ^ rd();
  }
  return seed;
}

}  // namespace

CoreThread::Loop::Loop(uint32_t index, Shared& shared, const std::vector<uint32_t>& shards,
                       int wake_fd, UserSends& sends, Snapshots& snaps, StatusSlot* status)
    : index(index),
      shared(shared),
      s(shared.settings),
      wake_fd(wake_fd),
      counters(*shared.counters[index]),
      scratch(RandomSeed()),
      sends(sends),
      snaps(snaps),
      inline_handlers(shared.settings.consumers == 0) {
  for (uint32_t id : shards) {
    auto sh = std::make_unique<Shard>(s.client, scratch, id);
    sh->slot = static_cast<uint32_t>(this->shards.size());
    sh->status = &status[sh->slot];
    sh->consumer = shared.consumer_of(id);
    sh->url = s.gateway;
    if (id - shared.first_shard < shared.restore.size()) {
      const Restore& r = shared.restore[id - shared.first_shard];
      if (!r.session_id.empty() && !sh->conn.restore(r.session_id, r.resume_url, r.seq)) {
        Log::write(Level::kWarn, id, "saved session not usable; identifying");
      }
    }
    this->shards.push_back(std::move(sh));
  }
}

absl::Status CoreThread::Loop::init() {
  auto u = Uring::create(4096, s.uring_fallbacks);
  if (!u.ok()) return u.status();
  ring = std::move(*u);
  bundles = ring->features().recv_bundle;
  if (index == 0) {
    Log::write(Level::kInfo, -1, "io_uring set up",
               {{"features", ring->features().to_string()}, {"kernel", ring->features().kernel}});
  }
  if (absl::Status st = bufs.init(ring->raw(), 0, kRecvBuffers, kRecvBufferBytes, parse::kPadding);
      !st.ok()) {
    return st;
  }
  if (s.gateway.is_tls()) {
    auto ctx = tls::Context::client(s.tls);
    if (!ctx.ok()) return ctx.status();
    tls_ctx.emplace(std::move(*ctx));
    scratch.tls_context = &*tls_ctx;
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------ timers

void CoreThread::Loop::arm(Shard& sh, uint8_t kind, Clock::time_point deadline) {
  TimerId& id = sh.timers[kind];
  if (id.is_valid()) wheel.cancel(id);
  id = wheel.schedule(deadline, OpTag{Op::kTimer, sh.slot, kind}.pack());
}

void CoreThread::Loop::disarm(Shard& sh, uint8_t kind) {
  TimerId& id = sh.timers[kind];
  if (id.is_valid()) wheel.cancel(id);
  id = TimerId();
}

void CoreThread::Loop::on_timer(uint64_t cookie) {
  const OpTag tag = OpTag::unpack(cookie);
  Shard& sh = *shards[tag.slot];
  const auto kind = static_cast<uint8_t>(tag.generation);
  sh.timers[kind] = TimerId();
  if (kind < conn::kTimerCount) {
    const auto timer = static_cast<conn::Timer>(kind);
    if (timer == conn::Timer::kHeartbeat) {  // measured against its deadline
      heartbeat_timer_shard = &sh;
      heartbeat_deadline = sh.conn.deadline(timer).value_or(now);
    }
    sh.conn.on_timer(timer, now);
    sync(sh);
    heartbeat_timer_shard = nullptr;
    return;
  }
  switch (static_cast<DriverTimer>(kind)) {
    case DriverTimer::kConnectTimeout:
      Log::write(Level::kWarn, sh.conn.shard(), "connect timed out",
                 {{"phase", conn::to_string(sh.conn.phase())},
                  {"after_ms", s.connect_timeout.count()},
                  {"url", sh.url.authority()}});
      connect_failed(sh);
      break;
    case DriverTimer::kIdentifyRetry:
      request_identify(sh);
      break;
    case DriverTimer::kResolvePoll:
      if (sh.conn.phase() == conn::Phase::kDialing && sh.fd < 0) resolve_and_connect(sh);
      break;
    case DriverTimer::kUnpause:
      unpause(sh);
      break;
    case DriverTimer::kCount:
      break;
  }
}

// ----------------------------------------------------- the connection's asks

void CoreThread::Loop::sync(Shard& sh) {
  conn::ClientConnection& c = sh.conn;
  for (const conn::NoteRecord& n : c.notes()) on_note(sh, n);
  c.notes().clear();
  if (auto f = c.take_fatal()) fatal(sh, *f);
  if (c.take_close_socket()) close_socket(sh);
  if (uint32_t changed = c.take_timer_changes()) {
    for (uint8_t k = 0; k < conn::kTimerCount; ++k) {
      if (!(changed >> k & 1)) continue;
      if (auto d = c.deadline(static_cast<conn::Timer>(k))) {
        arm(sh, k, *d);
      } else {
        disarm(sh, k);
      }
    }
  }
  if (sh.fd >= 0 && !sh.send_inflight && c.take_write(sh.inflight)) {
    sh.inflight_off = 0;
    submit_send(sh);
  }
  if (c.upgraded() && !sh.counted_connected) {
    sh.counted_connected = true;
    counters.connected.fetch_add(1, std::memory_order_relaxed);
    disarm(sh, TimerKind(DriverTimer::kConnectTimeout));
    dial_ended(sh);
  }
  set_ready(sh, c.ready());
  publish_status(sh);
  if (c.take_identify_request()) request_identify(sh);
  if (c.take_dial()) dial(sh);
}

void CoreThread::Loop::publish_status(Shard& sh) {
  StatusSlot& st = *sh.status;
  const auto state = static_cast<uint8_t>(StateOf(sh.conn));
  if (st.state.load(std::memory_order_relaxed) != state) {
    st.state.store(state, std::memory_order_relaxed);
    st.state_since_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
        std::memory_order_relaxed);
  }
  const gateway::Stats& gs = sh.conn.session().stats();
  st.rtt_ms.store(static_cast<int32_t>(gs.last_heartbeat_rtt.count()), std::memory_order_relaxed);
  st.resumes.store(static_cast<uint32_t>(gs.resumes), std::memory_order_relaxed);
  st.reconnects.store(static_cast<uint32_t>(gs.reconnects), std::memory_order_relaxed);
}

void CoreThread::Loop::fatal(Shard& sh, const gateway::Fatal& f) {
  Log::write(Level::kError, sh.conn.shard(), f.message, {{"code", f.code}});
  {
    std::lock_guard lock(shared.fatal_mu);
    if (shared.fatal_code.load() == 0) {
      shared.fatal_message = f.message;
      shared.fatal_code.store(f.code);
    }
  }
  if (shared.on_fatal) shared.on_fatal();
}

void CoreThread::Loop::request_identify(Shard& sh) {
  Clock::time_point retry;
  // A fresh clock: the loop's `now` may be a busy iteration old, and the
  // gateway times the window from the IDENTIFY it receives.
  if (shared.gate->try_acquire(sh.conn.shard(), Clock::now(), &retry)) {
    sh.conn.on_identify_granted(now);
    sync(sh);
  } else {
    arm(sh, TimerKind(DriverTimer::kIdentifyRetry), retry);
  }
}

void CoreThread::Loop::set_ready(Shard& sh, bool ready) {
  if (sh.ready == ready) return;
  sh.ready = ready;
  if (!ready) {
    counters.ready.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  counters.ready.fetch_add(1, std::memory_order_relaxed);
  if (!sh.ever_ready) {
    sh.ever_ready = true;
    if (shared.ever_ready.fetch_add(1, std::memory_order_acq_rel) + 1 == shared.shards_here) {
      shared.all_ready_ns.store(SteadyNs(Clock::now()), std::memory_order_release);
    }
  }
}

// ----------------------------------------------------------------- sockets

// Drops the socket now. In-flight requests finish with stale tags (the
// generation moves on) and only then may the slot dial again. Events the
// connection already produced (the backlog) are kept: they are delivered.
void CoreThread::Loop::close_socket(Shard& sh) {
  disarm(sh, TimerKind(DriverTimer::kConnectTimeout));
  disarm(sh, TimerKind(DriverTimer::kResolvePoll));
  for (const auto& h : sh.held.waiting()) bufs.recycle(h.first);
  sh.held.release();
  if (sh.paused && sh.backlog.empty()) {
    disarm(sh, TimerKind(DriverTimer::kUnpause));
    end_pause(sh);
  }
  if (sh.fd >= 0) {
    ::shutdown(sh.fd, SHUT_RDWR);
    ::close(sh.fd);
    sh.fd = -1;
  }
  ++sh.gen;
  sh.recv_armed = false;
  dial_ended(sh);
  if (sh.counted_connected) {
    sh.counted_connected = false;
    counters.connected.fetch_sub(1, std::memory_order_relaxed);
  }
  set_ready(sh, false);
}

void CoreThread::Loop::submit_send(Shard& sh) {
  io_uring_sqe* sqe = ring->sqe();
  io_uring_prep_send(sqe, sh.fd, sh.inflight.data() + sh.inflight_off,
                     sh.inflight.size() - sh.inflight_off, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, OpTag{Op::kSend, sh.slot, sh.gen}.pack());
  sh.send_inflight = true;
  ++sh.ops;
}

void CoreThread::Loop::on_send(Shard& sh, const io_uring_cqe& cqe, bool stale) {
  sh.send_inflight = false;
  if (stale) {
    conn::ClientConnection::recycle_write(sh.inflight);
    return;
  }
  if (cqe.res < 0) {
    Log::write(Level::kInfo, sh.conn.shard(), "send failed", {{"error", std::strerror(-cqe.res)}});
    sh.conn.on_transport_lost(now);
    sync(sh);
    return;
  }
  sh.inflight_off += static_cast<size_t>(cqe.res);
  if (sh.inflight_off < sh.inflight.size()) {
    submit_send(sh);
    return;
  }
  conn::ClientConnection::recycle_write(sh.inflight);
  sh.inflight_off = 0;
  sh.conn.on_write_done(now);
  sync(sh);
}

void CoreThread::Loop::arm_recv(Shard& sh) {
  if (sh.fd < 0 || sh.recv_armed || sh.paused) return;
  io_uring_sqe* sqe = ring->sqe();
  io_uring_prep_recv_multishot(sqe, sh.fd, nullptr, 0, 0);
  if (bundles) sqe->ioprio |= uring_ext::kRecvSendBundle;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bufs.group();
  io_uring_sqe_set_data64(sqe, OpTag{Op::kRecv, sh.slot, sh.gen}.pack());
  sh.recv_armed = true;
  ++sh.ops;
}

void CoreThread::Loop::on_recv(Shard& sh, const io_uring_cqe& cqe, bool stale) {
  const bool more = cqe.flags & IORING_CQE_F_MORE;
  const bool has_buf = cqe.flags & IORING_CQE_F_BUFFER;
  const auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
  if (!more) {
    --sh.ops;
    if (!stale) sh.recv_armed = false;
  }
  if (stale) {
    if (has_buf && cqe.res > 0) recycle_received(bid, static_cast<uint32_t>(cqe.res));
    return;
  }
  if (cqe.res == -ENOBUFS) {  // the buffer ring ran dry: re-arm
    ++enobufs;
    if (!more) arm_recv(sh);
    return;
  }
  if (cqe.res == -ECANCELED) {  // our own cancel (backpressure)
    // The shard may have been unpaused before the cancel landed.
    if (!more && !sh.paused) arm_recv(sh);
    return;
  }
  if (cqe.res <= 0) {
    if (has_buf) bufs.recycle(bid);
    if (cqe.res == 0) {
      Log::write(Level::kInfo, sh.conn.shard(), "connection closed by peer (EOF)");
    } else {
      Log::write(Level::kInfo, sh.conn.shard(), "recv failed",
                 {{"error", std::strerror(-cqe.res)}});
    }
    sh.conn.on_transport_lost(now);
    sync(sh);
    return;
  }
  if (!has_buf) return;
  // The bytes fill buffers whole, from `bid` on in the ring's order (more
  // than one only with UringFeatures::recv_bundle).
  const uint32_t gen = sh.gen;
  uint32_t left = static_cast<uint32_t>(cqe.res);
  uint16_t b = bid;
  while (left > 0) {
    const uint32_t len = std::min(left, bufs.size());
    if (sh.gen != gen) {  // a hostile frame closed the socket: the rest is stale
      recycle_received(b, left);
      return;
    }
    const uint16_t next = bufs.next(b);
    left -= len;
    if (!inline_handlers && (sh.paused || !channel(sh).has_headroom())) {
      hold(sh, b, len);
    } else {
      process(sh, b, len);
    }
    b = next;
  }
  if (!more && sh.fd >= 0 && sh.gen == gen) arm_recv(sh);
}

void CoreThread::Loop::recycle_received(uint16_t bid, uint32_t len) {
  for (uint32_t n = (len + bufs.size() - 1) / bufs.size(); n > 0; --n) {
    const uint16_t next = bufs.next(bid);
    bufs.recycle(bid);
    bid = next;
  }
}

// One receive buffer through the connection: its dispatches delivered in
// order, then what it asks for carried out. The buffer is free afterwards
// (the connection keeps copies of partial records and frames).
void CoreThread::Loop::process(Shard& sh, uint16_t bid, uint32_t len) {
  sh.conn.receive(std::span<std::byte>(bufs.data(bid), len), parse::kPadding, now);
  conn::Dispatch ev;
  while (sh.conn.poll(ev, now)) deliver(sh, ev);
  bufs.recycle(bid);
  sync(sh);
}

// ------------------------------------------------------------------- loop

void CoreThread::Loop::on_cqe(const io_uring_cqe& cqe) {
  const OpTag tag = OpTag::unpack(cqe.user_data);
  if (tag.op == Op::kWake) {
    wake_armed = false;
    return;
  }
  if (tag.op == Op::kCancel || tag.op == Op::kNone || tag.slot >= shards.size()) return;
  Shard& sh = *shards[tag.slot];
  const bool stale = (sh.gen & 0xFF'FFFF) != tag.generation;
  switch (tag.op) {
    case Op::kConnect:
      --sh.ops;
      if (stale) break;
      if (cqe.res < 0) {
        Log::write(Level::kWarn, sh.conn.shard(), "connect failed",
                   {{"addr", sh.addr.to_string()}, {"error", std::strerror(-cqe.res)}});
        connect_failed(sh);
      } else {
        on_connected_tcp(sh);
      }
      break;
    case Op::kRecv:
      on_recv(sh, cqe, stale);
      break;
    case Op::kSend:
      --sh.ops;
      on_send(sh, cqe, stale);
      break;
    default:
      break;
  }
  if (sh.want_connect && sh.ops == 0 && sh.fd < 0) dial(sh);
}

void CoreThread::Loop::arm_wake() {
  if (wake_armed) return;
  io_uring_sqe* sqe = ring->sqe();
  io_uring_prep_read(sqe, wake_fd, &wake_buf, sizeof wake_buf, 0);
  io_uring_sqe_set_data64(sqe, OpTag{Op::kWake, 0, 0}.pack());
  wake_armed = true;
}

void CoreThread::Loop::take_user_sends() {
  std::vector<std::pair<uint32_t, std::string>> batch;
  std::vector<UserSends::Rewind> rewinds;
  {
    std::lock_guard lock(sends.mu);
    batch.swap(sends.queue);
    rewinds.swap(sends.rewinds);
  }
  for (const UserSends::Rewind& r : rewinds) {
    Shard& sh = *shards[r.slot];
    sh.conn.rewind(r.seq, r.session_key, now);
    sync(sh);
  }
  for (auto& [slot, payload] : batch) {
    Shard& sh = *shards[slot];
    (void)sh.conn.send(std::move(payload), now);  // a refusal is a note
    sync(sh);
  }
}

void CoreThread::Loop::start_shutdown() {
  shutting_down = true;
  for (auto& p : shards) {
    Shard& sh = *p;
    disarm(sh, TimerKind(DriverTimer::kIdentifyRetry));
    shared.gate->withdraw(sh.conn.shard());
    sh.want_connect = false;
    sh.conn.shutdown(now, shared.end_sessions.load(std::memory_order_relaxed)
                              ? gateway::Session::StopMode::kEndSession
                              : gateway::Session::StopMode::kKeepSession);
    sync(sh);
  }
  shutdown_deadline = now + milliseconds(1500);
}

bool CoreThread::Loop::all_quiet() const {
  for (const auto& sh : shards) {
    if (sh->ops > 0 || sh->fd >= 0 || !sh->backlog.empty()) return false;
  }
  return true;
}

void CoreThread::Loop::run() {
  now = Clock::now();
  // Stagger the first dials a little so thousands of sockets do not open
  // in one burst; identifies are paced by the gate anyway.
  for (auto& sh : shards) {
    sh->conn.schedule_dial(now + milliseconds(sh->slot / 64));
    sync(*sh);
  }
  unsigned reaped = 0;
  while (true) {
    arm_wake();
    bufs.flush();
    // The loop turns at least every max_wait (a watchdog counts its turns).
    std::chrono::microseconds wait = shutting_down ? std::chrono::microseconds(10'000) : s.max_wait;
    // Coalescing (Settings::coalesce): after a light pass, wait for a busy
    // pass's worth of completions or the coalescing time, whichever comes
    // first. With DEFER_TASKRUN the kernel runs arriving completions only
    // when this thread waits, and (Linux 6.8+) wakes it only when enough
    // are there; older kernels wake it per completion in the kernel, which
    // still saves the trip to user space and the consumer's wake-ups.
    // With the wait's minimum time (UringFeatures::min_wait) the coalescing
    // time is the batch's: a wait that finds nothing in it sleeps on until
    // the first completion (or a timer) instead of waking empty. The kernel
    // waits at least the minimum, so a timer due sooner waits the old way.
    unsigned want = 1;
    std::chrono::microseconds min_wait{0};
    const bool coalescing =
        reaped > 0 && reaped < kCoalesceBusyCompletions && s.coalesce.count() > 0 && !shutting_down;
    if (coalescing) {
      want = kCoalesceBusyCompletions;
      if (ring->features().min_wait) {
        min_wait = s.coalesce;
      } else {
        wait = s.coalesce;
      }
    }
    if (auto next = wheel.next_deadline()) {
      const auto until =
          std::chrono::duration_cast<std::chrono::microseconds>(*next - Clock::now());
      if (until < wait) wait = std::max(until, std::chrono::microseconds(0));
    }
    if (min_wait > wait) min_wait = std::chrono::microseconds(0);
    if (wait.count() > 0) {
      ring->submit_and_wait(wait, want, min_wait);
    } else {
      ring->submit();
    }
    now = Clock::now();
    counters.loop_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
        std::memory_order_relaxed);
    pushed_consumers = 0;
    reaped = ring->reap([&](const io_uring_cqe& cqe) { on_cqe(cqe); });
    bufs.flush();
    wheel.advance(now, [&](uint64_t cookie) { on_timer(cookie); });
    if (sends.pending.exchange(false, std::memory_order_acquire)) take_user_sends();
    admit_dials();
    publish_inline();
    for (uint64_t m = pushed_consumers; m != 0; m &= m - 1) {
      const auto bit = static_cast<unsigned>(__builtin_ctzll(m));
      for (size_t k = bit; k < shared.wakers.size(); k += 64) shared.wakers[k]->notify();
    }
    if (const uint64_t g = shared.checkpoint_gen.load(std::memory_order_acquire);
        g != checkpoint_gen_seen) {
      checkpoint_gen_seen = g;
      take_snapshot();
      snaps.gen.store(g, std::memory_order_release);
    }
    if (!shutting_down && shared.stopping.load(std::memory_order_acquire)) start_shutdown();
    if (shutting_down && (all_quiet() || now >= shutdown_deadline)) break;
  }
  publish_inline();
  take_snapshot();  // after the shards closed: what a clean stop saves
  for (auto& sh : shards) {
    if (!sh->backlog.empty()) {
      Log::write(Level::kError, sh->conn.shard(),
                 "consumer stuck at shutdown; events not delivered",
                 {{"events", sh->backlog.size()}});
    }
    if (sh->fd >= 0) {
      ::close(sh->fd);
      sh->fd = -1;
    }
  }
}

// Inline handlers: after a pass that delivered, the count for stats and
// the idle call (a sink flushes what the pass wrote).
void CoreThread::Loop::publish_inline() {
  if (delivered_inline == published_inline) return;
  published_inline = delivered_inline;
  counters.delivered_inline.store(delivered_inline, std::memory_order_relaxed);
  if (shared.idle_inline) shared.idle_inline();
  if (done_touched.empty()) return;
  // Every event delivered so far was handled, and on_idle has returned:
  // done, unless the sink failed (its events may be lost).
  if (!shared.sink_failed.load(std::memory_order_acquire)) {
    std::lock_guard lock(shared.done_mu);
    for (uint32_t slot : done_touched) {
      const Shard& sh = *shards[slot];
      shared.done[sh.conn.shard() - shared.first_shard] = sh.delivered;
    }
  }
  for (uint32_t slot : done_touched) shards[slot]->done_touched = false;
  done_touched.clear();
}

// -------------------------------------------------------------- CoreThread

CoreThread::CoreThread(uint32_t index, Shared& shared, std::vector<uint32_t> shards)
    : index_(index),
      shared_(shared),
      shards_(std::move(shards)),
      status_(std::make_unique<StatusSlot[]>(shards_.size())) {
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
    loop_ =
        std::make_unique<Loop>(index_, shared_, shards_, wake_fd_, sends_, snaps_, status_.get());
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

bool CoreThread::queue_rewind(uint32_t shard, uint64_t seq, uint64_t session_key) {
  const auto it = std::find(shards_.begin(), shards_.end(), shard);
  if (it == shards_.end()) return false;
  {
    std::lock_guard lock(sends_.mu);
    sends_.rewinds.push_back({static_cast<uint32_t>(it - shards_.begin()), seq, session_key});
  }
  sends_.pending.store(true, std::memory_order_release);
  wake();
  return true;
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

namespace shardring::engine {

void CoreThread::Loop::take_snapshot() {
  std::vector<ShardSnapshot> v;
  v.reserve(shards.size());
  for (const auto& p : shards) {
    const gateway::Session& session = p->conn.session();
    ShardSnapshot snap;
    snap.shard = p->conn.shard();
    snap.session_id = session.session_id();
    snap.resume_url = session.resume_url();
    snap.session_key = session.session_key();
    snap.last_seq = session.last_seq();
    snap.delivered = p->delivered;
    // A session our clean stop kept was alive until now.
    snap.connected = p->conn.upgraded() ||
                     (session.state() == gateway::State::kStopped && session.has_session());
    v.push_back(std::move(snap));
  }
  std::lock_guard lock(snaps.mu);
  snaps.shards.swap(v);
}

std::vector<ShardSnapshot> CoreThread::snapshot() const {
  std::lock_guard lock(snaps_.mu);
  return snaps_.shards;
}

}  // namespace shardring::engine
