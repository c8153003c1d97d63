// base/json.h: the one JSON string escaper. Stage: none; vocabulary for every
// folder (standard library only). Used for everything we write as JSON that
// holds text we did not choose: log fields (peer text, library errors), the
// token and session id in IDENTIFY and RESUME, the synthetic gateway's
// output.
#ifndef SHARDRING_BASE_JSON_H_
#define SHARDRING_BASE_JSON_H_

#include <string>
#include <string_view>

namespace shardring::base {

// Appends `s` as the inside of a JSON string (RFC 8259 7): '"' and '\\'
// escaped, control characters (U+0000-U+001F) as \b \f \n \r \t or \u00XX;
// every other byte, UTF-8 included, copied unchanged (in runs).
inline void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the current run of bytes copied unchanged
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\b':
        out.push_back('b');
        break;
      case '\f':
        out.push_back('f');
        break;
      case '\n':
        out.push_back('n');
        break;
      case '\r':
        out.push_back('r');
        break;
      case '\t':
        out.push_back('t');
        break;
      default:
        out.append("u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s.data() + run, s.size() - run);
}

// `s` as a quoted JSON string.
inline void append_json_string(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  append_json_escaped(out, s);
  out.push_back('"');
}

}  // namespace shardring::base

#endif  // SHARDRING_BASE_JSON_H_
