// parse/readers.cc: readers of payloads that need no Parser: op 9's d, and
// the GET /gateway/bot answer (a REST body, read once at start-up).
#include <simdjson.h>

#include "parse/envelope.h"
#include "parse/simdjson_errc.h"

namespace shardring::parse {

namespace od = simdjson::ondemand;
using internal::consume_if_string;
using internal::from_simdjson;
using internal::trim_right;

Errc invalid_session_resumable(std::string_view d, bool& resumable) noexcept {
  while (!d.empty() && is_json_space(d.front())) d.remove_prefix(1);
  d = trim_right(d);
  if (d == "true" || d == "false") {
    resumable = d == "true";
    return Errc::kOk;
  }
  return Errc::kBadField;
}

Errc parse_gateway_bot(std::string_view body, GatewayBot& out, std::string_view* failed_field) {
  out = GatewayBot{};
  auto fail = [&](Errc e, std::string_view field) {
    if (failed_field) *failed_field = field;
    return e;
  };
  if (body.size() > kMaxMessageBytes) return Errc::kTooLarge;
  const simdjson::padded_string padded(body);
  od::parser json;
  od::document doc;
  if (auto e = json.iterate(padded).get(doc)) return from_simdjson(e);
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    return e == simdjson::INCORRECT_TYPE ? Errc::kNotObject : from_simdjson(e);
  }
  bool have_url = false, have_shards = false, have_limit = false;
  bool have_total = false, have_remaining = false, have_reset = false, have_conc = false;
  auto u32 = [](od::value v, uint32_t& dst) {
    uint64_t x = 0;
    if (v.get_uint64().get(x) || x > UINT32_MAX) return false;
    dst = static_cast<uint32_t>(x);
    return true;
  };
  for (auto fr : obj) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return from_simdjson(e);
    std::string_view key;
    if (f.unescaped_key().get(key)) return Errc::kBadJson;
    if (key == "url") {
      std::string_view s;
      if (f.value().get_string().get(s) || s.empty()) {
        return fail(Errc::kBadField, "url");
      }
      out.url.assign(s);
      have_url = true;
    } else if (key == "shards") {
      if (!u32(f.value(), out.shards) || out.shards == 0) {
        return fail(Errc::kBadField, "shards");
      }
      have_shards = true;
    } else if (key == "session_start_limit") {
      od::object limit;
      if (f.value().get_object().get(limit)) {
        return fail(Errc::kBadField, "session_start_limit");
      }
      have_limit = true;
      for (auto lr : limit) {
        od::field lf;
        if (auto e = std::move(lr).get(lf)) return from_simdjson(e);
        std::string_view lk;
        if (lf.unescaped_key().get(lk)) return Errc::kBadJson;
        if (lk == "total") {
          if (!u32(lf.value(), out.total)) {
            return fail(Errc::kBadField, "session_start_limit.total");
          }
          have_total = true;
        } else if (lk == "remaining") {
          if (!u32(lf.value(), out.remaining)) {
            return fail(Errc::kBadField, "session_start_limit.remaining");
          }
          have_remaining = true;
        } else if (lk == "reset_after") {
          if (lf.value().get_uint64().get(out.reset_after_ms)) {
            return fail(Errc::kBadField, "session_start_limit.reset_after");
          }
          have_reset = true;
        } else if (lk == "max_concurrency") {
          // Identify buckets are shard_id % max_concurrency: never 0.
          if (!u32(lf.value(), out.max_concurrency) || out.max_concurrency == 0) {
            return fail(Errc::kBadField, "session_start_limit.max_concurrency");
          }
          have_conc = true;
        } else {
          consume_if_string(lf.value(), lf.value().raw_json_token());
        }
      }
    } else {
      consume_if_string(f.value(), f.value().raw_json_token());
    }
  }
  const char* after = nullptr;
  if (doc.current_location().get(after) != simdjson::OUT_OF_BOUNDS) {
    return Errc::kTrailingData;
  }
  if (!have_url) return fail(Errc::kMissingField, "url");
  if (!have_shards) return fail(Errc::kMissingField, "shards");
  if (!have_limit) return fail(Errc::kMissingField, "session_start_limit");
  if (!have_total) {
    return fail(Errc::kMissingField, "session_start_limit.total");
  }
  if (!have_remaining) {
    return fail(Errc::kMissingField, "session_start_limit.remaining");
  }
  if (!have_reset) {
    return fail(Errc::kMissingField, "session_start_limit.reset_after");
  }
  if (!have_conc) {
    return fail(Errc::kMissingField, "session_start_limit.max_concurrency");
  }
  return Errc::kOk;
}

}  // namespace shardring::parse
