// engine/rest.h: the one REST call the engine makes, GET {api}/gateway/bot,
// at start-up on the calling thread (blocking, bounded by a time-out). HTTPS
// through tls::Session, or plain HTTP on loopback.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/url.h"
#include "tls/context.h"

namespace shardring::engine {

inline constexpr size_t kMaxRestResponseBytes = 1 << 20;
inline constexpr std::chrono::milliseconds kRestTimeout{10'000};

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET `url` with `Authorization: <authorization>` when not empty. The
// authorization value never appears in errors.
absl::StatusOr<HttpResponse> http_get(const Url& url, std::string_view authorization,
                                      const tls::ClientOptions& tls,
                                      std::chrono::milliseconds timeout = kRestTimeout);

// Splits a raw HTTP/1.1 response (head and body; chunked or not) into status
// and body. Exposed for tests and fuzzing.
absl::StatusOr<HttpResponse> parse_http_response(std::string_view raw, bool complete);

}  // namespace shardring::engine
