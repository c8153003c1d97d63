// parse/inflate.cc: zlib-stream and zstd-stream inflaters and deflaters.
#include "parse/inflate.h"

#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_customMem: count the context's memory
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace shardring::parse {
namespace {

// Allocations through the libraries' hooks, with their live total. A 16-byte
// header keeps each block's size (the free hooks are not told it) and the
// alignment malloc gives.
struct CountedHeap {
  size_t live = 0;

  void* alloc(size_t n) noexcept {
    void* p = std::malloc(n + 16);
    if (p == nullptr) return nullptr;
    std::memcpy(p, &n, sizeof n);
    live += n;
    return static_cast<char*>(p) + 16;
  }
  void free(void* q) noexcept {
    if (q == nullptr) return;
    char* p = static_cast<char*>(q) - 16;
    size_t n;
    std::memcpy(&n, p, sizeof n);
    live -= n;
    std::free(p);
  }
};

voidpf zlib_alloc(voidpf opaque, uInt items, uInt size) {
  return static_cast<CountedHeap*>(opaque)->alloc(size_t{items} * size);
}
void zlib_free(voidpf opaque, voidpf p) { static_cast<CountedHeap*>(opaque)->free(p); }
void* zstd_alloc(void* opaque, size_t n) { return static_cast<CountedHeap*>(opaque)->alloc(n); }
void zstd_free(void* opaque, void* p) { static_cast<CountedHeap*>(opaque)->free(p); }

// zstd block header size (ZSTD_blockHeaderSize in zstd's internal header).
constexpr size_t kZstdBlockHeaderBytes = 3;

// Makes room for at least one more byte of output after `pos` (keeping the
// padding), doubling up to the limit plus one byte (that byte filled means
// the payload is over the limit). False when that is reached.
bool grow(InflateBuffer& out, size_t pos, bool* no_memory) noexcept {
  constexpr size_t kCap = kMaxInflatedBytes + 1;
  const size_t cap = out.size() > kPadding ? out.size() - kPadding : 0;
  if (pos < cap) return true;
  if (cap >= kCap) return false;
  const size_t want = std::min(kCap, std::max(kInflateInitialBytes, cap * 2));
  try {
    out.resize(want + kPadding);
  } catch (const std::bad_alloc&) {
    *no_memory = true;
    return false;
  }
  return true;
}

}  // namespace

const char* to_string(Compression c) noexcept {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kZlibStream:
      return "zlib-stream";
    case Compression::kZstdStream:
      return "zstd-stream";
  }
  return "none";
}

std::optional<Compression> compression_from_name(std::string_view name) noexcept {
  if (name == "none") return Compression::kNone;
  if (name == "zlib-stream") return Compression::kZlibStream;
  if (name == "zstd-stream") return Compression::kZstdStream;
  return std::nullopt;
}

const char* to_string(InflateErrc e) noexcept {
  switch (e) {
    case InflateErrc::kOk:
      return "ok";
    case InflateErrc::kNeedMore:
      return "need_more";
    case InflateErrc::kCorrupt:
      return "corrupt";
    case InflateErrc::kTooLarge:
      return "too_large";
    case InflateErrc::kBomb:
      return "bomb";
    case InflateErrc::kNoMemory:
      return "no_memory";
  }
  return "unknown";
}

// ------------------------------------------------------------------ Inflater
struct Inflater::Impl {
  CountedHeap heap;
  bool zlib_ready = false;
  z_stream zs{};
  ZSTD_DCtx* zstd = nullptr;
  bool broken = false;
  std::string partial;    // zlib: output of a payload not yet ended
  size_t partial_in = 0;  // compressed bytes that made `partial`
  // zlib: the last bytes received, for a suffix split across messages.
  uint8_t tail[4] = {};
  size_t tail_len = 0;

  // Whether the payload's bytes so far (earlier messages, then `m`) end
  // with kZlibSuffix; remembers m's last bytes for the next message.
  bool ends_payload(std::span<const std::byte> m) noexcept {
    uint8_t last[8];
    size_t n = 0;
    const size_t keep = m.size() >= 4 ? 0 : std::min(tail_len, 4 - m.size());
    for (size_t i = tail_len - keep; i < tail_len; ++i) last[n++] = tail[i];
    const size_t from = m.size() >= 4 ? m.size() - 4 : 0;
    for (size_t i = from; i < m.size(); ++i) last[n++] = static_cast<uint8_t>(m[i]);
    std::memcpy(tail, last, n);
    tail_len = n;
    return n == 4 && std::memcmp(last, kZlibSuffix, 4) == 0;
  }

  ~Impl() {
    if (zlib_ready) inflateEnd(&zs);
    if (zstd != nullptr) ZSTD_freeDCtx(zstd);
  }

  bool start(Compression c) {
    broken = false;
    partial.clear();
    partial.shrink_to_fit();
    partial_in = 0;
    tail_len = 0;
    if (c == Compression::kZlibStream) {
      if (zlib_ready) return inflateReset(&zs) == Z_OK;
      zs = z_stream{};
      zs.zalloc = zlib_alloc;
      zs.zfree = zlib_free;
      zs.opaque = &heap;
      zlib_ready = inflateInit(&zs) == Z_OK;
      return zlib_ready;
    }
    if (c == Compression::kZstdStream) {
      if (zstd != nullptr) {
        return !ZSTD_isError(ZSTD_DCtx_reset(zstd, ZSTD_reset_session_only));
      }
      zstd = ZSTD_createDCtx_advanced(ZSTD_customMem{zstd_alloc, zstd_free, &heap});
      if (zstd == nullptr) return false;
      return !ZSTD_isError(ZSTD_DCtx_setParameter(zstd, ZSTD_d_windowLogMax, kZstdMaxWindowLog));
    }
    return true;
  }

  static InflateErrc check_ratio(size_t produced, size_t consumed) noexcept {
    if (produced > kInflateRatioFloorBytes && produced / kMaxInflateRatio > consumed) {
      return InflateErrc::kBomb;
    }
    return InflateErrc::kOk;
  }

  InflateErrc zlib(std::span<const std::byte> msg, InflateBuffer& out, size_t& pos) {
    size_t consumed_before = partial_in;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(msg.data()));
    zs.avail_in = static_cast<uInt>(msg.size());
    bool no_memory = false;
    while (true) {
      if (!grow(out, pos, &no_memory)) {
        return no_memory ? InflateErrc::kNoMemory : InflateErrc::kTooLarge;
      }
      const size_t room = out.size() - kPadding - pos;
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + pos);
      zs.avail_out = static_cast<uInt>(std::min<size_t>(room, UINT32_MAX));
      const uInt out_before = zs.avail_out;
      const int r = ::inflate(&zs, Z_SYNC_FLUSH);
      pos += out_before - zs.avail_out;
      const size_t consumed = consumed_before + (msg.size() - zs.avail_in);
      if (InflateErrc e = check_ratio(pos, consumed); e != InflateErrc::kOk) return e;
      switch (r) {
        case Z_OK:
          if (zs.avail_out != 0) return InflateErrc::kOk;  // all input used
          break;                                           // out full: grow
        case Z_BUF_ERROR:
          // No progress possible: either all input is used, or out is full.
          if (zs.avail_out != 0 || zs.avail_in == 0) return InflateErrc::kOk;
          break;
        case Z_MEM_ERROR:
          return InflateErrc::kNoMemory;
        default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR, Z_STREAM_END
          return InflateErrc::kCorrupt;
      }
    }
  }

  InflateErrc zstd_stream(std::span<const std::byte> msg, InflateBuffer& out, size_t& pos) {
    ZSTD_inBuffer in{msg.data(), msg.size(), 0};
    bool no_memory = false;
    if (msg.empty()) return InflateErrc::kCorrupt;
    while (true) {
      if (!grow(out, pos, &no_memory)) {
        return no_memory ? InflateErrc::kNoMemory : InflateErrc::kTooLarge;
      }
      ZSTD_outBuffer ob{out.data() + pos, out.size() - kPadding - pos, 0};
      const size_t r = ZSTD_decompressStream(zstd, &ob, &in);
      pos += ob.pos;
      if (ZSTD_isError(r)) {
        const ZSTD_ErrorCode code = ZSTD_getErrorCode(r);
        if (code == ZSTD_error_memory_allocation) return InflateErrc::kNoMemory;
        if (code == ZSTD_error_frameParameter_windowTooLarge) return InflateErrc::kTooLarge;
        return InflateErrc::kCorrupt;
      }
      if (InflateErrc e = check_ratio(pos, in.pos); e != InflateErrc::kOk) return e;
      // Done when every input byte is used and the output was not filled
      // (a full output may hide more flushed bytes). The server flushed, so
      // the stream must then stand between blocks: zstd's hint for what it
      // needs next is a block header (or nothing, at a frame's end). More
      // means the message stopped inside a block: refused, not half read.
      if (in.pos == in.size && ob.pos < ob.size) {
        return r == 0 || r == kZstdBlockHeaderBytes ? InflateErrc::kOk : InflateErrc::kCorrupt;
      }
    }
  }
};

Inflater::Inflater(Compression c) : compression_(c), impl_(new Impl()) {
  if (!impl_->start(c)) impl_->broken = true;
}
Inflater::~Inflater() { delete impl_; }
Inflater::Inflater(Inflater&& o) noexcept
    : compression_(o.compression_), impl_(std::exchange(o.impl_, nullptr)) {}
Inflater& Inflater::operator=(Inflater&& o) noexcept {
  if (this != &o) {
    delete impl_;
    compression_ = o.compression_;
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}

void Inflater::reset() {
  if (impl_ == nullptr) impl_ = new Impl();
  if (!impl_->start(compression_)) impl_->broken = true;
}

size_t Inflater::memory_bytes() const noexcept {
  return impl_ == nullptr ? 0 : impl_->heap.live + impl_->partial.capacity();
}

InflateErrc Inflater::inflate(std::span<const std::byte> message, InflateBuffer& out,
                              std::string_view* payload) {
  *payload = {};
  if (impl_ == nullptr || impl_->broken) return InflateErrc::kCorrupt;
  Impl& s = *impl_;
  size_t pos = 0;
  InflateErrc e = InflateErrc::kCorrupt;
  switch (compression_) {
    case Compression::kNone: {
      bool no_memory = false;
      if (message.size() > kMaxInflatedBytes) {
        e = InflateErrc::kTooLarge;
        break;
      }
      while (out.size() < message.size() + kPadding) {
        if (!grow(out, out.size() > kPadding ? out.size() - kPadding : 0, &no_memory)) break;
      }
      if (no_memory) {
        e = InflateErrc::kNoMemory;
        break;
      }
      std::memcpy(out.data(), message.data(), message.size());
      pos = message.size();
      e = InflateErrc::kOk;
      break;
    }
    case Compression::kZlibStream: {
      if (!s.partial.empty()) {  // a payload that began in earlier messages
        bool no_memory = false;
        while (out.size() < s.partial.size() + kPadding) {
          if (!grow(out, out.size() > kPadding ? out.size() - kPadding : 0, &no_memory)) break;
        }
        if (no_memory) {
          e = InflateErrc::kNoMemory;
          break;
        }
        std::memcpy(out.data(), s.partial.data(), s.partial.size());
        pos = s.partial.size();
      }
      e = s.zlib(message, out, pos);
      if (e == InflateErrc::kOk && pos > kMaxInflatedBytes) e = InflateErrc::kTooLarge;
      if (e == InflateErrc::kOk && !s.ends_payload(message)) {
        s.partial_in += message.size();
        s.partial.assign(out.data(), pos);
        return InflateErrc::kNeedMore;
      }
      s.partial.clear();
      s.partial_in = 0;
      s.tail_len = 0;
      break;
    }
    case Compression::kZstdStream:
      e = s.zstd_stream(message, out, pos);
      break;
  }
  if (e == InflateErrc::kOk && pos > kMaxInflatedBytes) e = InflateErrc::kTooLarge;
  if (e != InflateErrc::kOk) {
    s.broken = true;
    return e;
  }
  *payload = std::string_view(out.data(), pos);
  return InflateErrc::kOk;
}

// ------------------------------------------------------------------ Deflater
struct Deflater::Impl {
  CountedHeap heap;
  bool zlib_ready = false;
  z_stream zs{};
  ZSTD_CCtx* zstd = nullptr;

  ~Impl() {
    if (zlib_ready) deflateEnd(&zs);
    if (zstd != nullptr) ZSTD_freeCCtx(zstd);
  }
};

Deflater::Deflater(Compression c, int level, int zstd_window_log)
    : compression_(c), impl_(new Impl()) {
  Impl& s = *impl_;
  if (c == Compression::kZlibStream) {
    s.zs.zalloc = zlib_alloc;
    s.zs.zfree = zlib_free;
    s.zs.opaque = &s.heap;
    s.zlib_ready = deflateInit(&s.zs, level == 0 ? Z_DEFAULT_COMPRESSION : level) == Z_OK;
  } else if (c == Compression::kZstdStream) {
    s.zstd = ZSTD_createCCtx_advanced(ZSTD_customMem{zstd_alloc, zstd_free, &s.heap});
    if (s.zstd != nullptr) {
      ZSTD_CCtx_setParameter(s.zstd, ZSTD_c_compressionLevel, level == 0 ? 3 : level);
      if (zstd_window_log != 0) {
        // A small window gets small match tables too: a server keeps one
        // context per connection (~150 KiB at window 17, not ~1 MiB).
        ZSTD_CCtx_setParameter(s.zstd, ZSTD_c_windowLog, zstd_window_log);
        ZSTD_CCtx_setParameter(s.zstd, ZSTD_c_hashLog, std::max(10, zstd_window_log - 3));
        ZSTD_CCtx_setParameter(s.zstd, ZSTD_c_chainLog, std::max(10, zstd_window_log - 3));
      }
    }
  }
}
Deflater::~Deflater() { delete impl_; }
Deflater::Deflater(Deflater&& o) noexcept
    : compression_(o.compression_), impl_(std::exchange(o.impl_, nullptr)) {}
Deflater& Deflater::operator=(Deflater&& o) noexcept {
  if (this != &o) {
    delete impl_;
    compression_ = o.compression_;
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}

size_t Deflater::memory_bytes() const noexcept { return impl_ == nullptr ? 0 : impl_->heap.live; }

bool Deflater::compress(std::string_view payload, std::string& out) {
  if (impl_ == nullptr || payload.empty()) return false;
  Impl& s = *impl_;
  switch (compression_) {
    case Compression::kNone:
      out.append(payload);
      return true;
    case Compression::kZlibStream: {
      if (!s.zlib_ready) return false;
      s.zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
      s.zs.avail_in = static_cast<uInt>(payload.size());
      while (true) {
        const size_t at = out.size();
        const size_t room = deflateBound(&s.zs, s.zs.avail_in) + 16;
        out.resize(at + room);
        s.zs.next_out = reinterpret_cast<Bytef*>(out.data() + at);
        s.zs.avail_out = static_cast<uInt>(room);
        const int r = deflate(&s.zs, Z_SYNC_FLUSH);
        out.resize(at + room - s.zs.avail_out);
        if (r != Z_OK && r != Z_BUF_ERROR) return false;
        // Flushed completely when deflate left output room unused.
        if (s.zs.avail_in == 0 && s.zs.avail_out != 0) return true;
      }
    }
    case Compression::kZstdStream: {
      if (s.zstd == nullptr) return false;
      ZSTD_inBuffer in{payload.data(), payload.size(), 0};
      while (true) {
        const size_t at = out.size();
        const size_t room = ZSTD_compressBound(payload.size() - in.pos) + 64;
        out.resize(at + room);
        ZSTD_outBuffer ob{out.data() + at, room, 0};
        const size_t left = ZSTD_compressStream2(s.zstd, &ob, &in, ZSTD_e_flush);
        out.resize(at + ob.pos);
        if (ZSTD_isError(left)) return false;
        if (left == 0 && in.pos == in.size) return true;
      }
    }
  }
  return false;
}

}  // namespace shardring::parse
