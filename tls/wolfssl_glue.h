// tls/wolfssl_glue.h: internal to tls/. Process-wide wolfSSL set-up and error
// text. Any thread.
#pragma once

#include <string>

namespace shardring::tls::internal {

// Initialises wolfSSL once per process (thread-safe); later calls are free.
// wolfSSL is never cleaned up: contexts may live until exit.
void ensure_wolfssl_initialized() noexcept;

// Call on each thread that will run handshakes, before the first: frees the
// thread's wolfCrypt caches when the thread ends. Debian's libwolfssl is
// built with FP_ECC, a per-thread fixed-point ECC cache (about 2.4 MB after a
// few handshakes) that only wc_ecc_fp_free() on that thread releases; a core
// thread or gateway worker that exits without it leaks the cache. Free (a
// thread-local guard check) after the first call; nothing to do in builds
// without FP_ECC (ours from scripts/setup.sh).
void release_caches_at_thread_exit() noexcept;

// "<wolfSSL's text> (<code>)" for a wolfSSL or wolfCrypt error code.
std::string wolfssl_error_text(int code);

// The registered name of a TLS alert description (RFC 8446 6, IANA "TLS
// Alerts"), e.g. "unknown_ca" for 48; "unknown" for any other code. Ours:
// wolfSSL has one only in its OpenSSL compatibility layer, left out of the
// build.
const char* alert_name(int code) noexcept;

}  // namespace shardring::tls::internal
