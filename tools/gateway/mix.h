// tools/gateway/mix.h: the dispatch events the synthetic gateway sends,
// serialised once at start-up into templates, and the splice that turns a
// template into one WebSocket frame with its seq, send time and ids.
// Stage: the synthetic gateway's send path (server role, before the socket).
// A Mix is built once and then only read: every I/O thread shares it.
//
// WIRE SHAPE of a templated dispatch (Discord's key order, "t" first, plus
// one key of ours that clients ignore):
//   {"t":"MESSAGE_CREATE","s":<seq>,"op":0,"_ts_ns":<steady ns>,"d":{...}}
// The frame is written as: ws header | prefix | seq digits | kMid | ts
// digits | body, then the id fields inside body are overwritten in place
// (fixed-width digit fields). Nothing is parsed or serialised per event.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shardring::gatewaysrv {

// Digits of the placeholders reserved in templates. Guild ids are 18 digits
// (a snowflake whose timestamp part is in [1e11, 2.38e11) ms), event ids 19.
inline constexpr size_t kGuildIdDigits = 18;
inline constexpr size_t kSnowflakeDigits = 19;

// Between the seq digits and the send-time digits.
inline constexpr std::string_view kMid = ",\"op\":0,\"_ts_ns\":";

enum class PatchKind : uint8_t {
  kGuildId,    // the event's guild: one of the shard's guilds
  kSnowflake,  // an id unique to the event (message id, interaction id, ...)
};

struct Patch {
  uint32_t offset;  // into Template::body
  PatchKind kind;
};

// One pre-serialised dispatch.
struct Template {
  std::string type;            // "MESSAGE_CREATE"
  std::string prefix;          // {"t":"MESSAGE_CREATE","s":
  std::string body;            // ,"d":{...}}
  std::vector<Patch> patches;  // ascending offsets
  uint32_t weight = 1;
};

// The fields spliced into one frame.
struct Splice {
  uint64_t seq = 0;
  uint64_t ts_ns = 0;
  uint64_t guild_id = 0;   // kGuildId patches (18 digits)
  uint64_t snowflake = 0;  // kSnowflake patch i gets snowflake + i
};

// Bytes of the JSON payload (no ws header) for `t` with `s`.
[[nodiscard]] size_t payload_size(const Template& t, const Splice& s) noexcept;

// Appends one unmasked, unfragmented text frame holding `t` with `s`
// spliced in. No allocation once `out` has the capacity.
void append_frame(std::string& out, const Template& t, const Splice& s);
// Appends only the JSON payload (for fragmenting and tests).
void append_payload(std::string& out, const Template& t, const Splice& s);

// Decimal digits of v; writes them at `dst` (which must hold 20 bytes).
size_t write_u64(char* dst, uint64_t v) noexcept;

// The guild id of guild `index` of shard `shard` out of `total`: a
// snowflake with (id >> 22) % total == shard (Discord's sharding formula),
// always kGuildIdDigits digits.
[[nodiscard]] uint64_t guild_id(uint32_t shard, uint32_t total, uint32_t index) noexcept;

// Everything the gateway sends from templates.
class Mix {
 public:
  // The built-in realistic mix: messages (create, update, delete), presence
  // updates, typing, member updates, reactions, voice states and
  // interactions, about 300 B to 3 KB each, with Unicode and emoji text.
  static Mix builtin();
  // JSON lines of gateway payloads, each {"op":0,"t":"X","d":{...}} (blank
  // lines and lines starting with '#' skipped). Errors name the file and
  // line. A line given k times is drawn k times as often.
  static absl::StatusOr<Mix> from_file(const std::string& path);
  // The same from text (for tests); `name` is used in errors.
  static absl::StatusOr<Mix> from_lines(std::string_view text, std::string_view name);

  // The template for a draw `r` (any 64-bit value): weighted choice.
  [[nodiscard]] const Template& pick(uint64_t r) const noexcept {
    return events_[table_[r & (kTableSize - 1)]];
  }
  [[nodiscard]] const std::vector<Template>& events() const noexcept { return events_; }
  // GUILD_CREATE: a small guild (about 6 KB) and a large one ("large":true,
  // about 60 KB), with kGuildId patches for the guild's own id.
  [[nodiscard]] const Template& guild_create(bool large) const noexcept {
    return large ? guild_large_ : guild_small_;
  }

  // Builds a template from one payload's `t` and its `d` JSON text (any
  // whitespace): top-level guild_id (and every other occurrence of that id)
  // becomes a kGuildId patch, top-level id/message_id a kSnowflake patch.
  // With `verbatim` (a user's --mix file), d is sent exactly as given.
  enum class Ids : uint8_t { kVary, kVerbatim };
  static absl::StatusOr<Template> make_template(std::string_view type, std::string_view d_json,
                                                Ids ids = Ids::kVary);

 private:
  static constexpr size_t kTableSize = 1024;
  void build_table();

  std::vector<Template> events_;
  std::vector<uint16_t> table_;
  Template guild_small_, guild_large_;
};

}  // namespace shardring::gatewaysrv
