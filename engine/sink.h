// engine/sink.h: where the CLI's consumer threads put dispatch events.
// `ndjson` writes docs/interface.md's line format, `d` byte for byte; `null` only
// counts. One NdjsonWriter per consumer thread, all sharing one Output (an fd
// and a mutex taken once per buffer flush, never per event), so lines from
// different consumers never interleave and each shard's lines stay in order.
//
// The Output loses nothing and fails loudly:
// - A file is appended to, never truncated. At open (and reopen) a trailing
//   partial line, left by a crash in the middle of a write, is cut off: the
//   only bytes ever removed (logged as a warning with the count).
// - A line is written whole or not at all: when a write fails (ENOSPC,
//   EFBIG, EIO, EPIPE) after part of a buffer went out, a regular file is
//   truncated back to the end of its last whole line. The failure is final:
//   later writes are refused, and `on_failure` is called once (the CLI stops
//   the engine there; `shardring run` then exits 4).
// - request_reopen() (SIGHUP, log rotation) makes the next write, or the
//   next flush, open the path anew; nothing buffered is lost or written twice.
// - Exactly once across restarts and crashes (with --state): each write
//   says which shard's events it carried up to which (session, seq); the
//   Output keeps that with its file offset under one lock, so a checkpoint
//   (progress()) knows that every line past the offset it saves came
//   later. At the next start, find_written_replays() reads the file from
//   there, and the events it already holds are not written again
//   (set_skip()).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/session_store.h"

namespace shardring::engine {

struct ChannelEvent;

class Output {
 public:
  // "-" is stdout. A file is created when missing, opened for appending,
  // and its trailing partial line (if any) is cut off.
  static absl::StatusOr<std::shared_ptr<Output>> open(const std::string& path);
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  // Called once, on the thread whose write failed, with a one-line reason
  // that names the sink and the error (`ndjson:PATH: write failed: No space
  // left on device (ENOSPC); ...`), with the Output's lock held (it must
  // not write here). Set before the first write.
  void on_failure(std::function<void(const std::string&)> f) { on_failure_ = std::move(f); }

  // Writes all of `bytes`, `lines` whole lines. False when the output has
  // failed (now or before): then nothing more is written, and of a failed
  // write only its whole lines remain.
  // `marks`: (shard, last event of the shard in `bytes`), recorded as
  // durable once all of `bytes` is written.
  using Mark = std::pair<uint32_t, Durable>;
  bool write(std::string_view bytes, uint64_t lines, std::span<const Mark> marks = {});
  // Any thread (a checkpoint): what is written, by shard id, and where the
  // file stands: "file DEV INO OFFSET" (empty for stdout). Every line past
  // OFFSET of that file was written after this call.
  std::string progress(std::vector<Durable>& by_shard);
  // Before the first write: events already in the file (by shard id: the
  // session and the last seq of it the file holds) are dropped, not
  // written again; they count as written.
  void set_skip(std::vector<Durable> skip) { skip_ = std::move(skip); }
  [[nodiscard]] bool holds(uint32_t shard, uint64_t session, uint64_t seq) const noexcept {
    return shard < skip_.size() && skip_[shard].session == session && seq <= skip_[shard].seq &&
           session != 0;
  }
  // Any thread, async-signal-safe: reopen the path before the next write
  // (log rotation). Nothing for stdout.
  void request_reopen() noexcept { reopen_.store(true, std::memory_order_relaxed); }
  // Carries out a pending reopen now (a flush with nothing to write).
  void reopen_if_asked();

  bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  // Lines written whole so far (for the summary).
  uint64_t lines() const noexcept { return lines_.load(std::memory_order_relaxed); }
  // "ndjson:PATH" or "ndjson (stdout)".
  const std::string& name() const { return name_; }

 private:
  Output(int fd, bool owned, std::string path) : fd_(fd), owned_(owned), path_(std::move(path)) {}
  void reopen_locked();
  void fail_locked(std::string_view written, int err);

  void locate_locked();  // offset_, dev_, ino_ of the open file

  std::mutex mu_;
  int fd_;
  uint64_t offset_ = 0;  // the file's end after the last whole write
  uint64_t dev_ = 0, ino_ = 0;
  std::vector<Durable> written_;  // by shard id, under mu_
  std::vector<Durable> skip_;     // by shard id; read-only once writing
  bool owned_;
  std::string path_;  // empty for stdout
  std::string name_;
  std::atomic<bool> reopen_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> lines_{0};
  std::function<void(const std::string&)> on_failure_;
};

class NdjsonWriter {
 public:
  static constexpr size_t kFlushBytes = 64 * 1024;
  explicit NdjsonWriter(std::shared_ptr<Output> out);
  ~NdjsonWriter();
  // Once the output has failed, events are dropped here (cheaply: the
  // engine is being stopped).
  void append(const ChannelEvent& e);
  // Writes buffered lines; called when the consumer runs dry and at exit.
  // Also carries out a pending reopen when nothing is buffered.
  void flush();
  bool failed() const { return out_->failed(); }
  // Replayed events dropped because the file held them (Output::set_skip).
  uint64_t skipped() const { return skipped_; }

 private:
  void mark(const ChannelEvent& e);

  std::shared_ptr<Output> out_;
  std::string buf_;
  uint64_t buffered_lines_ = 0;
  uint64_t skipped_ = 0;
  // The last event per shard id in buf_ (and since the last flush).
  std::vector<Durable> last_;
  std::vector<Output::Mark> marks_;  // scratch for flush()
  std::vector<uint32_t> touched_;
};

// For ndjson:PATH with a session store: by shard id, the (session, seq) of
// the last event of the saved session (`run`) that the file at `path`
// already holds past the saved checkpoint (nothing for other shards).
// Reads the file from the offset saved with the checkpoint (`run.sink`,
// from Output::progress); the whole file when it is another file now (a
// rotation) or shorter than that. A READY line starts a new session of its
// shard. Errors (an unreadable file) name the path.
absl::StatusOr<std::vector<Durable>> find_written_replays(const std::string& path,
                                                          const SavedRun& run);

}  // namespace shardring::engine
