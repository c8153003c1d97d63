// engine/identify_gate_redis.cc: see identify_gate_redis.h.
#include "engine/identify_gate_redis.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/log.h"
#include "redis/resp.h"
#include "redis/scripts.h"

namespace shardring::engine {

RedisIdentifyGate::RedisIdentifyGate(RedisUrl url, std::string prefix, uint32_t max_concurrency,
                                     std::chrono::milliseconds window, uint64_t prepaid)
    : link_(std::move(url)),
      restart_(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua"),
      spend_(redis::kSpendScript),
      prepaid_(prepaid),
      prefix_(std::move(prefix)),
      spacing_(window + identify_margin(window)),
      buckets_(std::max<uint32_t>(max_concurrency, 1)) {
  thread_ = std::thread([this] { run(); });
}

RedisIdentifyGate::~RedisIdentifyGate() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool RedisIdentifyGate::try_acquire(uint32_t shard, Clock::time_point now,
                                    Clock::time_point* retry_at) {
  std::lock_guard lock(mu_);
  Bucket& b = buckets_[shard % buckets_.size()];
  if (b.granted == static_cast<int64_t>(shard)) {
    b.granted = -1;
    if (now - b.granted_at <= spacing_ / 2) {
      b.waiting.erase(shard);
      b.restart = true;
      if (++taken_ > prepaid_) ++unspent_;  // beyond the start's reservation
      cv_.notify_all();  // restart the window from now; then the next may be tried
      return true;
    }
    cv_.notify_all();  // taken too late: dropped, the bucket is tried again
  }
  const bool added = b.waiting.insert(shard).second;
  if (added) cv_.notify_all();
  // The lowest waiting shard asks every poll (a window won for it is
  // taken at once); those behind it wait a window each.
  const auto rank = std::distance(b.waiting.begin(), b.waiting.find(shard));
  *retry_at = rank == 0 ? now + kRedisGatePoll
                        : std::max(now + kRedisGatePoll, b.next_try + spacing_ * rank);
  return false;
}

void RedisIdentifyGate::withdraw(uint32_t shard) {
  std::lock_guard lock(mu_);
  Bucket& b = buckets_[shard % buckets_.size()];
  b.waiting.erase(shard);
  // A window won for it goes to the next waiting shard.
  if (b.granted == static_cast<int64_t>(shard)) {
    b.granted = b.waiting.empty() ? -1 : static_cast<int64_t>(*b.waiting.begin());
  }
}

uint64_t RedisIdentifyGate::won() const {
  std::lock_guard lock(mu_);
  return won_;
}

void RedisIdentifyGate::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  // Each window won is marked with who won it (for operators reading the key).
  const std::string token = absl::StrCat(getpid(), "@", link_.url().to_string());
  const std::string px = std::to_string(spacing_.count());
  std::vector<uint32_t> tries;
  std::chrono::milliseconds backoff{50};
  bool down = false;
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto now = Clock::now();
    tries.clear();
    Clock::time_point wake = now + std::chrono::milliseconds(200);
    std::vector<uint32_t> restarts;
    for (uint32_t i = 0; i < buckets_.size(); ++i) {
      Bucket& b = buckets_[i];
      if (b.restart) {
        restarts.push_back(i);
        b.restart = false;
        b.next_try = std::max(b.next_try, now + spacing_);
      }
      if (b.granted >= 0 && now - b.granted_at > spacing_ / 2) {
        b.granted = -1;  // not taken in time: its shard asks again
      }
      if (b.waiting.empty() || b.granted >= 0) continue;
      if (b.next_try <= now) {
        tries.push_back(i);
      } else {
        wake = std::min(wake, b.next_try);
      }
    }
    const uint64_t spend = unspent_;
    if (tries.empty() && restarts.empty() && spend == 0) {
      cv_.wait_until(lock, wake);
      continue;
    }
    lock.unlock();
    std::string wire;
    redis::CommandWriter w(wire);
    for (uint32_t i : restarts) {
      w.command({"EVALSHA", restart_.sha1, "1", redis::key(prefix_, "gate", i), token, px});
    }
    if (spend > 0) {
      w.command(
          {"EVALSHA", spend_.sha1, "1", redis::key(prefix_, "budget"), std::to_string(spend)});
    }
    for (uint32_t i : tries) {
      const std::string key = redis::key(prefix_, "gate", i);
      w.command({"SET", key, token, "PX", px, "NX"});
      w.command({"PTTL", key});
    }
    std::vector<redis::Reply> replies;
    std::string error;
    const bool ok = link_.exchange(wire, w.commands(), &replies, &error, {&restart_, &spend_});
    const auto after = Clock::now();
    lock.lock();
    if (!ok) {
      if (!down) {
        Log::write(Level::kWarn, -1,
                   "identify gate: redis unreachable: no identify until it is back",
                   {{"error", error}});
      }
      down = true;
      cv_.wait_for(lock, backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      continue;
    }
    if (down) Log::write(Level::kInfo, -1, "identify gate: redis reachable again");
    down = false;
    backoff = std::chrono::milliseconds(50);
    unspent_ -= spend;
    const size_t first_try = restarts.size() + (spend > 0 ? 1 : 0);
    for (size_t k = 0; k < tries.size(); ++k) {
      Bucket& b = buckets_[tries[k]];
      const redis::Reply& set = replies[first_try + 2 * k];
      const redis::Reply& ttl = replies[first_try + 2 * k + 1];
      if (set.type == redis::Reply::Type::kStatus && set.str == "OK") {
        ++won_;
        b.next_try = after + spacing_;
        if (!b.waiting.empty()) {
          b.granted = *b.waiting.begin();
          b.granted_at = after;
        }
        continue;
      }
      if (set.is_error()) {
        Log::write(Level::kWarn, -1, "identify gate: redis refused", {{"error", set.str}});
        b.next_try = after + std::chrono::milliseconds(100);
        continue;
      }
      // Closed by another process: open again when the key expires.
      // A key without a TTL (set by hand) is looked at again in 100 ms.
      int64_t left = ttl.type == redis::Reply::Type::kInteger ? ttl.integer : 1;
      if (left == -1) left = 100;
      b.next_try = after + std::chrono::milliseconds(std::max<int64_t>(left, 1));
    }
  }
}

}  // namespace shardring::engine
