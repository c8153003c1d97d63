// engine/redis_lease.cc: see redis_lease.h.
#include "engine/redis_lease.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "engine/log.h"
#include "redis/resp.h"
#include "redis/scripts.h"

namespace shardring::engine {

namespace {

// KEYS[1] P:lease:N, KEYS[2] P:session:N; ARGV owner, fence, ms.
// Renews (or takes) the lease while the fence is the holder's; 0 when
// another process claimed the shard since.
constexpr std::string_view kRenew = R"lua(
if redis.call('HGET', KEYS[2], 'fence') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
)lua";

// KEYS[1] P:lease:N; ARGV owner. Deletes the lease if it is still ours.
constexpr std::string_view kRelease = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

}  // namespace

std::string lease_owner_id() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return absl::StrCat(host, ":", getpid(), ":", ts.tv_sec, ts.tv_nsec / 1000000);
}

RedisLeases::RedisLeases(RedisUrl url, std::string prefix, uint32_t first, uint32_t last,
                         std::vector<std::string> fences, std::chrono::milliseconds lease)
    : link_(std::move(url)),
      prefix_(std::move(prefix)),
      owner_(lease_owner_id()),
      first_(first),
      last_(last),
      fences_(std::move(fences)),
      lease_(lease),
      renew_(kRenew),
      release_(kRelease) {}

RedisLeases::~RedisLeases() { stop(); }

uint32_t RedisLeases::renew(std::string* error) {
  std::string wire;
  redis::CommandWriter w(wire);
  const std::string ms = std::to_string(lease_.count());
  for (uint32_t s = first_; s <= last_; ++s) {
    w.command({"EVALSHA", renew_.sha1, "2", redis::key(prefix_, "lease", s),
               redis::key(prefix_, "session", s), owner_,
               s < fences_.size() ? std::string_view(fences_[s]) : std::string_view(), ms});
  }
  std::vector<redis::Reply> replies;
  if (!link_.exchange(wire, w.commands(), &replies, error, {&renew_})) return UINT32_MAX;
  uint32_t lost = 0;
  for (const redis::Reply& r : replies) {
    if (r.is_error()) {
      *error = r.str;
      return UINT32_MAX;
    }
    lost += r.integer == 0;
  }
  return lost;
}

bool RedisLeases::start(std::string* error) {
  if (renew(error) == UINT32_MAX) return false;
  thread_ = std::thread([this] { run(); });
  return true;
}

void RedisLeases::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  // A clean stop hands the shards on at once: a standby need not wait
  // for the leases to expire.
  std::string wire;
  redis::CommandWriter w(wire);
  for (uint32_t s = first_; s <= last_; ++s) {
    w.command({"EVALSHA", release_.sha1, "1", redis::key(prefix_, "lease", s), owner_});
  }
  std::vector<redis::Reply> replies;
  std::string error;
  if (!link_.exchange(wire, w.commands(), &replies, &error, {&release_})) {
    Log::write(Level::kWarn, -1, "redis: leases not released (they expire)", {{"error", error}});
  }
}

void RedisLeases::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lock(mu_);
  uint32_t lost_before = 0;
  while (!stop_) {
    cv_.wait_for(lock, lease_ / 3, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    std::string error;
    const uint32_t lost = renew(&error);
    if (lost == UINT32_MAX) {
      Log::write(Level::kWarn, -1, "redis: renewing the shard leases failed: retrying",
                 {{"error", error}});
    } else if (lost > lost_before) {
      Log::write(Level::kWarn, -1, "redis: another process claimed shards of this one",
                 {{"shards", lost}});
      lost_before = lost;
    }
    lock.lock();
  }
}

absl::StatusOr<std::optional<std::pair<uint32_t, uint32_t>>> find_orphans(RedisLink& link,
                                                                          std::string_view prefix,
                                                                          uint32_t first,
                                                                          uint32_t last) {
  std::string wire;
  redis::CommandWriter w(wire);
  for (uint32_t s = first; s <= last; ++s) {
    w.command({"EXISTS", redis::key(prefix, "lease", s)});
    w.command({"HEXISTS", redis::key(prefix, "session", s), "session_id"});
  }
  std::vector<redis::Reply> replies;
  std::string error;
  if (!link.exchange(wire, w.commands(), &replies, &error)) {
    return absl::UnavailableError(error);
  }
  std::optional<std::pair<uint32_t, uint32_t>> run;
  for (uint32_t s = first; s <= last; ++s) {
    const redis::Reply& lease = replies[2 * (s - first)];
    const redis::Reply& session = replies[2 * (s - first) + 1];
    if (lease.is_error() || session.is_error()) {
      return absl::UnavailableError(lease.is_error() ? lease.str : session.str);
    }
    const bool orphan = lease.integer == 0 && session.integer == 1;
    if (orphan) {
      if (!run) run = std::make_pair(s, s);
      if (run->second + 1 == s) run->second = s;
      if (run->second != s) break;
    } else if (run) {
      break;
    }
  }
  return run;
}

}  // namespace shardring::engine
