#include "engine/sink.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "engine/event_channel.h"
#include "engine/log.h"
#include "engine/text.h"

namespace shardring::engine {
namespace {

// "No space left on device (ENOSPC)".
std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return cat(std::strerror(err), " (", name != nullptr ? name : "?", ")");
}

// Cuts a trailing partial line off the regular file `fd`: everything after
// its last '\n' (all of it when it has none). Returns the bytes cut, or -1
// with errno set.
int64_t CutPartialTail(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return -1;
  if (!S_ISREG(st.st_mode) || st.st_size == 0) return 0;
  const off_t end = st.st_size;
  off_t pos = end;
  off_t keep = 0;  // no '\n' at all: the whole file is one partial line
  char buf[64 * 1024];
  while (pos > 0) {
    const size_t n = static_cast<size_t>(std::min<off_t>(pos, sizeof buf));
    pos -= static_cast<off_t>(n);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd, buf + got, n - got, pos + static_cast<off_t>(got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return -1;
      if (r == 0) {  // shrank under us: read what is there now
        errno = EAGAIN;
        return -1;
      }
      got += static_cast<size_t>(r);
    }
    if (const void* nl = memrchr(buf, '\n', n)) {
      keep = pos + static_cast<const char*>(nl) - buf + 1;
      break;
    }
  }
  if (keep == end) return 0;
  if (ftruncate(fd, keep) != 0) return -1;
  return end - keep;
}

// Opens `path` for appending (created when missing) and cuts its partial
// last line. An error names the path.
absl::StatusOr<int> OpenForAppend(const std::string& path) {
  constexpr int kFlags = O_APPEND | O_CREAT | O_CLOEXEC;
  // Read-write, to read the tail; a file we may only write is appended to
  // unchecked.
  int fd = ::open(path.c_str(), O_RDWR | kFlags, 0644);
  bool checked = true;
  if (fd < 0 && errno == EACCES) {
    fd = ::open(path.c_str(), O_WRONLY | kFlags, 0644);
    checked = false;
  }
  if (fd < 0) {
    return absl::InvalidArgumentError(cat("cannot open sink file ", path, ": ", ErrnoText(errno)));
  }
  if (!checked) {
    Log::write(Level::kWarn, -1, "sink file is write-only: its last line is not checked",
               {{"path", path}});
    return fd;
  }
  const int64_t cut = CutPartialTail(fd);
  if (cut < 0) {
    const int err = errno;
    ::close(fd);
    return absl::InvalidArgumentError(
        cat("cannot cut the partial last line of sink file ", path, ": ", ErrnoText(err)));
  }
  if (cut > 0) {
    Log::write(Level::kWarn, -1,
               "sink file ended in a partial line (an earlier run stopped mid-write): cut it off",
               {{"path", path}, {"bytes_cut", cut}});
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::shared_ptr<Output>> Output::open(const std::string& path) {
  std::shared_ptr<Output> out;
  if (path == "-") {
    out.reset(new Output(1, false, ""));
    out->name_ = "ndjson (stdout)";
  } else {
    auto fd = OpenForAppend(path);
    if (!fd.ok()) return fd.status();
    out.reset(new Output(*fd, true, path));
    out->name_ = cat("ndjson:", path);
  }
  return out;
}

Output::~Output() {
  if (owned_) ::close(fd_);
}

void Output::reopen_if_asked() {
  if (!reopen_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(mu_);
  reopen_locked();
}

void Output::reopen_locked() {
  if (!reopen_.exchange(false, std::memory_order_relaxed)) return;
  if (path_.empty() || failed_.load(std::memory_order_relaxed)) return;
  auto fd = OpenForAppend(path_);
  if (!fd.ok()) {
    // Nothing is lost by carrying on with the open file (the renamed one).
    Log::write(Level::kWarn, -1,
               "SIGHUP: cannot reopen the sink file; still writing to the open one",
               {{"sink", name_}, {"error", sv(fd.status().message())}});
    return;
  }
  ::close(fd_);
  fd_ = *fd;
  Log::write(Level::kInfo, -1, "sink file reopened", {{"sink", name_}});
}

bool Output::write(std::string_view bytes, uint64_t lines) {
  std::lock_guard lock(mu_);
  if (failed_.load(std::memory_order_relaxed)) return false;
  if (reopen_.load(std::memory_order_relaxed)) reopen_locked();
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {  // a non-blocking stdout
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    fail_locked(bytes.substr(0, done), n < 0 ? errno : EIO);
    return false;
  }
  lines_.fetch_add(lines, std::memory_order_relaxed);
  return true;
}

// `written`: the part of the failed buffer that did go out.
void Output::fail_locked(std::string_view written, int err) {
  failed_.store(true, std::memory_order_relaxed);
  const char* nl = static_cast<const char*>(memrchr(written.data(), '\n', written.size()));
  const size_t whole = nl != nullptr ? static_cast<size_t>(nl - written.data()) + 1 : 0;
  lines_.fetch_add(
      static_cast<uint64_t>(std::count(written.begin(), written.begin() + whole, '\n')),
      std::memory_order_relaxed);
  std::string reason = cat(name_, ": write failed: ", ErrnoText(err));
  if (whole < written.size()) {
    // Part of a line went out. In a regular file it is taken back: the
    // file ends with its last whole line. (A pipe cannot take it back; its
    // reader is usually the one that went away.)
    struct stat st {};
    const off_t cur = lseek(fd_, 0, SEEK_CUR);  // just past what went out
    const size_t partial = written.size() - whole;
    if (fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && cur >= static_cast<off_t>(partial)) {
      if (ftruncate(fd_, cur - static_cast<off_t>(partial)) == 0) {
        reason += cat("; the ", partial, " bytes of a partial line were cut off");
      } else {
        reason +=
            cat("; cutting the ", partial, " bytes of a partial line failed: ", ErrnoText(errno));
      }
    } else {
      reason += cat("; ", partial, " bytes of a partial line went out");
    }
  }
  if (on_failure_) on_failure_(reason);
}

NdjsonWriter::NdjsonWriter(std::shared_ptr<Output> out) : out_(std::move(out)) {
  buf_.reserve(kFlushBytes * 2);
}

NdjsonWriter::~NdjsonWriter() { flush(); }

void NdjsonWriter::append(const ChannelEvent& e) {
  if (out_->failed()) return;
  char num[24];
  buf_.append("{\"shard\":");
  buf_.append(num, std::to_chars(num, num + sizeof num, e.shard).ptr);
  buf_.append(",\"seq\":");
  buf_.append(num, std::to_chars(num, num + sizeof num, e.seq).ptr);
  buf_.append(",\"t\":\"");
  buf_.append(e.t);  // event names are [A-Z_0-9]: checked by the parser
  buf_.append("\",\"d\":");
  buf_.append(e.d.empty() ? std::string_view("null") : e.d);
  buf_.append("}\n");
  ++buffered_lines_;
  if (buf_.size() >= kFlushBytes) flush();
}

void NdjsonWriter::flush() {
  if (buf_.empty()) {
    out_->reopen_if_asked();
    return;
  }
  out_->write(buf_, buffered_lines_);  // a failure is reported by the Output
  buf_.clear();
  buffered_lines_ = 0;
}

}  // namespace shardring::engine
