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
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

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
  bool write(std::string_view bytes, uint64_t lines);
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

  std::mutex mu_;
  int fd_;
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

 private:
  std::shared_ptr<Output> out_;
  std::string buf_;
  uint64_t buffered_lines_ = 0;
};

}  // namespace shardring::engine
