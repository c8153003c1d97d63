// engine/log.h: one line per event of note on stderr, text or JSON lines.
// Any thread; a line is written with one write(2) so lines never interleave.
// The bot token is registered once and scrubbed from every line as a last
// line of defence (no code path is meant to log it in the first place).
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

namespace shardring::engine {

enum class Level : uint8_t { kDebug, kInfo, kWarn, kError };

// One named value of a log line. Text is always escaped when written (it
// may be peer text: a close reason, a URL from READY or from the REST
// answer, a library's error), so no caller writes JSON by hand. The field
// borrows its key and text: build it in the call, as in
//   Log::write(Level::kWarn, shard, "gateway closed the connection",
//              {{"code", code}, {"reason", reason}});
// JSON lines get "key":value members; text lines key=value (text quoted).
class LogField {
 public:
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) LogField(std::string_view key, T v)
  noexcept : key_(key), kind_(std::is_signed_v<T> ? Kind::kInt : Kind::kUint) {
    if constexpr (std::is_signed_v<T>) {
      i_ = v;
    } else {
      u_ = v;
    }
  }
  LogField(std::string_view key, bool v) noexcept : key_(key), kind_(Kind::kBool), b_(v) {}
  LogField(std::string_view key, double v) noexcept : key_(key), kind_(Kind::kDouble), d_(v) {}
  LogField(std::string_view key, std::string_view v) noexcept
      : key_(key), kind_(Kind::kText), text_(v) {}
  LogField(std::string_view key, const char* v) noexcept : LogField(key, std::string_view(v)) {}
  LogField(std::string_view key, const std::string& v) noexcept
      : LogField(key, std::string_view(v)) {}

  void append_json(std::string& out) const;
  void append_text(std::string& out) const;

 private:
  enum class Kind : uint8_t { kInt, kUint, kBool, kDouble, kText };
  std::string_view key_;
  Kind kind_;
  union {
    int64_t i_;
    uint64_t u_;
    bool b_;
    double d_ = 0;
  };
  std::string_view text_;
};
using LogFields = std::initializer_list<LogField>;

class Log {
 public:
  enum class Format : uint8_t { kText, kJson };
  static void configure(Format format, Level min_level, int fd = 2);
  // The token to scrub from every line (and its "Bot " header form).
  static void set_secret(std::string_view token);
  static bool enabled(Level level);

  // `shard` < 0: not about one shard. `msg` is our own text (escaped in
  // JSON lines all the same); values go in `fields`.
  static void write(Level level, int64_t shard, std::string_view msg, LogFields fields = {});
  // Writes a line as is (already JSON or text), scrubbed; for `summary`.
  // Lines queued for the writer thread go out first.
  static void raw(std::string_view line);
  // From now on lines are handed to a writer thread of their own, so no
  // caller (a core thread above all) waits for a slow stderr; a burst past
  // 4 MiB queued is dropped and counted. The writer wakes once per burst
  // and gathers it for up to 10 ms before writing (a line may go out that
  // late), so a burst costs its callers no context switch per line.
  // flush() writes what is queued and ends the thread (run() does at its
  // end).
  static void start_writer();
  static void flush();
  // Lines (scrubbed, without the newline) go to `sink` instead of the file
  // descriptor: a bot's own logging. Called on the logging thread; empty
  // restores the default.
  static void set_sink(std::function<void(Level, int64_t shard, std::string_view line)> sink);
  // base::append_json_escaped, for callers that hold a pointer.
  static void append_json_escaped(std::string* out, std::string_view s);
  static Format format();
};

}  // namespace shardring::engine
