#include "engine/log.h"

#include "base/json.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace shardring::engine {
namespace {
// Warnings and errors with the same message: at most kLogBurst lines per
// kLogWindow, then one "repeated" line per window with the count left out.
constexpr int kLogBurst = 20;
constexpr std::chrono::seconds kLogWindow{10};
// Lines waiting for the writer thread; beyond this they are dropped (and
// counted) rather than held in memory or waited for.
constexpr size_t kMaxQueuedLogBytes = size_t{4} << 20;
// The writer thread wakes once for a burst of lines, not once a line: after
// the first line of a burst it gathers for kLogGather (or until
// kLogGatherBytes are queued, or a flush) and then writes them all. A line
// logged while a burst gathers costs its caller no wake-up of another
// thread, so thousands of shards starting or resuming at once (two lines
// each) do not hand the core thread's CPU to the writer thousands of times.
constexpr std::chrono::milliseconds kLogGather{10};
constexpr size_t kLogGatherBytes = size_t{64} << 10;

struct Repeat {
  std::chrono::steady_clock::time_point window_start{};
  int lines = 0;
  uint64_t suppressed = 0;
  Level level = Level::kWarn;
};

struct State {
  std::atomic<int> format{0};
  std::atomic<int> min_level{1};
  std::atomic<int> fd{2};
  std::mutex secret_mu;
  std::string secret;
  std::mutex repeat_mu;
  std::map<std::string, Repeat, std::less<>> repeats;  // by message
  // The writer thread (Log::start_writer): lines queue here instead of a
  // write(2) on the caller's thread.
  std::mutex q_mu;
  std::condition_variable q_cv;
  std::string queued;
  std::string writing;
  uint64_t dropped = 0;
  bool stop = false;
  std::thread writer;
  std::atomic<bool> async{false};
  std::mutex sink_mu;
  std::function<void(Level, int64_t, std::string_view)> sink;
};
State& S() {
  static State s;
  return s;
}
const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "?";
}
void Scrub(std::string* line) {
  State& s = S();
  std::lock_guard lock(s.secret_mu);
  if (s.secret.size() < 4) return;
  for (size_t at = line->find(s.secret); at != std::string::npos; at = line->find(s.secret, at)) {
    line->replace(at, s.secret.size(), "[redacted]");
  }
}
void WriteFd(std::string_view line) {
  const int fd = S().fd.load(std::memory_order_relaxed);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void Emit(std::string& line) {
  Scrub(&line);
  State& s = S();
  if (!s.async.load(std::memory_order_acquire)) {
    WriteFd(line);
    return;
  }
  bool wake = false;
  {
    std::lock_guard lock(s.q_mu);
    if (s.queued.size() + line.size() > kMaxQueuedLogBytes) {
      ++s.dropped;
      return;
    }
    // The first line of a burst wakes the writer; a burst that has grown
    // past kLogGatherBytes ends its gathering early. Notified after the
    // unlock, so the writer never wakes only to wait for the lock.
    wake = s.queued.empty() ||
           (s.queued.size() < kLogGatherBytes && s.queued.size() + line.size() >= kLogGatherBytes);
    s.queued += line;
  }
  if (wake) s.q_cv.notify_one();
}

void WriterMain() {
  // Signals are for the thread that handles them (run()'s): a process-wide
  // SIGTERM must never be taken here, where its default action would end
  // the process.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  State& s = S();
  std::unique_lock lock(s.q_mu);
  while (true) {
    s.q_cv.wait(lock, [&] { return s.stop || !s.queued.empty(); });
    s.q_cv.wait_for(lock, kLogGather, [&] { return s.stop || s.queued.size() >= kLogGatherBytes; });
    if (s.queued.empty() && s.stop) break;
    s.writing.swap(s.queued);
    const uint64_t dropped = std::exchange(s.dropped, 0);
    lock.unlock();
    if (dropped != 0) {
      s.writing +=
          "log: " + std::to_string(dropped) + " lines dropped (the log output could not keep up)\n";
    }
    WriteFd(s.writing);
    s.writing.clear();
    lock.lock();
  }
}

// True when the line may go out. Warnings and errors of one message past
// kLogBurst in a window are suppressed; the first line of the next window
// says how many were.
bool Admit(Level level, std::string_view msg, uint64_t* suppressed_before) {
  *suppressed_before = 0;
  if (level < Level::kWarn) return true;
  State& s = S();
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(s.repeat_mu);
  auto it = s.repeats.find(msg);
  if (it == s.repeats.end()) it = s.repeats.emplace(std::string(msg), Repeat{}).first;
  Repeat& r = it->second;
  if (now - r.window_start >= kLogWindow) {
    *suppressed_before = std::exchange(r.suppressed, 0);
    r.window_start = now;
    r.lines = 0;
  }
  if (r.lines >= kLogBurst) {
    ++r.suppressed;
    return false;
  }
  ++r.lines;
  return true;
}
}  // namespace

void Log::configure(Format format, Level min_level, int fd) {
  S().format = static_cast<int>(format);
  S().min_level = static_cast<int>(min_level);
  S().fd = fd;
}

void Log::set_secret(std::string_view token) {
  std::lock_guard lock(S().secret_mu);
  S().secret = std::string(token);
}

bool Log::enabled(Level level) {
  return static_cast<int>(level) >= S().min_level.load(std::memory_order_relaxed);
}

Log::Format Log::format() { return static_cast<Format>(S().format.load()); }

void Log::append_json_escaped(std::string* out, std::string_view s) {
  base::append_json_escaped(*out, s);
}

void LogField::append_json(std::string& out) const {
  base::append_json_string(out, key_);
  out.push_back(':');
  switch (kind_) {
    case Kind::kInt:
      out += std::to_string(i_);
      break;
    case Kind::kUint:
      out += std::to_string(u_);
      break;
    case Kind::kBool:
      out += b_ ? "true" : "false";
      break;
    case Kind::kDouble: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3f", d_);
      out += buf;
      break;
    }
    case Kind::kText:
      base::append_json_string(out, text_);
      break;
  }
}

void LogField::append_text(std::string& out) const {
  out.append(key_);
  out.push_back('=');
  if (kind_ == Kind::kText) {
    base::append_json_string(out, text_);  // quoted: one line, no raw controls
  } else {
    const size_t at = out.size();
    append_json(out);
    out.erase(at, key_.size() + 3);  // the quoted key and its colon
  }
}

void Log::write(Level level, int64_t shard, std::string_view msg, LogFields fields) {
  if (!enabled(level)) return;
  uint64_t suppressed = 0;
  if (!Admit(level, msg, &suppressed)) return;
  if (suppressed != 0) {
    write(level, -1, "repeated lines left out",
          {{"msg", msg}, {"lines", suppressed}, {"window_s", kLogWindow.count()}});
  }
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  std::string line;
  line.reserve(128 + msg.size());
  if (format() == Format::kJson) {
    line += "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    line += LevelName(level);
    line += '"';
    if (shard >= 0) {
      line += ",\"shard\":";
      line += std::to_string(shard);
    }
    line += ",\"msg\":";
    base::append_json_string(line, msg);
    for (const LogField& f : fields) {
      line += ',';
      f.append_json(line);
    }
    line += "}\n";
  } else {
    line += ts;
    line += ' ';
    line += LevelName(level);
    line += shard >= 0 ? " shard=" + std::to_string(shard) : std::string(" shard=-");
    line += ' ';
    line += msg;
    for (const LogField& f : fields) {
      line += ' ';
      f.append_text(line);
    }
    line += '\n';
  }
  {
    State& st = S();
    std::lock_guard lock(st.sink_mu);
    if (st.sink) {
      Scrub(&line);
      st.sink(level, shard, std::string_view(line).substr(0, line.size() - 1));
      return;
    }
  }
  Emit(line);
}

void Log::raw(std::string_view l) {
  flush();
  std::string line(l);
  if (line.empty() || line.back() != '\n') line += '\n';
  Scrub(&line);
  WriteFd(line);
}

void Log::set_sink(std::function<void(Level, int64_t, std::string_view)> sink) {
  std::lock_guard lock(S().sink_mu);
  S().sink = std::move(sink);
}

void Log::start_writer() {
  State& s = S();
  std::lock_guard lock(s.q_mu);
  if (s.writer.joinable()) return;
  s.stop = false;
  s.writer = std::thread(WriterMain);
  s.async.store(true, std::memory_order_release);
}

void Log::flush() {
  State& s = S();
  std::thread t;
  {
    std::lock_guard lock(s.q_mu);
    if (!s.writer.joinable()) return;
    s.async.store(false, std::memory_order_release);
    s.stop = true;
    s.q_cv.notify_one();
    t = std::move(s.writer);
  }
  t.join();
}

}  // namespace shardring::engine
