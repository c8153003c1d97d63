// engine/redis_store.cc: see redis_store.h.
#include "engine/redis_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gateway/session_key.h"
#include "redis/resp.h"
#include "redis/scripts.h"

namespace shardring::engine {

namespace {

using redis::Reply;

bool ToU64(const Reply& r, uint64_t* out) {
  int64_t v = 0;
  if (r.type != Reply::Type::kBulk || !redis::parse_int(r.str, &v) || v < 0) return false;
  *out = static_cast<uint64_t>(v);
  return true;
}

// EXEC's reply: an array of the queued commands' replies, none an error.
bool ExecOk(const std::vector<Reply>& replies, std::string* error) {
  for (const Reply& r : replies) {
    if (r.is_error()) {
      *error = absl::StrCat("redis refused: ", r.str);
      return false;
    }
  }
  const Reply& exec = replies.back();
  if (exec.type != Reply::Type::kArray) {
    *error = absl::StrCat("redis: transaction not run: ", exec.debug_string());
    return false;
  }
  for (const Reply& r : exec.elements) {
    if (r.is_error()) {
      *error = absl::StrCat("redis refused: ", r.str);
      return false;
    }
  }
  return true;
}

}  // namespace

RedisSessionStore::RedisSessionStore(RedisUrl url, std::string prefix,
                                     std::optional<std::pair<uint32_t, uint32_t>> shards)
    : link_(std::move(url)),
      prefix_(std::move(prefix)),
      shards_(shards),
      save_script_(redis::kSaveSessionScript) {}

std::string RedisSessionStore::name() const {
  return absl::StrCat("redis:", link_.url().to_string(), " prefix ", prefix_);
}

std::pair<uint32_t, uint32_t> RedisSessionStore::slice(uint32_t total) const {
  if (shards_) return *shards_;
  return {0, total == 0 ? 0 : total - 1};
}

bool RedisSessionStore::load(SavedRun* out, std::string* error) {
  *out = SavedRun{};
  Reply meta;
  if (!link_.call({"HGETALL", redis::key(prefix_, "run")}, &meta, error)) return false;
  if (meta.is_error()) {
    *error = absl::StrCat("redis refused: ", meta.str);
    return false;
  }
  if (meta.elements.empty()) return true;  // never written
  for (size_t i = 0; i + 1 < meta.elements.size(); i += 2) {
    const std::string& k = meta.elements[i].str;
    const Reply& v = meta.elements[i + 1];
    uint64_t n = 0;
    if (k == "version") {
      if (!ToU64(v, &n) || n != static_cast<uint64_t>(kSessionStoreVersion)) {
        *error = absl::StrCat(redis::key(prefix_, "run"), ": version ", v.str, ", this is ",
                              kSessionStoreVersion);
        return false;
      }
    } else if (k == "bot_user_id" && ToU64(v, &n)) {
      out->bot_user_id = n;
    } else if (k == "total_shards" && ToU64(v, &n)) {
      out->total_shards = static_cast<uint32_t>(n);
    } else if (k == "intents" && ToU64(v, &n)) {
      out->intents = n;
    } else if (k == "compress") {
      auto c = parse::compression_from_name(v.str);
      if (!c) {
        *error = absl::StrCat(redis::key(prefix_, "run"), ": unknown compress '", v.str, "'");
        return false;
      }
      out->compress = *c;
    } else if (k == "saved_ms" && ToU64(v, &n)) {
      out->saved_unix_ms = static_cast<int64_t>(n);
    }
  }
  out->sink = "redis";
  const auto [first, last] = slice(out->total_shards);
  if (out->total_shards == 0 || first > last) return true;
  std::string wire;
  redis::CommandWriter w(wire);
  for (uint32_t s = first; s <= last; ++s) {
    w.command({"HMGET", redis::key(prefix_, "session", s), "session_id", "resume_url", "ckpt_seq",
               "alive_ms", "sink_session", "seq"});
  }
  std::vector<Reply> replies;
  if (!link_.exchange(wire, w.commands(), &replies, error)) return false;
  for (uint32_t s = first; s <= last; ++s) {
    const Reply& r = replies[s - first];
    if (r.is_error() || r.elements.size() != 6) {
      *error = absl::StrCat(redis::key(prefix_, "session", s), ": ", r.debug_string());
      return false;
    }
    const auto& f = r.elements;
    if (f[0].type != Reply::Type::kBulk || f[0].str.empty()) continue;  // no session
    SavedShard sh;
    sh.shard = s;
    sh.session_id = f[0].str;
    sh.resume_url = f[1].is_nil() ? "" : f[1].str;
    uint64_t ckpt = 0, alive = 0, sink_session = 0, sink_seq = 0;
    ToU64(f[2], &ckpt);
    ToU64(f[3], &alive);
    ToU64(f[4], &sink_session);
    ToU64(f[5], &sink_seq);
    sh.alive_unix_ms = static_cast<int64_t>(alive);
    sh.seq = ckpt;
    // What the stream holds of this session (the Redis sink): resume from
    // there, and Discord replays only what is missing.
    if (sink_session != 0 && sink_session == gateway::session_key_of(sh.session_id)) {
      sh.written = Durable{sink_session, sink_seq};
      sh.seq = std::max(sh.seq, sink_seq);
    }
    out->shards.push_back(std::move(sh));
  }
  return true;
}

bool RedisSessionStore::save(const SavedRun& run, std::string* error) {
  std::string wire;
  redis::CommandWriter w(wire);
  w.command({"MULTI"});
  w.command({"HSET", redis::key(prefix_, "run"), "version", std::to_string(kSessionStoreVersion),
             "bot_user_id", std::to_string(run.bot_user_id), "total_shards",
             std::to_string(run.total_shards), "intents", std::to_string(run.intents), "compress",
             parse::to_string(run.compress), "saved_ms", std::to_string(run.saved_unix_ms)});
  const auto [first, last] = slice(run.total_shards);
  size_t next = 0;
  for (uint32_t s = first; run.total_shards > 0 && s <= last; ++s) {
    while (next < run.shards.size() && run.shards[next].shard < s) ++next;
    const std::string k = redis::key(prefix_, "session", s);
    const std::string fence = fence_of_ ? fence_of_(s) : std::string();
    if (next < run.shards.size() && run.shards[next].shard == s) {
      const SavedShard& sh = run.shards[next];
      w.command({"EVALSHA", save_script_.sha1, "1", k, fence, "session_id", sh.session_id,
                 "resume_url", sh.resume_url, "ckpt_seq", std::to_string(sh.seq), "alive_ms",
                 std::to_string(sh.alive_unix_ms)});
    } else {
      w.command({"EVALSHA", save_script_.sha1, "1", k, fence, "session_id", "", "resume_url", "",
                 "ckpt_seq", "", "alive_ms", ""});
    }
  }
  w.command({"EXEC"});
  std::vector<Reply> replies;
  if (!link_.exchange(wire, w.commands(), &replies, error, {&save_script_})) return false;
  return ExecOk(replies, error);
}

absl::StatusOr<StartBudget> reserve_starts(RedisLink& link, std::string_view prefix,
                                           uint32_t remaining, int64_t reset_after_ms,
                                           uint32_t to_identify, uint32_t reserve) {
  static const RedisScript script(redis::kBudgetScript);
  std::string wire;
  redis::CommandWriter(wire).command({"EVALSHA", script.sha1, "1", redis::key(prefix, "budget"),
                                      std::to_string(remaining), std::to_string(reset_after_ms),
                                      std::to_string(to_identify), std::to_string(reserve)});
  std::vector<Reply> replies;
  std::string error;
  if (!link.exchange(wire, 1, &replies, &error, {&script})) {
    return absl::UnavailableError(error);
  }
  const Reply& r = replies[0];
  if (r.type != Reply::Type::kArray || r.elements.size() != 2) {
    return absl::UnavailableError(absl::StrCat("redis: ", r.debug_string()));
  }
  return StartBudget{r.elements[0].integer == 1, static_cast<uint32_t>(r.elements[1].integer)};
}

absl::StatusOr<std::vector<std::string>> claim_shards(RedisLink& link, std::string_view prefix,
                                                      uint32_t first, uint32_t last) {
  std::string wire;
  redis::CommandWriter w(wire);
  w.command({"MULTI"});
  for (uint32_t s = first; s <= last; ++s) {
    w.command({"HINCRBY", redis::key(prefix, "session", s), "fence", "1"});
  }
  w.command({"EXEC"});
  std::vector<Reply> replies;
  std::string error;
  if (!link.exchange(wire, w.commands(), &replies, &error) || !ExecOk(replies, &error)) {
    return absl::UnavailableError(absl::StrCat("claiming shards ", first, "-", last, ": ", error));
  }
  std::vector<std::string> fences(last + 1);
  const auto& got = replies.back().elements;
  for (uint32_t s = first; s <= last; ++s) fences[s] = std::to_string(got[s - first].integer);
  return fences;
}

}  // namespace shardring::engine
