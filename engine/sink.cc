#include "engine/sink.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "engine/event_channel.h"
#include "engine/log.h"
#include "engine/text.h"
#include "gateway/session_key.h"
#include "simdjson.h"

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
    std::lock_guard lock(out->mu_);
    out->locate_locked();
  }
  return out;
}

void Output::locate_locked() {
  struct stat st {};
  if (fstat(fd_, &st) != 0) return;
  dev_ = static_cast<uint64_t>(st.st_dev);
  ino_ = static_cast<uint64_t>(st.st_ino);
  offset_ = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string Output::progress(std::vector<Durable>& by_shard) {
  std::lock_guard lock(mu_);
  by_shard = written_;
  if (path_.empty()) return {};
  return cat("file ", dev_, " ", ino_, " ", offset_);
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
  locate_locked();
  Log::write(Level::kInfo, -1, "sink file reopened", {{"sink", name_}});
}

bool Output::write(std::string_view bytes, uint64_t lines, std::span<const Mark> marks) {
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
  offset_ += bytes.size();
  for (const auto& [shard, d] : marks) {
    if (shard >= written_.size()) written_.resize(shard + 1);
    written_[shard] = d;
  }
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
      // offset_ stays where the last whole write ended: the whole lines
      // of this one lie past it, where the next start looks for lines
      // written after the checkpoint.
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

void NdjsonWriter::mark(const ChannelEvent& e) {
  if (e.shard >= last_.size()) last_.resize(e.shard + 1);
  Durable& d = last_[e.shard];
  if (d == Durable{}) touched_.push_back(e.shard);
  d = Durable{e.session, e.seq};
}

void NdjsonWriter::append(const ChannelEvent& e) {
  if (out_->failed()) return;
  if (out_->holds(e.shard, e.session, e.seq)) {  // a replay the file has
    ++skipped_;
    mark(e);
    return;
  }
  mark(e);
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
  if (buf_.empty() && touched_.empty()) {
    out_->reopen_if_asked();
    return;
  }
  marks_.clear();
  for (uint32_t shard : touched_) {
    marks_.emplace_back(shard, last_[shard]);
    last_[shard] = Durable{};
  }
  touched_.clear();
  out_->write(buf_, buffered_lines_, marks_);  // a failure is reported by the Output
  buf_.clear();
  buffered_lines_ = 0;
}

namespace {

// One line of docs/interface.md's format: {"shard":N,"seq":S,"t":"T","d":D}.
struct Line {
  uint32_t shard = 0;
  uint64_t seq = 0;
  std::string_view t, d;
};

bool ReadNumber(std::string_view& s, std::string_view prefix, uint64_t* out) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (r.ec != std::errc()) return false;
  s.remove_prefix(static_cast<size_t>(r.ptr - s.data()));
  return true;
}

bool ParseLine(std::string_view s, Line* out) {
  uint64_t shard = 0;
  if (!ReadNumber(s, "{\"shard\":", &shard) || shard > UINT32_MAX ||
      !ReadNumber(s, ",\"seq\":", &out->seq) || s.substr(0, 6) != ",\"t\":\"") {
    return false;
  }
  out->shard = static_cast<uint32_t>(shard);
  s.remove_prefix(6);
  const size_t q = s.find('"');
  if (q == std::string_view::npos) return false;
  out->t = s.substr(0, q);
  s.remove_prefix(q);
  if (s.substr(0, 6) != "\",\"d\":" || s.empty() || s.back() != '}') return false;
  out->d = s.substr(6, s.size() - 7);
  return true;
}

// READY's d.session_id as a session key (0 when it has none).
uint64_t ReadySessionKey(std::string_view d) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(d);
  simdjson::ondemand::document doc;
  std::string_view id;
  if (parser.iterate(padded).get(doc) || doc["session_id"].get_string().get(id)) return 0;
  return gateway::session_key_of(id);
}

}  // namespace

absl::StatusOr<std::vector<Durable>> find_written_replays(const std::string& path,
                                                          const SavedRun& run) {
  std::vector<Durable> found;
  if (run.shards.empty()) return found;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return found;
    return absl::InvalidArgumentError(cat("cannot read sink file ", path, ": ", ErrnoText(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::InvalidArgumentError(cat("cannot read sink file ", path, ": ", ErrnoText(err)));
  }
  uint64_t dev = 0, ino = 0, offset = 0;
  off_t start = 0;
  if (std::sscanf(run.sink.c_str(), "file %lu %lu %lu", &dev, &ino, &offset) == 3 &&
      dev == static_cast<uint64_t>(st.st_dev) && ino == static_cast<uint64_t>(st.st_ino) &&
      offset <= static_cast<uint64_t>(st.st_size)) {
    start = static_cast<off_t>(offset);
  }
  // Per shard id: the saved session, and the session its lines belong to
  // as the file goes on (the sink's own at the checkpoint, then each READY).
  const uint32_t top = run.shards.back().shard;
  std::vector<const SavedShard*> saved(top + 1, nullptr);
  std::vector<uint64_t> want(top + 1, 0), current(top + 1, 0);
  for (const SavedShard& s : run.shards) {
    saved[s.shard] = &s;
    want[s.shard] = gateway::session_key_of(s.session_id);
    current[s.shard] = s.written.session;
  }
  found.assign(top + 1, Durable{});
  // What the sink had written of the saved session by the checkpoint lies
  // before the offset; it counts as held too.
  for (const SavedShard& s : run.shards) {
    if (s.written.session == want[s.shard] && s.written.seq > s.seq) found[s.shard] = s.written;
  }
  std::string buf, line;
  buf.resize(1 << 20);
  off_t pos = start;
  while (true) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::InvalidArgumentError(cat("cannot read sink file ", path, ": ", ErrnoText(err)));
    }
    if (n == 0) break;
    pos += n;
    std::string_view chunk(buf.data(), static_cast<size_t>(n));
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        line.append(chunk);
        break;
      }
      line.append(chunk.substr(0, nl));
      chunk.remove_prefix(nl + 1);
      Line l;
      if (ParseLine(line, &l) && l.shard <= top && saved[l.shard] != nullptr) {
        if (l.t == "READY") current[l.shard] = ReadySessionKey(l.d);
        if (current[l.shard] == want[l.shard] && l.seq > saved[l.shard]->seq &&
            l.seq > found[l.shard].seq) {
          found[l.shard] = Durable{want[l.shard], l.seq};
        }
      }
      line.clear();
    }
  }
  ::close(fd);
  return found;
}

}  // namespace shardring::engine
