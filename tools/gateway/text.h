// tools/gateway/text.h: the synthetic gateway's names for engine/text.h's
// string building (start-up, logs, control payloads; never per event).
#pragma once

#include <string>

#include "engine/text.h"

namespace shardring::gatewaysrv {

using shardring::cat;

// Appends every argument (strings of either string_view kind, integers) to *out.
template <class... A>
void append_to(std::string* out, const A&... a) {
  shardring::append(*out, a...);
}

}  // namespace shardring::gatewaysrv
