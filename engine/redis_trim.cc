// engine/redis_trim.cc: see redis_trim.h.
#include "engine/redis_trim.h"

#include <pthread.h>
#include <signal.h>

#include "engine/log.h"
#include "redis/resp.h"
#include "redis/scripts.h"

namespace shardring::engine {

RedisTrimmer::RedisTrimmer(Options opts)
    : opts_(std::move(opts)), link_(opts_.url), script_(redis::kTrimScript) {}

RedisTrimmer::~RedisTrimmer() { stop(); }

void RedisTrimmer::start() {
  thread_ = std::thread([this] { run(); });
}

void RedisTrimmer::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RedisTrimmer::trim_once(std::string* error) {
  auto slice = opts_.slice();
  if (!slice) return true;
  const std::string cap = std::to_string(opts_.maxlen);
  uint64_t unread = 0;
  for (uint32_t from = slice->first; from <= slice->second;) {
    const uint32_t to = std::min<uint64_t>(slice->second, uint64_t{from} + kTrimBatch - 1);
    std::string wire;
    redis::CommandWriter w(wire);
    for (uint32_t s = from; s <= to; ++s) {
      w.command({"EVALSHA", script_.sha1, "1", redis::key(opts_.prefix, "shard", s), cap});
    }
    std::vector<redis::Reply> replies;
    if (!link_.exchange(wire, w.commands(), &replies, error, {&script_})) return false;
    for (const redis::Reply& r : replies) {
      if (r.is_error()) {
        *error = r.str;
        return false;
      }
      if (r.elements.size() == 2) {
        trimmed_.fetch_add(static_cast<uint64_t>(r.elements[0].integer));
        unread += static_cast<uint64_t>(r.elements[1].integer);
      }
    }
    if (to == slice->second) break;
    from = to + 1;
  }
  if (unread > 0) {
    cut_unread_.fetch_add(unread);
    Log::write(Level::kWarn, -1,
               "--redis-maxlen cut entries no consumer group had acknowledged yet",
               {{"entries", unread}, {"maxlen", opts_.maxlen}});
  }
  return true;
}

void RedisTrimmer::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  bool down = false;
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, opts_.interval, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    std::string error;
    const bool ok = trim_once(&error);
    if (!ok && !down) {
      Log::write(Level::kWarn, -1, "redis: trimming the streams failed: retrying",
                 {{"error", error}});
    }
    down = !ok;
    lock.lock();
  }
}

}  // namespace shardring::engine
