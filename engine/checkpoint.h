// engine/checkpoint.h: what a checkpoint is made of (internal to engine/).
// A core thread copies its shards' session state into ShardSnapshots when
// asked (and when it exits); run()'s thread combines them with what the
// sink made durable into a SavedRun and hands it to the SessionStore.
#pragma once

#include <cstdint>
#include <string>

#include "engine/session_store.h"

namespace shardring::engine {

// One shard's session as its core thread saw it.
struct ShardSnapshot {
  uint32_t shard = 0;
  std::string session_id;  // empty: no session (identifies next time)
  std::string resume_url;
  uint64_t session_key = 0;  // gateway::session_key_of(session_id)
  uint64_t last_seq = 0;     // the last seq the session read (delivered, filtered or replayed)
  Durable delivered;         // the last event handed towards the sink
  bool connected = false;    // the WebSocket was open
};

// The seq a checkpoint may claim for `s`, given what the sink made durable
// (`done`): every event of the session up to it was handled by the sink or
// dropped by the event filter. When every event handed on is done, that is
// the session's last seq (the events after the last delivered one were
// filtered); otherwise the last done one of this session (0: none yet).
// `done` may be newer than the snapshot (it is read later): a done seq of
// the session past the snapshot's last seq counts too, as a shard's events
// are handled in order.
constexpr uint64_t checkpoint_seq(const ShardSnapshot& s, const Durable& done) noexcept {
  const uint64_t done_here = done.session == s.session_key ? done.seq : 0;
  const bool outstanding = s.delivered.session == s.session_key && done_here < s.delivered.seq;
  if (!outstanding) return s.last_seq > done_here ? s.last_seq : done_here;
  return done_here;
}

// A saved session a shard takes up at start (empty session_id: none).
struct Restore {
  std::string session_id;
  std::string resume_url;
  uint64_t seq = 0;
};

}  // namespace shardring::engine
