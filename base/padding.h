// base/padding.h: the readable slack kept after every received message, so
// the WebSocket framer and the JSON parser can read wide past its end
// without a copy (simdjson's SIMDJSON_PADDING; parse/envelope.cc checks they
// agree). Stage: none; vocabulary for every folder (standard library only).
#ifndef SHARDRING_BASE_PADDING_H_
#define SHARDRING_BASE_PADDING_H_

#include <cstddef>

namespace shardring::base {

inline constexpr size_t kPadding = 64;

}  // namespace shardring::base

#endif  // SHARDRING_BASE_PADDING_H_
