// engine/redis_link.h: one blocking connection to Redis, for the threads
// that may wait on it: consumer threads (the Redis sink), run()'s thread
// (the session store), and the Redis helpers' own threads (identify gate,
// commands, leases). Never a core thread: a core thread's loop must not
// wait on another server.
//
// Requests are pipelined: exchange() writes any number of commands at once
// and reads that many replies. Every wait is bounded by the I/O timeout; a
// timeout, a reset or a protocol error closes the connection and returns
// false, and the caller decides whether to reconnect and send again (the
// scripts that write are written so a resend changes nothing twice).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "redis/resp.h"

namespace shardring::engine {

// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (the usual meaning: the
// path is a database number). HOST may be a name, an IPv4 literal or a
// bracketed IPv6 literal; PORT defaults to 6379.
struct RedisUrl {
  std::string host;
  uint16_t port = 6379;
  int db = 0;
  std::string user, password;  // empty: no AUTH
  // For logs: `redis://HOST:PORT/DB`, never the password.
  std::string to_string() const;
};
// Errors start with "--redis: " and say what is wrong.
absl::StatusOr<RedisUrl> parse_redis_url(std::string_view text);

// A Lua script run with EVALSHA; its digest is computed here, so the first
// call needs no SCRIPT LOAD round trip. A server without it (restarted,
// SCRIPT FLUSH) answers NOSCRIPT: RedisLink::exchange loads it and sends
// the batch again.
struct RedisScript {
  explicit RedisScript(std::string_view text);
  std::string source;
  std::string sha1;  // 40 lowercase hex digits
};

class RedisLink {
 public:
  // Bounds each connect and each wait for bytes; kRedisIoTimeout by default.
  static constexpr std::chrono::milliseconds kRedisIoTimeout{5000};
  explicit RedisLink(RedisUrl url, std::chrono::milliseconds io_timeout = kRedisIoTimeout);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Connects (when not connected), authenticates and selects the database.
  bool connect(std::string* error);
  bool connected() const noexcept { return fd_ >= 0; }
  void close();

  // Sends `commands` (`count` RESP commands, e.g. from redis::CommandWriter)
  // and reads `count` replies into *replies. Connects first when needed.
  // `scripts` not yet loaded on this connection are loaded ahead of the
  // batch, in the same round trip; when a reply is still NOSCRIPT (SCRIPT
  // FLUSH), loads them again and sends the whole batch again (once). False on an I/O or protocol
  // error
  // (*error says which; the connection is closed): error replies are not
  // failures here, they are in *replies.
  bool exchange(std::string_view commands, size_t count, std::vector<redis::Reply>* replies,
                std::string* error, const std::vector<const RedisScript*>& scripts = {});
  // One command.
  bool call(std::initializer_list<std::string_view> args, redis::Reply* reply, std::string* error);

  const RedisUrl& url() const noexcept { return url_; }

 private:
  bool send_all(std::string_view bytes, std::string* error);
  bool read_replies(size_t count, std::vector<redis::Reply>* replies, std::string* error);
  bool fail(std::string* error, const std::string& what);

  RedisUrl url_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  redis::ReplyReader reader_;
  std::vector<std::string> loaded_;  // sha1s of the scripts this connection loaded
};

}  // namespace shardring::engine
