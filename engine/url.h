// engine/url.h: the URLs shardring meets: gateway (ws://, wss://), REST
// (http://, https://), and `resume_gateway_url` from READY. Pure functions,
// any thread; start-up and reconnect paths only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shardring::engine {

enum class Scheme : uint8_t { kWs, kWss, kHttp, kHttps };

struct Url {
  Scheme scheme = Scheme::kWss;
  std::string host;   // without brackets for IPv6 literals
  uint16_t port = 0;  // the scheme's default when the URL has none
  std::string path;   // starts with '/', "/" when the URL has none
  std::string query;  // without '?', may be empty

  bool is_tls() const { return scheme == Scheme::kWss || scheme == Scheme::kHttps; }
  // "host:port", with brackets around IPv6 literals: for Host headers and logs.
  std::string authority() const;
  // path?query, what goes on an HTTP request line.
  std::string target() const;
  std::string to_string() const;
};

// Parses an absolute URL. Userinfo and fragments are refused: a gateway URL
// has neither, and a token must never travel in one.
absl::StatusOr<Url> parse_url(std::string_view text);

// 127.0.0.0/8, ::1, and the name "localhost". No name resolution.
bool is_loopback_host(std::string_view host);

// The value of `key` in a query string (the first one), nullopt when absent.
std::optional<std::string_view> query_value(std::string_view query, std::string_view key);

// Appends or replaces `key=value` in a query string ("v=10&encoding=json").
std::string set_query_param(std::string_view query, std::string_view key, std::string_view value);

}  // namespace shardring::engine
