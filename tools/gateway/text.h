// tools/gateway/text.h: string concatenation for the synthetic gateway's
// start-up, log and control-payload text (std::string_view friendly; the
// packaged Abseil's StrCat takes only absl::string_view). Any thread.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>

namespace shardring::gatewaysrv {

inline void cat_one(std::string& out, std::string_view s) { out.append(s); }

// Other string views (absl::string_view from Status::message()).
template <class S>
  requires(!std::is_convertible_v<const S&, std::string_view> &&
           requires(const S& s) {
             s.data();
             s.size();
           })
inline void cat_one(std::string& out, const S& s) {
  out.append(s.data(), s.size());
}

template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool> &&
           !std::is_same_v<T, char>)
inline void cat_one(std::string& out, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

inline void cat_one(std::string& out, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Appends every argument (strings, integers) to *out.
template <class... A>
void append_to(std::string* out, const A&... a) {
  (cat_one(*out, a), ...);
}

template <class... A>
std::string cat(const A&... a) {
  std::string out;
  (cat_one(out, a), ...);
  return out;
}

}  // namespace shardring::gatewaysrv
