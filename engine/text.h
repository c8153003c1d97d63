// engine/text.h: string building for start-up, logs and error messages
// (never the per-event path). Debian's Abseil has its own absl::string_view,
// so absl::StrCat does not take std::string_view; these helpers take both
// kinds, integers and floating point, and keep Abseil off our interfaces.
#pragma once

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace shardring {

inline std::string_view sv(absl::string_view s) { return {s.data(), s.size()}; }

namespace text_internal {
inline void put(std::string& out, std::string_view s) { out.append(s); }
inline void put(std::string& out, const char* s) { out.append(s); }
inline void put(std::string& out, const std::string& s) { out.append(s); }
inline void put(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
inline void put(std::string& out, char c) { out.push_back(c); }
inline void put(std::string& out, bool b) { out.append(b ? "true" : "false"); }
template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool> &&
         !std::is_same_v<T, char>) void put(std::string& out, T v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}
template <std::floating_point T>
void put(std::string& out, T v) {
  char buf[32];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3).ptr);
}
}  // namespace text_internal

template <class... A>
void append(std::string& out, const A&... a) {
  (text_internal::put(out, a), ...);
}

template <class... A>
std::string cat(const A&... a) {
  std::string out;
  append(out, a...);
  return out;
}

}  // namespace shardring
