#include "tools/command_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/commands.h"
#include "engine/log.h"
#include "engine/text.h"

namespace shardring::tools {

CommandReader::CommandReader(Engine& engine, std::string path)
    : engine_(engine), path_(std::move(path)) {}

CommandReader::~CommandReader() {
  stop();
  if (thread_.joinable()) thread_.join();
  if (owned_ && fd_ >= 0) ::close(fd_);
}

bool CommandReader::start(std::string* error) {
  if (path_ == "-") {
    fd_ = 0;
  } else {
    struct stat st {};
    const bool fifo = ::stat(path_.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
    fd_ = ::open(path_.c_str(), (fifo ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) {
      *error = cat("--commands: cannot open ", path_, ": ", std::strerror(errno));
      return false;
    }
    owned_ = true;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void CommandReader::stop() { stop_.store(true); }

void CommandReader::run() {
  // Signals are run()'s to take (this thread starts before it blocks them).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::string buf;
  bool skipping = false;  // inside a line over kMaxCommandLine
  char chunk[4096];
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // end of the file or stdin
    size_t at = 0;
    while (at < static_cast<size_t>(n)) {
      const char* nl =
          static_cast<const char*>(std::memchr(chunk + at, '\n', static_cast<size_t>(n) - at));
      const size_t end = nl != nullptr ? static_cast<size_t>(nl - chunk) : static_cast<size_t>(n);
      if (!skipping) buf.append(chunk + at, end - at);
      if (buf.size() > kMaxCommandLine) {
        if (!skipping) {
          ++refused_;
          engine::Log::write(engine::Level::kWarn, -1, "command refused",
                             {{"reason", "line over 8192 bytes"}});
        }
        skipping = true;
        buf.clear();
      }
      if (nl == nullptr) break;
      if (!skipping) on_line(buf);
      skipping = false;
      buf.clear();
      at = end + 1;
    }
  }
  if (!buf.empty() && !skipping) on_line(buf);
}

void CommandReader::on_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return;
  uint32_t shard = 0;
  std::string payload;
  std::string_view reason;
  if (!engine::parse_command_line(line, &shard, &payload, &reason)) {
    ++refused_;
    engine::Log::write(engine::Level::kWarn, -1, "command refused", {{"reason", reason}});
    return;
  }
  const SendResult r = engine_.send(shard, payload);
  if (r.queued) {
    ++sent_;
    engine::Log::write(engine::Level::kInfo, static_cast<int>(shard), "command queued",
                       {{"bytes", payload.size()}});
  } else {
    ++refused_;
    engine::Log::write(engine::Level::kWarn, static_cast<int>(shard), "command refused",
                       {{"reason", r.reason}});
  }
}

}  // namespace shardring::tools
