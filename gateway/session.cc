// gateway/session.cc: see session.h.
#include "gateway/session.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <type_traits>
#include <utility>

namespace shardring::gateway {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Appends one action. Built in place: GCC 12 warns (falsely) about the
// variant's string members when a temporary Action is moved in.
template <class T>
void emit(Actions& out, T&& action) {
  out.emplace_back(std::in_place_type<std::decay_t<T>>, std::forward<T>(action));
}

std::string ms_string(Millis d) { return std::to_string(d.count()) + "ms"; }

std::string ms_string(Clock::time_point t) {
  return ms_string(std::chrono::duration_cast<Millis>(t.time_since_epoch()));
}

// `fraction` of `d`, in whole milliseconds.
Millis scaled(Millis d, double fraction) {
  return Millis{static_cast<int64_t>(static_cast<double>(d.count()) * fraction)};
}

}  // namespace

std::string_view to_string(Errc e) noexcept {
  switch (e) {
    case Errc::kOk:
      return "ok";
    case Errc::kPayloadTooLarge:
      return "payload over 4096 bytes";
    case Errc::kEmptyPayload:
      return "empty payload";
    case Errc::kQueueFull:
      return "send queue full";
    case Errc::kSessionEnded:
      return "session ended";
  }
  return "?";
}

std::string_view to_string(TimerId id) noexcept {
  switch (id) {
    case TimerId::kHeartbeat:
      return "heartbeat";
    case TimerId::kHelloTimeout:
      return "hello_timeout";
    case TimerId::kSendWindow:
      return "send_window";
  }
  return "?";
}

std::string_view to_string(SendKind kind) noexcept {
  switch (kind) {
    case SendKind::kHeartbeat:
      return "heartbeat";
    case SendKind::kIdentify:
      return "identify";
    case SendKind::kResume:
      return "resume";
    case SendKind::kUser:
      return "user";
  }
  return "?";
}

std::string_view to_string(ConnectMode mode) noexcept {
  return mode == ConnectMode::kResume ? "resume" : "identify";
}

std::string_view to_string(State s) noexcept {
  switch (s) {
    case State::kConnecting:
      return "connecting";
    case State::kAwaitingHello:
      return "awaiting_hello";
    case State::kAwaitingGrant:
      return "awaiting_grant";
    case State::kIdentifying:
      return "identifying";
    case State::kResuming:
      return "resuming";
    case State::kReady:
      return "ready";
    case State::kStopped:
      return "stopped";
    case State::kFatal:
      return "fatal";
  }
  return "?";
}

std::string to_string(const Action& action) {
  return std::visit(
      Overloaded{
          [](const SendText& a) {
            std::string s = "SendText ";
            s += to_string(a.kind);
            if (a.kind == SendKind::kHeartbeat) {
              s += ' ';
              s += a.json;  // {"op":1,"d":N}: nothing secret
            } else {
              s += ' ' + std::to_string(a.json.size()) + " bytes";
            }
            return s;
          },
          [](const StartTimer& a) {
            return "StartTimer " + std::string(to_string(a.id)) + " @" + ms_string(a.deadline);
          },
          [](const CancelTimer& a) { return "CancelTimer " + std::string(to_string(a.id)); },
          [](const RequestIdentify&) { return std::string("RequestIdentify"); },
          [](const CloseConnection& a) { return "CloseConnection " + std::to_string(a.code); },
          [](const Reconnect& a) {
            return "Reconnect " + std::string(to_string(a.mode)) + " " + a.url + " in " +
                   ms_string(a.delay);
          },
          [](const Fatal& a) { return "Fatal " + std::to_string(a.code) + ": " + a.message; },
      },
      action);
}

Session::Session(Config config, double jitter)
    : Session(std::make_shared<const Config>(std::move(config)), 0, jitter) {
  shard_id_ = config_->shard_id;
}

Session::Session(std::shared_ptr<const Config> config, uint32_t shard_id, double jitter)
    : config_(std::move(config)), shard_id_(shard_id) {
  assert(config_ != nullptr && config_error(*config_).empty());
  assert(shard_id_ < config_->shard_count);
  set_jitter(jitter);
}

void Session::set_jitter(double jitter) noexcept {
  // NaN fails both comparisons and becomes 0.
  if (!(jitter >= 0.0)) jitter = 0.0;
  jitter_ = std::min(jitter, std::nextafter(1.0, 0.0));
}

bool Session::contains_token(std::string_view s) const noexcept {
  return !config_->token.empty() && s.find(config_->token) != std::string_view::npos;
}

// --- Timers ---------------------------------------------------------------

void Session::arm(TimerId id, Clock::time_point deadline, Actions& out) {
  const auto i = static_cast<size_t>(id);
  if (armed_[i] && deadline_[i] == deadline) return;
  armed_[i] = true;
  deadline_[i] = deadline;
  emit(out, StartTimer{id, deadline});
}

void Session::disarm(TimerId id, Actions& out) {
  const auto i = static_cast<size_t>(id);
  if (!armed_[i]) return;
  armed_[i] = false;
  emit(out, CancelTimer{id});
}

void Session::disarm_all(Actions& out) {
  for (size_t i = 0; i < kTimerCount; ++i) disarm(static_cast<TimerId>(i), out);
}

Actions Session::on_timer(TimerId id, Clock::time_point now) {
  Actions out;
  const auto i = static_cast<size_t>(id);
  if (i >= kTimerCount || !armed_[i]) return out;  // stale: cancelled since
  if (now < deadline_[i]) {                        // early: keep waiting
    emit(out, StartTimer{id, deadline_[i]});
    return out;
  }
  armed_[i] = false;
  switch (id) {
    case TimerId::kHeartbeat: {
      if (!hello_seen()) break;
      if (awaiting_ack_ && !paused_since_beat_) {
        // No ACK since the last beat: the connection is a zombie. Close with
        // a code other than 1000/1001 so the session stays resumable. If
        // reading was paused (backpressure) at any time since the beat, the
        // ACK may well have arrived, unread behind the bytes that piled up:
        // the beat goes out and the verdict waits for a beat sent and a
        // whole interval read without a pause.
        ++stats_.zombies;
        reconnect(out, kCloseResumable, Millis{0});
        break;
      }
      heartbeat_now(now, out);
      // Keep the cadence; if the timer fired very late, start over from now.
      Clock::time_point next = deadline_[i] + heartbeat_interval_;
      if (next <= now) next = now + heartbeat_interval_;
      arm(TimerId::kHeartbeat, next, out);
      break;
    }
    case TimerId::kHelloTimeout:
      if (state_ == State::kAwaitingHello) {
        reconnect(out, kCloseResumable, Millis{0});
      }
      break;
    case TimerId::kSendWindow:
      flush(now, out);
      break;
  }
  return out;
}

// --- Connections ----------------------------------------------------------

Actions Session::on_connected(Clock::time_point now) {
  Actions out;
  if (state_ == State::kStopped || state_ == State::kFatal) return out;
  disarm_all(out);
  state_ = State::kAwaitingHello;
  pending_ = Pending::kNone;
  heartbeat_due_ = false;
  awaiting_ack_ = false;
  paused_since_beat_ = reading_paused_;
  sent_.clear();  // the send limit is per connection
  arm(TimerId::kHelloTimeout, now + kHelloTimeout, out);
  return out;
}

Actions Session::on_connect_failed(Clock::time_point now) {
  Actions out;
  if (state_ != State::kConnecting) return out;
  reconnect(out, /*close_code=*/0, Millis{0});
  return out;
}

Millis Session::next_backoff() noexcept {
  const uint32_t n = backoff_failures_;
  if (backoff_failures_ < 31) ++backoff_failures_;
  if (n == 0) return scaled(kBackoffBase, jitter_);
  Millis d = kBackoffCap;
  if (n < 16) d = std::min(kBackoffCap, kBackoffBase * (int64_t{1} << n));
  return d / 2 + scaled(d / 2, jitter_);
}

void Session::reconnect(Actions& out, uint16_t close_code, Millis min_delay) {
  disarm_all(out);
  if (close_code != 0) emit(out, CloseConnection{close_code});
  pending_ = Pending::kNone;
  heartbeat_due_ = false;
  awaiting_ack_ = false;
  state_ = State::kConnecting;
  ++stats_.reconnects;
  const Millis delay = std::max(next_backoff(), min_delay);
  if (has_session()) {
    const bool resume_url_failing = backoff_failures_ > kResumeUrlAttempts;
    emit(out,
         Reconnect{resume_url_.empty() || resume_url_failing ? config_->gateway_url : resume_url_,
                   delay, ConnectMode::kResume});
  } else {
    emit(out, Reconnect{config_->gateway_url, delay, ConnectMode::kIdentify});
  }
}

void Session::clear_session() noexcept {
  session_id_.clear();
  resume_url_.clear();
  session_key_ = 0;
}

bool Session::restore(std::string_view session_id, std::string_view resume_url,
                      uint64_t seq) noexcept {
  if (state_ != State::kConnecting || has_session()) return false;
  if (session_id.empty() || session_id.size() > kMaxSessionIdBytes ||
      resume_url.size() > kMaxResumeUrlBytes || contains_token(session_id) ||
      contains_token(resume_url)) {
    return false;
  }
  session_id_.assign(session_id);
  resume_url_.assign(resume_url);
  session_key_ = session_key_of(session_id_);
  last_seq_ = seq;
  return true;
}

Actions Session::on_close(uint16_t code, Clock::time_point now) {
  Actions out;
  // Not connected: the tail of a connection we already left (the echo of
  // our own close frame), or nothing to close.
  if (!connected()) return out;
  switch (classify_close(code)) {
    case CloseDecision::kFatal: {
      disarm_all(out);
      state_ = State::kFatal;
      std::string message = "gateway closed shard " + std::to_string(shard_id_) + " with " +
                            std::to_string(code) + " (" + std::string(close_code_name(code)) +
                            "): " + std::string(fatal_close_advice(code));
      emit(out, Fatal{code, std::move(message)});
      break;
    }
    case CloseDecision::kIdentify:
      clear_session();
      reconnect(out, /*close_code=*/0, Millis{0});
      break;
    case CloseDecision::kResume:
      reconnect(out, /*close_code=*/0, Millis{0});
      break;
  }
  return out;
}

Actions Session::on_connection_lost(Clock::time_point now) { return on_close(1006, now); }

Actions Session::on_reconnect(Clock::time_point now) {
  Actions out;
  if (!connected()) return out;
  reconnect(out, kCloseResumable, Millis{0});
  return out;
}

Actions Session::on_invalid_session(bool resumable, Clock::time_point now) {
  Actions out;
  if (!hello_seen()) return out;
  if (resumable && has_session()) {
    reconnect(out, kCloseResumable, Millis{0});
    return out;
  }
  // The session is gone (or was never made): Discord docs, "Invalid
  // Session": wait 1-5 s, then identify on a new connection.
  clear_session();
  const Millis wait =
      kInvalidSessionMinWait + scaled(kInvalidSessionMaxWait - kInvalidSessionMinWait, jitter_);
  reconnect(out, kCloseNormal, wait);
  return out;
}

Actions Session::rewind(uint64_t seq, uint64_t session_key, Clock::time_point now) {
  Actions out;
  if (!has_session() || session_key != session_key_ || seq >= last_seq_ ||
      state_ == State::kStopped || state_ == State::kFatal) {
    return out;
  }
  last_seq_ = seq;
  ++stats_.rewinds;
  if (connected()) reconnect(out, kCloseResumable, Millis(0));
  return out;
}

Actions Session::shutdown(Clock::time_point now, StopMode mode) {
  Actions out;
  if (state_ == State::kStopped || state_ == State::kFatal) return out;
  disarm_all(out);
  if (connected()) {
    emit(out, CloseConnection{mode == StopMode::kKeepSession ? kCloseResumable : kCloseNormal});
  }
  // A session closed with 1000 is over; one kept stays for the caller to save.
  if (mode == StopMode::kEndSession) clear_session();
  state_ = State::kStopped;
  queue_.release();
  return out;
}

// --- Handshake --------------------------------------------------------------

Actions Session::on_hello(Millis heartbeat_interval, Clock::time_point now) {
  Actions out;
  if (state_ != State::kAwaitingHello) return out;
  disarm(TimerId::kHelloTimeout, out);
  heartbeat_interval_ =
      std::clamp(heartbeat_interval, kMinHeartbeatInterval, kMaxHeartbeatInterval);
  // Discord docs, "Sending Heartbeats": the first one after interval * jitter.
  arm(TimerId::kHeartbeat, now + scaled(heartbeat_interval_, jitter_), out);
  if (has_session()) {
    // RESUME does not go through the identify gate.
    state_ = State::kResuming;
    pending_ = Pending::kResume;
    flush(now, out);
  } else {
    state_ = State::kAwaitingGrant;
    if (!identify_requested_) {
      identify_requested_ = true;
      emit(out, RequestIdentify{});
    }
  }
  return out;
}

Actions Session::on_identify_granted(Clock::time_point now) {
  Actions out;
  if (!identify_requested_) return out;  // the gate answers requests only
  identify_requested_ = false;
  if (state_ != State::kAwaitingGrant) {
    // The connection that asked is gone: the slot is spent, the next HELLO
    // asks again.
    ++stats_.wasted_grants;
    return out;
  }
  state_ = State::kIdentifying;
  pending_ = Pending::kIdentify;
  flush(now, out);
  return out;
}

DispatchOutcome Session::on_ready(uint64_t seq, std::string_view session_id,
                                  std::string_view resume_gateway_url, Clock::time_point now,
                                  uint64_t user_id) {
  DispatchOutcome r;
  r.deliver = on_dispatch(seq);
  // READY answers our IDENTIFY; anywhere else it is a peer's mistake and
  // changes nothing.
  if (state_ != State::kIdentifying || pending_ != Pending::kNone) return r;
  // A field we cannot keep means we identify instead of resuming later. A
  // field that carries the token is refused so no log line can show it.
  if (session_id.size() <= kMaxSessionIdBytes && !contains_token(session_id)) {
    session_id_.assign(session_id);
  } else {
    session_id_.clear();
  }
  if (!session_id_.empty() && resume_gateway_url.size() <= kMaxResumeUrlBytes &&
      !contains_token(resume_gateway_url)) {
    resume_url_.assign(resume_gateway_url);
  } else {
    resume_url_.clear();
  }
  session_key_ = session_key_of(session_id_);
  if (user_id != 0) user_id_ = user_id;
  state_ = State::kReady;
  backoff_failures_ = 0;
  flush(now, r.actions);
  return r;
}

DispatchOutcome Session::on_resumed(uint64_t seq, Clock::time_point now) {
  DispatchOutcome r;
  r.deliver = on_dispatch(seq);
  if (state_ != State::kResuming || pending_ != Pending::kNone) return r;
  state_ = State::kReady;
  backoff_failures_ = 0;
  flush(now, r.actions);
  return r;
}

// --- The opcode switch -------------------------------------------------------

namespace {
template <class A>
void append(Actions& out, A&& more) {
  for (auto& a : more) out.push_back(std::move(a));
}
}  // namespace

Payload Session::on_other_payload(const parse::Envelope& env, parse::Parser& parser,
                                  Clock::time_point now, Actions& out) {
  Payload p;
  switch (static_cast<Op>(env.op)) {
    case Op::kDispatch: {
      if (!env.s) {
        p.kind = Received::kDispatchWithoutSeq;
        return p;
      }
      const uint64_t seq = *env.s;
      if (env.type == parse::EventType::kReady) {
        parse::ReadyInfo info;
        if (parser.ready_info(env.d, info) != parse::Errc::kOk) {
          p.kind = Received::kBadReady;
          if (connected()) reconnect(out, kCloseBadPayload, Millis{0});
          return p;
        }
        DispatchOutcome r =
            on_ready(seq, info.session_id, info.resume_gateway_url, now, info.user_id);
        append(out, r.actions);
        p.kind = Received::kReady;
        p.deliver = r.deliver;
        return p;
      }
      if (env.type == parse::EventType::kResumed) {
        DispatchOutcome r = on_resumed(seq, now);
        append(out, r.actions);
        p.kind = Received::kResumed;
        p.deliver = r.deliver;
        return p;
      }
      p.deliver = on_dispatch(seq);
      p.kind = p.deliver ? Received::kDispatch : Received::kReplay;
      return p;
    }
    case Op::kHeartbeat:
      p.kind = Received::kHeartbeatRequest;
      append(out, on_heartbeat_request(now));
      return p;
    case Op::kReconnect:
      p.kind = Received::kReconnectRequest;
      append(out, on_reconnect(now));
      return p;
    case Op::kInvalidSession:
      p.kind = Received::kInvalidSession;
      if (parse::invalid_session_resumable(env.d, p.resumable) != parse::Errc::kOk) {
        p.resumable = false;
      }
      append(out, on_invalid_session(p.resumable, now));
      return p;
    case Op::kHello: {
      uint64_t interval = 0;
      if (parser.hello_interval(env.d, interval) != parse::Errc::kOk) {
        p.kind = Received::kBadHello;
        if (connected()) reconnect(out, kCloseBadPayload, Millis{0});
        return p;
      }
      p.kind = Received::kHello;
      append(out, on_hello(Millis(interval), now));
      return p;
    }
    case Op::kHeartbeatAck:
      p.kind = Received::kHeartbeatAck;
      append(out, on_heartbeat_ack(now));
      return p;
    default:
      p.kind = Received::kUnknownOp;
      return p;
  }
}

std::string_view to_string(Received r) noexcept {
  switch (r) {
    case Received::kDispatch:
      return "dispatch";
    case Received::kReplay:
      return "replay";
    case Received::kDispatchWithoutSeq:
      return "dispatch_without_seq";
    case Received::kReady:
      return "ready";
    case Received::kResumed:
      return "resumed";
    case Received::kBadReady:
      return "bad_ready";
    case Received::kHello:
      return "hello";
    case Received::kBadHello:
      return "bad_hello";
    case Received::kHeartbeatAck:
      return "heartbeat_ack";
    case Received::kHeartbeatRequest:
      return "heartbeat_request";
    case Received::kReconnectRequest:
      return "reconnect_request";
    case Received::kInvalidSession:
      return "invalid_session";
    case Received::kUnknownOp:
      return "unknown_op";
  }
  return "?";
}

// --- Heartbeats -------------------------------------------------------------

void Session::heartbeat_now(Clock::time_point now, Actions& out) {
  heartbeat_due_ = true;
  flush(now, out);
}

Actions Session::on_heartbeat_request(Clock::time_point now) {
  Actions out;
  if (hello_seen()) heartbeat_now(now, out);
  return out;
}

Actions Session::on_heartbeat_ack(Clock::time_point now) {
  Actions out;
  if (!hello_seen() || !awaiting_ack_) return out;
  awaiting_ack_ = false;
  ++stats_.heartbeat_acks;
  stats_.last_heartbeat_rtt = std::chrono::duration_cast<Millis>(now - last_heartbeat_at_);
  return out;
}

// --- Sending ----------------------------------------------------------------

namespace {

// Milliseconds of a send (rounded up) and of now (rounded down): a window
// measured between them is never shorter than the real one.
uint32_t send_stamp(Clock::time_point t) noexcept {
  return static_cast<uint32_t>(std::chrono::ceil<Millis>(t.time_since_epoch()).count());
}
uint32_t now_stamp(Clock::time_point t) noexcept {
  return static_cast<uint32_t>(std::chrono::floor<Millis>(t.time_since_epoch()).count());
}
// now - sent in milliseconds (negative within the millisecond of a send).
int32_t age_ms(uint32_t now, uint32_t sent) noexcept { return static_cast<int32_t>(now - sent); }

}  // namespace

void Session::expire(Clock::time_point now) const noexcept {
  const uint32_t n = now_stamp(now);
  while (sent_.size() > 0 && age_ms(n, sent_.at(0)) >= kSendWindow.count()) sent_.pop();
}

int Session::sends_in_window(Clock::time_point now) const noexcept {
  expire(now);
  return sent_.size();
}

void Session::record_send(Clock::time_point now) { sent_.push(send_stamp(now)); }

void Session::flush(Clock::time_point now, Actions& out) {
  if (!hello_seen()) return;
  expire(now);
  if (pending_ != Pending::kNone && sent_.size() < kMaxSendsPerWindow) {
    record_send(now);
    if (pending_ == Pending::kIdentify) {
      emit(out, SendText{SendKind::kIdentify, identify_payload(*config_, shard_id_)});
      ++stats_.identifies;
      last_seq_ = 0;  // a new session: Discord numbers its dispatches from 1
    } else {
      emit(out,
           SendText{SendKind::kResume, resume_payload(config_->token, session_id_, last_seq_)});
      ++stats_.resumes;
    }
    pending_ = Pending::kNone;
  }
  if (heartbeat_due_ && sent_.size() < kMaxSendsPerWindow) {
    record_send(now);
    emit(out, SendText{SendKind::kHeartbeat, heartbeat_payload(last_seq_)});
    ++stats_.heartbeats_sent;
    heartbeat_due_ = false;
    awaiting_ack_ = true;
    paused_since_beat_ = reading_paused_;
    last_heartbeat_at_ = now;
  }
  const bool user_flows = state_ == State::kReady;
  while (user_flows && !queue_.empty() && sent_.size() < kMaxUserSendsPerWindow) {
    record_send(now);
    emit(out, SendText{SendKind::kUser, queue_.pop()});
    ++stats_.user_sends;
  }
  // Whatever still waits, waits for the window: arm the timer for the moment
  // enough old sends have aged out.
  const bool control_waits = pending_ != Pending::kNone || heartbeat_due_;
  const bool user_waits = user_flows && !queue_.empty();
  if (control_waits || user_waits) {
    const int limit = control_waits ? kMaxSendsPerWindow : kMaxUserSendsPerWindow;
    // sent_.size() >= limit here; the send at index (size - limit) from the
    // oldest must age out.
    const int32_t age = age_ms(now_stamp(now), sent_.at(sent_.size() - limit));
    const Clock::time_point reopen = std::chrono::floor<Millis>(now) + (kSendWindow - Millis(age));
    arm(TimerId::kSendWindow, reopen, out);
  } else {
    disarm(TimerId::kSendWindow, out);
  }
}

Errc Session::queue_send(std::string payload, Clock::time_point now, Actions& out) {
  if (state_ == State::kStopped || state_ == State::kFatal) {
    return Errc::kSessionEnded;
  }
  if (payload.size() > kMaxPayloadBytes) return Errc::kPayloadTooLarge;
  if (payload.empty()) return Errc::kEmptyPayload;
  if (queue_.size() >= kMaxQueuedSends) return Errc::kQueueFull;
  queue_.push(std::move(payload));
  flush(now, out);
  return Errc::kOk;
}

std::string Session::debug_string() const {
  std::string s =
      "shard " + std::to_string(shard_id_) + "/" + std::to_string(config_->shard_count) +
      " state=" + std::string(to_string(state_)) + " seq=" + std::to_string(last_seq_) +
      " session=" + (has_session() ? "yes" : "no") +
      " resume_url=" + (resume_url_.empty() ? "no" : "yes") +
      " interval=" + ms_string(heartbeat_interval_) +
      " awaiting_ack=" + (awaiting_ack_ ? "yes" : "no") +
      " identify_requested=" + (identify_requested_ ? "yes" : "no") +
      " backoff_failures=" + std::to_string(backoff_failures_) +
      " window=" + std::to_string(sent_.size()) + " queued=" + std::to_string(queue_.size());
  return s;
}

}  // namespace shardring::gateway
