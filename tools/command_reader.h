// tools/command_reader.h: `shardring run --commands PATH|-`: gateway commands
// as NDJSON lines ({"shard":3,"op":3,"d":{...}}) from stdin, a FIFO or a
// file, each checked and sent through Engine::send, each outcome logged
// (docs/interface.md). A thread of its own: the reads block, and never on a
// core thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <thread>

#include "engine/engine.h"

namespace shardring::tools {

// A line longer than this is refused whole (a command is at most 4096
// bytes of payload, plus the shard).
inline constexpr size_t kMaxCommandLine = 8192;

class CommandReader {
 public:
  // "-" is stdin. A FIFO is opened read-write so it never reaches end of
  // file between writers; a regular file (or stdin) is read to its end.
  CommandReader(Engine& engine, std::string path);
  ~CommandReader();  // stop(), then join
  CommandReader(const CommandReader&) = delete;
  CommandReader& operator=(const CommandReader&) = delete;

  // Opens the path; false with a message naming it.
  bool start(std::string* error);
  void stop();

  uint64_t sent() const { return sent_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  void run();
  void on_line(std::string_view line);

  Engine& engine_;
  std::string path_;
  int fd_ = -1;
  bool owned_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0}, refused_{0};
  std::thread thread_;
};

}  // namespace shardring::tools
