// engine/notify.h: the service manager's notification protocol (systemd's
// sd_notify, spoken directly: one datagram per message to the AF_UNIX socket
// named by $NOTIFY_SOCKET; a leading '@' names an abstract socket). No
// library: the protocol is a few lines, and the test machines have no
// systemd to link against or talk to. Used by run()'s thread only.
//
// What the engine sends (docs/interface.md "Under systemd"): READY=1 once
// every shard was ready once, STATUS= lines with shards ready and events/s,
// WATCHDOG=1 while every core thread's loop is turning (honouring
// $WATCHDOG_USEC), STOPPING=1 when a stop begins.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace shardring::engine {

class Notifier {
 public:
  // From the environment: $NOTIFY_SOCKET (unset or empty: disabled) and
  // $WATCHDOG_USEC, which applies only when $WATCHDOG_PID is unset or this
  // process's pid.
  static Notifier from_env();
  Notifier() = default;
  Notifier(std::string socket_path, std::chrono::microseconds watchdog);
  ~Notifier();
  Notifier(Notifier&& o) noexcept;
  Notifier& operator=(Notifier&& o) noexcept;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return !path_.empty(); }
  // The watchdog interval; 0 when no watchdog was asked for.
  std::chrono::microseconds watchdog() const { return watchdog_; }
  // Sends `state` ("READY=1", "STATUS=...", several lines joined by '\n').
  // False when disabled or the datagram could not be sent (never blocks).
  bool send(std::string_view state);

 private:
  std::string path_;
  std::chrono::microseconds watchdog_{0};
  int fd_ = -1;
};

}  // namespace shardring::engine
