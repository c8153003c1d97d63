// parse/canonical.cc: see canonical.h.
//
// How d is read. build_marks() runs once over d's bytes, 64 at a time:
// backslashes and quotes give the unescaped quotes (a character is escaped
// when an unescaped backslash precedes it; backslashes are rare in gateway
// traffic, so their few bits are followed one by one), a prefix XOR of those
// quotes gives the bytes inside strings, and `{[` / `}]` outside strings are
// the brackets. Control characters inside strings, or anywhere other than
// JSON whitespace, send the message to the general path. Then the envelope
// and d's top level are walked token by token, taking the next quote for a
// string and jumping to the matching bracket for an object or array (counted
// 64 brackets at a time with popcounts), so the walk costs per top-level
// key, not per byte.
#include "parse/canonical.h"

#include <immintrin.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <optional>

#include "parse/digits.h"

namespace shardring::parse::detail {
namespace {

constexpr size_t kNone = SIZE_MAX;

bool have_avx2() noexcept {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
                          __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("popcnt");
  return yes;
}

bool have_avx512() noexcept {
  static const bool yes =
      have_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return yes;
}

// Bytes that end a scalar token (1), or may not appear in one (2).
constexpr auto kScalarStop = [] {
  std::array<uint8_t, 256> t{};
  for (unsigned char c : {',', '}', ']', ' ', '\t', '\n', '\r'}) t[c] = 1;
  for (unsigned char c : {'"', '{', '[', ':'}) t[c] = 2;
  return t;
}();

// Bit i of the result: the XOR of bits 0..i of x (a carry-less multiply by
// all ones, as simdjson finds the bytes inside strings).
[[gnu::target("pclmul")]] inline uint64_t prefix_xor(uint64_t x) noexcept {
  const __m128i all_ones = _mm_set1_epi8(static_cast<char>(0xFF));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(
      _mm_clmulepi64_si128(_mm_set_epi64x(0, static_cast<int64_t>(x)), all_ones, 0)));
}

// Bits of the 64 bytes at p equal to c.
[[gnu::target("avx2")]] inline uint64_t eq64(__m256i lo, __m256i hi, char c) noexcept {
  const __m256i v = _mm256_set1_epi8(c);
  const uint32_t a = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, v)));
  const uint32_t b = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, v)));
  return a | (uint64_t{b} << 32);
}

// Bits of bytes <= 0x1F.
[[gnu::target("avx2")]] inline uint64_t ctrl64(__m256i lo, __m256i hi) noexcept {
  const __m256i top = _mm256_set1_epi8(0x1F);
  const uint32_t a =
      static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(lo, top), top)));
  const uint32_t b =
      static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(hi, top), top)));
  return a | (uint64_t{b} << 32);
}

// What build_marks carries from one 64-byte block to the next.
struct MarkState {
  uint64_t escape_next = 0;  // 1: the first byte of this block is escaped
  uint64_t inside = 0;       // all ones: this block starts inside a string
  uint64_t slashes = 0;      // any backslash so far
};

// The kernel-independent part of a block: escapes, quotes, strings,
// control characters, brackets. `valid` masks the bytes past the end;
// `ws` is only read when `ctrl` has a bit. False when a control character
// stands where JSON allows none. Plain 64-bit work (and one carry-less
// multiply), inlined into each kernel's loop.
[[gnu::target("bmi,pclmul")]] inline bool mark_block(MarkState& st, Marks& m, size_t b,
                                                     uint64_t valid, uint64_t bs, uint64_t quote,
                                                     uint64_t ctrl, uint64_t ws, uint64_t open,
                                                     uint64_t close) noexcept {
  bs &= valid;
  m.slash[b] = bs;
  st.slashes |= bs;
  uint64_t escaped = st.escape_next;
  if (bs != 0 || st.escape_next != 0) {
    bs &= ~st.escape_next;  // an escaped backslash escapes nothing
    st.escape_next = 0;
    while (bs != 0) {
      const unsigned i = static_cast<unsigned>(std::countr_zero(bs));
      if (i == 63) {
        st.escape_next = 1;
        break;
      }
      escaped |= uint64_t{2} << i;
      bs &= ~(uint64_t{3} << i);
    }
  }
  quote &= valid & ~escaped;
  const uint64_t str = prefix_xor(quote) ^ st.inside;  // opening quote .. before closing
  st.inside = static_cast<uint64_t>(static_cast<int64_t>(str) >> 63);
  ctrl &= valid;
  if (ctrl != 0 && (ctrl & (str | ~ws)) != 0) return false;
  m.quote[b] = quote;
  m.open[b] = open & valid & ~str;
  m.close[b] = close & valid & ~str;
  return true;
}

void size_marks(Marks& m, size_t blocks) {
  if (m.quote.size() < blocks) {
    m.quote.resize(blocks);
    m.open.resize(blocks);
    m.close.resize(blocks);
    m.slash.resize(blocks);
  }
}

// One block of each kernel: the 64 bytes at s, block b; `valid` masks the
// bytes before the end (all ones but in the last block: the loops below pass
// the constant, so the full blocks' masking folds away).
[[gnu::target("avx2,bmi,pclmul"), gnu::always_inline]] inline bool mark_avx2(
    const char* s, size_t b, uint64_t valid, size_t len, MarkState& st, Marks& m,
    size_t& ascii_from) noexcept {
  const __m256i case_bit = _mm256_set1_epi8(0x20);
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32));
  if (ascii_from == len) {
    const uint64_t high = (static_cast<uint32_t>(_mm256_movemask_epi8(lo)) |
                           uint64_t{static_cast<uint32_t>(_mm256_movemask_epi8(hi))} << 32) &
                          valid;
    if (high != 0) ascii_from = b * 64;
  }
  const uint64_t ctrl = ctrl64(lo, hi) & valid;
  const uint64_t ws =
      ctrl == 0 ? 0
                : eq64(lo, hi, ' ') | eq64(lo, hi, '\t') | eq64(lo, hi, '\n') | eq64(lo, hi, '\r');
  // '[' | 0x20 == '{' and ']' | 0x20 == '}'.
  const __m256i flo = _mm256_or_si256(lo, case_bit);
  const __m256i fhi = _mm256_or_si256(hi, case_bit);
  return mark_block(st, m, b, valid, eq64(lo, hi, '\\'), eq64(lo, hi, '"'), ctrl, ws,
                    eq64(flo, fhi, '{'), eq64(flo, fhi, '}'));
}

[[gnu::target("avx512f,avx512bw,bmi,pclmul"), gnu::always_inline]] inline bool mark_avx512(
    const char* s, size_t b, uint64_t valid, size_t len, MarkState& st, Marks& m,
    size_t& ascii_from) noexcept {
  const __m512i v = _mm512_loadu_si512(s);
  if (ascii_from == len && (_mm512_movepi8_mask(v) & valid) != 0) ascii_from = b * 64;
  const uint64_t ctrl = _mm512_cmple_epu8_mask(v, _mm512_set1_epi8(0x1F)) & valid;
  const uint64_t ws = ctrl == 0 ? 0
                                : _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(' ')) |
                                      _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\t')) |
                                      _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n')) |
                                      _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
  const __m512i folded = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
  return mark_block(st, m, b, valid, _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\')),
                    _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"')), ctrl, ws,
                    _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8('{')),
                    _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8('}')));
}

// Fills `m` for the len bytes at p (readable up to 63 bytes past the end:
// the message's padding) and sets `ascii_from` to the offset of the first
// block holding a byte >= 0x80 (len when none: nothing for UTF-8 to check
// before it). False when a string is left open or a control character
// stands where JSON allows none. Two kernels give the same marks: AVX2
// (two 32-byte halves per block) and AVX-512BW (one register, compares
// straight into 64-bit masks).
[[gnu::target("avx2,bmi,pclmul")]] bool build_marks_avx2(const char* p, size_t len, Marks& m,
                                                         size_t& ascii_from) noexcept {
  const size_t full = len / 64;
  size_marks(m, (len + 63) / 64);
  MarkState st;
  ascii_from = len;
  for (size_t b = 0; b < full; ++b) {
    if (!mark_avx2(p + b * 64, b, ~uint64_t{0}, len, st, m, ascii_from)) return false;
  }
  if (len % 64 != 0 &&
      !mark_avx2(p + full * 64, full, (uint64_t{1} << (len % 64)) - 1, len, st, m, ascii_from)) {
    return false;
  }
  m.any_slash = st.slashes != 0;
  return st.inside == 0;
}

[[gnu::target("avx512f,avx512bw,bmi,pclmul")]] bool build_marks_avx512(
    const char* p, size_t len, Marks& m, size_t& ascii_from) noexcept {
  const size_t full = len / 64;
  size_marks(m, (len + 63) / 64);
  MarkState st;
  ascii_from = len;
  for (size_t b = 0; b < full; ++b) {
    if (!mark_avx512(p + b * 64, b, ~uint64_t{0}, len, st, m, ascii_from)) return false;
  }
  if (len % 64 != 0 &&
      !mark_avx512(p + full * 64, full, (uint64_t{1} << (len % 64)) - 1, len, st, m, ascii_from)) {
    return false;
  }
  m.any_slash = st.slashes != 0;
  return st.inside == 0;
}

bool build_marks(Simd simd, const char* p, size_t len, Marks& m, size_t& ascii_from) noexcept {
  return simd == Simd::kAvx512 ? build_marks_avx512(p, len, m, ascii_from)
                               : build_marks_avx2(p, len, m, ascii_from);
}

// The message's quotes in order, taken as bits popped from the quote masks.
// Held in registers by its user (a local, never passed by reference), the
// next quote costs a bit pop, not a search from a position: the walk's
// positions then do not wait on its loads.
class QuoteCursor {
 public:
  QuoteCursor(const uint64_t* quote, size_t blocks, size_t from) noexcept
      : quote_(quote), blocks_(blocks) {
    seek(from);
  }
  // Drops the quotes before `at`.
  void seek(size_t at) noexcept {
    block_ = at / 64;
    bits_ = block_ < blocks_ ? quote_[block_] & (~uint64_t{0} << (at % 64)) : 0;
  }
  // Takes the next quote, or kNone.
  size_t pop() noexcept {
    while (bits_ == 0) {
      if (block_ + 1 >= blocks_) return kNone;
      bits_ = quote_[++block_];
    }
    const size_t q = block_ * 64 + static_cast<size_t>(std::countr_zero(bits_));
    bits_ &= bits_ - 1;
    return q;
  }

 private:
  const uint64_t* quote_;
  size_t blocks_;
  size_t block_ = 0;
  uint64_t bits_ = 0;
};

// Bytes of v in [lo, hi], for ASCII bounds (SSE2 signed compares: a byte
// >= 0x80 is below any of them).
inline __m128i bytes_in(__m128i v, char lo, char hi) noexcept {
  return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                       _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
}

// The walk over the message's tokens, positions relative to its first byte.
class Walk {
 public:
  Walk(const char* p, size_t len, const Marks& m)
      : p_(p), len_(len), blocks_((len + 63) / 64), m_(m) {}

  char at(size_t pos) const noexcept { return p_[pos]; }
  std::string_view text(size_t from, size_t to) const noexcept {
    return std::string_view(p_ + from, to - from);
  }

  // The first unescaped quote after `pos`, or kNone.
  size_t quote_after(size_t pos) const noexcept {
    size_t b = (pos + 1) / 64;
    const size_t blocks = blocks_;
    if (b >= blocks) return kNone;
    uint64_t bits = m_.quote[b] & (~uint64_t{0} << ((pos + 1) % 64));
    while (bits == 0) {
      if (++b >= blocks) return kNone;
      bits = m_.quote[b];
    }
    return b * 64 + static_cast<size_t>(std::countr_zero(bits));
  }

  // The bracket closing the one at `pos`, or kNone. Brackets are counted,
  // not matched by kind, as simdjson's On-Demand skips a value (the general
  // path accepts `{"a":{]}` below d's top level too). A block whose closing
  // brackets are fewer than the open ones cannot hold the match: it costs
  // two popcounts, whatever its nesting.
  // (Built for POPCNT, which every AVX2 processor has: without it each
  // popcount is a call into libgcc.)
  [[gnu::target("popcnt")]] size_t match(size_t pos) const noexcept {
    const size_t blocks = blocks_;
    size_t b = pos / 64;
    uint64_t from = pos % 64 == 63 ? 0 : ~uint64_t{0} << (pos % 64 + 1);
    size_t depth = 1;
    for (; b < blocks; ++b, from = ~uint64_t{0}) {
      const uint64_t opens = m_.open[b] & from;
      const uint64_t closes = m_.close[b] & from;
      const auto n_close = static_cast<size_t>(__builtin_popcountll(closes));
      if (n_close < depth) {
        depth += static_cast<size_t>(__builtin_popcountll(opens)) - n_close;
        continue;
      }
      // The match may be here: count bracket by bracket, in order.
      uint64_t bits = opens | closes;
      while (bits != 0) {
        const uint64_t low = bits & (0 - bits);
        bits ^= low;
        if ((opens & low) != 0) {
          ++depth;
        } else if (--depth == 0) {
          return b * 64 + static_cast<size_t>(std::countr_zero(low));
        }
      }
    }
    return kNone;
  }

  // Whether a backslash lies in [from, to).
  bool any_slash(size_t from, size_t to) const noexcept {
    if (!m_.any_slash || from >= to) return false;
    const size_t last = (to - 1) / 64;
    for (size_t b = from / 64; b <= last; ++b) {
      uint64_t bits = m_.slash[b];
      if (b == from / 64) bits &= ~uint64_t{0} << (from % 64);
      if (b == last && to % 64 != 0) bits &= (uint64_t{1} << (to % 64)) - 1;
      if (bits != 0) return true;
    }
    return false;
  }

  // Whether the message holds `lit` at `pos` (compared as one or two loads:
  // the message is padded).
  bool starts(size_t pos, std::string_view lit) const noexcept {
    if (pos + lit.size() > len_) return false;
    uint64_t a = 0, b = 0;
    std::memcpy(&a, p_ + pos, 8);
    std::memcpy(&b, lit.data(), lit.size() < 8 ? lit.size() : 8);
    const uint64_t keep = lit.size() >= 8 ? ~uint64_t{0} : (uint64_t{1} << (lit.size() * 8)) - 1;
    if (((a ^ b) & keep) != 0) return false;
    return lit.size() <= 8 || std::memcmp(p_ + pos + 8, lit.data() + 8, lit.size() - 8) == 0;
  }

  // One past the run of ASCII digits at `pos` (after one `-`), 16 bytes at
  // a time (SSE2; the message is padded), at most the message's end.
  size_t digits_end(size_t pos) const noexcept {
    size_t e = pos + (p_[pos] == '-' ? 1 : 0);
    while (e < len_) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_ + e));
      const uint32_t other =
          ~static_cast<uint32_t>(_mm_movemask_epi8(bytes_in(v, '0', '9'))) & 0xFFFF;
      if (other != 0) return std::min(len_, e + static_cast<size_t>(std::countr_zero(other)));
      e += 16;
    }
    return len_;
  }

  size_t skip_space(size_t pos) const noexcept {
    while (pos < len_ && is_json_space(p_[pos])) ++pos;
    return pos;
  }

  // One past the value starting at `pos`, or kNone. Checks only that it
  // starts like a value and, for a scalar, that it ends where one may end.
  size_t value_end(size_t pos) const noexcept {
    if (pos >= len_) return kNone;
    const char c = p_[pos];
    if (c == '"') {
      const size_t q = quote_after(pos);
      return q == kNone ? kNone : q + 1;
    }
    if (c == '{' || c == '[') {
      const size_t close = match(pos);
      return close == kNone ? kNone : close + 1;
    }
    return scalar_end(pos);
  }

  // One past the scalar (number, true, false, null) starting at `pos`, or
  // kNone: it must start like one and end where one may end.
  size_t scalar_end(size_t pos) const noexcept {
    const char c = p_[pos];
    if (!(c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n')) return kNone;
    size_t e = pos + 1;
    while (e < len_) {
      const uint8_t stop = kScalarStop[static_cast<unsigned char>(p_[e])];
      if (stop == 1) break;
      if (stop == 2) return kNone;
      ++e;
    }
    return e;
  }

  // The message's quotes from `pos` on, in order.
  QuoteCursor cursor(size_t pos) const noexcept {
    return QuoteCursor(m_.quote.data(), blocks_, pos);
  }

  // The object at `pos`: its top level well formed (keys without escapes,
  // each value a string, a container skipped by counting brackets, or a
  // scalar that starts and ends right; `,` and `}` in place). Calls
  // `on_member(key, value_begin, value_end)` for each member (the key
  // without quotes); false from it refuses the object. Returns one past the
  // closing brace, or kNone.
  //
  // The quotes are taken in order from a cursor held in registers (a bit pop
  // per quote) rather than searched for from each position, so one member's
  // reads do not wait on the last one's.
  template <class OnMember>
  size_t object(size_t pos, OnMember&& on_member) const noexcept {
    QuoteCursor quotes = cursor(pos + 1);
    pos = skip_space(pos + 1);
    if (pos < len_ && p_[pos] == '}') return pos + 1;
    while (true) {
      if (quotes.pop() != pos) return kNone;  // a key starts here
      const size_t key_end = quotes.pop();
      if (key_end == kNone || any_slash(pos + 1, key_end)) return kNone;
      const std::string_view key = text(pos + 1, key_end);
      pos = skip_space(key_end + 1);
      if (pos >= len_ || p_[pos] != ':') return kNone;
      const size_t v = skip_space(pos + 1);
      if (v >= len_) return kNone;
      size_t end = kNone;
      switch (p_[v]) {
        case '"': {
          if (quotes.pop() != v) return kNone;
          const size_t q = quotes.pop();
          if (q == kNone) return kNone;
          end = q + 1;
          break;
        }
        case '{':
        case '[': {
          const size_t close = match(v);
          if (close == kNone) return kNone;
          end = close + 1;
          quotes.seek(end);
          break;
        }
        default:
          end = scalar_end(v);  // holds no quote: the cursor stays in step
          if (end == kNone) return kNone;
      }
      if (!on_member(key, v, end)) return kNone;
      pos = skip_space(end);
      if (pos >= len_) return kNone;
      if (p_[pos] == '}') return pos + 1;
      if (p_[pos] != ',') return kNone;
      pos = skip_space(pos + 1);
    }
  }

  // The array at `pos`: its values started right and skipped. Returns one
  // past the closing bracket, or kNone.
  size_t array(size_t pos) const noexcept {
    pos = skip_space(pos + 1);
    if (pos < len_ && p_[pos] == ']') return pos + 1;
    while (true) {
      const size_t end = value_end(pos);
      if (end == kNone) return kNone;
      pos = skip_space(end);
      if (pos >= len_) return kNone;
      if (p_[pos] == ']') return pos + 1;
      if (p_[pos] != ',') return kNone;
      pos = skip_space(pos + 1);
    }
  }

 private:
  const char* p_;
  size_t len_;
  size_t blocks_;
  const Marks& m_;
};

// The envelope's members, and how each starts in the canonical order.
enum class Member : uint8_t { kT, kS, kOp, kTs, kD, kOther };
constexpr std::string_view kLeadT = "{\"t\":", kLeadS = ",\"s\":", kLeadOp = ",\"op\":",
                           kLeadTs = ",\"_ts_ns\":", kLeadD = ",\"d\":";

Member member_of(std::string_view key) noexcept {
  if (key == "t") return Member::kT;
  if (key == "s") return Member::kS;
  if (key == "op") return Member::kOp;
  if (key == "_ts_ns") return Member::kTs;
  if (key == "d") return Member::kD;
  return Member::kOther;
}

// Whether every byte of `name` is A-Z, 0-9 or _, as an event name's are:
// 16 bytes at a time (SSE2; the bytes past the name are the message's or its
// padding).
bool event_name_chars(std::string_view name) noexcept {
  for (size_t i = 0; i < name.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(name.data() + i));
    const __m128i ok = _mm_or_si128(_mm_or_si128(bytes_in(v, 'A', 'Z'), bytes_in(v, '0', '9')),
                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
    const size_t n = name.size() - i;
    const uint32_t want = n >= 16 ? 0xFFFF : (uint32_t{1} << n) - 1;
    if ((static_cast<uint32_t>(_mm_movemask_epi8(ok)) & want) != want) return false;
  }
  return true;
}

// A JSON integer token without sign, fraction or exponent, no leading zero.
std::optional<uint64_t> plain_uint(std::string_view tok) noexcept {
  if (tok.size() > 1 && tok[0] == '0') return std::nullopt;
  return decimal_u64(tok);
}

}  // namespace

Simd best_simd() noexcept {
  if (have_avx512()) return Simd::kAvx512;
  return have_avx2() ? Simd::kAvx2 : Simd::kNone;
}

bool try_canonical(std::string_view msg, bool routing_keys, Envelope& out, Marks& marks,
                   Simd simd) noexcept {
  static const Simd best = best_simd();
  if (best == Simd::kNone || simd == Simd::kNone || msg.size() > kMaxMessageBytes) return false;
  if (simd != Simd::kAvx2) simd = best;  // kBest, or kAvx512 where the CPU has only AVX2
  // The object, without whitespace around it.
  size_t first = 0, last = msg.size();
  while (first < last && is_json_space(msg[first])) ++first;
  while (last > first && is_json_space(msg[last - 1])) --last;
  if (last - first < 2 || msg[first] != '{') return false;
  const std::string_view obj = msg.substr(first, last - first);
  size_t ascii_from = 0;
  if (!build_marks(simd, obj.data(), obj.size(), marks, ascii_from)) return false;
  const Walk w(obj.data(), obj.size(), marks);

  Envelope env;
  bool have_op = false, have_s = false, have_t = false, have_d = false;
  // Reads one envelope member; false refuses the message (to the general path).
  // `end`: one past the value when the caller has read it, or kNone (read
  // here). d's object or array is read here in any case.
  auto member = [&](Member key, size_t from, size_t end, size_t& to) -> bool {
    if (key == Member::kD) {
      if (have_d) return false;
      have_d = true;
      switch (w.at(from)) {
        case '{':
        case '[': {
          const bool object = w.at(from) == '{';
          RoutingKeys* keys = routing_keys ? &env.routing : nullptr;
          auto routing = [&](std::string_view k, size_t a, size_t b) {
            if (keys != nullptr) {
              if (k == "guild_id") set_snowflake(keys->guild_id, w.text(a, b));
              if (k == "channel_id") set_snowflake(keys->channel_id, w.text(a, b));
            }
            return true;
          };
          to = object ? w.object(from, routing) : w.array(from);
          if (to == kNone) return false;
          env.d_kind = object ? JsonKind::kObject : JsonKind::kArray;
          env.d = w.text(from, to);
          return true;
        }
        case 'n':
        case 't':
        case 'f':
          to = end != kNone ? end : w.value_end(from);
          if (to == kNone) return false;
          env.d = w.text(from, to);
          env.d_kind = env.d == "null" ? JsonKind::kNull : JsonKind::kBool;
          return env.d == "null" || env.d == "true" || env.d == "false";
        default:
          return false;  // numbers and strings: rare, the general path reads them
      }
    }
    to = end != kNone ? end : w.value_end(from);
    if (to == kNone) return false;
    const std::string_view tok = w.text(from, to);
    if (key == Member::kOp) {
      if (have_op) return false;
      have_op = true;
      const bool negative = tok[0] == '-';
      const auto v = plain_uint(negative ? tok.substr(1) : tok);
      if (!v || (negative && *v == 0) ||
          *v > (negative ? uint64_t{1} << 31 : (uint64_t{1} << 31) - 1)) {
        return false;
      }
      env.op =
          negative ? static_cast<int32_t>(-static_cast<int64_t>(*v)) : static_cast<int32_t>(*v);
    } else if (key == Member::kS) {
      if (have_s) return false;
      have_s = true;
      if (tok != "null") {
        const auto v = plain_uint(tok);
        if (!v) return false;
        env.s = *v;
      }
    } else if (key == Member::kT) {
      if (have_t) return false;
      have_t = true;
      if (tok != "null") {
        if (tok.size() < 3 || tok[0] != '"') return false;
        const std::string_view name = tok.substr(1, tok.size() - 2);
        if (!event_name_chars(name)) return false;
        env.t = name;
        env.type = event_type_from_name(name);
      }
    } else if (key == Member::kTs) {
      if (auto v = decimal_u64(tok)) env.stamp_ns = *v;
    }
    return true;
  };
  // The members in the order Discord and `shardring gateway` write them,
  // matched byte for byte; any other order or spacing is walked member by
  // member.
  size_t end = kNone;
  {
    size_t pos = 0, to = kNone;
    auto next = [&](std::string_view lead, Member key) {
      if (!w.starts(pos, lead)) return false;
      // A number's end found 16 bytes at a time; the lead after it (or the
      // walk member by member) checks what follows.
      const size_t from = pos + lead.size();
      const char c = w.at(from);
      const bool number = key != Member::kD && (c == '-' || (c >= '0' && c <= '9'));
      if (!member(key, from, number ? w.digits_end(from) : kNone, to)) return false;
      pos = to;
      return true;
    };
    if (next(kLeadT, Member::kT) && next(kLeadS, Member::kS) && next(kLeadOp, Member::kOp) &&
        (!w.starts(pos, kLeadTs) || next(kLeadTs, Member::kTs)) && next(kLeadD, Member::kD) &&
        pos + 1 == obj.size() && w.at(pos) == '}') {
      end = obj.size();
    }
  }
  if (end == kNone) {
    env = Envelope{};
    have_op = have_s = have_t = have_d = false;
    end = w.object(0, [&](std::string_view key, size_t from, size_t value_end) {
      size_t to = kNone;
      return member(member_of(key), from, value_end, to) && to == value_end;
    });
  }
  if (end != obj.size() || !have_op) return false;
  // Whitespace around the object and the blocks before ascii_from are ASCII.
  if (ascii_from < obj.size() &&
      !simdjson::validate_utf8(obj.data() + ascii_from, obj.size() - ascii_from)) {
    return false;
  }
  out = env;
  return true;
}

}  // namespace shardring::parse::detail
