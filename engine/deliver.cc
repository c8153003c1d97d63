// engine/deliver.cc: a shard's dispatches to the user's handler: inline on
// this thread (Settings::consumers == 0), or through the channel to the
// shard's consumer thread. A full channel is backpressure, never a spin
// and never a loss: the event that found no room (and every later one of
// the shard) is kept in the shard's backlog, the socket is no longer read
// (TCP pushes back to the gateway), and a timer retries until the consumer
// has caught up. Heartbeats go on meanwhile: they are timers, not reads.
#include <algorithm>
#include <chrono>

#include "engine/core_loop.h"
#include "engine/log.h"

namespace shardring::engine {
namespace {

int64_t SteadyNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

void CoreThread::Loop::deliver(Shard& sh, const conn::Dispatch& ev) {
  ChannelEvent e{};
  e.shard = sh.conn.shard();
  e.type = static_cast<uint16_t>(ev.type);
  e.seq = ev.seq;
  e.guild_id = ev.guild_id;
  e.channel_id = ev.channel_id;
  e.t = ev.t;
  e.d = ev.d;
  e.recv_ns = SteadyNs(now);
  e.sent_ns = static_cast<int64_t>(ev.sent_ns);
  e.session = sh.conn.session().session_key();
  sh.delivered = Durable{e.session, e.seq};
  sh.status->last_seq.store(e.seq, std::memory_order_relaxed);
  sh.status->last_event_ns.store(e.recv_ns, std::memory_order_relaxed);
  Bump(counters.events_by_type[e.type < parse::kEventTypeCount ? e.type : 1]);
  if (inline_handlers) {  // the handler runs here; d is read in place
    if ((++latency_sample & (kLatencySampleEvery - 1)) == 0) {
      counters.delivery_latency.record(
          static_cast<uint64_t>(std::max<int64_t>(0, SteadyNs(Clock::now()) - e.recv_ns)));
    }
    if (shared.deliver_inline) shared.deliver_inline(e);
    ++delivered_inline;
    if (shared.track_done && !sh.done_touched) {  // done once idle_inline returns
      sh.done_touched = true;
      done_touched.push_back(sh.slot);
    }
    return;
  }
  if (sh.backlog.empty() && channel(sh).try_push(e)) {
    pushed_consumers |= uint64_t{1} << (sh.consumer & 63);
    return;
  }
  // No room (a burst larger than the headroom a read is admitted with, or
  // an event larger than the channel's arena that could not be allocated):
  // keep it, in order behind any kept before it, and stop reading.
  OwnedEvent owned{e, {}};
  owned.bytes.reserve(e.t.size() + e.d.size());
  owned.bytes.append(e.t).append(e.d);
  sh.backlog.push(std::move(owned));
  pause(sh);
}

// Pushes kept events while they fit; true when none is left.
bool CoreThread::Loop::push_backlog(Shard& sh) {
  while (!sh.backlog.empty()) {
    OwnedEvent& o = sh.backlog.front();
    ChannelEvent e = o.event;
    e.t = std::string_view(o.bytes.data(), o.event.t.size());
    e.d = std::string_view(o.bytes.data() + o.event.t.size(), o.event.d.size());
    if (!channel(sh).try_push(e)) return false;
    pushed_consumers |= uint64_t{1} << (sh.consumer & 63);
    (void)sh.backlog.pop();
  }
  sh.backlog.release();
  return true;
}

void CoreThread::Loop::hold(Shard& sh, uint16_t bid, uint32_t len) {
  sh.held.push({bid, len});
  pause(sh);
}

void CoreThread::Loop::pause(Shard& sh) {
  if (!sh.paused) {
    sh.paused = true;
    sh.paused_since = now;
    sh.conn.set_reading_paused(true);
    if (sh.recv_armed) {  // stop the multishot recv: TCP pushes back
      io_uring_sqe* sqe = ring->sqe();
      io_uring_prep_cancel64(sqe, OpTag{Op::kRecv, sh.slot, sh.gen}.pack(), 0);
      io_uring_sqe_set_data64(sqe, OpTag{Op::kCancel, sh.slot, sh.gen}.pack());
    }
    shared.wakers[sh.consumer]->notify();
  }
  arm(sh, TimerKind(DriverTimer::kUnpause), now + kBackpressurePoll);
}

void CoreThread::Loop::end_pause(Shard& sh) {
  if (!sh.paused) return;
  sh.paused = false;
  sh.conn.set_reading_paused(false);
  counters.backpressure_ms.fetch_add(
      static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(now - sh.paused_since).count()),
      std::memory_order_relaxed);
}

void CoreThread::Loop::unpause(Shard& sh) {
  if (!sh.paused) return;
  // Kept events first, then the buffers held unread, each only while the
  // channel has room; processing a buffer may keep more events.
  while (push_backlog(sh) && !sh.held.empty() && channel(sh).has_headroom()) {
    const auto [bid, len] = sh.held.pop();
    process(sh, bid, len);
  }
  if (!sh.backlog.empty() || !sh.held.empty()) {
    shared.wakers[sh.consumer]->notify();
    arm(sh, TimerKind(DriverTimer::kUnpause), now + kBackpressurePoll);
    return;
  }
  sh.held.release();
  end_pause(sh);
  arm_recv(sh);
}

}  // namespace shardring::engine
