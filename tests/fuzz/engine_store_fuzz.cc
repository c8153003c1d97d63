// tests/fuzz/engine_store_fuzz.cc: what `--state` reads at start, from
// files a crash, a full disk or a person may have damaged: the session
// store's JSON (FileSessionStore::from_json) and the NDJSON sink file read
// back for lines written after the checkpoint (find_written_replays).
// Invariants: no crash; a store that parses writes back to the same store;
// what the sink file is said to hold belongs to the saved shards, their
// sessions, and lies past their checkpoints.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/session_store.h"
#include "engine/sink.h"
#include "gateway/session_key.h"

using namespace shardring;

namespace {

bool Same(const SavedRun& a, const SavedRun& b) {
  if (a.bot_user_id != b.bot_user_id || a.total_shards != b.total_shards ||
      a.intents != b.intents || a.compress != b.compress || a.saved_unix_ms != b.saved_unix_ms ||
      a.sink != b.sink || a.shards.size() != b.shards.size()) {
    return false;
  }
  for (size_t i = 0; i < a.shards.size(); ++i) {
    const SavedShard &x = a.shards[i], &y = b.shards[i];
    if (x.shard != y.shard || x.session_id != y.session_id || x.resume_url != y.resume_url ||
        x.seq != y.seq || x.alive_unix_ms != y.alive_unix_ms || !(x.written == y.written)) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.empty()) return 0;
  if (in[0] & 1) {  // the store file
    SavedRun run;
    std::string error;
    if (FileSessionStore::from_json(in.substr(1), &run, &error)) {
      SavedRun again;
      if (!FileSessionStore::from_json(FileSessionStore::to_json(run), &again, &error) ||
          !Same(run, again)) {
        std::abort();
      }
    } else if (error.empty()) {
      std::abort();
    }
    return 0;
  }
  // The sink file, for a saved run of shards 0 and 3 (sessions "S" and
  // "T", checkpoints 2 and 0), read from its start.
  static const std::string path = [] {
    char tmpl[] = "/tmp/shardring-store-fuzz-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd >= 0) ::close(fd);
    return std::string(tmpl);
  }();
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return 0;
  const std::string_view file = in.substr(1);
  if (::write(fd, file.data(), file.size()) != static_cast<ssize_t>(file.size())) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  SavedRun run;
  SavedShard a;
  a.shard = 0;
  a.session_id = "S";
  a.seq = 2;
  a.written = Durable{gateway::session_key_of("S"), 1};
  SavedShard b;
  b.shard = 3;
  b.session_id = "T";
  run.shards = {a, b};
  auto held = engine::find_written_replays(path, run);
  if (!held.ok()) return 0;
  for (size_t shard = 0; shard < held->size(); ++shard) {
    const Durable& d = (*held)[shard];
    if (d == Durable{}) continue;
    if (shard == 0 && d.session == gateway::session_key_of("S") && d.seq > 2) continue;
    if (shard == 3 && d.session == gateway::session_key_of("T") && d.seq > 0) continue;
    std::abort();
  }
  return 0;
}
