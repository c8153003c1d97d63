#include "engine/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>

#include "engine/text.h"

namespace shardring::engine {
namespace {
void SetPort(SocketAddress* a, uint16_t port) {
  if (a->family() == AF_INET) {
    a->storage.in4.sin_port = htons(port);
  } else {
    a->storage.in6.sin6_port = htons(port);
  }
}
}  // namespace

std::string SocketAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN + 8] = "?";
  uint16_t port = 0;
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &storage.in4.sin_addr, buf, sizeof buf);
    port = ntohs(storage.in4.sin_port);
    return cat(std::string_view(buf), ":", port);
  }
  inet_ntop(AF_INET6, &storage.in6.sin6_addr, buf, sizeof buf);
  port = ntohs(storage.in6.sin6_port);
  return cat("[", std::string_view(buf), "]:", port);
}

Resolver::Resolver() : thread_([this] { worker(); }) {}

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Resolver::literal(const std::string& host, uint16_t port, SocketAddress* out) {
  sockaddr_in a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    a4.sin_port = htons(port);
    out->storage = {.in4 = a4};
    out->len = sizeof a4;
    return true;
  }
  sockaddr_in6 a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6.sin6_addr) == 1) {
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(port);
    out->storage = {.in6 = a6};
    out->len = sizeof a6;
    return true;
  }
  return false;
}

Resolver::Entry Resolver::blocking(const std::string& host) {
  Entry e;
  e.done = true;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    e.error = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    e.expires = std::chrono::steady_clock::now() + kNegativeTtl;
    return e;
  }
  // Prefer IPv4: Discord's gateway answers on both; v4 is what most hosts route.
  const addrinfo* pick = nullptr;
  for (const addrinfo* p = res; p != nullptr; p = p->ai_next) {
    if (p->ai_family == AF_INET) {
      pick = p;
      break;
    }
    if (p->ai_family == AF_INET6 && pick == nullptr) pick = p;
  }
  if (pick == nullptr || pick->ai_addrlen > sizeof e.addr.storage) {
    freeaddrinfo(res);
    e.error = std::string("cannot resolve ") + host + ": no IPv4 or IPv6 address";
    e.expires = std::chrono::steady_clock::now() + kNegativeTtl;
    return e;
  }
  std::memcpy(&e.addr.storage, pick->ai_addr, pick->ai_addrlen);
  e.addr.len = pick->ai_addrlen;
  e.ok = true;
  e.expires = std::chrono::steady_clock::now() + kPositiveTtl;
  freeaddrinfo(res);
  return e;
}

Resolver::Result Resolver::lookup(const std::string& host, uint16_t port, SocketAddress* out,
                                  std::string* error) {
  if (literal(host, port, out)) return Result::kReady;
  std::lock_guard lock(mu_);
  auto it = cache_.find(host);
  const auto now = std::chrono::steady_clock::now();
  if (it != cache_.end() && it->second.done && now < it->second.expires) {
    if (!it->second.ok) {
      *error = it->second.error;
      return Result::kFailed;
    }
    *out = it->second.addr;
    SetPort(out, port);
    return Result::kReady;
  }
  if (it == cache_.end() || it->second.done) {
    cache_[host] = Entry{};
    queue_.push_back(host);
    cv_.notify_one();
  }
  return Result::kPending;
}

Resolver::Result Resolver::resolve_now(const std::string& host, uint16_t port, SocketAddress* out,
                                       std::string* error) {
  if (literal(host, port, out)) return Result::kReady;
  Entry e = blocking(host);
  {
    std::lock_guard lock(mu_);
    cache_[host] = e;
  }
  if (!e.ok) {
    *error = e.error;
    return Result::kFailed;
  }
  *out = e.addr;
  SetPort(out, port);
  return Result::kReady;
}

void Resolver::worker() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::string host = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Entry e = blocking(host);
    lock.lock();
    cache_[host] = std::move(e);
  }
}

}  // namespace shardring::engine
