// engine/identify_gate_file.h: the identify gate of processes on one machine
// (`--identify-gate file:DIR`). Every process of the machine that shares the
// bot's buckets points at the same DIR.
//
// DIR holds one file per bucket, `identify-<max_concurrency>-<bucket>`,
// holding the bucket's last granted identify as CLOCK_MONOTONIC nanoseconds
// (steady_clock, the one clock every process of the machine shares): 19
// decimal digits, zero-padded, then '\n' (20 bytes). An empty file means no
// grant yet. A process takes flock(LOCK_EX | LOCK_NB) on the file, reads the
// time, writes its own when window + margin have passed, and unlocks: the
// lock is held for one read and one write, and never waited for.
//
// Within a process the lowest waiting shard of a bucket goes first, as in
// LocalIdentifyGate; across processes the first to take the lock when the
// window opens wins. A process keeps one descriptor per bucket it asked
// for. flock() locks belong to the open file, so a forked child opens its
// own gate rather than use its parent's.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/identify_gate.h"

namespace shardring::engine {

// Another process holds the bucket's lock (for one read and one write):
// ask again this soon.
inline constexpr std::chrono::milliseconds kFileGateBusyRetry{1};
// A bucket file could not be opened, locked, read or written: ask again
// this much later (the error may pass: a full disk, a lost lock table
// entry) rather than spin on it.
inline constexpr std::chrono::milliseconds kFileGateErrorRetry{100};

class FileIdentifyGate final : public IdentifyGate {
 public:
  // Creates `dir` (mode 0700) when missing; an existing directory is kept
  // as it is. Errors (no such parent, a file in the way, not writable) start
  // with "--identify-gate: ". Bucket files are opened on first use.
  static absl::StatusOr<std::unique_ptr<FileIdentifyGate>> open(std::string dir,
                                                                uint32_t max_concurrency,
                                                                std::chrono::milliseconds window);
  ~FileIdentifyGate() override;
  FileIdentifyGate(const FileIdentifyGate&) = delete;
  FileIdentifyGate& operator=(const FileIdentifyGate&) = delete;

  // As IdentifyGate. When another process holds the bucket's lock:
  // false, *retry_at = now + kFileGateBusyRetry. On an I/O error: false,
  // *retry_at = now + kFileGateErrorRetry, io_errors() counts it. A stored
  // time later than the clock + spacing() (the clock: the later of `now` and
  // steady_clock::now()) is from before a reboot, when the monotonic clock
  // restarted, and is ignored. A file that holds no time (a write cut short)
  // gets `now` without a grant: the bucket waits one spacing() rather than
  // risk two identifies in one window; io_errors() counts it too.
  [[nodiscard]] bool try_acquire(uint32_t shard, Clock::time_point now,
                                 Clock::time_point* retry_at) override;
  void withdraw(uint32_t shard) override;

  // The file of bucket `bucket` of a bot with `max_concurrency` buckets.
  static std::string bucket_path(std::string_view dir, uint32_t max_concurrency, uint32_t bucket);

  const std::string& dir() const { return dir_; }
  uint32_t buckets() const { return static_cast<uint32_t>(waiting_.size()); }
  std::chrono::milliseconds window() const { return window_; }
  std::chrono::milliseconds spacing() const { return window_ + identify_margin(window_); }
  uint64_t granted() const;
  uint64_t io_errors() const;
  uint64_t lock_busy() const;  // refusals because another process held the lock

 private:
  FileIdentifyGate(std::string dir, uint32_t max_concurrency, std::chrono::milliseconds window);
  // Opens, locks, reads and (when the window is open) writes bucket `b`'s
  // file; *next: when it opens, for kClosed and kRepaired. mu_ held.
  enum class Outcome { kGranted, kClosed, kBusy, kError, kRepaired };
  Outcome try_take(uint32_t b, Clock::time_point now, Clock::time_point* next);
  // Bucket `b`'s file, open and locked by us; -1 and *why (kBusy or
  // kError) when it cannot be.
  int lock_bucket(uint32_t b, Outcome* why);
  void drop_fd(uint32_t b);  // closing also unlocks; the next try reopens

  const std::string dir_;
  const uint32_t max_concurrency_;
  const std::chrono::milliseconds window_;
  mutable std::mutex mu_;
  std::vector<std::set<uint32_t>> waiting_;  // per bucket, lowest shard first
  std::vector<int> fds_;                     // per bucket, -1 until first use
  // Per bucket: the bucket is known to stay closed before this (the last
  // time read + spacing). Stored times only grow while the machine is up, so
  // a try before it needs no file I/O.
  std::vector<Clock::time_point> closed_until_;
  uint64_t granted_ = 0;
  uint64_t io_errors_ = 0;
  uint64_t lock_busy_ = 0;
};

}  // namespace shardring::engine
