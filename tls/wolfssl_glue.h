// tls/wolfssl_glue.h: internal to tls/. Process-wide wolfSSL set-up and error
// text. Any thread.
#pragma once

#include <string>

namespace shardring::tls::internal {

// Initialises wolfSSL once per process (thread-safe); later calls are free.
// wolfSSL is never cleaned up: contexts may live until exit.
void ensure_wolfssl_initialized() noexcept;

// "<wolfSSL's text> (<code>)" for a wolfSSL or wolfCrypt error code.
std::string wolfssl_error_text(int code);

}  // namespace shardring::tls::internal
