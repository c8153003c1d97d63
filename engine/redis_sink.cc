// engine/redis_sink.cc: see redis_sink.h.
#include "engine/redis_sink.h"

#include <algorithm>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/event_channel.h"
#include "engine/log.h"
#include "redis/resp.h"
#include "redis/scripts.h"

namespace shardring::engine {

namespace {

// Error replies that say "wait and try again" (a server starting, busy with
// a script, a replica during failover): the batch is sent again. Every
// other error will not go away by waiting.
bool Transient(std::string_view code) {
  return code == "LOADING" || code == "BUSY" || code == "TRYAGAIN" || code == "READONLY" ||
         code == "MASTERDOWN" || code == "CLUSTERDOWN";
}

}  // namespace

RedisOutput::RedisOutput(RedisSinkOptions opts)
    : opts_(std::move(opts)), name_("redis:" + opts_.url.to_string()), fences_(opts_.fences) {}

std::string RedisOutput::fence(uint32_t shard) {
  std::lock_guard lock(mu_);
  return shard < fences_.size() ? fences_[shard] : std::string();
}

int RedisOutput::waiting() {
  std::lock_guard lock(mu_);
  return outages_;
}

void RedisOutput::set_fence(uint32_t shard, std::string fence) {
  std::lock_guard lock(mu_);
  if (fences_.size() <= shard) fences_.resize(shard + 1);
  fences_[shard] = std::move(fence);
}

std::string RedisOutput::progress(std::vector<Durable>& by_shard) {
  std::lock_guard lock(mu_);
  if (by_shard.size() < written_.size()) by_shard.resize(written_.size());
  for (size_t i = 0; i < written_.size(); ++i) {
    if (written_[i].session != 0) by_shard[i] = written_[i];
  }
  return "redis";
}

void RedisOutput::record(uint32_t shard, Durable d, uint64_t appended, uint64_t skipped) {
  {
    std::lock_guard lock(mu_);
    if (written_.size() <= shard) written_.resize(shard + 1);
    written_[shard] = d;
  }
  appended_.fetch_add(appended, std::memory_order_relaxed);
  skipped_.fetch_add(skipped, std::memory_order_relaxed);
}

void RedisOutput::fail(const std::string& reason) {
  std::lock_guard lock(mu_);
  if (failed_.exchange(true)) return;
  if (on_failure_) on_failure_(reason);
}

void RedisOutput::outage(bool down, const std::string& why, bool recovered) {
  std::lock_guard lock(mu_);
  if (down) {
    if (outages_++ == 0) {
      Log::write(
          Level::kWarn, -1,
          "redis unreachable: events wait (buffered up to --redis-buffer-mib, then shards stop "
          "reading)",
          {{"sink", name_}, {"error", why}});
    }
  } else if (--outages_ == 0 && recovered) {
    Log::write(Level::kInfo, -1, "redis reachable again: events flow", {{"sink", name_}});
  }
}

RedisWriter::RedisWriter(std::shared_ptr<RedisOutput> out)
    : out_(std::move(out)), link_(out_->options().url), script_(redis::kAppendScript) {}

RedisWriter::~RedisWriter() {
  out_->buffered_.fetch_sub(accounted_, std::memory_order_relaxed);
  if (down_) out_->outage(false, "", false);
}

bool RedisWriter::stopping() const {
  const RedisSinkOptions& o = out_->options();
  return o.stopping && o.stopping();
}

void RedisWriter::account() {
  out_->buffered_.fetch_add(arena_.size() - accounted_, std::memory_order_relaxed);
  accounted_ = arena_.size();
}

void RedisWriter::append(const ChannelEvent& e) {
  if (out_->failed()) return;
  if (e.shard >= seen_.size()) {
    seen_.resize(e.shard + 1);
    rewinding_.resize(e.shard + 1);
    known_.resize(e.shard + 1);
  }
  Rewinding& rw = rewinding_[e.shard];
  if (rw.on) {
    if (e.session == rw.session && e.seq > rw.max_seen) {
      rw.max_seen = e.seq;  // the old connection's: dropped
      return;
    }
    rw.on = false;  // the replay (or a new session) has begun
  }
  seen_[e.shard] = Durable{e.session, e.seq};
  Pending p{};
  p.shard = e.shard;
  p.seq = e.seq;
  p.session = e.session;
  p.sent_ns = e.sent_ns;
  p.t_off = static_cast<uint32_t>(arena_.size());
  p.t_len = static_cast<uint32_t>(e.t.size());
  arena_ += e.t;
  p.d_off = static_cast<uint32_t>(arena_.size());
  p.d_len = static_cast<uint32_t>(e.d.size());
  arena_ += e.d;
  pending_.push_back(p);
  if (holding_) {
    account();
    if (out_->buffered() >= out_->options().buffer_bytes) {
      flush();  // the buffer is full: the consumer waits, the rings fill
    } else if (Clock::now() >= retry_at_) {
      idle();
    }
  } else if (arena_.size() >= kFlushBytes) {
    idle();
  }
}

void RedisWriter::on_lost(uint32_t shard, uint64_t session, uint64_t have) {
  Log::write(Level::kWarn, shard,
             "redis lost events this process appended (an older snapshot, a replica that was "
             "behind): resuming the shard from what its stream holds",
             {{"stream_seq", have}, {"appended_seq", known_[shard].seq}});
  known_[shard] = Durable{session, have};
  Rewinding& rw = rewinding_[shard];
  rw.on = true;
  rw.session = session;
  rw.max_seen = seen_[shard].session == session ? seen_[shard].seq : have;
  out_->record(shard, Durable{session, have}, 0, 0);
  out_->rewinds_.fetch_add(1, std::memory_order_relaxed);
  if (out_->options().rewind) out_->options().rewind(shard, have, session);
}

bool RedisWriter::claim(std::string* error) {
  std::vector<uint32_t> missing;
  for (const Pending& p : pending_) {
    if (p.shard >= fences_.size()) fences_.resize(p.shard + 1);
    if (!fences_[p.shard].empty()) continue;
    fences_[p.shard] = out_->fence(p.shard);
    if (fences_[p.shard].empty() &&
        std::find(missing.begin(), missing.end(), p.shard) == missing.end()) {
      missing.push_back(p.shard);
    }
  }
  if (missing.empty()) return true;
  std::string wire;
  redis::CommandWriter w(wire);
  const std::string& prefix = out_->options().prefix;
  for (uint32_t shard : missing) {
    w.command({"HINCRBY", redis::key(prefix, "session", shard), "fence", "1"});
  }
  std::vector<redis::Reply> replies;
  // With the script: a new connection loads it ahead of the first append.
  if (!link_.exchange(wire, missing.size(), &replies, error, {&script_})) return false;
  for (size_t i = 0; i < missing.size(); ++i) {
    if (replies[i].type != redis::Reply::Type::kInteger) {
      *error = absl::StrCat("claiming shard ", missing[i], ": ", replies[i].debug_string());
      return false;
    }
    fences_[missing[i]] = std::to_string(replies[i].integer);
    out_->set_fence(missing[i], fences_[missing[i]]);
  }
  return true;
}

void RedisWriter::build() {
  order_.resize(pending_.size());
  for (uint32_t i = 0; i < order_.size(); ++i) order_[i] = i;
  // Grouped by shard, each shard's events in the order they came (seq order).
  std::stable_sort(order_.begin(), order_.end(),
                   [&](uint32_t a, uint32_t b) { return pending_[a].shard < pending_[b].shard; });
  calls_.clear();
  for (size_t i = 0; i < order_.size();) {
    const Pending& first = pending_[order_[i]];
    size_t j = i + 1;
    while (j < order_.size() && j - i < kMaxEventsPerCall &&
           pending_[order_[j]].shard == first.shard &&
           pending_[order_[j]].session == first.session) {
      ++j;
    }
    calls_.push_back({i, j});
    i = j;
  }
  wire_.clear();
  redis::CommandWriter w(wire_);
  const RedisSinkOptions& o = out_->options();
  for (const Call& c : calls_) {
    const Pending& first = pending_[order_[c.begin]];
    w.begin(3 + 2 + 3 + 3 * (c.end - c.begin));
    w.arg("EVALSHA");
    w.arg(script_.sha1);
    w.arg("2");
    w.arg(redis::key(o.prefix, "shard", first.shard));
    w.arg(redis::key(o.prefix, "session", first.shard));
    w.arg(fences_[first.shard]);
    w.arg(first.session);
    const Durable& known = known_[first.shard];
    if (known.session == first.session && known.seq != 0) {
      w.arg(known.seq);
    } else {
      w.arg(std::string_view());
    }
    for (size_t k = c.begin; k < c.end; ++k) {
      const Pending& p = pending_[order_[k]];
      w.arg(p.seq);
      w.arg(std::string_view(arena_).substr(p.t_off, p.t_len));
      w.arg(std::string_view(arena_).substr(p.d_off, p.d_len));
    }
  }
}

RedisWriter::Attempt RedisWriter::attempt(std::string* error) {
  if (out_->failed()) return Attempt::kFailed;
  auto fail = [&](const std::string& reason) {
    if (down_) out_->outage(false, "", false);
    down_ = false;
    out_->fail(reason);
    return Attempt::kFailed;
  };
  if (!claim(error)) return Attempt::kRetry;
  build();
  if (!link_.exchange(wire_, calls_.size(), &replies_, error, {&script_})) return Attempt::kRetry;
  for (size_t i = 0; i < calls_.size(); ++i) {
    const redis::Reply& r = replies_[i];
    const uint32_t shard = pending_[order_[calls_[i].begin]].shard;
    if (r.is_error()) {
      if (!Transient(r.error_code()))
        return fail(absl::StrCat("redis: shard ", shard, ": ", r.str));
      *error = absl::StrCat(link_.url().to_string(), ": ", r.str);
      return Attempt::kRetry;
    }
    if (r.type != redis::Reply::Type::kArray || r.elements.size() != 4) {
      return fail(absl::StrCat("redis: shard ", shard, ": unexpected reply ", r.debug_string()));
    }
  }
  const int64_t acked =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  for (size_t i = 0; i < calls_.size(); ++i) {
    const Call& c = calls_[i];
    const Pending& first = pending_[order_[c.begin]];
    const redis::Reply& r = replies_[i];
    const uint64_t last = static_cast<uint64_t>(r.elements[0].integer);
    if (r.elements[3].integer == 1) {
      if (!rewinding_[first.shard].on) on_lost(first.shard, first.session, last);
      continue;
    }
    const uint64_t appended = static_cast<uint64_t>(r.elements[1].integer);
    for (size_t k = c.begin; k < c.end; ++k) {
      const int64_t sent = pending_[order_[k]].sent_ns;
      if (sent > 0) lag_.record(static_cast<uint64_t>(std::max<int64_t>(0, acked - sent)));
    }
    known_[first.shard] = Durable{first.session, last};
    out_->record(first.shard, Durable{first.session, last}, appended, (c.end - c.begin) - appended);
  }
  if (down_) out_->outage(false, "");
  down_ = false;
  return Attempt::kDone;
}

void RedisWriter::retry_later(const std::string& error) {
  if (!down_) {
    out_->outage(true, error);
    down_ = true;
    backoff_ = RedisOutput::kMinBackoff;
  } else {
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(RedisOutput::kMaxBackoff));
  }
  retry_at_ = Clock::now() + backoff_;
}

void RedisWriter::clear() {
  pending_.clear();
  arena_.clear();
  if (arena_.capacity() > 4 * kFlushBytes) {
    arena_.shrink_to_fit();
    wire_.clear();
    wire_.shrink_to_fit();
  }
  out_->buffered_.fetch_sub(accounted_, std::memory_order_relaxed);
  accounted_ = 0;
  holding_ = false;
}

std::chrono::milliseconds RedisWriter::idle() {
  if (pending_.empty()) return std::chrono::milliseconds(0);
  const size_t room = out_->options().buffer_bytes;
  if (room == 0 || stopping()) {
    flush();
    return std::chrono::milliseconds(0);
  }
  if (holding_) {
    const auto now = Clock::now();
    if (now < retry_at_) {
      return std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now);
    }
  }
  std::string error;
  if (attempt(&error) != Attempt::kRetry) {
    clear();
    return std::chrono::milliseconds(0);
  }
  retry_later(error);
  holding_ = true;
  account();
  if (out_->buffered() >= room) {
    flush();
    return std::chrono::milliseconds(0);
  }
  return backoff_;
}

void RedisWriter::flush() {
  if (pending_.empty()) return;
  std::optional<Clock::time_point> give_up;
  for (;;) {
    if (holding_ && Clock::now() < retry_at_) std::this_thread::sleep_until(retry_at_);
    std::string error;
    if (attempt(&error) != Attempt::kRetry) break;
    retry_later(error);
    holding_ = true;
    if (stopping()) {
      if (!give_up) give_up = Clock::now() + out_->options().stop_retry;
      if (Clock::now() >= *give_up) {
        out_->outage(false, "", false);
        down_ = false;
        out_->fail(absl::StrCat("redis: stopping with events not written: ", error));
        break;
      }
    }
  }
  clear();
}

}  // namespace shardring::engine
