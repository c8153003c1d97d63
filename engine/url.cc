#include "engine/url.h"

#include <arpa/inet.h>

#include <cctype>

#include "absl/strings/ascii.h"
#include "engine/text.h"

namespace shardring::engine {
namespace {
uint16_t DefaultPort(Scheme s) { return (s == Scheme::kWs || s == Scheme::kHttp) ? 80 : 443; }
const char* SchemeName(Scheme s) {
  switch (s) {
    case Scheme::kWs:
      return "ws";
    case Scheme::kWss:
      return "wss";
    case Scheme::kHttp:
      return "http";
    case Scheme::kHttps:
      return "https";
  }
  return "?";
}
}  // namespace

std::string Url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return cat(v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

std::string Url::target() const { return query.empty() ? path : cat(path, "?", query); }

std::string Url::to_string() const { return cat(SchemeName(scheme), "://", authority(), target()); }

absl::StatusOr<Url> parse_url(std::string_view text) {
  Url url;
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    return absl::InvalidArgumentError(
        cat("'", std::string(text), "' is not an absolute URL (scheme://host...)"));
  }
  const std::string scheme = absl::AsciiStrToLower(std::string(text.substr(0, sep)));
  if (scheme == "ws")
    url.scheme = Scheme::kWs;
  else if (scheme == "wss")
    url.scheme = Scheme::kWss;
  else if (scheme == "http")
    url.scheme = Scheme::kHttp;
  else if (scheme == "https")
    url.scheme = Scheme::kHttps;
  else
    return absl::InvalidArgumentError(cat("unsupported URL scheme '", scheme, "'"));

  std::string_view rest = text.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) {
    return absl::InvalidArgumentError("URL fragments (#...) are not allowed");
  }
  const size_t auth_end = rest.find_first_of("/?");
  std::string_view auth = rest.substr(0, auth_end);
  std::string_view tail = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  if (auth.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError("credentials in URLs are not allowed");
  }
  std::string_view port_text;
  if (!auth.empty() && auth.front() == '[') {
    const size_t close = auth.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("unterminated IPv6 literal in URL");
    }
    url.host = std::string(auth.substr(1, close - 1));
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return absl::InvalidArgumentError("bad text after IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = auth.rfind(':');
    url.host = std::string(auth.substr(0, colon));
    if (colon != std::string_view::npos) port_text = auth.substr(colon + 1);
  }
  if (url.host.empty()) return absl::InvalidArgumentError("URL has no host");
  for (char c : url.host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_')) {
      return absl::InvalidArgumentError(cat("bad character in URL host '", url.host, "'"));
    }
  }
  url.host = absl::AsciiStrToLower(url.host);
  url.port = DefaultPort(url.scheme);
  if (!port_text.empty()) {
    uint32_t p = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535) {
        return absl::InvalidArgumentError(cat("bad port '", std::string(port_text), "'"));
      }
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535) {
      return absl::InvalidArgumentError(cat("bad port '", std::string(port_text), "'"));
    }
    url.port = static_cast<uint16_t>(p);
  }
  const size_t q = tail.find('?');
  url.path = std::string(tail.substr(0, q));
  if (url.path.empty()) url.path = "/";
  if (q != std::string_view::npos) url.query = std::string(tail.substr(q + 1));
  for (char c : url.path + url.query) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError("URL has spaces or control characters");
    }
  }
  return url;
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) {
    return (ntohl(a4.s_addr) >> 24) == 127;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
  }
  return false;
}

std::optional<std::string_view> query_value(std::string_view query, std::string_view key) {
  size_t start = 0;
  while (start < query.size()) {
    const size_t amp = query.find('&', start);
    const std::string_view part =
        query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    const size_t eq = part.find('=');
    if (part.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return std::nullopt;
}

std::string set_query_param(std::string_view query, std::string_view key, std::string_view value) {
  std::string out;
  bool replaced = false;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t amp = query.find('&', start);
    std::string_view part = query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    std::string_view k = part.substr(0, part.find('='));
    if (!part.empty()) {
      if (!out.empty()) out += '&';
      if (k == key) {
        shardring::append(out, key, "=", value);
        replaced = true;
      } else {
        out.append(part);
      }
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  if (!replaced) {
    if (!out.empty()) out += '&';
    shardring::append(out, key, "=", value);
  }
  return out;
}

}  // namespace shardring::engine
