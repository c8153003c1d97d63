// conn/client_session.cc: the half of conn::ClientConnection (client.h) that
// reads messages and talks to the Discord session: each WebSocket message to
// a payload (inflated when the stream is compressed), each payload parsed
// and handed to gateway::Session::on_payload, the --events filter, and the
// session's actions carried out as frames, timers and requests. client.cc
// holds the connection's life: dialing, TLS, the upgrade, input, output and
// closing.
#include <cstring>
#include <utility>
#include <variant>

#include "conn/client.h"
#include "ws/errc.h"

namespace shardring::conn {

std::string_view to_string(Note n) noexcept {
  switch (n) {
    case Note::kTlsHandshakeFailed:
      return "tls_handshake_failed";
    case Note::kTlsHandshakeDone:
      return "tls_handshake_done";
    case Note::kTlsSetupFailed:
      return "tls_setup_failed";
    case Note::kTlsRecordError:
      return "tls_record_error";
    case Note::kTlsClosedByPeer:
      return "tls_closed_by_peer";
    case Note::kTlsWriteFailed:
      return "tls_write_failed";
    case Note::kBadUrl:
      return "bad_url";
    case Note::kUpgradeRefused:
      return "upgrade_refused";
    case Note::kConnected:
      return "connected";
    case Note::kBadFrame:
      return "bad_frame";
    case Note::kBadCompressedStream:
      return "bad_compressed_stream";
    case Note::kBadPayload:
      return "bad_payload";
    case Note::kPeerClosed:
      return "peer_closed";
    case Note::kPeerNotReading:
      return "peer_not_reading";
    case Note::kIdentifying:
      return "identifying";
    case Note::kResuming:
      return "resuming";
    case Note::kHeartbeat:
      return "heartbeat";
    case Note::kZombie:
      return "zombie";
    case Note::kReady:
      return "ready";
    case Note::kResumed:
      return "resumed";
    case Note::kBadReady:
      return "bad_ready";
    case Note::kBadHello:
      return "bad_hello";
    case Note::kReconnectRequested:
      return "reconnect_requested";
    case Note::kInvalidSession:
      return "invalid_session";
    case Note::kUnknownOpcode:
      return "unknown_opcode";
    case Note::kDispatchWithoutSeq:
      return "dispatch_without_seq";
    case Note::kFiltered:
      return "filtered";
    case Note::kReconnecting:
      return "reconnecting";
    case Note::kSendRefused:
      return "send_refused";
  }
  return "?";
}

bool ClientConnection::on_message(const ws::Message& msg, Instant now, Dispatch& out) {
  // After our close frame only the peer's close matters: a dispatch read
  // now is not counted, so the resume replays it.
  if (phase_ == Phase::kClosing && msg.kind != ws::MessageKind::kClose) return false;
  switch (msg.kind) {
    case ws::MessageKind::kPing:
      scratch_.frame.clear();
      (void)encoder_.reply(scratch_.frame, msg, mask_key());
      queue_bytes(std::as_bytes(std::span(scratch_.frame)), now);
      return false;
    case ws::MessageKind::kPong:
      return false;
    case ws::MessageKind::kClose: {
      close_received_ = true;
      if (phase_ == Phase::kClosing) {  // the answer to our close
        maybe_finish_close();
        return false;
      }
      note(Note::kPeerClosed, msg.close_code, std::string(msg.close_reason));
      if (!encoder_.close_sent()) {
        scratch_.frame.clear();
        (void)encoder_.reply(scratch_.frame, msg, mask_key());
        queue_bytes(std::as_bytes(std::span(scratch_.frame)), now);
      }
      const uint16_t code = msg.close_code;
      begin_close(now);
      session_.set_jitter(scratch_.rng.unit());
      gateway::Actions a = session_.on_close(code, now);
      perform(a, now);
      return false;
    }
    case ws::MessageKind::kBinary:
      if (inflater_) {
        // One message of the compressed stream, inflated into the shared
        // buffer (padded). A broken stream closes and resumes: the next
        // connection starts a new stream and the gateway replays.
        const std::string_view m = msg.text();
        std::string_view payload;
        const parse::InflateErrc e = inflater_->inflate(
            std::as_bytes(std::span(m.data(), m.size())), scratch_.inflated, &payload);
        if (e == parse::InflateErrc::kOk) return on_payload(payload, true, now, out);
        if (e == parse::InflateErrc::kNeedMore) return false;
        const uint16_t code = e == parse::InflateErrc::kCorrupt ? ws::CloseCode::kInvalidPayload
                                                                : ws::CloseCode::kMessageTooBig;
        note(Note::kBadCompressedStream, code, parse::to_string(e));
        close_resumable(code, now);
        return false;
      }
      [[fallthrough]];
    case ws::MessageKind::kText:
      return on_payload(msg.text(), msg.padded, now, out);
  }
  return false;
}

bool ClientConnection::filtered(parse::EventType type, std::string_view t) const {
  // READY and RESUMED like any other type: the session reads them all the
  // same (a filtered READY is parsed for its session id and no further).
  return !options_.filter.allows(type, t);
}

bool ClientConnection::on_payload(std::string_view text, bool padded, Instant now, Dispatch& out) {
  if (!padded) {  // rare: copy into a padded buffer once
    scratch_.padded.assign(text.begin(), text.end());
    scratch_.padded.resize(text.size() + parse::kPadding, '\0');
    text = std::string_view(scratch_.padded.data(), text.size());
  }
  parse::Parser& parser = scratch_.parser;
  const bool filtering = !options_.filter.allows_all();
  // --events with --validate-d: the t-only read picks out unwanted
  // dispatches first, so the full check of d runs only for delivered ones.
  bool unwanted = false;
  if (filtering && options_.validate_d) {
    parse::EventName name;
    unwanted =
        parser.event_type(text, name) == parse::Errc::kOk && name.t && filtered(name.type, *name.t);
  }
  parse::Envelope env;
  parse::Errc pe = parser.parse(text, env, unwanted ? kDropOptions : parse_options_);
  if (pe == parse::Errc::kOk && unwanted &&
      !(env.op == gateway::to_int(gateway::Op::kDispatch) && env.s && env.t &&
        filtered(env.type, *env.t))) {
    // Not a dispatch to drop after all (the t-only read checks nothing
    // else): check it as every other payload.
    pe = parser.parse(text, env, parse_options_);
  }
  if (pe != parse::Errc::kOk) {
    note(Note::kBadPayload, static_cast<int64_t>(text.size()), parse::to_string(pe));
    close_resumable(gateway::kCloseBadPayload, now);
    return false;
  }
  gateway::Actions& actions = scratch_.actions;
  actions.clear();
  const gateway::Payload p = session_.on_payload(env, parser, scratch_.rng, now, actions);
  switch (p.kind) {
    case gateway::Received::kDispatch:
    case gateway::Received::kReplay:
    case gateway::Received::kHeartbeatAck:
    case gateway::Received::kHeartbeatRequest:
    case gateway::Received::kHello:
      break;
    case gateway::Received::kReady:
      note(Note::kReady, static_cast<int64_t>(*env.s));
      break;
    case gateway::Received::kResumed:
      note(Note::kResumed, static_cast<int64_t>(session_.last_seq()));
      break;
    case gateway::Received::kBadReady:
      note(Note::kBadReady);
      break;
    case gateway::Received::kBadHello:
      note(Note::kBadHello);
      break;
    case gateway::Received::kReconnectRequest:
      note(Note::kReconnectRequested);
      break;
    case gateway::Received::kInvalidSession:
      note(Note::kInvalidSession, p.resumable ? 1 : 0);
      break;
    case gateway::Received::kUnknownOp:
      note(Note::kUnknownOpcode, env.op);
      break;
    case gateway::Received::kDispatchWithoutSeq:
      note(Note::kDispatchWithoutSeq);
      break;
  }
  if (!actions.empty()) {
    gateway::Actions taken;
    taken.swap(actions);  // perform() may parse no payload, but stays off the scratch
    perform(taken, now);
  }
  const bool dispatch =
      p.kind == gateway::Received::kDispatch || p.kind == gateway::Received::kReplay ||
      p.kind == gateway::Received::kReady || p.kind == gateway::Received::kResumed;
  if (dispatch && env.t && filtering && filtered(env.type, *env.t)) {
    note(Note::kFiltered);  // its seq counted for heartbeats and resume
    return false;
  }
  if (!p.deliver) return false;
  out.seq = *env.s;
  out.type = env.type;
  out.t = env.t.value_or(std::string_view());
  out.d = env.d;
  out.guild_id = env.routing.guild_id.value_or(0);
  out.channel_id = env.routing.channel_id.value_or(0);
  out.sent_ns = env.stamp_ns;
  return true;
}

// ---------------------------------------------------------------- session

void ClientConnection::on_identify_granted(Instant now) {
  gateway::Actions a = session_.on_identify_granted(now);
  perform(a, now);
}

gateway::Errc ClientConnection::send(std::string payload, Instant now) {
  gateway::Actions a;
  const gateway::Errc e = session_.queue_send(std::move(payload), now, a);
  if (e != gateway::Errc::kOk) note(Note::kSendRefused, 0, std::string(gateway::to_string(e)));
  perform(a, now);
  return e;
}

void ClientConnection::perform(gateway::Actions& actions, Instant now) {
  for (auto& action : actions) {
    if (auto* x = std::get_if<gateway::SendText>(&action)) {
      if (phase_ != Phase::kOpen) continue;
      switch (x->kind) {
        case gateway::SendKind::kHeartbeat:
          note(Note::kHeartbeat);
          break;
        case gateway::SendKind::kIdentify:
          note(Note::kIdentifying);
          break;
        case gateway::SendKind::kResume:
          note(Note::kResuming, static_cast<int64_t>(session_.last_seq()));
          break;
        case gateway::SendKind::kUser:
          break;
      }
      queue_frame_text(x->json, now);
    } else if (auto* x = std::get_if<gateway::StartTimer>(&action)) {
      arm(static_cast<Timer>(x->id), x->deadline);
    } else if (auto* x = std::get_if<gateway::CancelTimer>(&action)) {
      disarm(static_cast<Timer>(x->id));
    } else if (std::holds_alternative<gateway::RequestIdentify>(action)) {
      identify_requested_ = true;
    } else if (auto* x = std::get_if<gateway::CloseConnection>(&action)) {
      if (session_.stats().zombies > zombies_seen_) {
        zombies_seen_ = session_.stats().zombies;
        note(Note::kZombie);
      }
      if (phase_ == Phase::kOpen) {
        scratch_.frame.clear();
        (void)encoder_.close(scratch_.frame, x->code, {}, mask_key());
        queue_bytes(std::as_bytes(std::span(scratch_.frame)), now);
      }
      begin_close(now);
    } else if (auto* x = std::get_if<gateway::Reconnect>(&action)) {
      note(Note::kReconnecting, x->delay.count(), std::string(gateway::to_string(x->mode)));
      if (phase_ != Phase::kClosing) drop_socket();
      dial_url_ = x->url;
      arm(Timer::kDial, now + x->delay);
    } else if (auto* x = std::get_if<gateway::Fatal>(&action)) {
      fatal_ = std::make_unique<gateway::Fatal>(std::move(*x));
      disarm(Timer::kDial);
      drop_socket();
    }
  }
}

void ClientConnection::note(Note n, int64_t value, std::string text) {
  scratch_.notes.push_back(NoteRecord{n, value, std::move(text)});
}

}  // namespace shardring::conn
