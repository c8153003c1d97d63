#include "tools/version.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "engine/text.h"
#include "parse/envelope.h"
#include "tools/git_revision.h"  // generated at build time (cmake/git_revision.cmake)

namespace shardring::tools {
namespace {

// The condition parse/canonical.cc checks before its AVX2 pass.
bool envelope_fast_path() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
         __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("popcnt");
}

}  // namespace

const char* version() { return SHARDRING_VERSION; }

std::string version_text() {
  return cat("shardring ", SHARDRING_VERSION, "\n",                                       //
             "revision: ", SHARDRING_GIT_REVISION, "\n",                                  //
             "simd: ", parse::simd_kernel(), " (simdjson stage 1), envelope fast path ",  //
             envelope_fast_path() ? "avx2" : "off (no AVX2)", "\n",                       //
             "wolfssl: ", wolfSSL_lib_version(), ", ",                                    //
             SHARDRING_WOLFSSL_ASSEMBLY ? "the project's build with assembly"
                                        : "the system library (no assembly)",
             "\n");
}

}  // namespace shardring::tools
