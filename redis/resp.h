// redis/resp.h: RESP2, the Redis wire protocol, as bytes in and bytes out.
// Commands are written as arrays of bulk strings (what every Redis command
// is on the wire); replies are read incrementally from whatever bytes have
// arrived, so the same code serves a blocking client, a test feeding one
// byte at a time, and a fuzzer. Our own codec rather than hiredis's: the
// sink writes tens of thousands of script arguments a second straight into
// one output buffer (no argv arrays, no sds copies), and the reader is a
// few dozen lines with the limits below, which a server we do not control
// cannot push past.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace shardring::redis {

// Limits on what a reply may claim; a reply over them is a protocol error
// (the connection is dropped), never an allocation of what it claims.
// Redis's own bulk limit (proto-max-bulk-len) defaults to 512 MiB; nothing
// we ask for comes near 64 MiB.
inline constexpr int64_t kMaxBulkBytes = 64 << 20;
inline constexpr int64_t kMaxArrayElements = 1 << 20;
inline constexpr int kMaxDepth = 8;
// A status, error or integer line longer than this is a protocol error.
inline constexpr size_t kMaxLineBytes = 64 * 1024;

struct Reply {
  enum class Type : uint8_t { kStatus, kError, kInteger, kBulk, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // status, error, bulk
  int64_t integer = 0;
  std::vector<Reply> elements;  // array

  bool is_error() const noexcept { return type == Type::kError; }
  bool is_nil() const noexcept { return type == Type::kNil; }
  // The error's first word ("NOSCRIPT", "OOM", "ERR"); empty when not an error.
  std::string_view error_code() const noexcept;
  // Status or bulk text; for an integer, nothing (use `integer`).
  std::string_view text() const noexcept { return str; }
  // For logs and tests: `"OK"`, `(error) ERR ...`, `(integer) 3`, `(nil)`,
  // `[a, b]`, abbreviated past 200 bytes.
  std::string debug_string() const;
};

// Appends commands to a buffer: one array of bulk strings each.
//   CommandWriter w(out);
//   w.begin(3); w.arg("SET"); w.arg(key); w.arg(value);
// begin() states the argument count up front (RESP needs it first); the
// writer checks in debug builds that exactly that many followed.
class CommandWriter {
 public:
  explicit CommandWriter(std::string& out) : out_(out) {}
  ~CommandWriter();
  void begin(size_t argc);
  void arg(std::string_view a);
  void arg(uint64_t v);
  void arg(int64_t v);
  void arg(int v) { arg(static_cast<int64_t>(v)); }
  void arg(unsigned v) { arg(static_cast<uint64_t>(v)); }
  // One whole command from its arguments.
  void command(std::initializer_list<std::string_view> args);
  // Commands written so far (begin() calls).
  size_t commands() const noexcept { return commands_; }

 private:
  std::string& out_;
  size_t commands_ = 0;
  size_t pending_ = 0;
};

// Reads replies from a byte stream.
class ReplyReader {
 public:
  enum class Result : uint8_t { kReply, kNeedMore, kProtocolError };
  // Adds received bytes.
  void feed(std::string_view bytes);
  // The next whole reply into *out, kNeedMore until its last byte has
  // arrived, or kProtocolError (then *error says what, and every later call
  // returns it again: the connection cannot be read any further).
  Result next(Reply* out, std::string* error = nullptr);
  // Bytes fed and not yet consumed by a whole reply.
  size_t buffered() const noexcept { return buf_.size() - pos_; }
  void clear();

 private:
  // Parses one value at pos; false when incomplete. Sets failed_ on error.
  bool parse(size_t& pos, Reply* out, int depth);
  bool line(size_t& pos, std::string_view* out);
  std::string buf_;
  size_t pos_ = 0;
  bool failed_ = false;
  std::string error_;
};

// Parses a whole decimal int64 (RESP's integers and lengths). False on
// anything else: a sign alone, spaces, overflow.
bool parse_int(std::string_view s, int64_t* out) noexcept;

}  // namespace shardring::redis
