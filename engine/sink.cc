#include "engine/sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/event_channel.h"

namespace shardring::engine {

absl::StatusOr<std::shared_ptr<Output>> Output::open(const std::string& path) {
  if (path == "-") return std::shared_ptr<Output>(new Output(1, false));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open sink file ", path, ": ", std::strerror(errno)));
  }
  return std::shared_ptr<Output>(new Output(fd, true));
}

Output::~Output() {
  if (owned_) ::close(fd_);
}

bool Output::write(std::string_view bytes) {
  std::lock_guard lock(mu_);
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

NdjsonWriter::NdjsonWriter(std::shared_ptr<Output> out) : out_(std::move(out)) {
  buf_.reserve(kFlushBytes * 2);
}

NdjsonWriter::~NdjsonWriter() { flush(); }

void NdjsonWriter::append(const ChannelEvent& e) {
  char num[24];
  buf_.append("{\"shard\":");
  buf_.append(num, std::to_chars(num, num + sizeof num, e.shard).ptr);
  buf_.append(",\"seq\":");
  buf_.append(num, std::to_chars(num, num + sizeof num, e.seq).ptr);
  buf_.append(",\"t\":\"");
  buf_.append(e.t);  // event names are [A-Z_0-9]: checked by the parser
  buf_.append("\",\"d\":");
  buf_.append(e.d.empty() ? std::string_view("null") : e.d);
  buf_.append("}\n");
  if (buf_.size() >= kFlushBytes) flush();
}

void NdjsonWriter::flush() {
  if (buf_.empty()) return;
  if (!failed_ && !out_->write(buf_)) failed_ = true;
  buf_.clear();
}

}  // namespace shardring::engine
