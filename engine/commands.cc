#include "engine/commands.h"

#include "gateway/payloads.h"
#include "simdjson.h"

namespace shardring::engine {
namespace {

// "op" and "d" of a gateway payload or a command line (d minified), and
// `shard` when asked for; op 8's guild_id, query and limit.
struct Parsed {
  int64_t op = -1;
  std::string d;
  int64_t shard = -1;
  std::string guild_id;
  std::string_view query;
  bool has_query = false;
  int64_t limit = -1;
};

bool Parse(std::string_view json, Parsed* out, bool want_shard, std::string_view* reason) {
  // Not on a hot path (a command is a person's or a worker's request): the
  // DOM parser checks the whole text, trailing bytes included.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get(obj)) {
    *reason = "not a JSON object";
    return false;
  }
  simdjson::dom::element op, d, shard;
  if (obj["op"].get(op) || op.get_int64().get(out->op)) {
    *reason = "no integer \"op\"";
    return false;
  }
  if (obj["d"].get(d)) {
    *reason = "no \"d\"";
    return false;
  }
  out->d = simdjson::minify(d);
  if (want_shard) {
    if (obj["shard"].get(shard) || shard.get_int64().get(out->shard) || out->shard < 0 ||
        out->shard > UINT32_MAX) {
      *reason = "no \"shard\" id";
      return false;
    }
  }
  simdjson::dom::object dobj;
  if (!d.get_object().get(dobj)) {
    std::string_view g;
    if (!dobj["guild_id"].get_string().get(g)) out->guild_id.assign(g);
    out->has_query = !dobj["query"].get_string().get(out->query);
    if (dobj["limit"].get_int64().get(out->limit)) out->limit = -1;
  }
  return true;
}

}  // namespace

CommandOutcome CommandChecker::check(std::string_view payload, Clock::time_point now) {
  if (payload.size() > gateway::kMaxPayloadBytes) return {false, "over 4096 bytes"};
  Parsed p;
  std::string_view reason;
  if (!Parse(payload, &p, false, &reason)) return {false, reason};
  if (p.op == 1 || p.op == 2 || p.op == 6) {
    return {false, "heartbeat, identify and resume are the session's own"};
  }
  if (!is_allowed_command_op(p.op)) return {false, "not a command a bot sends (3, 4, 8, 31)"};
  if (p.op == 8 && p.has_query && p.query.empty() && p.limit == 0 && !p.guild_id.empty()) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = all_members_.try_emplace(std::string(p.guild_id), now);
    if (!fresh) {
      if (now - it->second < kAllMembersWindow) {
        return {false, "all of this guild's members were asked for less than 30 s ago"};
      }
      it->second = now;
    }
  }
  return {true, {}};
}

bool parse_command_line(std::string_view line, uint32_t* shard, std::string* payload,
                        std::string_view* reason) {
  Parsed p;
  if (!Parse(line, &p, true, reason)) return false;
  *shard = static_cast<uint32_t>(p.shard);
  payload->assign("{\"op\":");
  payload->append(std::to_string(p.op));
  payload->append(",\"d\":");
  payload->append(p.d);
  payload->push_back('}');
  return true;
}

}  // namespace shardring::engine
