// tools/gateway/stream.h: what a synthetic gateway session sends: the event
// stream at --rate (each event a function of the session's seed and its
// seq, so a replay regenerates it instead of storing it), the dispatches
// that are built rather than drawn (READY, RESUMED, GUILD_MEMBERS_CHUNK,
// kept for replay), and the catch-up of events missed while a session had
// no connection. Stage: the gateway's Discord role (discord.cc), before the
// connection frames the payloads. No I/O; times come in as arguments.
//
// Threads: the functions touch only the session passed in, which belongs to
// the calling connection's thread while attached (registry.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tools/gateway/mix.h"
#include "tools/gateway/registry.h"

namespace shardring::gatewaysrv {

// The "_trace" Discord puts in HELLO, READY and RESUMED.
inline constexpr std::string_view kTrace = R"(["shardring-gateway"])";

// Send time stamped into each dispatch (the steady clock's nanoseconds).
[[nodiscard]] uint64_t stamp_ns(Instant t) noexcept;

// A templated dispatch: the template and what is spliced into it.
struct Draw {
  const Template* t = nullptr;
  Splice s;
};

// Event `seq` of the session's stream (a template event).
[[nodiscard]] Draw event_at(const Mix& mix, const SessionState& s, uint64_t seq, uint64_t ts_ns);
// The GUILD_CREATE of guild `g` (seq 2 + g after READY; guild 0 is large).
[[nodiscard]] Draw guild_create_at(const Mix& mix, const SessionState& s, uint32_t g, uint64_t seq,
                                   uint64_t ts_ns);

// Calls kept(std::string_view payload) or drawn(const Draw&) for every
// dispatch after `after_seq` up to the session's last seq, in order: kept
// ones as they were, GUILD_CREATEs and events regenerated. Returns how many.
template <class Kept, class Drawn>
uint64_t replay(const Mix& mix, const SessionState& s, uint64_t after_seq, uint64_t ts_ns,
                Kept&& kept, Drawn&& drawn) {
  auto k = s.kept.begin();
  uint64_t n = 0;
  for (uint64_t q = after_seq + 1; q <= s.last_seq; ++q, ++n) {
    while (k != s.kept.end() && k->seq < q) ++k;
    if (k != s.kept.end() && k->seq == q) {
      kept(std::string_view(k->payload));
    } else if (q >= 2 && q < 2 + uint64_t{s.guilds}) {
      drawn(guild_create_at(mix, s, static_cast<uint32_t>(q - 2), q, ts_ns));
    } else {
      drawn(event_at(mix, s, q, ts_ns));
    }
  }
  return n;
}

// Keeps a built dispatch for replay, within kMaxKeptDispatches and the
// replay window.
void keep(SessionState& s, uint64_t seq, std::string payload);

// The stream went on while the session had no connection, as Discord's
// does: the events of that gap (at `rate`, within the replay window and
// `events_limit`) get their seqs now and are replayed with the rest.
void catch_up(SessionState& s, uint64_t resume_seq, Instant now, double rate,
              std::optional<uint64_t> events_limit);

// Payloads, in Discord's key order. READY's d.user.id is the bot user id
// the session's token encodes (token.h), else a fixed one.
[[nodiscard]] std::string hello_payload(int64_t heartbeat_ms);
[[nodiscard]] std::string ready_payload(const SessionState& s, std::string_view resume_url);
[[nodiscard]] std::string resumed_payload(uint64_t seq);
[[nodiscard]] std::string members_chunk_payload(uint64_t seq, std::string_view guild,
                                                std::optional<std::string_view> nonce);

// --rate pacing of one connection's stream: events are due at
// epoch + k / rate.
class Pacer {
 public:
  void start(Instant now) noexcept {
    epoch_ = now;
    count_ = 0;
  }
  // Events due by `now` and not sent yet.
  [[nodiscard]] uint64_t due(Instant now, double rate) const noexcept;
  void sent(uint64_t n) noexcept { count_ += n; }
  // When the next event is due.
  [[nodiscard]] Instant next(double rate) const noexcept;

 private:
  Instant epoch_{};
  uint64_t count_ = 0;
};

}  // namespace shardring::gatewaysrv
