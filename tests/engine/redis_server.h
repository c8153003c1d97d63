// tests/engine/redis_server.h: a real redis-server for a test, on a free
// loopback port (picked, and picked again if another process took it
// first), in a temporary folder, stopped by pid. Never the default port: a
// Debian install may have started a daemon there.
#pragma once
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/redis_link.h"

namespace shardring::testing {

inline bool HaveRedisServer() { return std::system("command -v redis-server >/dev/null") == 0; }

class RedisServer {
 public:
  RedisServer() {
    char tmpl[] = "/tmp/shardring-redis-XXXXXX";
    dir_ = mkdtemp(tmpl);
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
      port_ = FreePort();
      if (!start()) stop();
    }
  }
  ~RedisServer() {
    stop();
    std::filesystem::remove_all(dir_);
  }
  bool ok() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  engine::RedisUrl url() const {
    engine::RedisUrl u;
    u.host = "127.0.0.1";
    u.port = port_;
    return u;
  }
  // SIGKILL, as a crash.
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // Starts again on the same port and folder (a SAVEd dump.rdb is loaded).
  bool restart() {
    stop();
    return start();
  }

 private:
  static uint16_t FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
  }
  bool start() {
    const std::string port = std::to_string(port_);
    pid_ = fork();
    if (pid_ == 0) {
      // Dies with the test, even when the test crashes.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const std::string log = dir_ + "/redis.log";
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--dir",
             dir_.c_str(), "--save", "", "--appendonly", "no", "--logfile", log.c_str(),
             "--protected-mode", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    // Up when it answers PING.
    for (int i = 0; i < 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;  // exited: the port was taken
      }
      engine::RedisLink link(url(), std::chrono::milliseconds(500));
      redis::Reply r;
      std::string error;
      if (link.call({"PING"}, &r, &error) && r.str == "PONG") return true;
    }
    return false;
  }
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace shardring::testing
