// parse/envelope_key.h: which envelope member a key names, as every path of
// Parser::parse tells it (internal to parse/: envelope.cc and full_check.cc
// share it so the two give the same answers). Sans-I/O.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace shardring::parse::detail {

// kBad: the key's escapes do not decode (the caller's to report).
enum class EnvelopeKey : uint8_t { kOther, kOp, kS, kT, kD, kStamp, kBad };

// `key` decoded; `escaped` when it was written with escape sequences. op, s,
// t and d are matched either way; the gateway's `_ts_ns` only as written.
inline EnvelopeKey envelope_key(std::string_view key, bool escaped) noexcept {
  if (key.size() == 1) {
    switch (key[0]) {
      case 's':
        return EnvelopeKey::kS;
      case 't':
        return EnvelopeKey::kT;
      case 'd':
        return EnvelopeKey::kD;
      default:
        return EnvelopeKey::kOther;
    }
  }
  if (key.size() == 2 && key[0] == 'o' && key[1] == 'p') return EnvelopeKey::kOp;
  if (!escaped && key.size() == 6 && std::memcmp(key.data(), "_ts_ns", 6) == 0) {
    return EnvelopeKey::kStamp;
  }
  return EnvelopeKey::kOther;
}

}  // namespace shardring::parse::detail
