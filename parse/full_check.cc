// parse/full_check.cc: see full_check.h.
//
// The index. After stage 1, idx[0..n) holds the offset of every structural
// byte in order: `{ } [ ] : ,`, the opening quote of every string, and the
// first byte of every other scalar. A scalar's token runs to the next
// structural byte (whitespace trimmed); any byte that is neither whitespace
// nor an operator after a string's closing quote starts a new token, so
// `"a"x` is two values and `12x` one bad number: the grammar sees both.
#include "parse/full_check.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "parse/digits.h"
#include "parse/envelope_key.h"
#include "parse/simdjson_errc.h"

namespace shardring::parse::detail {
namespace {

using internal::from_simdjson;
using internal::trim_right;

using Key = EnvelopeKey;

// One text's index, and the checks that read it.
class Walk {
 public:
  Walk(const char* p, size_t len, const uint32_t* idx, uint32_t n,
       const simdjson::internal::dom_parser_implementation& impl, uint8_t* strings) noexcept
      : p_(p), len_(len), idx_(idx), n_(n), impl_(impl), strings_(strings) {}

  uint32_t size() const noexcept { return n_; }
  // The structural byte i, or '\0' past the last.
  char at(uint32_t i) const noexcept { return i < n_ ? p_[idx_[i]] : '\0'; }
  size_t offset(uint32_t i) const noexcept { return i < n_ ? idx_[i] : len_; }
  // The token at structural i: up to the next one, whitespace trimmed.
  std::string_view token(uint32_t i) const noexcept {
    return trim_right(std::string_view(p_ + idx_[i], offset(i + 1) - idx_[i]));
  }

  // The string whose opening quote is structural i: its escapes decode
  // (stage 1 checked the rest). `decoded` (if given) receives the content,
  // decoded when it held a backslash.
  bool string_ok(uint32_t i, std::string_view* decoded = nullptr) noexcept {
    const size_t open = idx_[i];
    const char* content = p_ + open + 1;
    // The next backslash at or after the string, found by one memchr per
    // backslash in the text (most gateway texts have none), not per string.
    if (slash_ < content) {
      slash_ = static_cast<const char*>(std::memchr(content, '\\', len_ - open - 1));
      if (slash_ == nullptr) slash_ = p_ + len_;
    }
    if (slash_ >= p_ + offset(i + 1)) {
      if (decoded != nullptr) {
        const std::string_view tok = token(i);  // the string with both quotes
        *decoded = std::string_view(content, tok.size() - 2);
      }
      return true;
    }
    // Decoded at its own offset: never longer than the source, so strings
    // decoded earlier in this text (t) stay intact.
    uint8_t* const dst = strings_ + open;
    const uint8_t* const end = impl_.parse_string(reinterpret_cast<const uint8_t*>(content), dst);
    if (end == nullptr) return false;
    if (decoded != nullptr) {
      *decoded = std::string_view(reinterpret_cast<const char*>(dst), size_t(end - dst));
    }
    return true;
  }

  // A literal or number token.
  static bool scalar_ok(std::string_view tok) noexcept {
    // Fixed-size compares, inlined (a string_view == calls memcmp).
    switch (tok[0]) {
      case 't':
        return tok.size() == 4 && std::memcmp(tok.data(), "true", 4) == 0;
      case 'f':
        return tok.size() == 5 && std::memcmp(tok.data(), "false", 5) == 0;
      case 'n':
        return is_null(tok);
      default:
        return is_json_number(tok);
    }
  }
  static bool is_null(std::string_view tok) noexcept {
    return tok.size() == 4 && std::memcmp(tok.data(), "null", 4) == 0;
  }

  // Checks the value at structural i, whose brackets (if any) sit at nesting
  // `depth`, and moves i past it. kOk, kBadD or kTooDeep.
  Errc value(uint32_t& i, size_t depth) noexcept {
    // The loop runs on a copy held in registers: through `this` every store
    // (i, the backslash cursor) would reload the text and index pointers.
    Walk local = *this;
    uint32_t at_i = i;
    const Errc e = local.value_here(at_i, depth);
    slash_ = local.slash_;
    i = at_i;
    return e;
  }

  // d's object at structural i, its top-level keys read for guild_id and
  // channel_id; moves i past it. kOk, kBadD or kTooDeep.
  Errc routed_object(uint32_t& i, RoutingKeys& keys) noexcept {
    Walk w = *this;  // as in value()
    uint32_t at_i = i;
    const Errc e = w.routed_here(at_i, keys);
    slash_ = w.slash_;
    i = at_i;
    return e;
  }

 private:
  [[gnu::always_inline]] inline Errc routed_here(uint32_t& i, RoutingKeys& keys) noexcept {
    if (at(++i) == '}') {
      ++i;
      return Errc::kOk;
    }
    while (true) {
      std::string_view key;
      if (at(i) != '"' || !string_ok(i, &key)) return Errc::kBadD;
      if (at(++i) != ':') return Errc::kBadD;
      ++i;
      // Only 8- and 10-byte keys can be routing keys.
      std::optional<uint64_t>* slot = nullptr;
      if (key.size() == 8 && std::memcmp(key.data(), "guild_id", 8) == 0) slot = &keys.guild_id;
      if (key.size() == 10 && std::memcmp(key.data(), "channel_id", 10) == 0) {
        slot = &keys.channel_id;
      }
      if (slot != nullptr && i < n_) set_snowflake(*slot, token(i));
      if (Errc e = value_here(i, 3); e != Errc::kOk) return e;
      const char c = at(i++);
      if (c == '}') return Errc::kOk;
      if (c != ',') return Errc::kBadD;
    }
  }

  [[gnu::always_inline]] inline Errc value_here(uint32_t& i, size_t depth) noexcept {
    // Bit k: the container open at level k is an array.
    uint64_t arrays[kMaxDepth / 64 + 1];
    size_t level = 0;
  start:
    if (i >= n_) return Errc::kBadD;
    switch (p_[idx_[i]]) {
      case '{':
      case '[': {
        if (depth + level > kMaxDepth) return Errc::kTooDeep;
        const bool array = p_[idx_[i]] == '[';
        const uint64_t bit = uint64_t{1} << (level % 64);
        arrays[level / 64] = array ? arrays[level / 64] | bit : arrays[level / 64] & ~bit;
        ++level;
        if (at(++i) == (array ? ']' : '}')) {  // empty
          ++i;
          --level;
          goto after;
        }
        if (array) goto start;
        goto key;
      }
      case '"':
        if (!string_ok(i)) return Errc::kBadD;
        ++i;
        goto after;
      case '}':
      case ']':
      case ':':
      case ',':
        return Errc::kBadD;
      default:
        if (!scalar_ok(token(i))) return Errc::kBadD;
        ++i;
        goto after;
    }
  key:
    if (at(i) != '"' || !string_ok(i)) return Errc::kBadD;
    if (at(++i) != ':') return Errc::kBadD;
    ++i;
    goto start;
  after:
    if (level == 0) return Errc::kOk;
    {
      const bool array = ((arrays[(level - 1) / 64] >> ((level - 1) % 64)) & 1) != 0;
      const char c = at(i);
      if (c == ',') {
        ++i;
        if (array) goto start;
        goto key;
      }
      if (c != (array ? ']' : '}')) return Errc::kBadD;
      ++i;
      --level;
      goto after;
    }
  }

 public:
  // The text of the value spanning structurals [first, next): from its first
  // byte to its last.
  std::string_view text(uint32_t first, uint32_t next) const noexcept {
    const size_t begin = idx_[first];
    const uint32_t last = next - 1;
    const char c = p_[idx_[last]];
    if (c == '}' || c == ']') return std::string_view(p_ + begin, idx_[last] + 1 - begin);
    const std::string_view tok = token(last);
    return std::string_view(p_ + begin, size_t(tok.data() + tok.size() - (p_ + begin)));
  }

 private:
  const char* p_;
  size_t len_;
  const uint32_t* idx_;
  uint32_t n_;
  const simdjson::internal::dom_parser_implementation& impl_;
  uint8_t* strings_;
  const char* slash_ = nullptr;  // the next backslash; p_ + len_ when none
};

// An integer token (JSON syntax, no fraction or exponent) as sign and
// magnitude; false when it is not one or exceeds 2^64-1.
bool integer(std::string_view tok, bool& negative, uint64_t& magnitude) noexcept {
  if (tok.empty() || !is_json_number(tok)) return false;
  negative = tok[0] == '-';
  if (negative) tok.remove_prefix(1);
  if (tok.find_first_of(".eE") != std::string_view::npos) return false;
  const auto v = decimal_u64(tok);
  if (!v) return false;
  magnitude = *v;
  return true;
}

JsonKind kind_at(char c) noexcept {
  switch (c) {
    case '{':
      return JsonKind::kObject;
    case '[':
      return JsonKind::kArray;
    case '"':
      return JsonKind::kString;
    case 't':
    case 'f':
      return JsonKind::kBool;
    case 'n':
      return JsonKind::kNull;
    default:
      return c == '-' || (c >= '0' && c <= '9') ? JsonKind::kNumber : JsonKind::kAbsent;
  }
}

}  // namespace

FullCheck::FullCheck() noexcept = default;
FullCheck::~FullCheck() = default;
FullCheck::FullCheck(FullCheck&&) noexcept = default;
FullCheck& FullCheck::operator=(FullCheck&&) noexcept = default;

Errc FullCheck::index(std::string_view text) noexcept {
  if (text.size() > kMaxMessageBytes) return Errc::kTooLarge;
  if (stage1_ == nullptr || text.size() > capacity_) {
    const size_t want = std::min(kMaxMessageBytes,
                                 std::max({text.size(), 2 * capacity_, size_t{kInitialCapacity}}));
    if (stage1_ == nullptr) {
      if (simdjson::get_active_implementation()->create_dom_parser_implementation(want, kMaxDepth,
                                                                                  stage1_)) {
        return Errc::kNoMemory;
      }
    } else if (stage1_->allocate(want, kMaxDepth) != simdjson::SUCCESS) {
      return Errc::kNoMemory;
    }
    // Room for a decoded string written in whole SIMD blocks past its end.
    strings_.reset(new (std::nothrow) uint8_t[want + 2 * kPadding]);
    if (strings_ == nullptr) {
      capacity_ = 0;
      return Errc::kNoMemory;
    }
    capacity_ = want;
  }
  return from_simdjson(stage1_->stage1(reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                                       simdjson::stage1_mode::regular));
}

Errc FullCheck::parse(std::string_view msg, bool routing_keys, Envelope& out) noexcept {
  out = Envelope{};
  if (Errc e = index(msg); e != Errc::kOk) return e;
  Walk w(msg.data(), msg.size(), stage1_->structural_indexes.get(), stage1_->n_structural_indexes,
         *stage1_, strings_.get());
  if (w.at(0) != '{') return Errc::kNotObject;
  // As On-Demand opens a root object: it must end the text with its '}'
  // (`{...}x` is malformed; `{...}}` is an object with trailing data).
  if (w.at(w.size() - 1) != '}') return Errc::kBadJson;
  bool have_op = false, have_s = false, have_t = false, have_d = false;
  uint32_t i = 1;
  if (w.at(i) == '}') {
    ++i;
  } else {
    while (true) {
      std::string_view key;
      if (w.at(i) != '"' || !w.string_ok(i, &key)) return Errc::kBadJson;
      // string_ok leaves `key` in the message unless it decoded escapes.
      const Key k = envelope_key(key, key.data() != msg.data() + w.offset(i) + 1);
      if (w.at(++i) != ':') return Errc::kBadJson;
      ++i;
      const char c = w.at(i);
      const bool scalar = kind_at(c) != JsonKind::kAbsent && c != '{' && c != '[';
      switch (k) {
        case Key::kOp: {
          if (have_op) return Errc::kDuplicateKey;
          have_op = true;
          bool negative = false;
          uint64_t v = 0;
          if (!scalar || !integer(w.token(i), negative, v) ||
              v > (negative ? uint64_t{1} << 31 : (uint64_t{1} << 31) - 1)) {
            return Errc::kBadOp;
          }
          out.op =
              negative ? static_cast<int32_t>(-static_cast<int64_t>(v)) : static_cast<int32_t>(v);
          ++i;
          break;
        }
        case Key::kS: {
          if (have_s) return Errc::kDuplicateKey;
          have_s = true;
          if (!scalar) return Errc::kBadSeq;
          const std::string_view tok = w.token(i);
          if (!Walk::is_null(tok)) {
            bool negative = false;
            uint64_t v = 0;
            if (!integer(tok, negative, v) || negative) return Errc::kBadSeq;
            out.s = v;
          }
          ++i;
          break;
        }
        case Key::kT: {
          if (have_t) return Errc::kDuplicateKey;
          have_t = true;
          if (c == '"') {
            std::string_view name;
            if (!w.string_ok(i, &name)) return Errc::kBadJson;
            out.t = name;
            out.type = event_type_from_name(name);
          } else if (!scalar || !Walk::is_null(w.token(i))) {
            return Errc::kBadType;
          }
          ++i;
          break;
        }
        case Key::kD: {
          if (have_d) return Errc::kDuplicateKey;
          have_d = true;
          const uint32_t first = i;
          out.d_kind = kind_at(c);
          const Errc e = c == '{' && routing_keys ? w.routed_object(i, out.routing) : w.value(i, 2);
          if (e != Errc::kOk) return e;
          out.d = w.text(first, i);
          break;
        }
        case Key::kStamp:
          if (i < w.size()) {
            if (auto v = decimal_u64(w.token(i))) out.stamp_ns = *v;
          }
          [[fallthrough]];
        case Key::kOther:
          if (Errc e = w.value(i, 2); e != Errc::kOk) return e;
          break;
        case Key::kBad:  // string_ok has decoded the key already
          return Errc::kBadJson;
      }
      const char next = w.at(i++);
      if (next == '}') break;
      if (next != ',') return Errc::kBadJson;
    }
  }
  if (!have_op) return Errc::kMissingOp;
  return i == w.size() ? Errc::kOk : Errc::kTrailingData;
}

Errc FullCheck::validate_d(std::string_view d) noexcept {
  if (Errc e = index(d); e != Errc::kOk) {
    return e == Errc::kBadJson || e == Errc::kEmpty ? Errc::kBadD : e;
  }
  Walk w(d.data(), d.size(), stage1_->structural_indexes.get(), stage1_->n_structural_indexes,
         *stage1_, strings_.get());
  uint32_t i = 0;
  if (Errc e = w.value(i, 2); e != Errc::kOk) return e;
  return i == w.size() ? Errc::kOk : Errc::kBadD;
}

}  // namespace shardring::parse::detail
