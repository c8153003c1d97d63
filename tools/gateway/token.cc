#include "tools/gateway/token.h"

#include <cstdint>

namespace shardring::gatewaysrv {
namespace {

// A 20-digit id is at most 28 base64 characters (with padding).
constexpr size_t kMaxIdDigits = 20;

// The 6-bit value of a base64 character of either alphabet; -1 otherwise.
int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

}  // namespace

std::optional<std::string> user_id_from_token(std::string_view token) {
  std::string_view seg = token.substr(0, token.find('.'));
  // Padding is optional; when present it must only fill the last quantum.
  const size_t unpadded = seg.find_last_not_of('=') + 1;  // npos + 1 == 0
  const size_t pad = seg.size() - unpadded;
  if (pad > 2 || (pad > 0 && seg.size() % 4 != 0)) return std::nullopt;
  seg = seg.substr(0, unpadded);
  // One leftover character carries no whole byte: not base64.
  if (seg.empty() || seg.size() % 4 == 1 || seg.size() > (kMaxIdDigits + 2) / 3 * 4) {
    return std::nullopt;
  }
  std::string id;
  uint32_t bits = 0;
  int nbits = 0;
  for (char c : seg) {
    const int v = sextet(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      id.push_back(static_cast<char>((bits >> nbits) & 0xff));
    }
  }
  if (id.empty() || id.size() > kMaxIdDigits) return std::nullopt;
  for (char c : id) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return id;
}

}  // namespace shardring::gatewaysrv
