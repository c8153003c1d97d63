// tools/version.h: what `shardring --version` prints.
#pragma once

#include <string>

namespace shardring::tools {

// The project's version (CMake's project VERSION), e.g. "0.1.0".
const char* version();

// Four lines: `shardring VERSION`, then `revision: ...` (the git commit the
// build came from, "-dirty" with uncommitted changes, "unknown" outside a git
// checkout), `simd: ...` (simdjson's stage-1 kernel on this CPU and whether
// the AVX2 envelope fast path runs) and `wolfssl: ...` (its version and
// whether it is the project's build with assembly or the system library).
std::string version_text();

}  // namespace shardring::tools
