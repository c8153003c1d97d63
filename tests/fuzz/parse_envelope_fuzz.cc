// tests/fuzz/parse_envelope_fuzz.cc: every Parser mode over arbitrary bytes,
// checked against each other and against simdjson's DOM parser.
// Invariants: no crash or over-read (the input sits in a heap block of
// exactly size + kPadding); d's view lies inside the input, trimmed; the
// envelope check agrees with the full check whenever the full check passes;
// the envelope check's canonical fast path agrees with its general path;
// reading routing keys refuses nothing the full check accepts;
// the canonical path's AVX2 and AVX-512 kernels agree;
// the full check passes exactly when the DOM parser accepts the same bytes
// (up to what only one of them refuses: duplicate keys and envelope types
// for us, out-of-range numbers for the DOM); op/s/t/d then agree.
#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "parse/canonical.h"
#include "parse/envelope.h"

using namespace shardring::parse;

namespace {

#define FUZZ_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) {                                                       \
      __builtin_printf("check failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                      \
    }                                                                    \
  } while (0)

void CheckView(const Envelope& env, const char* begin, size_t size) {
  if (env.d_kind == JsonKind::kAbsent) {
    FUZZ_CHECK(env.d.empty());
    return;
  }
  FUZZ_CHECK(!env.d.empty());
  FUZZ_CHECK(env.d.data() >= begin);
  FUZZ_CHECK(env.d.data() + env.d.size() <= begin + size);
  FUZZ_CHECK(!is_json_space(env.d.front()));
  FUZZ_CHECK(!is_json_space(env.d.back()));
}

// An Envelope with t copied out: a decoded t lives in the Parser only until
// its next call.
struct Snapshot {
  Envelope env;
  std::optional<std::string> t;
};
Snapshot Snap(const Envelope& env) {
  Snapshot s{env, std::nullopt};
  if (env.t) s.t.emplace(*env.t);
  s.env.t.reset();
  return s;
}

bool SameEnvelope(const Snapshot& x, const Snapshot& y) {
  const Envelope& a = x.env;
  const Envelope& b = y.env;
  return a.op == b.op && a.s == b.s && x.t == y.t && a.type == b.type && a.d.data() == b.d.data() &&
         a.d.size() == b.d.size() && a.d_kind == b.d_kind;
}

bool IsEnvelopeLevelRefusal(Errc e) {
  return e == Errc::kDuplicateKey || e == Errc::kMissingOp || e == Errc::kBadOp ||
         e == Errc::kBadSeq || e == Errc::kBadType || e == Errc::kNotObject;
}

Parser& TheParser() {
  static Parser* p = new Parser();
  return *p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (size_t{1} << 20)) return 0;
  auto buf = std::make_unique<char[]>(size + kPadding);
  if (size) std::memcpy(buf.get(), data, size);
  std::memset(buf.get() + size, size ? data[size - 1] : '"', kPadding);
  const std::string_view msg(buf.get(), size);
  Parser& p = TheParser();

  Envelope env;
  const Errc e_full = p.parse(msg, env);
  if (e_full == Errc::kOk) CheckView(env, buf.get(), size);
  const Snapshot full = Snap(env);
  const Errc e_full_routed = p.parse(msg, env, {.routing_keys = true});
  const Snapshot full_routed = Snap(env);
  FUZZ_CHECK(e_full_routed == e_full);
  const Errc e_fast = p.parse(msg, env, {.check = Check::kEnvelope});
  if (e_fast == Errc::kOk) CheckView(env, buf.get(), size);
  const Snapshot fast = Snap(env);
  const Errc e_fast_routed = p.parse(msg, env, {.check = Check::kEnvelope, .routing_keys = true});
  const Snapshot fast_routed = Snap(env);
  // Reading routing keys walks d's top-level keys, so it may refuse a d
  // whose top level is malformed where counting brackets did not.
  if (e_fast_routed == Errc::kOk) FUZZ_CHECK(e_fast == Errc::kOk);
  if (e_fast_routed == Errc::kOk) {
    CheckView(fast_routed.env, buf.get(), size);
    FUZZ_CHECK(SameEnvelope(fast, fast_routed));
  }

  // The full check's fast path (the stage-1 index walk) and its On-Demand
  // reference accept the same inputs and read the same envelope from them.
  // A refused input may be refused with different errors where it has
  // several faults (On-Demand reads some values lazily and looks ahead, even
  // into the padding, before it names one); unit tests pin the errors of
  // inputs with one fault.
  for (bool routing : {false, true}) {
    const Errc ea = p.parse(msg, env, {.routing_keys = routing});
    const Snapshot a = Snap(env);
    const Errc eb = p.parse(msg, env, {.routing_keys = routing, .fast_path = false});
    const Snapshot b = Snap(env);
    if ((ea == Errc::kOk) != (eb == Errc::kOk)) {
      std::fprintf(stderr, "full: fast %s, reference %s\n", to_string(ea), to_string(eb));
    }
    FUZZ_CHECK((ea == Errc::kOk) == (eb == Errc::kOk));
    if (ea == Errc::kOk) {
      CheckView(a.env, buf.get(), size);
      FUZZ_CHECK(SameEnvelope(a, b));
      FUZZ_CHECK(a.env.routing.guild_id == b.env.routing.guild_id);
      FUZZ_CHECK(a.env.routing.channel_id == b.env.routing.channel_id);
      FUZZ_CHECK(a.env.stamp_ns == b.env.stamp_ns);
    }
  }

  // The canonical path's two marking kernels (AVX2, AVX-512BW where the CPU
  // has it) decide alike and read the same envelope.
  for (bool routing : {false, true}) {
    static detail::Marks marks;
    Envelope a, b;
    const bool ta = detail::try_canonical(msg, routing, a, marks, detail::Simd::kAvx2);
    const bool tb = detail::try_canonical(msg, routing, b, marks, detail::Simd::kAvx512);
    FUZZ_CHECK(ta == tb);
    if (ta) {
      FUZZ_CHECK(SameEnvelope(Snap(a), Snap(b)));
      FUZZ_CHECK(a.routing.guild_id == b.routing.guild_id);
      FUZZ_CHECK(a.routing.channel_id == b.routing.channel_id);
      FUZZ_CHECK(a.stamp_ns == b.stamp_ns);
    }
  }

  // The canonical fast path (on by default for kEnvelope) decides only what
  // the general path accepts, and fills the envelope the same way.
  for (bool routing : {false, true}) {
    const Errc ea = p.parse(msg, env, {.check = Check::kEnvelope, .routing_keys = routing});
    const Snapshot a = Snap(env);
    const Errc eb =
        p.parse(msg, env, {.check = Check::kEnvelope, .routing_keys = routing, .fast_path = false});
    const Snapshot b = Snap(env);
    FUZZ_CHECK(ea == eb);
    if (ea == Errc::kOk) {
      FUZZ_CHECK(SameEnvelope(a, b));
      FUZZ_CHECK(a.env.routing.guild_id == b.env.routing.guild_id);
      FUZZ_CHECK(a.env.routing.channel_id == b.env.routing.channel_id);
      FUZZ_CHECK(a.env.stamp_ns == b.env.stamp_ns);
    }
  }

  if (e_full == Errc::kOk) {
    FUZZ_CHECK(e_fast == Errc::kOk && e_fast_routed == Errc::kOk);
    FUZZ_CHECK(SameEnvelope(full, fast));
    FUZZ_CHECK(SameEnvelope(full, full_routed));
    FUZZ_CHECK(full_routed.env.routing.guild_id == fast_routed.env.routing.guild_id);
    FUZZ_CHECK(full_routed.env.routing.channel_id == fast_routed.env.routing.channel_id);
    if (full.env.d_kind != JsonKind::kAbsent) {
      FUZZ_CHECK(p.validate_d(full.env.d) == Errc::kOk);
      if (full.env.d_kind == JsonKind::kObject) {
        RoutingKeys keys;
        FUZZ_CHECK(p.routing_keys(full.env.d, keys) == Errc::kOk);
        FUZZ_CHECK(keys.guild_id == full_routed.env.routing.guild_id);
        FUZZ_CHECK(keys.channel_id == full_routed.env.routing.channel_id);
      }
    }
    EventName name;
    FUZZ_CHECK(p.event_type(msg, name) == Errc::kOk);
    FUZZ_CHECK(name.t == full.t);
    FUZZ_CHECK(name.type == full.env.type);
  } else if (e_fast == Errc::kOk && fast.env.d_kind != JsonKind::kAbsent) {
    // Whatever the full check refused, validate_d must not crash on d.
    (void)p.validate_d(fast.env.d);
  }
  EventName name;
  (void)p.event_type(msg, name);

  // Differential check against the DOM parser.
  simdjson::dom::parser dom;
  simdjson::dom::element root;
  const auto dom_err = dom.parse(buf.get(), size, false).get(root);
  if (e_full == Errc::kOk) {
    // We check number syntax only; the DOM also refuses numbers that fit
    // neither 64-bit integers nor doubles.
    FUZZ_CHECK(dom_err == simdjson::SUCCESS || dom_err == simdjson::NUMBER_ERROR);
  }
  if (dom_err == simdjson::SUCCESS) {
    FUZZ_CHECK(e_full == Errc::kOk || IsEnvelopeLevelRefusal(e_full));
  }
  // validate_d on the whole input accepts what the DOM parser accepts, up
  // to number ranges and one level of depth (validate_d counts from 2).
  const Errc e_valid = p.validate_d(msg);
  if (e_valid == Errc::kOk) {
    FUZZ_CHECK(dom_err == simdjson::SUCCESS || dom_err == simdjson::NUMBER_ERROR);
  }
  if (dom_err == simdjson::SUCCESS) FUZZ_CHECK(e_valid == Errc::kOk || e_valid == Errc::kTooDeep);
  if (dom_err == simdjson::SUCCESS && e_full == Errc::kOk) {
    int64_t op = 0;
    FUZZ_CHECK(root["op"].get_int64().get(op) == simdjson::SUCCESS);
    FUZZ_CHECK(op == full.env.op);
    simdjson::dom::element d;
    if (root["d"].get(d) == simdjson::SUCCESS) {
      simdjson::dom::parser dom2;
      simdjson::dom::element alone;
      FUZZ_CHECK(dom2.parse(std::string(full.env.d)).get(alone) == simdjson::SUCCESS);
      FUZZ_CHECK(simdjson::minify(alone) == simdjson::minify(d));
    } else {
      FUZZ_CHECK(full.env.d_kind == JsonKind::kAbsent);
    }
    simdjson::dom::element t;
    if (root["t"].get(t) == simdjson::SUCCESS && t.is_string()) {
      FUZZ_CHECK(full.t == t.get_string().value_unsafe());
    } else {
      FUZZ_CHECK(!full.t.has_value());
    }
    simdjson::dom::element s;
    if (root["s"].get(s) == simdjson::SUCCESS && !s.is_null()) {
      uint64_t sv = 0;
      FUZZ_CHECK(s.get_uint64().get(sv) == simdjson::SUCCESS);
      FUZZ_CHECK(full.env.s == sv);
    } else {
      FUZZ_CHECK(!full.env.s.has_value());
    }
  }
  return 0;
}
