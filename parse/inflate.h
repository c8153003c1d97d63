// parse/inflate.h: Discord's transport compression, both directions. One
// stream per connection for its whole life (zlib-stream or zstd-stream, set
// by `compress=` in the gateway URL): the client's Inflater turns each binary
// WebSocket message back into a JSON payload, inflated into a padded buffer
// that Parser::parse reads in place; the server's Deflater (the synthetic
// gateway, tests) makes those messages.
// Stage: after ws::Decoder, before Parser::parse. Sans-I/O: bytes in, bytes out.
// Threads: an Inflater or Deflater belongs to its connection's thread.
//
// FORMATS
//   zlib-stream: one zlib (RFC 1950) stream; the server ends every payload
//     with a Z_SYNC_FLUSH, so a payload is complete when a message ends with
//     00 00 ff ff. A payload may span messages; their output is joined.
//   zstd-stream: one zstd stream; the server flushes after every payload and
//     each message is one payload.
//
// LIMITS (each a named constant below, each crossed by a test): a payload
// inflates to at most kMaxInflatedBytes, and past kInflateRatioFloorBytes to
// at most kMaxInflateRatio times its compressed size (a decompression bomb
// stops there, having used at most that much memory); a zstd frame may ask
// for a window of at most 2^kZstdMaxWindowLog bytes. Every failure leaves the
// stream unusable: the connection closes and its successor starts a new one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parse/compression.h"
#include "parse/envelope.h"

namespace shardring::parse {

// The bytes that end every zlib-stream payload (an empty stored block).
inline constexpr uint8_t kZlibSuffix[4] = {0x00, 0x00, 0xFF, 0xFF};
// Largest inflated payload: the envelope parser's own limit.
inline constexpr size_t kMaxInflatedBytes = kMaxMessageBytes;
// Past kInflateRatioFloorBytes of output, a payload may be at most this many
// times its compressed size. A warm zlib stream compresses a repeated small
// event 50-100x and a GUILD_CREATE about 10x; a bomb goes past 1000x.
inline constexpr size_t kMaxInflateRatio = 256;
inline constexpr size_t kInflateRatioFloorBytes = size_t{1} << 20;
// zstd-stream: the largest window (2^N bytes) a frame may ask for. The
// window is per-connection memory for the connection's whole life.
inline constexpr int kZstdMaxWindowLog = 23;
// The output buffer's first size; it grows by doubling up to the limit.
inline constexpr size_t kInflateInitialBytes = size_t{64} << 10;

enum class InflateErrc : uint8_t {
  kOk,        // *payload is one whole JSON payload
  kNeedMore,  // zlib-stream: the message did not end a payload (kept)
  kCorrupt,   // not a valid stream (or a zlib stream that ended)
  kTooLarge,  // payload over kMaxInflatedBytes, or a zstd window too large
  kBomb,      // inflate ratio over kMaxInflateRatio
  kNoMemory,
};
[[nodiscard]] const char* to_string(InflateErrc e) noexcept;

// A growable output buffer, shared by every connection of a thread (the
// payload is parsed before the next message of any connection is inflated).
// Always holds kPadding readable bytes after the payload.
using InflateBuffer = std::vector<char>;

class Inflater {
 public:
  explicit Inflater(Compression c);
  ~Inflater();
  Inflater(Inflater&& o) noexcept;
  Inflater& operator=(Inflater&& o) noexcept;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  Compression compression() const noexcept { return compression_; }

  // One binary WebSocket message of the stream in. On kOk, *payload views
  // the payload inside `out`, followed by kPadding readable bytes, valid
  // until `out` is used again. kNeedMore keeps what the message inflated
  // to (inside this Inflater) for the messages that complete it. Any other
  // code: the stream is unusable until reset().
  [[nodiscard]] InflateErrc inflate(std::span<const std::byte> message, InflateBuffer& out,
                                    std::string_view* payload);
  // A fresh stream (a new connection). Keeps allocations where it can.
  void reset();
  // Heap bytes this stream holds now (zlib or zstd context and window, any
  // partial payload), counted through the libraries' allocator hooks.
  [[nodiscard]] size_t memory_bytes() const noexcept;

 private:
  struct Impl;
  Compression compression_;
  Impl* impl_ = nullptr;
};

// The server side (synthetic gateway, tests): compresses payloads onto one
// stream, each flushed so that the client can inflate it whole.
class Deflater {
 public:
  // `level`: zlib 1-9 (default 6), zstd 1-19 (default 3). `zstd_window_log`
  // 0 leaves the level's default; otherwise the match tables shrink with it.
  explicit Deflater(Compression c, int level = 0, int zstd_window_log = 0);
  ~Deflater();
  Deflater(Deflater&& o) noexcept;
  Deflater& operator=(Deflater&& o) noexcept;
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  Compression compression() const noexcept { return compression_; }

  // Appends the compressed, flushed form of `payload` to `out` (for
  // zlib-stream, ending with kZlibSuffix). False when out of memory, or for
  // an empty payload (a flush with nothing new makes no bytes to send, and
  // no gateway payload is empty).
  [[nodiscard]] bool compress(std::string_view payload, std::string& out);
  [[nodiscard]] size_t memory_bytes() const noexcept;

 private:
  struct Impl;
  Compression compression_;
  Impl* impl_ = nullptr;
};

}  // namespace shardring::parse
