#include "conn/client.h"

#include <cstring>
#include <utility>
#include <variant>

#include "ws/errc.h"

namespace shardring::conn {
namespace {

// Every text message goes to the parser, which checks its UTF-8 (and the
// connection closes 1007 when it is not): the decoder need not check first.
ws::DecoderOptions ClientDecoderOptions() {
  ws::DecoderOptions opts;
  opts.max_message_bytes = parse::kMaxMessageBytes;
  opts.check_text_utf8 = false;
  return opts;
}

constexpr uint32_t Bit(Timer t) { return uint32_t{1} << static_cast<unsigned>(t); }

}  // namespace

ClientScratch::ClientScratch(uint64_t seed) : rng(seed) {
  plain.resize(kPlaintextChunk + parse::kPadding);
}

std::string_view to_string(Phase p) noexcept {
  switch (p) {
    case Phase::kIdle:
      return "idle";
    case Phase::kDialing:
      return "dialing";
    case Phase::kTls:
      return "tls";
    case Phase::kUpgrade:
      return "upgrade";
    case Phase::kOpen:
      return "open";
    case Phase::kClosing:
      return "closing";
  }
  return "?";
}

namespace {
// The session configuration every connection of these options shares.
std::shared_ptr<const gateway::Config> SharedConfig(const ClientOptions& options,
                                                    ClientScratch& scratch) {
  if (scratch.session_config == nullptr || *scratch.session_config != options.session) {
    scratch.session_config = std::make_shared<const gateway::Config>(options.session);
  }
  return scratch.session_config;
}
}  // namespace

ClientConnection::ClientConnection(const ClientOptions& options, ClientScratch& scratch,
                                   uint32_t shard_id)
    : options_(options),
      scratch_(scratch),
      shard_(shard_id),
      session_(SharedConfig(options, scratch), shard_id, scratch.rng.unit()),
      decoder_(ws::Role::kClient, ClientDecoderOptions()),
      parse_options_{.check = options.validate_d ? parse::Check::kFull : parse::Check::kEnvelope,
                     .routing_keys = options.routing_keys} {
  deadlines_.fill(kUnarmed);
}

// ------------------------------------------------------------------ timers

void ClientConnection::arm(Timer t, Instant deadline) {
  deadlines_[static_cast<size_t>(t)] =
      deadline == kUnarmed ? deadline - Instant::duration(1) : deadline;
  timer_changes_ |= Bit(t);
}

void ClientConnection::disarm(Timer t) {
  Instant& d = deadlines_[static_cast<size_t>(t)];
  if (d == kUnarmed) return;
  d = kUnarmed;
  timer_changes_ |= Bit(t);
}

void ClientConnection::schedule_dial(Instant at) { arm(Timer::kDial, at); }

void ClientConnection::on_timer(Timer timer, Instant now) {
  deadlines_[static_cast<size_t>(timer)] = kUnarmed;  // fired: the driver knows
  switch (timer) {
    case Timer::kHeartbeat:
    case Timer::kHelloTimeout:
    case Timer::kSendWindow: {
      session_.set_jitter(scratch_.rng.unit());
      gateway::Actions a = session_.on_timer(static_cast<gateway::TimerId>(timer), now);
      perform(a, now);
      return;
    }
    case Timer::kCloseLinger:
      if (phase_ == Phase::kClosing) drop_socket();
      return;
    case Timer::kDial: {
      const gateway::State s = session_.state();
      if (s == gateway::State::kStopped || s == gateway::State::kFatal) return;
      // The old socket may still be closing (the peer never answered our
      // close frame): it is dropped now, as the backoff is over.
      drop_socket();
      dial_requested_ = true;
      return;
    }
    case Timer::kCount:
      return;
  }
}

// ------------------------------------------------------------ connecting

void ClientConnection::on_dial_started(Instant now) {
  (void)now;
  phase_ = Phase::kDialing;
}

void ClientConnection::on_dial_failed(Instant now) {
  if (phase_ != Phase::kDialing && phase_ != Phase::kTls && phase_ != Phase::kUpgrade) return;
  drop_socket();
  session_.set_jitter(scratch_.rng.unit());
  gateway::Actions a = session_.on_connect_failed(now);
  perform(a, now);
}

void ClientConnection::on_transport_open(const Endpoint& endpoint, Instant now) {
  if (phase_ != Phase::kDialing) return;
  // Fresh per-connection protocol state.
  decoder_ = ws::Decoder(ws::Role::kClient, ClientDecoderOptions());
  encoder_ = ws::Encoder(ws::Role::kClient);
  out_.clear();
  write_in_flight_ = false;
  close_received_ = false;
  decoder_fed_ = false;
  tls_drained_ = true;
  tls_end_ = tls::Errc::kOk;
  endpoint_ = endpoint;
  if (endpoint.tls) {
    if (scratch_.tls_context == nullptr) {
      note(Note::kTlsSetupFailed, 0, "no TLS context");
      on_dial_failed(now);
      return;
    }
    auto t = tls::Session::client(*scratch_.tls_context, endpoint.host, &scratch_.tls_cache);
    if (!t.ok()) {
      note(Note::kTlsSetupFailed, 0, std::string(t.status().message()));
      on_dial_failed(now);
      return;
    }
    tls_.emplace(std::move(*t));
    phase_ = Phase::kTls;
    drive_tls_handshake(now);
  } else {
    tls_.reset();
    start_upgrade(now);
  }
}

void ClientConnection::drive_tls_handshake(Instant now) {
  const tls::Errc e = tls_->handshake();
  if (e == tls::Errc::kWantRead) return;
  if (e != tls::Errc::kOk) {
    note(Note::kTlsHandshakeFailed, 0, tls_->error_detail());
    on_dial_failed(now);
    return;
  }
  note(Note::kTlsHandshakeDone, tls_->is_resumed() ? 1 : 0);
  start_upgrade(now);
}

void ClientConnection::start_upgrade(Instant now) {
  std::array<std::byte, 16> nonce;
  for (size_t i = 0; i < nonce.size(); i += 8) {
    const uint64_t r = scratch_.rng.next();
    std::memcpy(nonce.data() + i, &r, 8);
  }
  handshake_ = std::make_unique<ws::ClientHandshake>(std::span<const std::byte, 16>(nonce));
  const Endpoint& ep = endpoint_;
  std::string& host = scratch_.padded;  // scratch: Host header value
  host.clear();
  if (ep.host.find(':') != std::string_view::npos) {  // an IPv6 literal
    host.append(1, '[').append(ep.host).append(1, ']');
  } else {
    host.append(ep.host);
  }
  if (ep.port != (ep.tls ? 443 : 80)) host.append(1, ':').append(std::to_string(ep.port));
  std::string& target = scratch_.target;
  target.assign(ep.path.empty() ? std::string_view("/") : ep.path);
  if (!ep.query.empty()) target.append(1, '?').append(ep.query);
  const ws::Header extra[] = {{"User-Agent", options_.user_agent}};
  std::string& request = scratch_.frame;
  request.clear();
  if (handshake_->write_request(request, host, target, extra) != ws::Errc::kOk) {
    note(Note::kBadUrl);
    on_dial_failed(now);
    return;
  }
  endpoint_ = Endpoint{};
  phase_ = Phase::kUpgrade;
  queue_bytes(std::as_bytes(std::span(request)), now);
}

// ------------------------------------------------------------------ input

void ClientConnection::receive(std::span<std::byte> bytes, size_t slack, Instant now) {
  if (phase_ == Phase::kIdle || phase_ == Phase::kDialing || bytes.empty()) return;
  if (tls_) {
    if (tls_->feed_ciphertext(bytes) != tls::Errc::kOk) {
      note(Note::kTlsRecordError, 0, "cannot keep unread ciphertext");
      on_transport_lost(now);
      return;
    }
    tls_drained_ = false;
  } else {
    pending_plain_ = bytes;
    pending_slack_ = slack;
  }
}

bool ClientConnection::poll(Dispatch& out, Instant now) {
  while (true) {
    if (phase_ == Phase::kIdle || phase_ == Phase::kDialing) {
      pending_plain_ = {};
      decoder_fed_ = false;
      return false;
    }
    if (decoder_fed_) {
      ws::Message msg;
      const ws::Errc e = decoder_.next(msg);
      if (e == ws::Errc::kOk) {
        if (on_message(msg, now, out)) return true;
        continue;
      }
      decoder_fed_ = false;
      if (e != ws::Errc::kNeedMore && e != ws::Errc::kClosed) {
        if (phase_ == Phase::kClosing) {  // garbage after our close: stop waiting
          drop_socket();
          continue;
        }
        note(Note::kBadFrame, ws::close_code(e));
        close_resumable(ws::close_code(e), now);
        continue;
      }
    }
    if (!tls_) {
      if (pending_plain_.empty()) return false;
      const std::span<std::byte> bytes = std::exchange(pending_plain_, {});
      feed_plain(bytes, pending_slack_, now);
      continue;
    }
    if (tls_drained_) {
      const tls::Errc end = std::exchange(tls_end_, tls::Errc::kOk);
      if (end == tls::Errc::kClosed) {
        note(Note::kTlsClosedByPeer);
        on_transport_lost(now);
        continue;
      }
      if (end != tls::Errc::kOk) {
        note(Note::kTlsRecordError, 0, tls_->error_detail());
        on_transport_lost(now);
        continue;
      }
      if (tls_->unread_ciphertext() > 0) (void)tls_->retain_ciphertext();
      return false;
    }
    if (phase_ == Phase::kTls) {
      drive_tls_handshake(now);
      if (phase_ == Phase::kTls) tls_drained_ = true;  // wants more bytes
      continue;
    }
    size_t produced = 0;
    const tls::Errc e = tls_->read_plaintext(
        std::span<std::byte>(scratch_.plain.data(), kPlaintextChunk), produced);
    if (e != tls::Errc::kOk) {
      tls_drained_ = true;
      if (e != tls::Errc::kWantRead) tls_end_ = e;  // after the plaintext before it
    }
    if (produced > 0) {
      feed_plain(std::span<std::byte>(scratch_.plain.data(), produced), parse::kPadding, now);
    }
  }
}

void ClientConnection::feed_plain(std::span<std::byte> bytes, size_t slack, Instant now) {
  if (phase_ == Phase::kUpgrade) {
    size_t consumed = 0;
    const ws::Errc e = handshake_->feed(bytes, consumed);
    if (e == ws::Errc::kNeedMore) return;
    if (e != ws::Errc::kOk) {
      note(Note::kUpgradeRefused, handshake_->status(), std::to_string(static_cast<int>(e)));
      on_dial_failed(now);
      return;
    }
    handshake_.reset();  // the request and the answer's head: not needed again
    phase_ = Phase::kOpen;
    if (options_.compression != parse::Compression::kNone) {
      if (inflater_) {
        inflater_->reset();
      } else {
        inflater_.emplace(options_.compression);
      }
    }
    note(Note::kConnected, tls_ ? 1 : 0);
    session_.set_jitter(scratch_.rng.unit());
    gateway::Actions a = session_.on_connected(now);
    perform(a, now);
    bytes = bytes.subspan(consumed);
    if (bytes.empty()) return;
  }
  if (phase_ != Phase::kOpen && phase_ != Phase::kClosing) return;
  decoder_.feed(bytes, slack);
  decoder_fed_ = true;
}

// ------------------------------------------------------------------ output

ws::MaskKey ClientConnection::mask_key() {
  const auto r = static_cast<uint32_t>(scratch_.rng.next());
  ws::MaskKey key;
  static_assert(sizeof key == sizeof r);
  std::memcpy(key.data(), &r, sizeof r);
  return key;
}

void ClientConnection::queue_frame_text(std::string_view json, Instant now) {
  scratch_.frame.clear();
  (void)encoder_.text(scratch_.frame, json, mask_key());
  queue_bytes(std::as_bytes(std::span(scratch_.frame)), now);
}

void ClientConnection::queue_bytes(std::span<const std::byte> bytes, Instant now) {
  if (phase_ == Phase::kIdle || phase_ == Phase::kDialing) return;
  if (tls_) {
    if (tls_->write_plaintext(bytes) != tls::Errc::kOk) {
      note(Note::kTlsWriteFailed, 0, tls_->error_detail());
      on_transport_lost(now);
      return;
    }
  } else {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }
  const size_t queued = queued_write_bytes();
  if (queued > kMaxQueuedOutBytes) {  // the peer stopped reading our frames
    note(Note::kPeerNotReading, static_cast<int64_t>(queued));
    on_transport_lost(now);
  }
}

size_t ClientConnection::queued_write_bytes() const noexcept {
  return tls_ ? tls_->pending_ciphertext().size() : out_.size();
}

bool ClientConnection::take_write(std::vector<std::byte>& out) {
  if (write_in_flight_ || phase_ == Phase::kIdle || phase_ == Phase::kDialing) return false;
  if (tls_) {
    if (tls_->pending_ciphertext().empty()) return false;
    tls_->take_ciphertext(out);
  } else {
    if (out_.empty()) return false;
    std::swap(out_, out);
    out_.clear();
  }
  write_in_flight_ = true;
  return true;
}

void ClientConnection::recycle_write(std::vector<std::byte>& buffer) noexcept {
  if (buffer.capacity() > kRetainedWriteBytes) {
    std::vector<std::byte>().swap(buffer);
  } else {
    buffer.clear();
  }
}

void ClientConnection::on_write_done(Instant now) {
  (void)now;
  write_in_flight_ = false;
  maybe_finish_close();
}

// ---------------------------------------------------------------- closing

void ClientConnection::maybe_finish_close() {
  if (phase_ == Phase::kClosing && close_received_ && !write_in_flight_ &&
      queued_write_bytes() == 0) {
    drop_socket();
  }
}

// The close frames are queued. The socket closes when they are written and,
// for a close we started on an open WebSocket, once the peer's close frame
// or EOF came (RFC 6455 7.1.1: the server closes the TCP connection first),
// or after kCloseLinger whatever the peer does.
void ClientConnection::begin_close(Instant now) {
  if (phase_ != Phase::kOpen && phase_ != Phase::kUpgrade && phase_ != Phase::kTls) return;
  if (phase_ != Phase::kOpen) close_received_ = true;  // no WebSocket to close
  if (tls_) (void)tls_->shutdown();
  phase_ = Phase::kClosing;
  arm(Timer::kCloseLinger, now + kCloseLinger);
  maybe_finish_close();
}

void ClientConnection::close_resumable(uint16_t code, Instant now) {
  if (phase_ == Phase::kClosing) return;  // already closing: the session knows
  if (phase_ == Phase::kOpen) {
    scratch_.frame.clear();
    (void)encoder_.close(scratch_.frame, code, {}, mask_key());
    queue_bytes(std::as_bytes(std::span(scratch_.frame)), now);
    begin_close(now);
  }
  session_.set_jitter(scratch_.rng.unit());
  gateway::Actions a = session_.on_connection_lost(now);
  perform(a, now);
}

void ClientConnection::drop_socket() {
  disarm(Timer::kCloseLinger);
  if (phase_ == Phase::kIdle) return;
  phase_ = Phase::kIdle;
  close_socket_ = true;
  tls_.reset();
  handshake_.reset();
  endpoint_ = Endpoint{};
  out_.clear();
  write_in_flight_ = false;
  decoder_.release_memory();
  decoder_fed_ = false;
  pending_plain_ = {};
  tls_drained_ = true;
  tls_end_ = tls::Errc::kOk;
}

void ClientConnection::on_transport_lost(Instant now) {
  if (phase_ == Phase::kIdle) return;
  if (phase_ == Phase::kClosing) {  // EOF or an error after our close: the end
    drop_socket();                  // we were waiting for; the session knows
    return;
  }
  const bool was_open = phase_ == Phase::kOpen;
  drop_socket();
  session_.set_jitter(scratch_.rng.unit());
  gateway::Actions a =
      was_open ? session_.on_connection_lost(now) : session_.on_connect_failed(now);
  perform(a, now);
}

bool ClientConnection::restore(std::string_view session_id, std::string_view resume_url,
                               uint64_t seq) {
  if (phase_ != Phase::kIdle || !session_.restore(session_id, resume_url, seq)) return false;
  dial_url_.assign(resume_url);  // the first dial goes where the session lives
  return true;
}

void ClientConnection::rewind(uint64_t seq, uint64_t session_key, Instant now) {
  gateway::Actions a = session_.rewind(seq, session_key, now);
  perform(a, now);
}

void ClientConnection::shutdown(Instant now, gateway::Session::StopMode mode) {
  disarm(Timer::kDial);
  dial_requested_ = false;
  identify_requested_ = false;
  const bool open = phase_ == Phase::kOpen;
  gateway::Actions a = session_.shutdown(now, mode);
  perform(a, now);
  if (open && phase_ == Phase::kOpen) begin_close(now);
  if (phase_ != Phase::kClosing) drop_socket();
}

}  // namespace shardring::conn
