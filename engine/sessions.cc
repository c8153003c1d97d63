#include "engine/sessions.h"

#include <algorithm>

#include "engine/log.h"
#include "engine/text.h"

namespace shardring::engine {

absl::Status SessionKeeper::load(uint64_t token_bot_id) {
  name_ = store_->name();
  std::string error;
  if (!store_->load(&loaded_, &error)) {
    return absl::InvalidArgumentError(cat("--state: ", error));
  }
  if (token_bot_id != 0 && loaded_.bot_user_id != 0 && loaded_.bot_user_id != token_bot_id) {
    return absl::InvalidArgumentError(
        cat("--state: ", name_, " holds the sessions of another bot (user id ", loaded_.bot_user_id,
            "; this token is bot ", token_bot_id, "): give each bot its own state file"));
  }
  return absl::OkStatus();
}

uint32_t SessionKeeper::saved_in(uint32_t first, uint32_t last) const {
  uint32_t n = 0;
  for (const SavedShard& s : loaded_.shards) n += s.shard >= first && s.shard <= last;
  return n;
}

std::vector<Restore> SessionKeeper::plan(const Run& run, std::chrono::seconds max_age,
                                         int64_t now_unix_ms, uint32_t* restored) {
  run_ = run;
  const uint32_t n = run.last - run.first + 1;
  std::vector<Restore> out(n);
  alive_.assign(n, 0);
  *restored = 0;
  const uint32_t saved = saved_in(run.first, run.last);
  std::string mismatch;
  if (saved > 0) {
    if (loaded_.total_shards != run.total) {
      mismatch = cat("shard count ", loaded_.total_shards, " -> ", run.total);
    } else if (loaded_.intents != run.intents) {
      mismatch = cat("intents ", loaded_.intents, " -> ", run.intents);
    } else if (loaded_.compress != run.compress) {
      mismatch = cat("compression ", parse::to_string(loaded_.compress), " -> ",
                     parse::to_string(run.compress));
    }
  }
  if (!mismatch.empty()) {
    Log::write(Level::kWarn, -1, "saved sessions are of another run configuration; identifying",
               {{"store", name_}, {"change", mismatch}, {"sessions", saved}});
  }
  uint32_t too_old = 0;
  const int64_t max_age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(max_age).count();
  for (const SavedShard& s : loaded_.shards) {
    if (!mismatch.empty() || s.shard < run.first || s.shard > run.last) continue;
    if (now_unix_ms - s.alive_unix_ms > max_age_ms) {
      ++too_old;
      continue;
    }
    Restore& r = out[s.shard - run.first];
    r.session_id = s.session_id;
    r.resume_url = s.resume_url;
    r.seq = s.seq;
    alive_[s.shard - run.first] = s.alive_unix_ms;
    ++*restored;
  }
  Log::write(
      Level::kInfo, -1, "sessions",
      {{"store", name_}, {"resume", *restored}, {"identify", n - *restored}, {"too_old", too_old}});
  return out;
}

void SessionKeeper::checkpoint(const std::vector<ShardSnapshot>& snaps,
                               const std::vector<Durable>& done,
                               const std::vector<Durable>& written, std::string sink,
                               uint64_t bot_user_id, int64_t now_unix_ms) {
  SavedRun run = header(bot_user_id, now_unix_ms);
  run.sink = std::move(sink);
  for (const ShardSnapshot& s : snaps) {
    if (s.shard < run_.first || s.shard > run_.last) continue;
    const uint32_t i = s.shard - run_.first;
    if (s.connected) alive_[i] = now_unix_ms;
    if (s.session_id.empty()) continue;
    SavedShard saved;
    saved.shard = s.shard;
    saved.session_id = s.session_id;
    saved.resume_url = s.resume_url;
    saved.seq = checkpoint_seq(s, i < done.size() ? done[i] : Durable{});
    saved.alive_unix_ms = alive_[i];
    if (s.shard < written.size()) saved.written = written[s.shard];
    run.shards.push_back(std::move(saved));
  }
  std::sort(run.shards.begin(), run.shards.end(),
            [](const SavedShard& a, const SavedShard& b) { return a.shard < b.shard; });
  (void)save(run);
}

void SessionKeeper::clear(uint64_t bot_user_id, int64_t now_unix_ms) {
  if (save(header(bot_user_id, now_unix_ms))) {
    Log::write(Level::kInfo, -1, "saved sessions cleared (a fatal close ends them all)",
               {{"store", name_}});
  }
}

SavedRun SessionKeeper::header(uint64_t bot_user_id, int64_t now_unix_ms) const {
  SavedRun run;
  run.bot_user_id = bot_user_id != 0 ? bot_user_id : loaded_.bot_user_id;
  run.total_shards = run_.total;
  run.intents = run_.intents;
  run.compress = run_.compress;
  run.saved_unix_ms = now_unix_ms;
  return run;
}

bool SessionKeeper::save(const SavedRun& run) {
  std::string error;
  if (store_->save(run, &error)) return true;
  // Once, then every 60th: a full disk must not flood the log.
  if (failures_++ % 60 == 0) {
    Log::write(Level::kError, -1, "cannot save sessions; retrying at the next checkpoint",
               {{"store", name_}, {"error", error}, {"failures", failures_}});
  }
  return false;
}

}  // namespace shardring::engine
