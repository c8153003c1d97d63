// tls/wolfssl_glue.cc: process-wide wolfSSL set-up and error text.
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
// clang-format on

#include "tls/wolfssl_glue.h"

#include <mutex>

namespace shardring::tls::internal {

void ensure_wolfssl_initialized() noexcept {
  // wolfSSL_Init() keeps a reference count that is not safe to race on its
  // first call; call_once makes the first call happen exactly once.
  static std::once_flag once;
  std::call_once(once, [] { (void)wolfSSL_Init(); });
}

std::string wolfssl_error_text(int code) {
  char buf[WOLFSSL_MAX_ERROR_SZ] = {};
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(code), buf, sizeof buf);
  std::string text(buf);
  text += " (";
  text += std::to_string(code);
  text += ')';
  return text;
}

}  // namespace shardring::tls::internal
