// engine/resolver.h: host names to addresses, off the core threads. A core
// thread asks lookup(); a literal address or a cached answer comes back at
// once, anything else is resolved on the resolver's own thread (getaddrinfo
// blocks) while the core thread polls on a short timer. Thread-safe.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace shardring::engine {

// An IPv4 or IPv6 address and port: what the resolver gives (TCP over
// either). Every shard holds one, so it is the size of sockaddr_in6 (28
// bytes), not of sockaddr_storage (128).
struct SocketAddress {
  union Storage {
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  } storage{};
  socklen_t len = 0;
  sa_family_t family() const { return storage.sa.sa_family; }
  const sockaddr* sockaddr_ptr() const { return &storage.sa; }
  std::string to_string() const;
};

class Resolver {
 public:
  static constexpr std::chrono::seconds kPositiveTtl{300};
  static constexpr std::chrono::seconds kNegativeTtl{5};

  Resolver();
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  enum class Result : uint8_t { kReady, kPending, kFailed };
  // kReady: *out holds an address for host:port. kPending: ask again soon.
  // kFailed: *error says why (cached for kNegativeTtl).
  Result lookup(const std::string& host, uint16_t port, SocketAddress* out, std::string* error);
  // Blocking form, for start-up.
  Result resolve_now(const std::string& host, uint16_t port, SocketAddress* out,
                     std::string* error);

 private:
  struct Entry {
    bool done = false, ok = false;
    SocketAddress addr;
    std::string error;
    std::chrono::steady_clock::time_point expires{};
  };
  void worker();
  static bool literal(const std::string& host, uint16_t port, SocketAddress* out);
  static Entry blocking(const std::string& host);

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> cache_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace shardring::engine
