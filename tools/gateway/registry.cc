#include "tools/gateway/registry.h"

namespace shardring::gatewaysrv {

std::string_view to_string(ResumeVerdict v) noexcept {
  switch (v) {
    case ResumeVerdict::kResumed:
      return "resumed";
    case ResumeVerdict::kUnknown:
      return "unknown session";
    case ResumeVerdict::kTokenMismatch:
      return "token does not match the session";
    case ResumeVerdict::kExpired:
      return "session expired";
    case ResumeVerdict::kTooOld:
      return "seq too old to replay";
    case ResumeVerdict::kInUse:
      return "session still attached";
    case ResumeVerdict::kBadSeq:
      return "seq ahead of the session";
  }
  return "?";
}

Registry::Registry(uint32_t max_concurrency, std::chrono::milliseconds identify_window,
                   std::chrono::seconds resume_window)
    : buckets_(max_concurrency, identify_window),
      gate_(identify_window.count() > 0),
      resume_window_(resume_window) {}

bool Registry::try_identify(uint32_t shard, Instant now, Instant arrived_after, uint32_t* bucket,
                            Clock::duration* early) {
  if (!gate_) return true;
  std::lock_guard lock(mu_);
  if (buckets_.try_take_for(shard, now, arrived_after)) return true;
  *bucket = buckets_.bucket_of(shard);
  *early = buckets_.next_allowed(*bucket) - now;
  return false;
}

ShardStats* Registry::stats_for(uint32_t shard) {
  auto& p = shard_stats_[shard];
  if (!p) p = std::make_unique<ShardStats>();
  return p.get();
}

void Registry::count_identify_refused(std::optional<uint32_t> shard) {
  if (!shard) return;
  std::lock_guard lock(mu_);
  stats_for(*shard)->identifies_refused.fetch_add(1, std::memory_order_relaxed);
}

void Registry::add(const std::shared_ptr<SessionState>& s) {
  std::lock_guard lock(mu_);
  s->stats = stats_for(s->shard);
  s->stats->session_id = s->id;
  s->attached = true;
  sessions_[s->id] = s;
}

ResumeVerdict Registry::resume(const std::string& id, std::string_view token, uint64_t seq,
                               Instant now, std::shared_ptr<SessionState>* out) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return ResumeVerdict::kUnknown;
  SessionState& s = *it->second;
  const ResumeVerdict v = verdict(s, token, seq, now);
  if (v != ResumeVerdict::kResumed) {
    s.stats->resumes_refused.fetch_add(1, std::memory_order_relaxed);
    if (v == ResumeVerdict::kExpired || v == ResumeVerdict::kTooOld) sessions_.erase(it);
    return v;
  }
  s.attached = true;
  *out = it->second;
  return ResumeVerdict::kResumed;
}

ResumeVerdict Registry::verdict(const SessionState& s, std::string_view token, uint64_t seq,
                                Instant now) const {
  if (s.token != token) return ResumeVerdict::kTokenMismatch;
  if (s.attached) return ResumeVerdict::kInUse;
  if (now - s.detached_at > resume_window_) return ResumeVerdict::kExpired;
  if (seq > s.last_seq) return ResumeVerdict::kBadSeq;
  if (s.last_seq - seq > kReplayBufferEvents || seq + 1 < s.replay_floor) {
    return ResumeVerdict::kTooOld;
  }
  return ResumeVerdict::kResumed;
}

void Registry::detach(SessionState& s, Instant now) {
  std::lock_guard lock(mu_);
  s.attached = false;
  s.detached_at = now;
  // A zero window: nothing may resume it, so it need not wait for expire().
  if (resume_window_ == Clock::duration::zero()) sessions_.erase(s.id);
}

void Registry::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

void Registry::expire(Instant now) {
  std::lock_guard lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (!it->second->attached && now - it->second->detached_at > resume_window_) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<std::pair<uint32_t, ShardCounters>> Registry::shard_counters() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<uint32_t, ShardCounters>> out;
  out.reserve(shard_stats_.size());
  for (const auto& [id, st] : shard_stats_) {
    ShardCounters c;
    c.identifies = st->identifies.load();
    c.resumes = st->resumes.load();
    c.events_sent = st->events_sent.load();
    c.last_seq = st->last_seq.load();
    c.session_id = st->session_id;
    c.identifies_refused = st->identifies_refused.load();
    c.resumes_refused = st->resumes_refused.load();
    out.emplace_back(id, std::move(c));
  }
  return out;
}

}  // namespace shardring::gatewaysrv
