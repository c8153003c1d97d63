#include "engine/identify_gate_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace shardring::engine {
namespace {

// A stored time: 19 digits (every nonnegative int64) and '\n'. One length
// for every time, so a rewrite never leaves the tail of a longer one.
constexpr size_t kTimeBytes = 20;
// Reads a little more than a time, so a longer file reads as no time.
constexpr size_t kReadBytes = 32;

int64_t to_ns(IdentifyGate::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

IdentifyGate::Clock::time_point from_ns(int64_t ns) {
  return IdentifyGate::Clock::time_point(
      std::chrono::duration_cast<IdentifyGate::Clock::duration>(std::chrono::nanoseconds(ns)));
}

// The time in `text`: digits then '\n', nothing else. nullopt when it
// holds none.
std::optional<int64_t> parse_time(std::string_view text) {
  if (text.size() < 2 || text.back() != '\n') return std::nullopt;
  text.remove_suffix(1);
  int64_t ns = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ns);
  if (ec != std::errc() || end != text.data() + text.size() || ns < 0) return std::nullopt;
  return ns;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileIdentifyGate>> FileIdentifyGate::open(
    std::string dir, uint32_t max_concurrency, std::chrono::milliseconds window) {
  if (dir.empty()) return absl::InvalidArgumentError("--identify-gate: file:DIR needs a DIR");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("--identify-gate: cannot create '", dir, "'"));
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("--identify-gate: cannot stat '", dir, "'"));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--identify-gate: '", dir, "' is not a directory"));
  }
  // Bucket files are created on first use; a directory that cannot take
  // them is better refused now than found out by the first identify.
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("--identify-gate: '", dir, "' is not writable"));
  }
  return std::unique_ptr<FileIdentifyGate>(
      new FileIdentifyGate(std::move(dir), max_concurrency, window));
}

FileIdentifyGate::FileIdentifyGate(std::string dir, uint32_t max_concurrency,
                                   std::chrono::milliseconds window)
    : dir_(std::move(dir)),
      max_concurrency_(std::max<uint32_t>(1, max_concurrency)),
      window_(window),
      waiting_(max_concurrency_),
      fds_(max_concurrency_, -1),
      closed_until_(max_concurrency_) {}

FileIdentifyGate::~FileIdentifyGate() {
  for (const int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

std::string FileIdentifyGate::bucket_path(std::string_view dir, uint32_t max_concurrency,
                                          uint32_t bucket) {
  return absl::StrCat(std::string(dir), "/identify-", std::max<uint32_t>(1, max_concurrency), "-",
                      bucket);
}

bool FileIdentifyGate::try_acquire(uint32_t shard, Clock::time_point now,
                                   Clock::time_point* retry_at) {
  std::lock_guard lock(mu_);
  const uint32_t b = shard % max_concurrency_;
  std::set<uint32_t>& waiting = waiting_[b];
  waiting.insert(shard);
  if (*waiting.begin() != shard) {
    // A lower shard of this process is first in line; its owner asks when
    // the bucket may open, and this one asks no earlier.
    *retry_at = std::max(closed_until_[b], now + std::chrono::milliseconds(1));
    return false;
  }
  if (now < closed_until_[b]) {
    *retry_at = closed_until_[b];
    return false;
  }
  Clock::time_point next;
  switch (try_take(b, now, &next)) {
    case Outcome::kGranted:
      waiting.erase(waiting.begin());
      closed_until_[b] = now + spacing();
      ++granted_;
      return true;
    case Outcome::kClosed:
      closed_until_[b] = next;
      *retry_at = next;
      return false;
    case Outcome::kRepaired:
      ++io_errors_;
      closed_until_[b] = next;
      *retry_at = next;
      return false;
    case Outcome::kBusy:
      ++lock_busy_;
      *retry_at = now + kFileGateBusyRetry;
      return false;
    case Outcome::kError:
      break;
  }
  ++io_errors_;
  *retry_at = now + kFileGateErrorRetry;
  return false;
}

int FileIdentifyGate::lock_bucket(uint32_t b, Outcome* why) {
  // Twice at most: a file unlinked under an open fd (DIR emptied while we
  // ran) is reopened once, since a lock on it no longer excludes anyone.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fds_[b] < 0) {
      const std::string path = bucket_path(dir_, max_concurrency_, b);
      fds_[b] = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fds_[b] < 0) break;
    }
    const int fd = fds_[b];
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK || errno == EINTR) {
        *why = Outcome::kBusy;
        return -1;
      }
      drop_fd(b);
      break;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      drop_fd(b);
      break;
    }
    if (st.st_nlink > 0) return fd;
    drop_fd(b);
  }
  *why = Outcome::kError;
  return -1;
}

FileIdentifyGate::Outcome FileIdentifyGate::try_take(uint32_t b, Clock::time_point now,
                                                     Clock::time_point* next) {
  Outcome why = Outcome::kError;
  const int fd = lock_bucket(b, &why);
  if (fd < 0) return why;

  char buf[kReadBytes];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n < 0) {
    drop_fd(b);
    return Outcome::kError;
  }
  std::optional<int64_t> stored;
  bool repair = false;
  if (n > 0) {
    stored = parse_time(std::string_view(buf, static_cast<size_t>(n)));
    repair = !stored.has_value();
  }
  // A time past the machine's clock is from before a reboot. `now` may be a
  // moment old (the caller was preempted), so the clock is read again: a
  // time another process stored since is not mistaken for one.
  const Clock::time_point clock = std::max(now, Clock::now());
  if (stored && *stored > to_ns(clock + spacing())) stored.reset();

  Outcome out = Outcome::kGranted;
  if (repair) {
    out = Outcome::kRepaired;
  } else if (stored && now < from_ns(*stored) + spacing()) {
    *next = from_ns(*stored) + spacing();
    out = Outcome::kClosed;
  }
  if (out != Outcome::kClosed) {
    // Granted, or repaired: either way `now` becomes the bucket's last grant.
    char text[kTimeBytes + 1];
    // CLOCK_MONOTONIC is never negative; the clamp keeps the file parseable
    // for any time_point.
    std::snprintf(text, sizeof text, "%019" PRId64 "\n", std::max<int64_t>(0, to_ns(now)));
    const bool written = ::pwrite(fd, text, kTimeBytes, 0) == static_cast<ssize_t>(kTimeBytes) &&
                         (static_cast<size_t>(n) <= kTimeBytes || ::ftruncate(fd, kTimeBytes) == 0);
    if (!written) {
      drop_fd(b);
      return Outcome::kError;
    }
    if (out == Outcome::kRepaired) *next = now + spacing();
  }
  // Unlocking fails only on a bad fd; closing it unlocks all the same.
  if (::flock(fd, LOCK_UN) != 0) drop_fd(b);
  return out;
}

void FileIdentifyGate::drop_fd(uint32_t b) {
  ::close(fds_[b]);
  fds_[b] = -1;
}

void FileIdentifyGate::withdraw(uint32_t shard) {
  std::lock_guard lock(mu_);
  waiting_[shard % max_concurrency_].erase(shard);
}

uint64_t FileIdentifyGate::granted() const {
  std::lock_guard lock(mu_);
  return granted_;
}

uint64_t FileIdentifyGate::io_errors() const {
  std::lock_guard lock(mu_);
  return io_errors_;
}

uint64_t FileIdentifyGate::lock_busy() const {
  std::lock_guard lock(mu_);
  return lock_busy_;
}

}  // namespace shardring::engine
