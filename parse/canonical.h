// parse/canonical.h: the fast path of Parser::parse(..., Check::kEnvelope)
// for the layout Discord (and `shardring gateway`) always write:
//
//   {"t":<null|"NAME">,"s":<null|uint>,"op":<int>[,"_ts_ns":<uint>],"d":<d>}
//
// with no whitespace between the envelope's tokens. One SIMD pass (AVX-512BW,
// or AVX2) over d finds its strings and brackets; d's top level is walked by
// jumping between those marks, and everything below it is skipped by
// counting brackets, as the general path skips it (kinds not matched, depth
// not limited: see Check::kEnvelope in envelope.h). simdjson's UTF-8
// validator covers the whole message.
//
// ONE-SIDED BY DESIGN. try_canonical() returns true only for a message the
// general path (simdjson On-Demand, Check::kEnvelope) accepts too, with
// `out` filled exactly as that path fills it. On anything else (another
// layout, an escape in a key, a control character, mismatched brackets,
// whitespace after d, no AVX2, a too-large message, any error) it returns
// false and the caller runs the general path, which decides and names the
// error. The fuzz target parse_envelope_fuzz checks the agreement.
// Sans-I/O; no allocation except growing `Marks` to the largest d seen.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "parse/envelope.h"

namespace shardring::parse::detail {

// Per 64-byte block of the message: unescaped quotes, brackets outside
// strings, and backslashes.
struct Marks {
  std::vector<uint64_t> quote, open, close, slash;
  bool any_slash = false;  // any backslash at all (most messages have none)
};

// The marking pass's kernel. kBest: AVX-512BW where the CPU has it, else
// AVX2, else none (try_canonical then always returns false). A kernel the
// CPU lacks falls back to the best one it has. Tests and the fuzz target
// run both kernels and compare.
enum class Simd : uint8_t { kBest, kAvx2, kAvx512, kNone };
[[nodiscard]] Simd best_simd() noexcept;

[[nodiscard]] bool try_canonical(std::string_view msg, bool routing_keys, Envelope& out,
                                 Marks& marks, Simd simd = Simd::kBest) noexcept;

}  // namespace shardring::parse::detail
