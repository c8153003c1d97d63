// parse/envelope.h: the gateway envelope {"op","s","t","d"} read in place from
// a padded buffer with simdjson On-Demand, plus the few fields the Discord
// session needs from particular payloads (HELLO, READY, op 9, GET /gateway/bot).
// Stage: parse, after ws::Decoder (and inflate), before gateway::Session and
// dispatch. Sans-I/O: bytes in, views and numbers out.
// Threads: a Parser belongs to one thread (one per core thread); it is not
// safe to share. Envelope, RoutingKeys and the free functions are plain values.
//
// BUFFERS. Every message and every `d` view handed to this file must lie in a
// buffer with at least kPadding readable bytes after its last byte (what those
// bytes hold does not matter). ws::Decoder and tls::Session keep that slack
// after every message, so nothing is copied. A `d` view taken from an Envelope
// satisfies it too: it ends inside its message. Views returned point into the
// caller's buffer (or, for a `t` with escape sequences, into the Parser) and
// stay valid while the buffer lives and until the next call on the Parser.
//
// WHAT EACH MODE GUARANTEES
//   Parser::parse(msg, env) (Check::kFull, the normal path):
//     the whole message is RFC 8259 JSON (grammar, string escapes, number
//     syntax, no control characters in strings), is valid UTF-8, nests at most
//     kMaxDepth deep, is one object with no second copy of op/s/t/d and
//     nothing after it. `d` is then a JSON value a consumer may hand on as is.
//     Numbers are checked for syntax only: 1e400 or a 30-digit integer is valid
//     JSON and passes, although many parsers (simdjson's DOM too) refuse to
//     convert it.
//   Parser::parse(msg, env, {.check = Check::kEnvelope}):
//     the same for op/s/t and for the object around them, and the whole
//     message is valid UTF-8 without control characters in strings, and
//     d's own top level is well formed (`{"k":v,...}` / `[v,...]`, each v
//     starting like a value); but below that, `d` and the values of unknown
//     keys are only scanned for their extent (brackets counted), not
//     checked: `{"a":{]}` or `[[1 2]]` or a bad escape in a value passes,
//     and nesting is not limited. Use it when `d` is dropped or checked later
//     (validate_d), never to hand `d` to a user. With routing_keys, d's
//     top-level keys are also decoded, so a bad escape in one is refused.
//     On Discord's own layout, {"t":..,"s":..,"op":..,"d":..} without
//     whitespace, a SIMD fast path (parse/canonical.h) decides instead of
//     simdjson when it can, with the same result.
//   Parser::event_type(msg, out): reads `t` only, for dropping unwanted
//     dispatches before any parsing. It checks nothing else: the message may
//     still be rejected by parse(). On Discord's own key order ("t" first) it
//     does not even run simdjson, so its cost does not depend on the size of d.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/padding.h"
#include "parse/event_type.h"

namespace shardring::parse {

// Readable slack needed after a message (simdjson::SIMDJSON_PADDING).
inline constexpr size_t kPadding = base::kPadding;
// Deepest nesting accepted by Check::kFull, the envelope object counting as
// 1 (so `d`'s own brackets start at depth 2). simdjson's default.
inline constexpr size_t kMaxDepth = 1024;
// Largest message accepted. The biggest real payloads are GUILD_CREATE of
// large guilds (several MB; a 2.8 MB one is in the corpus) and READY. The
// ws layer's message limit should not exceed this.
inline constexpr size_t kMaxMessageBytes = size_t{8} << 20;
// Capacity a new Parser starts with; it grows (once, to the largest message
// seen, never shrinking) up to kMaxMessageBytes.
inline constexpr size_t kInitialCapacity = size_t{64} << 10;

// Everything this file reports. kOk is the only success.
enum class Errc : uint8_t {
  kOk,
  kTooLarge,      // message over kMaxMessageBytes
  kNoMemory,      // growing the parser's buffers failed
  kEmpty,         // no JSON value at all (empty or only whitespace)
  kBadJson,       // not well-formed JSON (structure, literal, string escape)
  kBadUtf8,       // bytes that are not UTF-8
  kTooDeep,       // nesting deeper than kMaxDepth
  kNotObject,     // the payload is not a JSON object
  kTrailingData,  // something after the payload's closing brace
  kDuplicateKey,  // op, s, t or d given twice
  kMissingOp,     // no "op"
  kBadOp,         // op is not an integer in the int32 range
  kBadSeq,        // s is neither null nor an integer in [0, 2^64)
  kBadType,       // t is neither null nor a string
  kBadD,          // d (or an unknown key's value) is not valid JSON
  kMissingField,  // a field a reader below needs is absent (readers only)
  kBadField,      // such a field has the wrong type or range (readers only)
};

// A short constant name for logs ("bad_seq"); never null.
[[nodiscard]] const char* to_string(Errc e) noexcept;

// The JSON type of a value; kAbsent when the key is not there at all.
enum class JsonKind : uint8_t {
  kAbsent,
  kObject,
  kArray,
  kString,
  kNumber,
  kBool,
  kNull,
};
[[nodiscard]] const char* to_string(JsonKind k) noexcept;

// `guild_id` and `channel_id` among d's top-level keys, from their snowflake
// strings. nullopt when absent, null, not a string of 1-20 digits, or over
// 2^64-1: routing then falls back to the shard, never to a wrong guild.
struct RoutingKeys {
  std::optional<uint64_t> guild_id;
  std::optional<uint64_t> channel_id;
};

struct Envelope {
  int32_t op = 0;
  // Absent and null are the same to the gateway: nullopt.
  std::optional<uint64_t> s;
  // The event name; nullopt when t is absent or null. A view into the message
  // (the string without its quotes) unless it held escape sequences (Discord
  // never sends them), then a view of the decoded name inside the Parser.
  std::optional<std::string_view> t;
  EventType type = EventType::kNone;  // kUnknown: see t
  // d's JSON text exactly as received: first byte to last byte, no
  // surrounding whitespace, whatever its type and wherever it stood among
  // the keys. Empty when kind is kAbsent.
  std::string_view d;
  JsonKind d_kind = JsonKind::kAbsent;
  // Filled only when Options::routing_keys was set and d is an object.
  RoutingKeys routing;
  // The top-level key "_ts_ns" when it holds a plain unsigned integer: the
  // steady-clock nanoseconds at which `shardring gateway` sent the event, for
  // delivery latency in load tests. Discord never sends it: 0 otherwise.
  uint64_t stamp_ns = 0;
};

enum class Check : uint8_t {
  kFull,      // validate everything, d included (see the top of this file)
  kEnvelope,  // op/s/t and the extent of d only
};

struct Options {
  Check check = Check::kFull;
  // Also read guild_id/channel_id from d's top-level keys (nothing deeper).
  bool routing_keys = false;
  // Each check has a fast path that gives the same results as simdjson
  // On-Demand's walk: Check::kFull runs on simdjson's stage-1 index alone
  // (parse/full_check.h), Check::kEnvelope on Discord's own layout runs the
  // SIMD walk of parse/canonical.h. false runs the On-Demand path only
  // (tests and fuzzing compare the two).
  bool fast_path = true;
};

// The t-only read (Parser::event_type).
struct EventName {
  std::optional<std::string_view> t;  // as Envelope::t
  EventType type = EventType::kNone;
};

// Fields of READY's d the session keeps (copied: once per session).
struct ReadyInfo {
  std::string session_id;
  std::string resume_gateway_url;  // empty when absent (pre-2022 gateways)
  uint64_t user_id = 0;            // d.user.id (the bot); 0 when absent or not a snowflake
};

// GET /gateway/bot (https://discord.com/developers/docs/events/gateway
// "Get Gateway Bot").
struct GatewayBot {
  std::string url;
  uint32_t shards = 0;
  uint32_t total = 0;            // session_start_limit.total
  uint32_t remaining = 0;        // session_start_limit.remaining
  uint64_t reset_after_ms = 0;   // session_start_limit.reset_after
  uint32_t max_concurrency = 0;  // session_start_limit.max_concurrency
};

// One per core thread. Holds simdjson's On-Demand parser, whose index and
// string buffers are sized to the largest message parsed so far: about
// 6 bytes per message byte (4 for the structural index, 5/3 for decoded
// strings), so 384 KiB at kInitialCapacity and at most ~48 MiB after a
// kMaxMessageBytes message. Check::kFull and validate_d, once used, add
// their own index and string scratch (about 5 bytes per message byte, grown
// the same way). Growing is the only allocation, and it happens at most a
// few times over the Parser's life.
class Parser {
 public:
  // Allocates kInitialCapacity worth of buffers (throws std::bad_alloc
  // only here, at start-up).
  Parser();
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;
  Parser(Parser&&) noexcept;
  Parser& operator=(Parser&&) noexcept;

  // Reads one gateway payload. `message` must be followed by kPadding
  // readable bytes. On kOk `out` is filled; on any error `out` is
  // unspecified. Unknown keys (`_trace`, ...) are skipped.
  [[nodiscard]] Errc parse(std::string_view message, Envelope& out, Options options = {}) noexcept;

  // Full validation of a d view that came from parse(..., kEnvelope):
  // kOk or kBadD / kBadUtf8 / kTooDeep (the depth counted as inside an
  // envelope, like parse does). Also works on any padded JSON text.
  [[nodiscard]] Errc validate_d(std::string_view d) noexcept;

  // Reads `t` alone (see the top of this file for what it does not check).
  [[nodiscard]] Errc event_type(std::string_view message, EventName& out) noexcept;

  // guild_id/channel_id from a padded d view (an object), skipping the rest.
  [[nodiscard]] Errc routing_keys(std::string_view d, RoutingKeys& out) noexcept;

  // HELLO (op 10): d.heartbeat_interval in milliseconds, > 0.
  [[nodiscard]] Errc hello_interval(std::string_view d, uint64_t& interval_ms) noexcept;

  // READY: d.session_id (required), d.resume_gateway_url and d.user.id
  // (optional).
  [[nodiscard]] Errc ready_info(std::string_view d, ReadyInfo& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// INVALID_SESSION (op 9): d is `true` (the session may be resumed) or
// `false`. Anything else is kBadField. Needs no padding.
[[nodiscard]] Errc invalid_session_resumable(std::string_view d, bool& resumable) noexcept;

// The body of GET /gateway/bot, any buffer (it is copied into a padded one:
// this runs once at start-up). On kMissingField/kBadField, `failed_field`
// (if given) names the field, e.g. "session_start_limit.max_concurrency".
[[nodiscard]] Errc parse_gateway_bot(std::string_view body, GatewayBot& out,
                                     std::string_view* failed_field = nullptr);

// SIMD. simdjson's stage 1 (the indexing pass over every byte) picks its
// kernel at run time ("haswell" on AVX2 machines, "icelake" with AVX-512).
// The On-Demand walk is compiled into envelope.cc for the build's target and
// costs the same with or without -mavx2 (measured), so no flags are needed.
// The kernel stage 1 uses, for logs.
[[nodiscard]] const char* simd_kernel() noexcept;

// The bytes JSON counts as whitespace (RFC 8259 section 2).
[[nodiscard]] constexpr bool is_json_space(char c) noexcept {
  // One compare and a bit test: bits 9, 10, 13 and 32 of the mask.
  const auto u = static_cast<unsigned char>(c);
  return u <= ' ' && ((uint64_t{0x100002600} >> u) & 1) != 0;
}

}  // namespace shardring::parse
