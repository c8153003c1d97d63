// tools/redis_handoff.cc: see redis_handoff.h.
#include "tools/redis_handoff.h"

#include <signal.h>

#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/event_channel.h"
#include "engine/identify_gate_redis.h"
#include "engine/log.h"
#include "engine/redis_store.h"
#include "redis/resp.h"
#include "redis/scripts.h"

namespace shardring::tools {

namespace {

using Slice = std::optional<std::pair<uint32_t, uint32_t>>;

// The shards the engine runs, once it runs them.
Slice SliceOf(Engine& eng) {
  auto shards = eng.shards();
  if (shards.empty()) return std::nullopt;
  return std::make_pair(shards.front().shard, shards.back().shard);
}

}  // namespace

bool RedisHandOff::configure(Config& cfg, std::string* error) {
  if (!o_.redis) return true;
  if (o_.identify_gate == "redis") {
    cfg.identify_gate_factory = [url = *o_.redis, prefix = o_.redis_prefix, prepaid = prepaid_](
                                    uint32_t max_concurrency, std::chrono::milliseconds window,
                                    std::string*) -> std::unique_ptr<engine::IdentifyGate> {
      return std::make_unique<engine::RedisIdentifyGate>(url, prefix, max_concurrency, window,
                                                         prepaid->load());
    };
    // The daily start budget, shared in P:budget: simultaneous starts of
    // several processes cannot together spend past the reserve.
    cfg.start_budget = [url = *o_.redis, prefix = o_.redis_prefix, prepaid = prepaid_](
                           uint32_t remaining, int64_t reset_after_ms, uint32_t to_identify,
                           uint32_t reserve, uint32_t* shared_remaining) {
      engine::RedisLink link(url);
      auto budget =
          engine::reserve_starts(link, prefix, remaining, reset_after_ms, to_identify, reserve);
      if (!budget.ok()) {
        // Redis unreachable at start: Discord's own count was checked.
        engine::Log::write(engine::Level::kWarn, -1,
                           "redis: the shared start budget could not be read: Discord's count "
                           "alone was checked",
                           {{"error", std::string(budget.status().message())}});
        return true;
      }
      *shared_remaining = budget->before;
      const bool ok = budget->reserved;
      if (ok) prepaid->store(to_identify);
      return ok;
    };
  }
  if (o_.state_redis) {
    cfg.session_store =
        std::make_shared<engine::RedisSessionStore>(*o_.redis, o_.redis_prefix, o_.shard_ids);
  }
  if (o_.sink != SinkKind::kRedis) return true;
  engine::RedisSinkOptions ro;
  ro.url = *o_.redis;
  ro.prefix = o_.redis_prefix;
  ro.stopping = [this] { return eng_ != nullptr && eng_->stopping(); };
  ro.buffer_bytes = static_cast<size_t>(o_.redis_buffer_mib) << 20;
  // Redis lost writes: the shard resumes from what its stream holds.
  ro.rewind = [this](uint32_t shard, uint64_t seq, uint64_t session) {
    if (eng_ != nullptr) eng_->rewind(shard, seq, session);
  };
  // The shards are claimed now when their range is known (else each before
  // its first append): a process that wrote them before is fenced off from
  // here on, and stops (exit 4) at its next append.
  if (o_.total_shards || o_.shard_ids) {
    const uint32_t first = o_.shard_ids ? o_.shard_ids->first : 0;
    const uint32_t last =
        o_.shard_ids ? o_.shard_ids->second : static_cast<uint32_t>(*o_.total_shards - 1);
    engine::RedisLink link(*o_.redis);
    auto fences = engine::claim_shards(link, o_.redis_prefix, first, last);
    if (!fences.ok()) {
      *error = absl::StrCat("--redis: ", fences.status().message());
      return false;
    }
    ro.fences = std::move(*fences);
    first_ = first;
    last_ = last;
  }
  out_ = std::make_shared<engine::RedisOutput>(std::move(ro));
  if (auto* store = dynamic_cast<engine::RedisSessionStore*>(cfg.session_store.get())) {
    // A process fenced off saves no session over its successor's.
    store->set_fences([out = out_.get()](uint32_t shard) { return out->fence(shard); });
  }
  if (cfg.session_store) {
    cfg.sink_progress = [out = out_](std::vector<Durable>& by_shard) {
      return out->progress(by_shard);
    };
  }
  cfg.metrics_extra = [this](std::string& m) { metrics(m); };
  return true;
}

void RedisHandOff::attach(Engine& eng) {
  eng_ = &eng;
  if (!out_) return;
  // A failure that waiting cannot fix (or FENCED) stops the run, exit 4,
  // with the sessions saved at what Redis holds.
  out_->on_failure([&eng](const std::string& reason) { eng.fail(reason); });
  writers_ = std::make_unique<engine::PerThread<engine::RedisWriter>>(
      [out = out_] { return std::make_unique<engine::RedisWriter>(out); });
  eng.on_event(
      [w = writers_.get()](const Event& e) { w->mine().append(engine::ToChannelEvent(e)); });
  // Through an outage the writers buffer (--redis-buffer-mib) and ask to be
  // called again when their backoff has passed.
  eng.on_idle_timed([w = writers_.get()] {
    engine::RedisWriter* mine = w->existing();
    return mine != nullptr ? mine->idle() : std::chrono::milliseconds(0);
  });
}

void RedisHandOff::start() {
  if (!out_) return;
  // Leases on the claimed shards: a standby takes them over when this
  // process stops renewing them.
  if (!out_->options().fences.empty()) {
    leases_ = std::make_unique<engine::RedisLeases>(*o_.redis, o_.redis_prefix, first_, last_,
                                                    out_->options().fences,
                                                    std::chrono::milliseconds(o_.lease_ms));
    std::string error;
    if (!leases_->start(&error)) {
      engine::Log::write(engine::Level::kWarn, -1,
                         "redis: shard leases not taken: a standby may take these shards",
                         {{"error", error}});
    }
  }
  // Workers send commands back through P:commands.
  engine::RedisCommands::Options co;
  co.url = *o_.redis;
  co.prefix = o_.redis_prefix;
  co.send = [eng = eng_](uint32_t shard, std::string payload) {
    SendResult r = eng->send(shard, std::move(payload));
    return engine::RedisCommands::Outcome{r.queued, std::string(r.reason)};
  };
  co.slice = [eng = eng_] { return SliceOf(*eng); };
  commands_ = std::make_unique<engine::RedisCommands>(std::move(co));
  commands_->start();
  // Streams trimmed below what every consumer group acknowledged (and cut
  // at --redis-maxlen).
  engine::RedisTrimmer::Options to;
  to.url = *o_.redis;
  to.prefix = o_.redis_prefix;
  to.maxlen = static_cast<uint64_t>(o_.redis_maxlen);
  to.slice = [eng = eng_] { return SliceOf(*eng); };
  trimmer_ = std::make_unique<engine::RedisTrimmer>(std::move(to));
  trimmer_->start();
}

int RedisHandOff::finish(int rc, Stats* s) {
  if (trimmer_) trimmer_->stop();
  if (commands_) commands_->stop();
  if (!out_) return rc;
  writers_->for_each([](engine::RedisWriter& w) { w.flush(); });
  // Released once the sessions are saved and the events written: a standby
  // takes over from there.
  if (leases_) leases_->stop();
  // What Redis holds of this run's events.
  s->events = out_->held();
  return rc == 0 && out_->failed() ? 4 : rc;
}

absl::StatusOr<std::optional<std::pair<uint32_t, uint32_t>>> RedisHandOff::wait_for_orphans(
    const RunOptions& o) {
  const uint32_t first = o.shard_ids ? o.shard_ids->first : 0;
  const uint32_t last =
      o.shard_ids ? o.shard_ids->second : static_cast<uint32_t>(*o.total_shards - 1);
  engine::Log::write(engine::Level::kInfo, -1, "standby: watching the shard leases",
                     {{"shards", absl::StrCat(first, "-", last)}, {"lease_ms", o.lease_ms}});
  // SIGINT/SIGTERM end the wait (the engine takes them over later).
  sigset_t sigs, old;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, &old);
  struct Restore {
    sigset_t old;
    ~Restore() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
  } restore{old};
  engine::RedisLink link(*o.redis);
  const std::string owner = engine::lease_owner_id();
  const std::chrono::milliseconds poll = std::chrono::milliseconds(o.lease_ms) / 4;
  auto last_ok = std::chrono::steady_clock::now();
  for (;;) {
    const timespec wait{poll.count() / 1000, (poll.count() % 1000) * 1'000'000};
    if (sigtimedwait(&sigs, nullptr, &wait) > 0) return std::nullopt;
    auto found = engine::find_orphans(link, o.redis_prefix, first, last);
    if (!found.ok()) {
      if (std::chrono::steady_clock::now() - last_ok > kStandbyGiveUp) return found.status();
      continue;
    }
    last_ok = std::chrono::steady_clock::now();
    if (!*found) continue;
    // Two standbys may see the same orphans: the leases (SET NX) decide.
    const auto [a, b] = **found;
    std::string wire;
    redis::CommandWriter w(wire);
    for (uint32_t sh = a; sh <= b; ++sh) {
      w.command({"SET", redis::key(o.redis_prefix, "lease", sh), owner, "PX",
                 std::to_string(o.lease_ms), "NX"});
    }
    std::vector<redis::Reply> replies;
    std::string error;
    if (!link.exchange(wire, w.commands(), &replies, &error)) continue;
    bool all = true;
    for (const redis::Reply& r : replies) all &= r.type == redis::Reply::Type::kStatus;
    if (all) {
      engine::Log::write(engine::Level::kInfo, -1, "standby: taking shards over",
                         {{"shards", absl::StrCat(a, "-", b)}});
      return found;
    }
    // Another standby was first to some: give back what was taken.
    wire.clear();
    redis::CommandWriter back(wire);
    for (uint32_t sh = a; sh <= b; ++sh) {
      if (replies[sh - a].type == redis::Reply::Type::kStatus) {
        back.command({"DEL", redis::key(o.redis_prefix, "lease", sh)});
      }
    }
    link.exchange(wire, back.commands(), &replies, &error);
  }
}

std::optional<double> RedisHandOff::server_cpu_s(const engine::RedisUrl& url) {
  engine::RedisLink link(url);
  redis::Reply r;
  std::string error;
  if (!link.call({"INFO", "cpu"}, &r, &error) || r.type != redis::Reply::Type::kBulk) {
    return std::nullopt;
  }
  double total = 0;
  int found = 0;
  for (std::string_view key : {"used_cpu_sys:", "used_cpu_user:"}) {
    const size_t at = r.str.find(key);
    if (at == std::string::npos) continue;
    total += std::strtod(r.str.c_str() + at + key.size(), nullptr);
    ++found;
  }
  if (found != 2) return std::nullopt;
  return total;
}

void RedisHandOff::merge_lag(engine::Histogram& into) {
  if (writers_) writers_->for_each([&into](engine::RedisWriter& w) { into.merge_from(w.lag()); });
}

void RedisHandOff::metrics(std::string& m) {
  auto one = [&m](const char* name, const char* type, const char* help, uint64_t value) {
    absl::StrAppend(&m, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ",
                    value, "\n");
  };
  one("shardring_redis_appended_total", "counter", "Events appended to the Redis streams.",
      out_->lines());
  one("shardring_redis_skipped_total", "counter",
      "Events a stream already held (a resend, a replay), not appended again.", out_->skipped());
  one("shardring_redis_rewinds_total", "counter",
      "Shards resumed from what their stream held after Redis lost appended events.",
      out_->rewinds());
  one("shardring_redis_waiting", "gauge",
      "Sink writers in a Redis outage now (buffering up to --redis-buffer-mib, then shards "
      "stop reading).",
      static_cast<uint64_t>(out_->waiting()));
  one("shardring_redis_buffered_bytes", "gauge",
      "Bytes of events held through a Redis outage (--redis-buffer-mib).", out_->buffered());
  if (trimmer_) {
    one("shardring_redis_trimmed_total", "counter",
        "Stream entries trimmed (acknowledged by every group, or cut at --redis-maxlen).",
        trimmer_->trimmed());
    one("shardring_redis_cut_unread_total", "counter",
        "Entries --redis-maxlen cut before every consumer group acknowledged them.",
        trimmer_->cut_unread());
  }
  if (commands_) {
    absl::StrAppend(&m,
                    "# HELP shardring_redis_commands_total Commands read from P:commands, by "
                    "outcome.\n# TYPE shardring_redis_commands_total counter\n",
                    "shardring_redis_commands_total{status=\"sent\"} ", commands_->sent(), "\n",
                    "shardring_redis_commands_total{status=\"refused\"} ", commands_->refused(),
                    "\n");
  }
}

}  // namespace shardring::tools
