// tests/gateway_server/test_util.h: what the synthetic gateway's in-process
// tests share: options for a quiet server on a free loopback port, starting
// it, the IDENTIFY a test sends, opening a client up to HELLO, and reading
// a field out of a payload.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/gateway_server/test_client.h"
#include "tools/gateway/gateway_options.h"
#include "tools/gateway/server.h"

namespace shardring::gatewaysrv::gwtest {

inline constexpr std::string_view kIdentify =
    R"({"op":2,"d":{"token":"tok","intents":513,"properties":{"os":"linux","browser":"test","device":"test"},"shard":[0,1]}})";

inline std::string identify(uint32_t shard, uint32_t total, std::string_view token = "tok") {
  return std::string(R"({"op":2,"d":{"token":")") + std::string(token) +
         R"(","intents":513,"properties":{"os":"linux","browser":"t","device":"t"},"shard":[)" +
         std::to_string(shard) + "," + std::to_string(total) + "]}}";
}

inline std::string resume(std::string_view session_id, uint64_t seq,
                          std::string_view token = "tok") {
  return std::string(R"({"op":6,"d":{"token":")") + std::string(token) + R"(","session_id":")" +
         std::string(session_id) + R"(","seq":)" + std::to_string(seq) + "}}";
}

// Two threads on a free port; no identify window, so tests identify at once.
inline GatewayOptions Options() {
  GatewayOptions o;
  o.listen_host = "127.0.0.1";
  o.listen_port = 0;
  o.threads = 2;
  o.identify_window_ms = 0;
  o.rate = 200;
  o.guilds_per_shard = 2;
  return o;
}

inline std::unique_ptr<Server> Start(const GatewayOptions& o) {
  auto s = Server::start(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// The value at JSON pointer `path`: a string's text, else the minified JSON;
// "?" when absent.
inline std::string json_field(const std::string& doc, std::string_view path) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  if (p.parse(doc).at_pointer(path).get(e) != simdjson::SUCCESS) return "?";
  std::string_view sv;
  if (e.get_string().get(sv) == simdjson::SUCCESS) return std::string(sv);
  return simdjson::minify(e);
}

// Connects, upgrades and reads HELLO.
inline void Open(TestClient& c, uint16_t port) {
  ASSERT_TRUE(c.connect(port));
  ASSERT_TRUE(c.upgrade());
  auto hello = c.next_payload();
  ASSERT_TRUE(hello);
  ASSERT_EQ(hello->op, 10);
}

}  // namespace shardring::gatewaysrv::gwtest
