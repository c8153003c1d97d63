// parse/envelope.cc: Parser on simdjson 3.0.1 On-Demand: Check::kEnvelope's
// general path (the canonical fast path is parse/canonical.h), Check::kFull's
// reference path (Options::fast_path = false; the path taken otherwise is
// parse/full_check.h), the t-only read and the readers.
//
// How the extent of d is found. simdjson's stage 1 indexes every structural
// byte of the message and validates its UTF-8 in one SIMD pass. d starts at
// its first token. For a scalar, value::raw_json_token() runs from there to
// the next structural byte. For an object or array we iterate its top-level
// members (each value skipped by counting brackets, unless Check::kFull
// walks it): measured faster than object::raw_json(), and it checks d's top
// level too. The end is then where the iteration stopped,
// document::current_location(), the next structural byte. Either way the
// text may end with whitespace, which we trim: the view ends at the value's
// last byte (a closing bracket or quote, or the last byte of a number or
// literal).
#include "parse/envelope.h"

#include <simdjson.h>

#include "parse/canonical.h"
#include "parse/digits.h"
#include "parse/envelope_key.h"
#include "parse/full_check.h"
#include "parse/simdjson_errc.h"

#include <algorithm>
#include <cstring>

namespace shardring::parse {

static_assert(kPadding == simdjson::SIMDJSON_PADDING);
static_assert(kMaxDepth == simdjson::DEFAULT_MAX_DEPTH);

namespace od = simdjson::ondemand;
using internal::consume_if_string;
using internal::from_simdjson;
using internal::trim_right;

namespace {

// A value skipped unread must at least start like a value: simdjson would
// otherwise take a ']' or '}' there as the end of the enclosing container.
Errc check_value_start(od::value& v) noexcept {
  od::json_type type;
  return v.type().get(type) ? Errc::kBadJson : Errc::kOk;
}

using detail::decimal_u64;
using detail::is_json_number;
using detail::snowflake;

JsonKind kind_of(od::json_type t) noexcept {
  switch (t) {
    case od::json_type::object:
      return JsonKind::kObject;
    case od::json_type::array:
      return JsonKind::kArray;
    case od::json_type::string:
      return JsonKind::kString;
    case od::json_type::number:
      return JsonKind::kNumber;
    case od::json_type::boolean:
      return JsonKind::kBool;
    case od::json_type::null:
      return JsonKind::kNull;
  }
  return JsonKind::kAbsent;
}

// Checks a scalar's token (already trimmed) or decodes its string. Does not
// need the value consumed: the iterator skips what is left.
Errc check_scalar(od::value& v, od::json_type type, std::string_view tok) noexcept {
  switch (type) {
    case od::json_type::string: {
      // Stage 1 already checked the UTF-8 and that no control character
      // is unescaped; only escape sequences are left to check, and most
      // strings have none.
      if (std::memchr(tok.data(), '\\', tok.size()) == nullptr) {
        od::raw_json_string raw;
        return v.get_raw_json_string().get(raw) ? Errc::kBadD : Errc::kOk;
      }
      std::string_view s;
      return v.get_string().get(s) ? Errc::kBadD : Errc::kOk;
    }
    case od::json_type::number:
      return is_json_number(tok) ? Errc::kOk : Errc::kBadD;
    case od::json_type::boolean:
      return tok == "true" || tok == "false" ? Errc::kOk : Errc::kBadD;
    case od::json_type::null:
      return tok == "null" ? Errc::kOk : Errc::kBadD;
    default:
      return Errc::kBadD;
  }
}

// A key is valid once its escapes are: decode only keys that have one.
bool key_ok(od::field& f) noexcept {
  const char* p = f.key().raw();  // the key's closing quote is in bounds
  while (*p != '"' && *p != '\\') ++p;
  if (*p == '"') return true;
  std::string_view key;
  return !f.unescaped_key().get(key);
}

// Full validation of one value at nesting `depth` (the depth its brackets
// would have). Recursion is bounded by kMaxDepth.
Errc walk(od::value v, size_t depth) noexcept {
  od::json_type type;
  if (v.type().get(type)) return Errc::kBadD;
  switch (type) {
    case od::json_type::object: {
      if (depth > kMaxDepth) return Errc::kTooDeep;
      od::object o;
      if (v.get_object().get(o)) return Errc::kBadD;
      for (auto fr : o) {
        od::field f;
        if (std::move(fr).get(f)) return Errc::kBadD;
        if (!key_ok(f)) return Errc::kBadD;
        if (Errc e = walk(f.value(), depth + 1); e != Errc::kOk) return e;
      }
      return Errc::kOk;
    }
    case od::json_type::array: {
      if (depth > kMaxDepth) return Errc::kTooDeep;
      od::array a;
      if (v.get_array().get(a)) return Errc::kBadD;
      for (auto er : a) {
        od::value e;
        // get() is rvalue-qualified in simdjson 3.0.
        if (std::move(er).get(e)) return Errc::kBadD;  // NOLINT(performance-move-const-arg)
        if (Errc err = walk(e, depth + 1); err != Errc::kOk) return err;
      }
      return Errc::kOk;
    }
    default:
      return check_scalar(v, type, trim_right(v.raw_json_token()));
  }
}

// The end of a container just walked: the next structural byte.
const char* walked_end(od::document& doc) noexcept {
  const char* at = nullptr;
  if (doc.current_location().get(at)) return nullptr;
  return at;
}

// Which envelope key a field is. Keys are compared as written; only a key
// whose first or second byte is a backslash can decode to op/s/t/d, and
// those few are decoded (then `decoded` is set: simdjson lets a field's
// key be decoded only once).
using Key = detail::EnvelopeKey;

Key classify(od::field& f, bool& decoded) noexcept {
  decoded = false;
  const char* k = f.key().raw();  // after the opening quote; ends with '"'
  if (k[0] == '\\' || (k[0] != '"' && k[1] == '\\')) {
    decoded = true;
    std::string_view u;
    if (f.unescaped_key().get(u)) return Key::kBad;
    return detail::envelope_key(u, /*escaped=*/true);
  }
  // As written: no envelope key is longer than 6 bytes, and the message
  // buffer's padding makes looking at 7 safe.
  size_t n = 0;
  while (n < 7 && k[n] != '"') ++n;
  return n < 7 ? detail::envelope_key(std::string_view(k, n), /*escaped=*/false) : Key::kOther;
}

// Reads t: null, or a string. A string without escapes is returned as a
// view into the message; one with escapes is decoded by simdjson into the
// parser's string buffer.
Errc read_t(od::value& v, std::optional<std::string_view>& t, EventType& type) noexcept {
  const std::string_view tok = trim_right(v.raw_json_token());
  if (tok.empty()) return Errc::kBadType;
  if (tok[0] == 'n') {
    bool null = false;
    if (v.is_null().get(null) || !null) return Errc::kBadType;
    t.reset();
    type = EventType::kNone;
    return Errc::kOk;
  }
  if (tok[0] != '"' || tok.size() < 2 || tok.back() != '"') {
    return Errc::kBadType;
  }
  std::string_view name = tok.substr(1, tok.size() - 2);
  if (std::memchr(name.data(), '\\', name.size()) != nullptr) {
    if (v.get_string().get(name)) return Errc::kBadJson;
  } else {
    consume_if_string(v, tok);
  }
  t = name;
  type = event_type_from_name(name);
  return Errc::kOk;
}

Errc read_s(od::value& v, std::optional<uint64_t>& s) noexcept {
  const std::string_view tok = v.raw_json_token();
  if (!tok.empty() && tok[0] == 'n') {
    bool null = false;
    if (v.is_null().get(null) || !null) return Errc::kBadSeq;
    s.reset();
    return Errc::kOk;
  }
  uint64_t seq = 0;
  if (v.get_uint64().get(seq)) return Errc::kBadSeq;
  s = seq;
  return Errc::kOk;
}

Errc read_op(od::value& v, int32_t& op) noexcept {
  int64_t x = 0;
  if (v.get_int64().get(x) || x < INT32_MIN || x > INT32_MAX) {
    return Errc::kBadOp;
  }
  op = static_cast<int32_t>(x);
  return Errc::kOk;
}

bool is_routing_key(std::string_view key, RoutingKeys& out,
                    std::optional<uint64_t>*& slot) noexcept {
  if (key == "guild_id") {
    slot = &out.guild_id;
    return true;
  }
  if (key == "channel_id") {
    slot = &out.channel_id;
    return true;
  }
  return false;
}

}  // namespace

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::kOk:
      return "ok";
    case Errc::kTooLarge:
      return "too_large";
    case Errc::kNoMemory:
      return "no_memory";
    case Errc::kEmpty:
      return "empty";
    case Errc::kBadJson:
      return "bad_json";
    case Errc::kBadUtf8:
      return "bad_utf8";
    case Errc::kTooDeep:
      return "too_deep";
    case Errc::kNotObject:
      return "not_object";
    case Errc::kTrailingData:
      return "trailing_data";
    case Errc::kDuplicateKey:
      return "duplicate_key";
    case Errc::kMissingOp:
      return "missing_op";
    case Errc::kBadOp:
      return "bad_op";
    case Errc::kBadSeq:
      return "bad_seq";
    case Errc::kBadType:
      return "bad_type";
    case Errc::kBadD:
      return "bad_d";
    case Errc::kMissingField:
      return "missing_field";
    case Errc::kBadField:
      return "bad_field";
  }
  return "unknown";
}

const char* to_string(JsonKind k) noexcept {
  switch (k) {
    case JsonKind::kAbsent:
      return "absent";
    case JsonKind::kObject:
      return "object";
    case JsonKind::kArray:
      return "array";
    case JsonKind::kString:
      return "string";
    case JsonKind::kNumber:
      return "number";
    case JsonKind::kBool:
      return "bool";
    case JsonKind::kNull:
      return "null";
  }
  return "unknown";
}

struct Parser::Impl {
  od::parser json{kMaxMessageBytes};
  detail::Marks marks;     // the canonical fast path's scratch
  detail::FullCheck full;  // Check::kFull's fast path and validate_d

  // Starts iterating `bytes` (padded by the caller), growing the buffers
  // geometrically so a run of growing messages reallocates only a few times.
  Errc start(std::string_view bytes, od::document& doc) noexcept {
    if (bytes.size() > kMaxMessageBytes) return Errc::kTooLarge;
    if (bytes.size() > json.capacity()) {
      const size_t want = std::min(kMaxMessageBytes, std::max(bytes.size(), 2 * json.capacity()));
      if (json.allocate(want, kMaxDepth) != simdjson::SUCCESS) {
        return Errc::kNoMemory;
      }
    }
    return from_simdjson(
        json.iterate(bytes.data(), bytes.size(), bytes.size() + kPadding).get(doc));
  }

  Errc read_d(od::document& doc, od::value v, const Options& opt, Envelope& out) noexcept;
};

Errc Parser::Impl::read_d(od::document& doc, od::value v, const Options& opt,
                          Envelope& out) noexcept {
  const bool full = opt.check == Check::kFull;
  od::json_type type;
  if (v.type().get(type)) return full ? Errc::kBadD : Errc::kBadJson;
  out.d_kind = kind_of(type);
  const char* const start = v.raw_json_token().data();
  switch (type) {
    case od::json_type::object: {
      od::object o;
      if (v.get_object().get(o)) return Errc::kBadJson;
      // Walking d's top-level fields, their values skipped unread unless
      // `full`, measured faster than object::raw_json() and checks more.
      for (auto fr : o) {
        od::field f;
        if (std::move(fr).get(f)) return full ? Errc::kBadD : Errc::kBadJson;
        if (opt.routing_keys) {
          std::string_view key;
          if (f.unescaped_key().get(key)) {
            return full ? Errc::kBadD : Errc::kBadJson;
          }
          std::optional<uint64_t>* slot = nullptr;
          if (is_routing_key(key, out.routing, slot)) {
            *slot = snowflake(trim_right(f.value().raw_json_token()));
          }
        } else if (full && !key_ok(f)) {
          return Errc::kBadD;
        }
        const std::string_view tok = f.value().raw_json_token();
        if (full) {
          if (Errc e = walk(f.value(), 3); e != Errc::kOk) return e;
        } else {
          if (Errc e = check_value_start(f.value()); e != Errc::kOk) return e;
          consume_if_string(f.value(), tok);
        }
      }
      const char* end = walked_end(doc);
      if (end == nullptr || end < start) return Errc::kBadJson;
      out.d = trim_right(std::string_view(start, size_t(end - start)));
      return Errc::kOk;
    }
    case od::json_type::array: {
      od::array a;
      if (v.get_array().get(a)) return Errc::kBadJson;
      for (auto er : a) {
        od::value e;
        // get() is rvalue-qualified in simdjson 3.0.
        // NOLINTNEXTLINE(performance-move-const-arg)
        if (std::move(er).get(e)) return full ? Errc::kBadD : Errc::kBadJson;
        if (full) {
          if (Errc err = walk(e, 3); err != Errc::kOk) return err;
        } else {
          if (Errc err = check_value_start(e); err != Errc::kOk) return err;
          consume_if_string(e, e.raw_json_token());
        }
      }
      const char* end = walked_end(doc);
      if (end == nullptr || end < start) return Errc::kBadJson;
      out.d = trim_right(std::string_view(start, size_t(end - start)));
      return Errc::kOk;
    }
    default: {
      const std::string_view tok = trim_right(v.raw_json_token());
      if (full) {
        if (Errc e = check_scalar(v, type, tok); e != Errc::kOk) return e;
      } else {
        consume_if_string(v, tok);
      }
      out.d = tok;
      return Errc::kOk;
    }
  }
}

const char* simd_kernel() noexcept { return simdjson::get_active_implementation()->name().c_str(); }

Parser::Parser() : impl_(std::make_unique<Impl>()) {
  if (impl_->json.allocate(kInitialCapacity, kMaxDepth) != simdjson::SUCCESS) {
    throw std::bad_alloc();
  }
}
Parser::~Parser() = default;
Parser::Parser(Parser&&) noexcept = default;
Parser& Parser::operator=(Parser&&) noexcept = default;

Errc Parser::parse(std::string_view message, Envelope& out, Options options) noexcept {
  if (options.fast_path) {
    if (options.check == Check::kFull) return impl_->full.parse(message, options.routing_keys, out);
    if (detail::try_canonical(message, options.routing_keys, out, impl_->marks)) return Errc::kOk;
  }
  out = Envelope{};
  od::document doc;
  if (Errc e = impl_->start(message, doc); e != Errc::kOk) return e;
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    return e == simdjson::INCORRECT_TYPE ? Errc::kNotObject : from_simdjson(e);
  }
  const bool full = options.check == Check::kFull;
  bool have_op = false, have_s = false, have_t = false, have_d = false;
  for (auto fr : obj) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return from_simdjson(e);
    bool decoded = false;
    const Key key = classify(f, decoded);
    Errc err = Errc::kOk;
    switch (key) {
      case Key::kOp:
        if (have_op) return Errc::kDuplicateKey;
        have_op = true;
        err = read_op(f.value(), out.op);
        break;
      case Key::kS:
        if (have_s) return Errc::kDuplicateKey;
        have_s = true;
        err = read_s(f.value(), out.s);
        break;
      case Key::kT:
        if (have_t) return Errc::kDuplicateKey;
        have_t = true;
        err = read_t(f.value(), out.t, out.type);
        break;
      case Key::kD:
        if (have_d) return Errc::kDuplicateKey;
        have_d = true;
        err = impl_->read_d(doc, f.value(), options, out);
        break;
      case Key::kBad:
        return Errc::kBadJson;
      case Key::kStamp:
        // Read, then checked like any other unknown key's value.
        if (auto v = decimal_u64(trim_right(f.value().raw_json_token()))) out.stamp_ns = *v;
        [[fallthrough]];
      case Key::kOther:
        if (full) {
          if (!decoded && !key_ok(f)) return Errc::kBadJson;
          err = walk(f.value(), 2);
        } else {
          err = check_value_start(f.value());
          consume_if_string(f.value(), f.value().raw_json_token());
        }
        break;
    }
    if (err != Errc::kOk) return err;
  }
  if (!have_op) return Errc::kMissingOp;
  // The object is closed; anything after it is not one JSON value.
  const char* after = nullptr;
  if (doc.current_location().get(after) != simdjson::OUT_OF_BOUNDS) {
    return Errc::kTrailingData;
  }
  return Errc::kOk;
}

Errc Parser::validate_d(std::string_view d) noexcept { return impl_->full.validate_d(d); }

Errc Parser::event_type(std::string_view message, EventName& out) noexcept {
  out = EventName{};
  // Discord writes "t" first: {"t":"MESSAGE_CREATE",...} or {"t":null,...}.
  // Read it straight from the bytes when the name is plain printable ASCII.
  constexpr std::string_view kLead = "{\"t\":";
  if (message.size() > kLead.size() && message.starts_with(kLead)) {
    const char* p = message.data() + kLead.size();
    const char* const end = message.data() + message.size();
    if (*p == '"') {
      const char* q = ++p;
      while (q < end && q - p <= 64 && *q != '"' && *q != '\\' &&
             static_cast<unsigned char>(*q) >= 0x20 && static_cast<unsigned char>(*q) < 0x7F) {
        ++q;
      }
      if (q < end && *q == '"') {
        out.t = std::string_view(p, size_t(q - p));
        out.type = event_type_from_name(*out.t);
        return Errc::kOk;
      }
    } else if (end - p >= 5 && std::memcmp(p, "null", 4) == 0 &&
               (p[4] == ',' || p[4] == '}' || is_json_space(p[4]))) {
      return Errc::kOk;
    }
  }
  // Any other layout: simdjson, reading keys until the first "t".
  od::document doc;
  if (Errc e = impl_->start(message, doc); e != Errc::kOk) return e;
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    return e == simdjson::INCORRECT_TYPE ? Errc::kNotObject : from_simdjson(e);
  }
  for (auto fr : obj) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return from_simdjson(e);
    bool decoded = false;
    const Key key = classify(f, decoded);
    if (key == Key::kBad) return Errc::kBadJson;
    if (key == Key::kT) return read_t(f.value(), out.t, out.type);
    consume_if_string(f.value(), f.value().raw_json_token());
  }
  return Errc::kOk;
}

Errc Parser::routing_keys(std::string_view d, RoutingKeys& out) noexcept {
  out = RoutingKeys{};
  od::document doc;
  if (Errc e = impl_->start(d, doc); e != Errc::kOk) return e;
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    return e == simdjson::INCORRECT_TYPE ? Errc::kNotObject : from_simdjson(e);
  }
  for (auto fr : obj) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return from_simdjson(e);
    std::string_view key;
    if (f.unescaped_key().get(key)) return Errc::kBadJson;
    const std::string_view tok = trim_right(f.value().raw_json_token());
    std::optional<uint64_t>* slot = nullptr;
    if (is_routing_key(key, out, slot)) *slot = snowflake(tok);
    consume_if_string(f.value(), tok);
  }
  return Errc::kOk;
}

Errc Parser::hello_interval(std::string_view d, uint64_t& interval_ms) noexcept {
  od::document doc;
  if (Errc e = impl_->start(d, doc); e != Errc::kOk) return e;
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    return e == simdjson::INCORRECT_TYPE ? Errc::kNotObject : from_simdjson(e);
  }
  bool found = false;
  for (auto fr : obj) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return from_simdjson(e);
    std::string_view key;
    if (f.unescaped_key().get(key)) return Errc::kBadJson;
    if (key != "heartbeat_interval") {
      consume_if_string(f.value(), f.value().raw_json_token());
      continue;
    }
    uint64_t ms = 0;
    if (f.value().get_uint64().get(ms) || ms == 0) return Errc::kBadField;
    interval_ms = ms;
    found = true;
  }
  return found ? Errc::kOk : Errc::kMissingField;
}

Errc Parser::ready_info(std::string_view d, ReadyInfo& out) {
  out = ReadyInfo{};
  od::document doc;
  if (Errc e = impl_->start(d, doc); e != Errc::kOk) return e;
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    return e == simdjson::INCORRECT_TYPE ? Errc::kNotObject : from_simdjson(e);
  }
  bool have_session = false;
  for (auto fr : obj) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return from_simdjson(e);
    std::string_view key;
    if (f.unescaped_key().get(key)) return Errc::kBadJson;
    std::string* dst = nullptr;
    if (key == "session_id") {
      dst = &out.session_id;
      have_session = true;
    } else if (key == "resume_gateway_url") {
      dst = &out.resume_gateway_url;
    } else if (key == "user") {
      // {"id":"<snowflake>",...}: anything else leaves user_id 0.
      od::object user;
      if (f.value().get_object().get(user) == simdjson::SUCCESS) {
        for (auto ur : user) {
          od::field uf;
          if (std::move(ur).get(uf)) return Errc::kBadJson;
          std::string_view ukey;
          if (uf.unescaped_key().get(ukey)) return Errc::kBadJson;
          std::string_view id;
          if (ukey == "id" && uf.value().get_string().get(id) == simdjson::SUCCESS) {
            uint64_t v = 0;
            bool ok = !id.empty() && id.size() <= 20;
            for (char c : id) {
              ok = ok && c >= '0' && c <= '9' && v <= (UINT64_MAX - 9) / 10;
              if (ok) v = v * 10 + static_cast<uint64_t>(c - '0');
            }
            if (ok) out.user_id = v;
          } else {
            consume_if_string(uf.value(), uf.value().raw_json_token());
          }
        }
      } else {
        consume_if_string(f.value(), f.value().raw_json_token());
      }
      continue;
    } else {
      consume_if_string(f.value(), f.value().raw_json_token());
      continue;
    }
    std::string_view s;
    if (f.value().get_string().get(s)) return Errc::kBadField;
    dst->assign(s);
  }
  if (!have_session) return Errc::kMissingField;
  return out.session_id.empty() ? Errc::kBadField : Errc::kOk;
}

}  // namespace shardring::parse
