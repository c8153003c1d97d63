// engine/sink.h: where the CLI's consumer threads put dispatch events.
// `ndjson` writes INTERFACE.md's line format, `d` byte for byte; `null` only
// counts. One NdjsonWriter per consumer thread, all sharing one Output (an fd
// and a mutex taken once per buffer flush, never per event), so lines from
// different consumers never interleave and each shard's lines stay in order.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shardring::engine {

struct ChannelEvent;

class Output {
 public:
  // "-" is stdout. Files are created or truncated.
  static absl::StatusOr<std::shared_ptr<Output>> open(const std::string& path);
  ~Output();
  // Writes all of `bytes` (one or more whole lines). False on a write error
  // (EPIPE: the reader went away), which the caller logs once.
  bool write(std::string_view bytes);

 private:
  explicit Output(int fd, bool owned) : fd_(fd), owned_(owned) {}
  std::mutex mu_;
  int fd_;
  bool owned_;
};

class NdjsonWriter {
 public:
  static constexpr size_t kFlushBytes = 64 * 1024;
  explicit NdjsonWriter(std::shared_ptr<Output> out);
  ~NdjsonWriter();
  void append(const ChannelEvent& e);
  // Writes buffered lines; called when the consumer runs dry and at exit.
  void flush();
  bool failed() const { return failed_; }

 private:
  std::shared_ptr<Output> out_;
  std::string buf_;
  bool failed_ = false;
};

}  // namespace shardring::engine
