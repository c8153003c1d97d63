#include "engine/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace shardring::engine {

Notifier Notifier::from_env() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return Notifier();
  std::chrono::microseconds watchdog{0};
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  bool ours = true;
  if (pid != nullptr && *pid != '\0') {
    long p = 0;  // NOLINT(runtime/int)
    const auto r = std::from_chars(pid, pid + std::strlen(pid), p);
    ours = r.ec == std::errc() && p == static_cast<long>(::getpid());  // NOLINT(runtime/int)
  }
  if (usec != nullptr && ours) {
    uint64_t v = 0;
    const auto r = std::from_chars(usec, usec + std::strlen(usec), v);
    if (r.ec == std::errc() && v > 0) watchdog = std::chrono::microseconds(v);
  }
  return Notifier(path, watchdog);
}

Notifier::Notifier(std::string socket_path, std::chrono::microseconds watchdog)
    : path_(std::move(socket_path)), watchdog_(watchdog) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

Notifier::Notifier(Notifier&& o) noexcept
    : path_(std::move(o.path_)), watchdog_(o.watchdog_), fd_(std::exchange(o.fd_, -1)) {}

Notifier& Notifier::operator=(Notifier&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    watchdog_ = o.watchdog_;
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

bool Notifier::send(std::string_view state) {
  if (fd_ < 0 || path_.empty()) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
  if (path_[0] == '@') {
    addr.sun_path[0] = '\0';  // abstract namespace: no trailing NUL
  } else {
    ++len;
  }
  const ssize_t n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&addr), len);
  return n == static_cast<ssize_t>(state.size());
}

}  // namespace shardring::engine
