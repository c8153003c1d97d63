// engine/consumers.cc: the consumer threads (each drains its channels into
// the user's handler, in seq order per shard, and records what it handled
// for checkpoints) and the checkpoints themselves, on run()'s thread.
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <thread>

#include "engine/engine_impl.h"

namespace shardring {

using engine::Level;
using engine::Log;

// How long a checkpoint waits for the core threads' snapshots and the
// consumers' flushes.
constexpr std::chrono::milliseconds kCheckpointWait{50};

// One event to the user's handler, on a consumer thread or (consumers = 0)
// on its core thread.
void Engine::Impl::handle(const engine::ChannelEvent& e) const {
  if (handler) {
    handler(Event{e.shard, e.seq, e.t, e.type, e.d, e.guild_id, e.channel_id, e.recv_ns, e.sent_ns,
                  e.session});
  }
}

void Engine::Impl::consumer_main(unsigned c) {
  std::string name = "shardring-c" + std::to_string(c);
  pthread_setname_np(pthread_self(), name.c_str());
  std::vector<engine::EventChannel*> chans;
  for (auto& per_core : shared->channels) chans.push_back(per_core[c].get());
  engine::ConsumerWaker& waker = *shared->wakers[c];
  std::atomic<uint64_t>& count = *delivered[c];
  uint64_t local = 0;
  // Checkpoints (Shared::track_done): the last event handled per shard,
  // published as done after on_idle returned (a sink flushes there).
  const bool track = shared->track_done;
  std::vector<Durable> handled(track ? shared->done.size() : 0);
  std::vector<uint32_t> touched;
  uint64_t gen_seen = shared->checkpoint_gen.load(std::memory_order_relaxed);
  engine::Histogram& latency = *consumer_latency[c];
  uint32_t sample = 0;
  auto on_one = [&](const engine::ChannelEvent& e) {
    if ((++sample & (engine::kLatencySampleEvery - 1)) == 0) {
      const int64_t now_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
              .count();
      latency.record(static_cast<uint64_t>(std::max<int64_t>(0, now_ns - e.recv_ns)));
    }
    handle(e);
    if (track) {
      Durable& h = handled[e.shard - shared->first_shard];
      if (h == Durable{}) touched.push_back(e.shard - shared->first_shard);
      h = Durable{e.session, e.seq};
    }
  };
  // How soon the idle handler wants to be called again (0: at the next event).
  std::chrono::milliseconds retry{0};
  auto idle_and_publish = [&] {
    retry = idle ? idle() : std::chrono::milliseconds(0);
    if (touched.empty()) return;
    if (!shared->sink_failed.load(std::memory_order_acquire)) {
      std::lock_guard lock(shared->done_mu);
      for (uint32_t i : touched) shared->done[i] = handled[i];
    }
    for (uint32_t i : touched) handled[i] = Durable{};
    touched.clear();
  };
  auto all_empty = [&] {
    for (auto* ch : chans) {
      if (!ch->empty()) return false;
    }
    return true;
  };
  while (true) {
    size_t n = 0;
    for (auto* ch : chans) n += ch->drain(on_one, 256);
    // A checkpoint is due: flush and publish even under a steady stream
    // that never lets the channels run dry.
    if (const uint64_t g = shared->checkpoint_gen.load(std::memory_order_acquire); g != gen_seen) {
      gen_seen = g;
      idle_and_publish();
      shared->flushed_gen[c]->store(g, std::memory_order_release);
    }
    if (n > 0) {
      local += n;
      count.store(local, std::memory_order_relaxed);
      continue;
    }
    idle_and_publish();
    if (consumers_stop.load(std::memory_order_acquire) && all_empty()) break;
    waker.wait(all_empty, retry.count());
  }
  idle_and_publish();
}

void Engine::Impl::request_snapshots() {
  const uint64_t g = shared->checkpoint_gen.fetch_add(1, std::memory_order_acq_rel) + 1;
  for (auto& c : cores) c->wake();
  for (auto& w : shared->wakers) w->force_wake();
  const auto until = Clock::now() + kCheckpointWait;
  auto answered = [&] {
    for (auto& c : cores) {
      if (c->snapshot_gen() < g) return false;
    }
    for (auto& f : shared->flushed_gen) {
      if (f->load(std::memory_order_acquire) < g) return false;
    }
    return true;
  };
  while (!answered() && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void Engine::Impl::checkpoint() {
  if (!keeper) return;
  std::vector<engine::ShardSnapshot> snaps;
  for (auto& c : cores) {
    auto v = c->snapshot();
    std::move(v.begin(), v.end(), std::back_inserter(snaps));
  }
  std::vector<Durable> done, written;
  std::string sink;
  if (config.sink_progress) {
    sink = config.sink_progress(written);
    done.resize(last - first + 1);
    for (uint32_t s = first; s <= last && s < written.size(); ++s) done[s - first] = written[s];
  } else {
    std::lock_guard lock(shared->done_mu);
    done = shared->done;
  }
  keeper->checkpoint(snaps, done, written, std::move(sink),
                     shared->bot_user_id.load(std::memory_order_relaxed), UnixMs());
}

}  // namespace shardring
