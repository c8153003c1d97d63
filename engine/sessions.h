// engine/sessions.h: the engine's side of the session store (internal to
// engine/; run()'s thread only). At start it reads the store, checks that it
// belongs to this bot and run, and picks the shards that RESUME; while
// running and at a clean stop it turns the core threads' snapshots and what
// the sink made durable into checkpoints; after a fatal close it clears the
// store (no session can be resumed after 4004 or 4010-4014).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/checkpoint.h"
#include "engine/session_store.h"

namespace shardring::engine {

class SessionKeeper {
 public:
  explicit SessionKeeper(std::shared_ptr<SessionStore> store) : store_(std::move(store)) {}

  // Reads the store. InvalidArgument (exit 2) when it cannot be read or
  // holds the sessions of another bot than `token_bot_id` (when known).
  absl::Status load(uint64_t token_bot_id);
  // Shards in the store for `first`..`last` (before plan() drops any).
  [[nodiscard]] uint32_t saved_in(uint32_t first, uint32_t last) const;

  struct Run {
    uint32_t first = 0, last = 0, total = 0;
    uint64_t intents = 0;
    parse::Compression compress = parse::Compression::kNone;
  };
  // The sessions shards first..last take up at start ([shard - first]):
  // none when the store was made for another shard count, intents or
  // compression (a warning says which), and none older than `max_age`.
  // Logs how many resume and how many identify.
  std::vector<Restore> plan(const Run& run, std::chrono::seconds max_age, int64_t now_unix_ms,
                            uint32_t* restored);

  // Saves a checkpoint: each snapshot's session with checkpoint_seq() of
  // what is done (`done[shard - first]`; empty vector: nothing done) and
  // what the sink wrote (`written[shard]`, may be shorter). A failure is
  // logged (rate-limited) and the next checkpoint tries again.
  void checkpoint(const std::vector<ShardSnapshot>& snaps, const std::vector<Durable>& done,
                  const std::vector<Durable>& written, std::string sink, uint64_t bot_user_id,
                  int64_t now_unix_ms);
  // After a fatal close: saves a run with no sessions.
  void clear(uint64_t bot_user_id, int64_t now_unix_ms);

  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  // A run with this run's fields and no shards.
  SavedRun header(uint64_t bot_user_id, int64_t now_unix_ms) const;
  bool save(const SavedRun& run);

  std::shared_ptr<SessionStore> store_;
  std::string name_;
  SavedRun loaded_;
  Run run_;
  std::vector<int64_t> alive_;  // [shard - first]: last known alive, unix ms
  uint64_t failures_ = 0;
};

}  // namespace shardring::engine
