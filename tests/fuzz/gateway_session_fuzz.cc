// tests/fuzz/gateway_session_fuzz.cc: gateway::Session under a random
// sequence of inputs (opcodes, closes with any code, timer fires at growing
// times, dispatches with any seq, identify grants, user sends, jitter).
// A model of the engine (its timer table, the connection, the identify gate)
// sits beside the session and checks the protocol invariants after every
// step; a violation traps.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "gateway/session.h"

namespace {

using namespace std::chrono_literals;
using shardring::gateway::Action;
using shardring::gateway::Actions;
using shardring::gateway::CancelTimer;
using shardring::gateway::Clock;
using shardring::gateway::CloseConnection;
using shardring::gateway::Config;
using shardring::gateway::Errc;
using shardring::gateway::Fatal;
using shardring::gateway::Millis;
using shardring::gateway::Reconnect;
using shardring::gateway::RequestIdentify;
using shardring::gateway::SendKind;
using shardring::gateway::SendText;
using shardring::gateway::Session;
using shardring::gateway::StartTimer;
using shardring::gateway::State;
using shardring::gateway::TimerId;
namespace gw = shardring::gateway;

constexpr std::string_view kToken = "FUZZ.TOKEN.c2hhcmRyaW5n";

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  uint8_t u8() { return p_ == end_ ? 0 : *p_++; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{u8()} << (8 * i);
    return v;
  }
  std::string_view bytes(size_t n) {
    n = std::min<size_t>(n, end_ - p_);
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// What the engine would know and what the protocol allows.
struct Model {
  Clock::time_point now = Clock::time_point{} + 1h;
  std::array<std::optional<Clock::time_point>, gw::kTimerCount> timers;
  bool conn_open = false;  // between on_connected and leaving it
  bool hello = false;      // HELLO accepted on this connection
  bool identify_outstanding = false;
  bool ended = false;                               // Fatal or shutdown seen
  uint64_t max_delivered = 0;                       // in the current session lineage
  std::deque<Clock::time_point> sends, user_sends;  // this connection
};

void CheckNoToken(std::string_view s) { CHECK(s.find(kToken) == std::string_view::npos); }

void CheckWindow(std::deque<Clock::time_point>& log, Clock::time_point now, int limit) {
  log.push_back(now);
  while (!log.empty() && log.front() + gw::kSendWindow <= now) log.pop_front();
  CHECK(static_cast<int>(log.size()) <= limit);
}

// Applies the actions of one input to the model, checking each.
// `fatal_allowed`: the input was a close with a fatal code.
void Take(Model& m, Session& s, const Actions& actions, bool fatal_allowed) {
  if (!actions.empty()) CHECK(!m.ended);
  for (const Action& a : actions) {
    CheckNoToken(gw::to_string(a));
    if (const auto* send = std::get_if<SendText>(&a)) {
      CHECK(m.conn_open && m.hello);
      CHECK(!send->json.empty() && send->json.size() <= gw::kMaxPayloadBytes);
      CheckWindow(m.sends, m.now, gw::kMaxSendsPerWindow);
      if (send->kind == SendKind::kUser) {
        // The reserve: a user send never takes the window past 115, counting
        // every kind of send, so heartbeats always find room.
        CHECK(static_cast<int>(m.sends.size()) <= gw::kMaxUserSendsPerWindow);
        CheckWindow(m.user_sends, m.now, gw::kMaxUserSendsPerWindow);
      } else {
        // Only IDENTIFY and RESUME carry the token; a heartbeat never.
        const bool has_token = send->json.find(kToken) != std::string::npos;
        CHECK(has_token == (send->kind != SendKind::kHeartbeat));
      }
      if (send->kind == SendKind::kIdentify) m.max_delivered = 0;
    } else if (const auto* st = std::get_if<StartTimer>(&a)) {
      CHECK(st->deadline >= m.now);
      CHECK(static_cast<size_t>(st->id) < gw::kTimerCount);
      m.timers[static_cast<size_t>(st->id)] = st->deadline;
    } else if (const auto* ct = std::get_if<CancelTimer>(&a)) {
      CHECK(m.timers[static_cast<size_t>(ct->id)].has_value());
      m.timers[static_cast<size_t>(ct->id)].reset();
    } else if (std::holds_alternative<RequestIdentify>(a)) {
      CHECK(m.conn_open && m.hello);
      CHECK(!m.identify_outstanding);
      m.identify_outstanding = true;
    } else if (const auto* cc = std::get_if<CloseConnection>(&a)) {
      CHECK(m.conn_open);
      CHECK(cc->code == gw::kCloseNormal || cc->code == gw::kCloseResumable);
      m.conn_open = false;
    } else if (const auto* rc = std::get_if<Reconnect>(&a)) {
      CHECK(rc->delay >= Millis{0});
      CHECK(rc->delay <= std::max(gw::kBackoffCap, gw::kInvalidSessionMaxWait));
      CHECK(!rc->url.empty());
      CHECK((rc->mode == gw::ConnectMode::kResume) == s.has_session());
      m.conn_open = false;
    } else if (const auto* f = std::get_if<Fatal>(&a)) {
      CHECK(fatal_allowed && gw::is_fatal_close(f->code));
      CheckNoToken(f->message);
      m.conn_open = false;
      m.ended = true;
    }
  }
  if (!m.conn_open) {
    m.hello = false;
    // Leaving a connection cancels everything that was armed for it.
    for (const auto& t : m.timers) CHECK(!t.has_value());
  }
  CHECK(s.queued_sends() <= gw::kMaxQueuedSends);
  CheckNoToken(s.debug_string());
}

void Deliver(Model& m, uint64_t seq, bool deliver) {
  // Delivered seqs rise strictly within a lineage: never one twice.
  CHECK(deliver == (seq > m.max_delivered));
  if (deliver) m.max_delivered = seq;
}

uint64_t PickSeq(Input& in, const Model& m) {
  switch (in.u8() % 4) {
    case 0:
      return m.max_delivered + 1;
    case 1:
      return m.max_delivered + 1 + in.u8();
    case 2:
      return m.max_delivered - std::min<uint64_t>(m.max_delivered, in.u8());
    default:
      return in.u64();
  }
}

uint16_t PickCloseCode(Input& in) {
  static constexpr uint16_t kCodes[] = {1000, 1001, 1006, 1011, 1012, 4000, 4001, 4002,
                                        4003, 4004, 4005, 4006, 4007, 4008, 4009, 4010,
                                        4011, 4012, 4013, 4014, 4015, 0};
  const uint8_t b = in.u8();
  return b < 200 ? kCodes[b % std::size(kCodes)] : in.u16();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  Config config;
  config.token = std::string(kToken);
  config.shard_id = 0;
  config.shard_count = 1;
  config.gateway_url = "wss://gateway.discord.gg";
  Session s(config, in.u8() / 256.0);
  Model m;

  for (int steps = 0; !in.empty() && steps < 4096; ++steps) {
    const uint8_t op = in.u8();
    switch (op % 20) {
      case 0: {  // the engine finished a connection
        const bool ok = s.state() != State::kStopped && s.state() != State::kFatal;
        const Actions out = s.on_connected(m.now);
        if (ok) {
          // A connection replaced while open drops its timers first.
          for (const Action& a : out) {
            if (const auto* ct = std::get_if<CancelTimer>(&a)) {
              m.timers[static_cast<size_t>(ct->id)].reset();
            }
          }
          m.conn_open = true;
          m.hello = false;
          m.sends.clear();
          m.user_sends.clear();
          Actions rest;
          for (const Action& a : out) {
            if (!std::holds_alternative<CancelTimer>(a)) rest.push_back(a);
          }
          Take(m, s, rest, false);
        } else {
          CHECK(out.empty());
        }
        break;
      }
      case 1:
        Take(m, s, s.on_connect_failed(m.now), false);
        break;
      case 2: {
        const Millis interval{in.u16() * 8};
        const bool accepts = s.state() == State::kAwaitingHello;
        if (accepts) m.hello = true;
        Take(m, s, s.on_hello(interval, m.now), false);
        break;
      }
      case 3:
        Take(m, s, s.on_heartbeat_ack(m.now), false);
        break;
      case 4:
        Take(m, s, s.on_heartbeat_request(m.now), false);
        break;
      case 5:
        Take(m, s, s.on_reconnect(m.now), false);
        break;
      case 6:
        Take(m, s, s.on_invalid_session(in.u8() & 1, m.now), false);
        break;
      case 7:
      case 8: {  // the hot path, twice as likely
        const uint64_t seq = PickSeq(in, m);
        Deliver(m, seq, s.on_dispatch(seq));
        break;
      }
      case 9: {
        const uint64_t seq = PickSeq(in, m);
        const uint8_t lens = in.u8();
        // Sometimes the token itself, which the session must refuse to keep.
        const std::string sid =
            (lens & 0x80) ? std::string(kToken) : std::string(in.bytes(lens & 0x7F));
        const std::string url(in.bytes(in.u8() % 64));
        const gw::DispatchOutcome r = s.on_ready(seq, sid, url, m.now);
        Deliver(m, seq, r.deliver);
        Take(m, s, r.actions, false);
        break;
      }
      case 10: {
        const uint64_t seq = PickSeq(in, m);
        const gw::DispatchOutcome r = s.on_resumed(seq, m.now);
        Deliver(m, seq, r.deliver);
        Take(m, s, r.actions, false);
        break;
      }
      case 11: {
        const uint16_t code = PickCloseCode(in);
        Take(m, s, s.on_close(code, m.now), /*fatal_allowed=*/true);
        break;
      }
      case 12:
        Take(m, s, s.on_connection_lost(m.now), false);
        break;
      case 13:
      case 14: {  // the engine's wheel: the earliest timer, on time or late
        size_t next = gw::kTimerCount;
        for (size_t i = 0; i < gw::kTimerCount; ++i) {
          if (m.timers[i] && (next == gw::kTimerCount || *m.timers[i] < *m.timers[next])) {
            next = i;
          }
        }
        if (next == gw::kTimerCount) break;
        m.now = std::max(m.now, *m.timers[next]) + Millis{in.u8()};
        m.timers[next].reset();
        Take(m, s, s.on_timer(static_cast<TimerId>(next), m.now), false);
        break;
      }
      case 15: {  // a stale, early or bogus timer id
        const uint8_t i = in.u8() % (gw::kTimerCount + 1);
        // A due timer fired out of order is spent, as the wheel would see
        // it; an early fire re-arms the same deadline; a stale one is a no-op.
        if (i < gw::kTimerCount && m.timers[i] && *m.timers[i] <= m.now) {
          m.timers[i].reset();
        }
        Take(m, s, s.on_timer(static_cast<TimerId>(i), m.now), false);
        break;
      }
      case 16:
        m.now += Millis{in.u16()} * ((op & 0x20) ? 16 : 1);
        break;
      case 17: {
        const bool was_requested = m.identify_outstanding;
        m.identify_outstanding = false;
        const Actions out = s.on_identify_granted(m.now);
        if (!was_requested) CHECK(out.empty());
        Take(m, s, out, false);
        break;
      }
      case 18: {
        const uint8_t b = in.u8();
        size_t n = b;
        if (b >= 250) n = gw::kMaxPayloadBytes - 5 + (b - 250);  // 4091..4096
        if (b == 249) n = gw::kMaxPayloadBytes + 1;
        const size_t queued = s.queued_sends();
        Actions out;
        const Errc e = s.queue_send(std::string(n, 'x'), m.now, out);
        if (n > gw::kMaxPayloadBytes)
          CHECK(e == Errc::kPayloadTooLarge || e == Errc::kSessionEnded);
        if (n == 0) CHECK(e == Errc::kEmptyPayload || e == Errc::kSessionEnded);
        if (e != Errc::kOk) CHECK(out.empty() && s.queued_sends() == queued);
        if (e == Errc::kQueueFull) CHECK(queued == gw::kMaxQueuedSends);
        Take(m, s, out, false);
        break;
      }
      case 19: {
        const uint8_t b = in.u8();
        if (b == 0xFF && in.u8() == 0xFF) {  // rare: a clean stop
          Take(m, s, s.shutdown(m.now), false);
          m.conn_open = false;
          m.hello = false;
          m.ended = true;
        } else {
          s.set_jitter(b / 256.0);
        }
        break;
      }
    }
  }
  return 0;
}
