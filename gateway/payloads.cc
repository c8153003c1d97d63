// gateway/payloads.cc: see payloads.h.
#include "gateway/payloads.h"

#include "base/json.h"

#include <charconv>

namespace shardring::gateway {
namespace {

void append_uint(std::string& out, uint64_t v) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) { base::append_json_string(out, s); }

std::string heartbeat_payload(uint64_t seq) {
  std::string out = R"({"op":1,"d":)";
  if (seq == 0) {
    out += "null";
  } else {
    append_uint(out, seq);
  }
  out += '}';
  return out;
}

std::string identify_payload(const Config& config) {
  return identify_payload(config, config.shard_id);
}

std::string identify_payload(const Config& config, uint32_t shard_id) {
  std::string out;
  out.reserve(160 + config.token.size() + config.presence_json.size());
  out += R"({"op":2,"d":{"token":)";
  append_json_string(out, config.token);
  out += R"(,"intents":)";
  append_uint(out, config.intents);
  out += R"(,"properties":{"os":"linux","browser":"shardring","device":"shardring"},"shard":[)";
  append_uint(out, shard_id);
  out += ',';
  append_uint(out, config.shard_count);
  out += ']';
  if (config.large_threshold != 0) {
    out += R"(,"large_threshold":)";
    append_uint(out, config.large_threshold);
  }
  if (!config.presence_json.empty()) {
    out += R"(,"presence":)";
    out += config.presence_json;
  }
  out += "}}";
  return out;
}

std::string resume_payload(std::string_view token, std::string_view session_id, uint64_t seq) {
  std::string out;
  out.reserve(64 + token.size() + session_id.size());
  out += R"({"op":6,"d":{"token":)";
  append_json_string(out, token);
  out += R"(,"session_id":)";
  append_json_string(out, session_id);
  out += R"(,"seq":)";
  append_uint(out, seq);
  out += "}}";
  return out;
}

std::string config_error(const Config& config) {
  if (config.shard_count == 0) return "shard count must be at least 1";
  if (config.shard_id >= config.shard_count) {
    return "shard id " + std::to_string(config.shard_id) + " is not below the shard count " +
           std::to_string(config.shard_count);
  }
  if (config.large_threshold != 0 &&
      (config.large_threshold < 50 || config.large_threshold > 250)) {
    return "large_threshold must be 50-250 (or 0 to leave it out), not " +
           std::to_string(config.large_threshold);
  }
  if (const size_t n = identify_payload(config).size(); n > kMaxPayloadBytes) {
    return "IDENTIFY would be " + std::to_string(n) +
           " bytes, over Discord's 4096-byte payload limit (shorten the "
           "presence)";
  }
  return {};
}

}  // namespace shardring::gateway
