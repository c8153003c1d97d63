// engine/log.h: one line per event of note on stderr, text or JSON lines.
// Any thread; a line is written with one write(2) so lines never interleave.
// The bot token is registered once and scrubbed from every line as a last
// line of defence (no code path is meant to log it in the first place).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardring::engine {

enum class Level : uint8_t { kDebug, kInfo, kWarn, kError };

class Log {
 public:
  enum class Format : uint8_t { kText, kJson };
  static void configure(Format format, Level min_level, int fd = 2);
  // The token to scrub from every line (and its "Bot " header form).
  static void set_secret(std::string_view token);
  static bool enabled(Level level);

  // `shard` < 0: not about one shard. `fields_json`: extra JSON members
  // ("\"code\":4004") added to JSON lines and shown as k=v in text.
  static void write(Level level, int64_t shard, std::string_view msg,
                    std::string_view fields_json = {});
  // Writes a line as is (already JSON or text), scrubbed; for `summary`.
  static void raw(std::string_view line);
  static Format format();
  // Escapes s as the inside of a JSON string.
  static void append_json_escaped(std::string* out, std::string_view s);
};

}  // namespace shardring::engine
