#include "engine/log.h"

#include "base/json.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace shardring::engine {
namespace {
struct State {
  std::atomic<int> format{0};
  std::atomic<int> min_level{1};
  std::atomic<int> fd{2};
  std::mutex secret_mu;
  std::string secret;
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
void WriteAll(std::string& line) {
  Scrub(&line);
  const int fd = S().fd.load(std::memory_order_relaxed);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
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
  WriteAll(line);
}

void Log::raw(std::string_view l) {
  std::string line(l);
  if (line.empty() || line.back() != '\n') line += '\n';
  WriteAll(line);
}

}  // namespace shardring::engine
