// engine/session_store.h: where a process keeps its shards' Discord sessions
// between runs, so a restart or a crash RESUMEs them instead of spending
// IDENTIFYs (docs/interface.md "--state"). Part of the public API
// (engine/engine.h includes it): a bot may keep sessions where it likes by
// implementing SessionStore; FileSessionStore is `--state PATH`.
//
// What is saved, per shard: the session id, the checkpointed seq (every
// event up to it was handled by the sink, or dropped by the event filter),
// the resume URL; and for the run: the bot's user id (from READY, never the
// token), the shard count, intents and compression, which a later run must
// match to resume.
//
// Threads: the engine calls load() once in run() before any shard starts,
// and save() from run()'s own thread (never a core thread): every
// checkpoint interval, on a clean stop, and after a fatal close (with no
// shards: none can be resumed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parse/compression.h"

namespace shardring {

// The store's format version (FileSessionStore's "version"). A file of
// another version is refused with a clear error.
inline constexpr int kSessionStoreVersion = 1;

// What a sink has made durable of one shard: the last event written, by
// session (Event::session) and seq. {0, 0}: nothing yet.
struct Durable {
  uint64_t session = 0;
  uint64_t seq = 0;
  friend bool operator==(const Durable&, const Durable&) = default;
};

struct SavedShard {
  uint32_t shard = 0;
  std::string session_id;
  std::string resume_url;  // empty: the configured gateway
  // The checkpoint: the next run resumes from here, and Discord replays
  // what follows.
  uint64_t seq = 0;
  // Wall-clock ms (Unix epoch) when the session was last known connected:
  // a session older than the resume age identifies instead.
  int64_t alive_unix_ms = 0;
  // What the sink had written of this shard at the checkpoint (the sink's
  // own progress, which may lag the checkpoint's session after a new
  // READY): lets a sink that keeps its output drop replays it holds.
  Durable written;
};

struct SavedRun {
  uint64_t bot_user_id = 0;  // READY's d.user.id; 0: not known yet
  uint32_t total_shards = 0;
  uint64_t intents = 0;
  parse::Compression compress = parse::Compression::kNone;
  int64_t saved_unix_ms = 0;
  // The sink's own position (Config::sink_progress's text, e.g. a file
  // offset); kept as given.
  std::string sink;
  std::vector<SavedShard> shards;  // increasing shard id
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;
  // Reads what was saved. A store that was never written is not an error:
  // true with an empty run (no shards, bot_user_id 0). False with *error
  // (one line) when it cannot be read or is not a store of this version.
  virtual bool load(SavedRun* out, std::string* error) = 0;
  // Replaces what is saved with `run`, atomically: after a crash at any
  // point, load() returns either the old run or the new one.
  virtual bool save(const SavedRun& run, std::string* error) = 0;
  // For logs: "file:PATH".
  virtual std::string name() const = 0;
};

// `--state PATH`: one JSON file per process (processes do not share one),
// written as PATH.tmp, fsync, rename over PATH, fsync of the directory.
// A missing PATH is an empty store (its directory must exist).
class FileSessionStore final : public SessionStore {
 public:
  explicit FileSessionStore(std::string path) : path_(std::move(path)) {}
  bool load(SavedRun* out, std::string* error) override;
  bool save(const SavedRun& run, std::string* error) override;
  std::string name() const override { return "file:" + path_; }

  // The file's text for `run`, and back (exposed for tests).
  static std::string to_json(const SavedRun& run);
  static bool from_json(std::string_view text, SavedRun* out, std::string* error);

 private:
  std::string path_;
};

// The bot's user id as Discord encodes it in a token: the first
// dot-separated segment is the base64 (standard or URL alphabet, padding
// optional) of the decimal id. 0 when the token is not of that form (the
// id is then learned from READY).
uint64_t bot_user_id_from_token(std::string_view token) noexcept;

}  // namespace shardring
