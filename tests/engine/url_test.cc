#include "engine/url.h"

#include <gtest/gtest.h>

namespace shardring::engine {
namespace {

TEST(Url, ParsesDiscordGatewayWithDefaults) {
  auto u = parse_url("wss://gateway.discord.gg");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, Scheme::kWss);
  EXPECT_EQ(u->host, "gateway.discord.gg");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/");
  EXPECT_EQ(u->query, "");
  EXPECT_TRUE(u->is_tls());
}

TEST(Url, KeepsPortPathAndQuery) {
  auto u = parse_url("ws://127.0.0.1:8080/gw?v=10&encoding=json");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/gw");
  EXPECT_EQ(u->query, "v=10&encoding=json");
  EXPECT_EQ(u->target(), "/gw?v=10&encoding=json");
  EXPECT_EQ(u->to_string(), "ws://127.0.0.1:8080/gw?v=10&encoding=json");
}

TEST(Url, ParsesBracketedIpv6) {
  auto u = parse_url("ws://[::1]:9000/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->authority(), "[::1]:9000");
}

TEST(Url, RefusesWhatAGatewayUrlNeverHas) {
  EXPECT_FALSE(parse_url("gateway.discord.gg").ok());
  EXPECT_FALSE(parse_url("ftp://x").ok());
  EXPECT_FALSE(parse_url("wss://user:pw@host/").ok());
  EXPECT_FALSE(parse_url("wss://host/#frag").ok());
  EXPECT_FALSE(parse_url("wss://host:0/").ok());
  EXPECT_FALSE(parse_url("wss://host:65536/").ok());
  EXPECT_FALSE(parse_url("wss://host:12a/").ok());
  EXPECT_FALSE(parse_url("wss:///path").ok());
  EXPECT_FALSE(parse_url("wss://ho st/").ok());
  EXPECT_FALSE(parse_url("wss://[::1/").ok());
}

TEST(Url, KnowsLoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.255.0.9"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("gateway.discord.gg"));
  EXPECT_FALSE(is_loopback_host("localhost.evil.com"));
}

TEST(Url, SetsAndReplacesQueryParameters) {
  EXPECT_EQ(set_query_param("", "v", "10"), "v=10");
  EXPECT_EQ(set_query_param("v=9", "v", "10"), "v=10");
  EXPECT_EQ(set_query_param("encoding=json", "v", "10"), "encoding=json&v=10");
  EXPECT_EQ(set_query_param("a=1&v=6&b=2", "v", "10"), "a=1&v=10&b=2");
}

}  // namespace
}  // namespace shardring::engine
