// parse/full_check.h: Check::kFull (and Parser::validate_d) on simdjson's
// stage-1 index, without On-Demand and without a DOM.
//
// simdjson's stage 1 indexes every structural byte of the text and checks
// its UTF-8, its strings' closing quotes and that no control character stands
// unescaped in a string, in one SIMD pass. What is left of RFC 8259 is the
// grammar between those bytes, each scalar's syntax and each string's escape
// sequences: a loop over the index with a small stack of container kinds
// checks them, with no tape written, no number converted and no string
// copied (a string is decoded, by simdjson's own routine, only when it holds
// a backslash). That is the DOM parser's stage 2 without the DOM, so the
// full check costs no more than simdjson's DOM parse of the same bytes.
//
// The envelope's members are read during the same loop: op, s, t, the extent
// and kind of d, d's routing keys, the `_ts_ns` stamp. Errors are found in
// document order and named as the On-Demand walk in envelope.cc names them
// (kept there as the reference, Options::fast_path = false); the fuzz target
// parse_envelope_fuzz checks that the two agree on every input.
// Sans-I/O. Allocates only to grow its index to the largest text seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "parse/envelope.h"

namespace simdjson::internal {
class dom_parser_implementation;
}

namespace shardring::parse::detail {

class FullCheck {
 public:
  FullCheck() noexcept;
  ~FullCheck();
  FullCheck(const FullCheck&) = delete;
  FullCheck& operator=(const FullCheck&) = delete;
  FullCheck(FullCheck&&) noexcept;
  FullCheck& operator=(FullCheck&&) noexcept;

  // Parser::parse(msg, out, {.check = Check::kFull, ...}). A t with escape
  // sequences is decoded into this object and lives until the next call.
  [[nodiscard]] Errc parse(std::string_view msg, bool routing_keys, Envelope& out) noexcept;

  // Parser::validate_d: kOk, kBadD, kBadUtf8, kTooDeep (d's brackets at
  // depth 2), kTooLarge or kNoMemory.
  [[nodiscard]] Errc validate_d(std::string_view d) noexcept;

  // Bytes held (index and string scratch), for tests.
  [[nodiscard]] size_t capacity() const noexcept { return capacity_; }

 private:
  // Grows the buffers to `size` (geometrically) and runs stage 1.
  Errc index(std::string_view text) noexcept;

  std::unique_ptr<simdjson::internal::dom_parser_implementation> stage1_;
  std::unique_ptr<uint8_t[]> strings_;  // escapes decoded at their own offset
  size_t capacity_ = 0;
};

}  // namespace shardring::parse::detail
