// engine/redis_store.h: `--state redis`: the shards' sessions in Redis, so
// a restart, a crash, another process or another machine (a standby
// taking over) resumes them (the SessionStore contract of
// engine/session_store.h).
//
// Keys (prefix P): `P:run` holds what every slice of one bot shares (the
// bot's user id, shard count, intents, compression); `P:session:N` holds
// shard N's session: session_id, resume_url, ckpt_seq (the engine's
// checkpoint), alive_ms, and the fields the Redis sink moves with each
// append (sink_session, epoch, seq) and the ownership fence. With the Redis
// sink, a shard resumes from the highest seq its stream holds of the saved
// session: Discord replays what follows, and the sink's script drops what
// the stream already has, so every event is in the stream exactly once.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/redis_link.h"
#include "engine/session_store.h"

namespace shardring::engine {

class RedisSessionStore final : public SessionStore {
 public:
  // `shards`: this process's slice (inclusive); unset: every shard of the
  // run (0 to total_shards - 1). Only those are read and written.
  RedisSessionStore(RedisUrl url, std::string prefix,
                    std::optional<std::pair<uint32_t, uint32_t>> shards);
  // The fence this process holds per shard (the Redis sink's claims): a
  // save skips the shards another process claimed since. Unset: no check.
  void set_fences(std::function<std::string(uint32_t)> fence_of) {
    fence_of_ = std::move(fence_of);
  }
  bool load(SavedRun* out, std::string* error) override;
  // One MULTI/EXEC: `P:run` and every session of the slice; a shard of the
  // slice without a session in `run` has its session fields removed. A
  // shard another process claimed since (set_fences) is left as it is.
  bool save(const SavedRun& run, std::string* error) override;
  std::string name() const override;

 private:
  std::pair<uint32_t, uint32_t> slice(uint32_t total) const;
  RedisLink link_;
  std::string prefix_;
  std::optional<std::pair<uint32_t, uint32_t>> shards_;
  std::function<std::string(uint32_t)> fence_of_;
  RedisScript save_script_;
};

// Takes ownership of shards [first, last] for this process: each shard's
// fence (`P:session:N` field `fence`) goes up by one, in one MULTI/EXEC.
// The Redis sink writes only with the fence it holds, so a process that
// owned these shards before can no longer write to their streams. Returns
// the fences by shard id (entries below `first` empty).
absl::StatusOr<std::vector<std::string>> claim_shards(RedisLink& link, std::string_view prefix,
                                                      uint32_t first, uint32_t last);

// The daily start budget several processes share (`P:budget`,
// redis/scripts.h kBudgetScript): reserves `to_identify` starts unless that
// would leave fewer than `reserve`. `remaining` and `reset_after_ms` are
// Discord's session_start_limit: they seed the budget when it is missing
// or past its reset, and cap it otherwise. `reserved`: whether the starts
// were reserved; `before`: the starts left before this reservation.
struct StartBudget {
  bool reserved = false;
  uint32_t before = 0;
};
absl::StatusOr<StartBudget> reserve_starts(RedisLink& link, std::string_view prefix,
                                           uint32_t remaining, int64_t reset_after_ms,
                                           uint32_t to_identify, uint32_t reserve);

}  // namespace shardring::engine
