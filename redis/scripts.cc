// redis/scripts.cc: see scripts.h.
#include "redis/scripts.h"

namespace shardring::redis {

std::string key(std::string_view prefix, std::string_view kind, uint64_t n) {
  std::string k;
  k.reserve(prefix.size() + kind.size() + 22);
  k.append(prefix).append(":").append(kind).append(":").append(std::to_string(n));
  return k;
}

std::string key(std::string_view prefix, std::string_view name) {
  std::string k(prefix);
  k.append(":").append(name);
  return k;
}

}  // namespace shardring::redis
