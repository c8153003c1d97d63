#include "tools/gateway/discord.h"

#include "base/json.h"

#include <algorithm>

#include "gateway/close_codes.h"
#include "gateway/opcodes.h"
#include "tools/gateway/text.h"

namespace shardring::gatewaysrv {
namespace {

using gateway::Op;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Identify's intents: every bit Discord defines (1 << 0 .. 1 << 25).
constexpr int64_t kAllIntents = (int64_t{1} << 26) - 1;
constexpr uint32_t kMaxShardTotal = 1 << 20;
// Discord's epoch (2015-01-01) for the snowflakes we mint.
constexpr int64_t kDiscordEpochMs = 1'420'070'400'000;

// Non-dispatch payloads, in Discord's key order.
constexpr std::string_view kHeartbeatAck = R"({"t":null,"s":null,"op":11,"d":null})";
constexpr std::string_view kReconnect = R"({"t":null,"s":null,"op":7,"d":null})";
constexpr std::string_view kInvalidSessionFalse = R"({"t":null,"s":null,"op":9,"d":false})";
constexpr std::string_view kInvalidSessionTrue = R"({"t":null,"s":null,"op":9,"d":true})";

constexpr std::string_view kDecodeError = "Error while decoding payload.";

constexpr uint32_t Bit(DiscordTimer t) { return uint32_t{1} << static_cast<unsigned>(t); }

// IDENTIFY's "shard": [id, total], absent or null meaning [0, 1].
enum class ShardField : uint8_t { kOk, kMalformed, kInvalid };

ShardField read_shard(simdjson::dom::object d, uint32_t* id, uint32_t* total) {
  int64_t shard_id = 0, shard_total = 1;
  simdjson::dom::element el;
  if (d["shard"].get(el) == simdjson::SUCCESS && !el.is_null()) {
    simdjson::dom::array arr;
    if (el.get_array().get(arr) != simdjson::SUCCESS || arr.size() != 2 ||
        arr.at(0).get_int64().get(shard_id) != simdjson::SUCCESS ||
        arr.at(1).get_int64().get(shard_total) != simdjson::SUCCESS) {
      return ShardField::kMalformed;
    }
    if (shard_total < 1 || shard_total > kMaxShardTotal || shard_id < 0 ||
        shard_id >= shard_total) {
      return ShardField::kInvalid;
    }
  }
  *id = static_cast<uint32_t>(shard_id);
  *total = static_cast<uint32_t>(shard_total);
  return ShardField::kOk;
}

}  // namespace

DiscordScratch::DiscordScratch(uint64_t seed) : dom(kMaxClientPayload + 64), rng(seed) {}

DiscordConn::DiscordConn(Server::Shared& sh, DiscordScratch& scratch, conn::ServerConnection& conn)
    : sh_(sh), scratch_(scratch), conn_(conn) {}

// ------------------------------------------------------------------ timers

void DiscordConn::arm(DiscordTimer t, Instant deadline) {
  deadlines_[static_cast<size_t>(t)] = deadline;
  timer_changes_ |= Bit(t);
}

void DiscordConn::disarm(DiscordTimer t) {
  auto& d = deadlines_[static_cast<size_t>(t)];
  if (!d) return;
  d.reset();
  timer_changes_ |= Bit(t);
}

void DiscordConn::on_timer(DiscordTimer timer, Instant now) {
  deadlines_[static_cast<size_t>(timer)].reset();  // fired: the driver knows
  const Faults& f = sh_.faults;
  switch (timer) {
    case DiscordTimer::kGenerate:
      generate(now);
      return;
    case DiscordTimer::kReconnect:
      if (!conn_.is_open() || !f.reconnect_every) return;
      log("fault: op 7");
      send(kReconnect);
      arm(DiscordTimer::kReconnect, now + *f.reconnect_every);
      return;
    case DiscordTimer::kInvalidSession:
      if (!conn_.is_open() || !f.invalid_session_every) return;
      log("fault: op 9 d=true");
      send(kInvalidSessionTrue);
      arm(DiscordTimer::kInvalidSession, now + *f.invalid_session_every);
      return;
    case DiscordTimer::kCount:
      return;
  }
}

// ----------------------------------------------------------------- output

void DiscordConn::send(std::string_view json) { (void)conn_.send_text(json); }

void DiscordConn::send_drawn(const Draw& d) {
  if (std::string* frames = conn_.raw_frame_buffer()) {
    append_frame(*frames, *d.t, d.s);  // the hot path: straight into the output
    return;
  }
  scratch_.payload.clear();
  append_payload(scratch_.payload, *d.t, d.s);
  send(scratch_.payload);
}

void DiscordConn::count_sent(uint64_t n) {
  SessionState& s = *session_;
  s.stats->events_sent.fetch_add(n, std::memory_order_relaxed);
  s.stats->last_seq.store(s.last_seq, std::memory_order_relaxed);
  sh_.counters.events_sent.fetch_add(n, std::memory_order_relaxed);
}

void DiscordConn::close(uint16_t code, std::string_view reason, Instant now) {
  if (!conn_.is_open()) return;
  log(cat("closing with ", code, " (", reason, ")"));
  if (gateway::classify_close(code) == gateway::CloseDecision::kIdentify) forget_session();
  (void)conn_.send_close(code, reason, now);
  disarm(DiscordTimer::kGenerate);
}

void DiscordConn::close_decode_error(Instant now) {
  close(gateway::kCloseDecodeError, kDecodeError, now);
}

void DiscordConn::forget_session() {
  if (session_) sh_.registry.forget(session_->id);
}

void DiscordConn::shutdown(Instant now) {
  close(gateway::kCloseGoingAway, "gateway shutting down", now);
}

// ------------------------------------------------------------ connection

void DiscordConn::on_open(std::string_view query, std::string_view host, Instant now) {
  host_ = std::string(host);
  sh_.counters.ws_sessions.fetch_add(1, std::memory_order_relaxed);
  const auto v = ws::query_param(query, "v");
  const auto enc = ws::query_param(query, "encoding");
  if (v && *v != "10") {
    close(gateway::kCloseInvalidApiVersion, "Invalid API version", now);
    return;
  }
  if (enc && *enc != "json") {
    close(gateway::kCloseDecodeError, "Only encoding=json is supported", now);
    return;
  }
  send(hello_payload(sh_.opt.heartbeat_ms));
}

void DiscordConn::on_client_close(uint16_t code, Instant now) {
  (void)now;
  // Discord ends the session when the client closes with 1000/1001.
  if (code == ws::CloseCode::kNormal || code == ws::CloseCode::kGoingAway) forget_session();
  disarm(DiscordTimer::kGenerate);
}

void DiscordConn::on_protocol_error(uint16_t code, std::string_view what, Instant now) {
  (void)now;
  log(cat("closing with ", code, " (", what, ")"));
  if (gateway::classify_close(code) == gateway::CloseDecision::kIdentify) forget_session();
  disarm(DiscordTimer::kGenerate);
}

void DiscordConn::on_disconnect(std::string_view why, Instant now) {
  if (session_) {
    log(cat("disconnected: ", why));
    sh_.registry.detach(*session_, now);
    session_.reset();
  }
  for (size_t t = 0; t < kDiscordTimerCount; ++t) disarm(static_cast<DiscordTimer>(t));
}

// --------------------------------------------------------------- payloads

void DiscordConn::on_payload(std::string_view text, Instant now, Instant arrived_after) {
  if (!conn_.is_open()) return;
  arrived_after_ = arrived_after;
  if (window_count_ == 0 || now - window_start_ >= kClientSendWindow) {
    window_start_ = now;
    window_count_ = 0;
  }
  if (++window_count_ > kClientSendLimit) {
    close(gateway::kCloseRateLimited, "Rate limited.", now);
    return;
  }
  parse::Envelope env;
  if (text.size() > kMaxClientPayload || scratch_.parser.parse(text, env) != parse::Errc::kOk) {
    close_decode_error(now);
    return;
  }
  switch (static_cast<Op>(env.op)) {
    case Op::kHeartbeat:
      on_heartbeat(env, now);
      return;
    case Op::kIdentify:
      on_identify(env, now);
      return;
    case Op::kResume:
      on_resume(env, now);
      return;
    case Op::kPresenceUpdate:
    case Op::kVoiceStateUpdate:
    case Op::kRequestGuildMembers:
      if (!identified_) {
        close(gateway::kCloseNotAuthenticated, "Not authenticated.", now);
        return;
      }
      if (env.d_kind != parse::JsonKind::kObject) {
        close_decode_error(now);
        return;
      }
      {
        // What a client sent, for operators and tests ("received op 3 {...}"):
        // escaped, so a line stays one line whatever the client wrote.
        std::string line = cat("received op ", env.op, " ");
        base::append_json_escaped(line, env.d);
        log(line);
      }
      if (static_cast<Op>(env.op) == Op::kRequestGuildMembers) on_request_members(env.d, now);
      return;
    default:
      close(gateway::kCloseUnknownOpcode, "Unknown opcode.", now);
      return;
  }
}

void DiscordConn::on_heartbeat(const parse::Envelope& env, Instant now) {
  if (env.d_kind != parse::JsonKind::kNull && env.d_kind != parse::JsonKind::kNumber &&
      env.d_kind != parse::JsonKind::kAbsent) {
    close_decode_error(now);
    return;
  }
  if (!sh_.faults.acks(acks_)) return;  // --no-ack-after
  ++acks_;
  send(kHeartbeatAck);
}

bool DiscordConn::d_object(std::string_view d, simdjson::dom::object& obj, Instant now) {
  // d lies inside a padded message: parse it in place.
  if (d.empty() ||
      scratch_.dom.parse(d.data(), d.size(), false).get_object().get(obj) != simdjson::SUCCESS) {
    close_decode_error(now);
    return false;
  }
  return true;
}

std::shared_ptr<SessionState> DiscordConn::new_session(std::string_view token, uint32_t shard,
                                                       uint32_t total, Instant now) {
  auto s = std::make_shared<SessionState>();
  s->token = std::string(token);
  s->shard = shard;
  s->total = total;
  s->guilds = sh_.opt.guilds_per_shard;
  s->seed = scratch_.rng.next();
  s->id.resize(32);
  for (size_t i = 0; i < 32; i += 16) {
    uint64_t r = scratch_.rng.next();
    for (size_t k = 0; k < 16; ++k, r >>= 4) s->id[i + k] = "0123456789abcdef"[r & 15];
  }
  s->snowflake_base = static_cast<uint64_t>(sh_.unix_ms(now) - kDiscordEpochMs) << 22;
  return s;
}

void DiscordConn::on_identify(const parse::Envelope& env, Instant now) {
  std::optional<uint32_t> shard;
  if (identify(env, now, &shard)) return;
  // Counted so that restart tests can tell an identify the gateway refused
  // (too early, wrong token...) from one the client never sent.
  sh_.counters.identifies_refused.fetch_add(1, std::memory_order_relaxed);
  sh_.registry.count_identify_refused(shard);
}

bool DiscordConn::identify(const parse::Envelope& env, Instant now,
                           std::optional<uint32_t>* named_shard) {
  uint32_t shard = 0, total = 1;
  if (identified_) {
    // Read d only to say which shard the refused IDENTIFY was for.
    simdjson::dom::object d;
    if (!env.d.empty() &&
        scratch_.dom.parse(env.d.data(), env.d.size(), false).get_object().get(d) ==
            simdjson::SUCCESS &&
        read_shard(d, &shard, &total) == ShardField::kOk) {
      *named_shard = shard;
    }
    close(gateway::kCloseAlreadyAuthenticated, "Already authenticated.", now);
    return false;
  }
  simdjson::dom::object d;
  if (!d_object(env.d, d, now)) return false;
  std::string_view token;
  simdjson::dom::object props;
  simdjson::dom::element intents_el;
  if (d["token"].get_string().get(token) != simdjson::SUCCESS ||
      d["properties"].get_object().get(props) != simdjson::SUCCESS ||
      d["intents"].get(intents_el) != simdjson::SUCCESS) {
    close_decode_error(now);
    return false;
  }
  // Read before the checks below so that every refusal after this point
  // is counted for its shard; the close codes keep Discord's order.
  const ShardField shard_field = read_shard(d, &shard, &total);
  if (shard_field == ShardField::kOk) *named_shard = shard;
  if (sh_.opt.token && token != *sh_.opt.token) {
    close(gateway::kCloseAuthenticationFailed, "Authentication failed.", now);
    return false;
  }
  int64_t intents = -1;
  if (intents_el.get_int64().get(intents) != simdjson::SUCCESS || intents < 0 ||
      intents > kAllIntents) {
    close(gateway::kCloseInvalidIntents, "Invalid intent(s).", now);
    return false;
  }
  if (shard_field == ShardField::kMalformed) {
    close_decode_error(now);
    return false;
  }
  if (shard_field == ShardField::kInvalid) {
    close(gateway::kCloseInvalidShard, "Invalid shard.", now);
    return false;
  }
  simdjson::dom::element el;
  if (d["large_threshold"].get(el) == simdjson::SUCCESS) {
    int64_t lt = 0;
    if (el.get_int64().get(lt) != simdjson::SUCCESS || lt < 50 || lt > 250) {
      close_decode_error(now);
      return false;
    }
  }
  if (d["presence"].get(el) == simdjson::SUCCESS && !el.is_null() && !el.is_object()) {
    close_decode_error(now);
    return false;
  }
  // The identify gate: one per bucket (shard_id % max_concurrency) per
  // window; a faster one gets op 9 d=false, as Discord answers.
  uint32_t bucket = 0;
  Clock::duration early{};
  if (!sh_.registry.try_identify(shard, now, arrived_after_, &bucket, &early)) {
    sh_.counters.rate_limited.fetch_add(1, std::memory_order_relaxed);
    notes_.push_back(LogNote{
        shard, cat("identify too fast for bucket ", bucket, " (",
                   std::chrono::duration<double, std::milli>(early).count(), " ms early): op 9")});
    send(kInvalidSessionFalse);
    return false;
  }
  session_ = new_session(token, shard, total, now);
  SessionState& s = *session_;
  sh_.registry.add(session_);
  identified_ = true;
  s.stats->identifies.fetch_add(1, std::memory_order_relaxed);
  sh_.counters.identifies.fetch_add(1, std::memory_order_relaxed);

  // READY, then a GUILD_CREATE per guild, then the stream.
  std::string ready = ready_payload(s, cat(sh_.scheme_ws(), sh_.host_for(host_)));
  s.last_seq = 1;
  keep(s, 1, ready);
  send(ready);
  const uint64_t ts = stamp_ns(now);
  for (uint32_t g = 0; g < s.guilds; ++g) {
    send_drawn(guild_create_at(sh_.mix, s, g, ++s.last_seq, ts));
  }
  count_sent(1 + s.guilds);
  log(cat("identified: shard [", shard, ",", total, "] session ", s.id, " intents ", intents));
  start_stream(now);
  return true;
}

void DiscordConn::on_resume(const parse::Envelope& env, Instant now) {
  if (resume(env, now)) return;
  // The shard's own count, when the session was known, is the registry's.
  sh_.counters.resumes_refused.fetch_add(1, std::memory_order_relaxed);
}

bool DiscordConn::resume(const parse::Envelope& env, Instant now) {
  if (identified_) {
    close(gateway::kCloseAlreadyAuthenticated, "Already authenticated.", now);
    return false;
  }
  simdjson::dom::object d;
  if (!d_object(env.d, d, now)) return false;
  std::string_view token, session_id;
  simdjson::dom::element seq_el;
  if (d["token"].get_string().get(token) != simdjson::SUCCESS ||
      d["session_id"].get_string().get(session_id) != simdjson::SUCCESS ||
      d["seq"].get(seq_el) != simdjson::SUCCESS) {
    close_decode_error(now);
    return false;
  }
  uint64_t seq = 0;
  if (!seq_el.is_null() && seq_el.get_uint64().get(seq) != simdjson::SUCCESS) {
    close_decode_error(now);
    return false;
  }
  if (sh_.opt.token && token != *sh_.opt.token) {
    close(gateway::kCloseAuthenticationFailed, "Authentication failed.", now);
    return false;
  }
  std::shared_ptr<SessionState> found;
  const ResumeVerdict v = sh_.registry.resume(std::string(session_id), token, seq, now, &found);
  switch (v) {
    case ResumeVerdict::kResumed:
      break;
    case ResumeVerdict::kBadSeq:
      close(gateway::kCloseInvalidSeq, "Invalid seq.", now);
      return false;
    case ResumeVerdict::kInUse:
      // Still held by a connection whose end we have not seen: try again soon.
      log("resume of a session still attached: op 9 d=true");
      send(kInvalidSessionTrue);
      return false;
    case ResumeVerdict::kUnknown:
    case ResumeVerdict::kTokenMismatch:
    case ResumeVerdict::kExpired:
    case ResumeVerdict::kTooOld:
      log(cat("resume refused (", to_string(v), "): op 9"));
      send(kInvalidSessionFalse);
      return false;
  }
  session_ = std::move(found);
  SessionState& s = *session_;
  catch_up(s, seq, now, sh_.opt.rate, sh_.opt.events);
  identified_ = true;
  // Replay every dispatch after `seq`: kept ones as they were, the rest
  // regenerated from the seed.
  const uint64_t replayed = replay(
      sh_.mix, s, seq, stamp_ns(now), [&](std::string_view kept) { send(kept); },
      [&](const Draw& drawn) { send_drawn(drawn); });
  const uint64_t resumed_seq = ++s.last_seq;
  std::string resumed = resumed_payload(resumed_seq);
  keep(s, resumed_seq, resumed);
  send(resumed);
  count_sent(replayed + 1);
  s.stats->resumes.fetch_add(1, std::memory_order_relaxed);
  sh_.counters.resumes.fetch_add(1, std::memory_order_relaxed);
  log(cat("resumed session ", s.id, " from seq ", seq, ": replayed ", replayed));
  start_stream(now);
  return true;
}

void DiscordConn::on_request_members(std::string_view d_json, Instant now) {
  simdjson::dom::object d;
  if (!d_object(d_json, d, now)) return;
  std::vector<std::string_view> guilds;
  simdjson::dom::element gel;
  if (d["guild_id"].get(gel) != simdjson::SUCCESS) {
    close_decode_error(now);
    return;
  }
  std::string_view one;
  simdjson::dom::array arr;
  if (gel.get_string().get(one) == simdjson::SUCCESS) {
    guilds.push_back(one);
  } else if (gel.get_array().get(arr) == simdjson::SUCCESS) {
    for (auto e : arr) {
      if (e.get_string().get(one) != simdjson::SUCCESS) {
        close_decode_error(now);
        return;
      }
      guilds.push_back(one);
    }
  } else {
    close_decode_error(now);
    return;
  }
  for (std::string_view g : guilds) {
    if (g.empty() || g.size() > 20 || g.find_first_not_of("0123456789") != std::string_view::npos) {
      close_decode_error(now);
      return;
    }
  }
  std::string_view nonce;
  const bool has_nonce =
      d["nonce"].get_string().get(nonce) == simdjson::SUCCESS && nonce.size() <= 32;
  SessionState& s = *session_;
  for (std::string_view g : guilds) {
    const uint64_t seq = ++s.last_seq;
    std::string p = members_chunk_payload(seq, g, has_nonce ? std::optional(nonce) : std::nullopt);
    keep(s, seq, p);
    send(p);
    count_sent(1);
  }
}

// ----------------------------------------------------------------- stream

void DiscordConn::start_stream(Instant now) {
  pacer_.start(now);
  const Faults& f = sh_.faults;
  if (f.reconnect_every) arm(DiscordTimer::kReconnect, now + *f.reconnect_every);
  if (f.invalid_session_every) {
    arm(DiscordTimer::kInvalidSession, now + *f.invalid_session_every);
  }
  generate(now);
}

void DiscordConn::on_written(Instant now) {
  if (stream_blocked_ && conn_.queued_bytes() < kSendQueueBytes / 2) {
    stream_blocked_ = false;
    generate(now);
  } else if (sh_.opt.rate == 0 && !stream_blocked_) {
    generate(now);
  }
}

void DiscordConn::generate(Instant now) {
  if (!conn_.is_open() || !session_) return;
  SessionState& s = *session_;
  const GatewayOptions& o = sh_.opt;
  const Faults& f = sh_.faults;
  const uint64_t limit = o.events.value_or(UINT64_MAX);
  if (s.generated >= limit) return;
  const uint64_t want = o.rate > 0 ? pacer_.due(now, o.rate) : UINT64_MAX;
  const size_t cap = o.rate == 0 ? kDrainTopUpBytes : kSendQueueBytes;
  const uint64_t stop_at = f.events_before_fault();
  const uint64_t ts = stamp_ns(now);
  uint64_t n = 0;
  while (n < want && s.generated < limit && conn_events_ < stop_at) {
    if (conn_.queued_bytes() >= cap) {
      stream_blocked_ = true;
      break;
    }
    send_drawn(event_at(sh_.mix, s, ++s.last_seq, ts));
    ++s.generated;
    ++conn_events_;
    ++n;
  }
  if (n > 0) count_sent(n);
  if (o.rate > 0) {
    pacer_.sent(n);
    // A client that does not read: forget the backlog instead of buffering
    // it; the stream goes on when the queue drains.
    if (stream_blocked_) pacer_.start(now);
  }
  switch (f.after_events(conn_events_)) {
    case Faults::AfterEvents::kDropTcp:
      log(cat("fault: closing TCP after ", conn_events_, " events"));
      disarm(DiscordTimer::kGenerate);
      conn_.end_after_write("fault --close-every");
      return;
    case Faults::AfterEvents::kCloseCode:
      close(f.close_code, "fault --close-after", now);
      return;
    case Faults::AfterEvents::kNothing:
      break;
  }
  if (o.rate > 0 && !stream_blocked_ && s.generated < limit) {
    arm(DiscordTimer::kGenerate, std::max(pacer_.next(o.rate), now + milliseconds(1)));
  }
}

}  // namespace shardring::gatewaysrv
