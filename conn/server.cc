#include "conn/server.h"

#include <algorithm>
#include <utility>

#include "parse/envelope.h"
#include "ws/errc.h"

namespace shardring::conn {
namespace {

static_assert(ws::kPadding >= parse::kPadding, "payloads go to the parser in place");

ws::DecoderOptions ServerDecoderOptions(const ServerOptions& o) {
  ws::DecoderOptions d;
  d.max_message_bytes = o.max_message_bytes;
  return d;
}

// Whether HTTP lets the client send another request after our answer.
bool KeepAlive(const ws::ServerHandshake& hs) {
  bool keep = hs.version() == "HTTP/1.1" ? !hs.head().has_token("Connection", "close")
                                         : hs.head().has_token("Connection", "keep-alive");
  // Request bodies are not read: answer, then close.
  if (auto cl = hs.header("Content-Length"); cl && *cl != "0") keep = false;
  if (hs.header("Transfer-Encoding")) keep = false;
  return keep;
}

std::optional<parse::Compression> AskedCompression(std::string_view query) {
  const auto value = ws::query_param(query, "compress");
  if (!value || value->empty()) return parse::Compression::kNone;
  return parse::compression_from_name(*value);
}

}  // namespace

ServerScratch::ServerScratch() { plain.resize(kServerPlaintextChunk + ws::kPadding); }

std::string_view to_string(ServerNote n) noexcept {
  switch (n) {
    case ServerNote::kTlsHandshakeDone:
      return "tls_handshake_done";
    case ServerNote::kTlsError:
      return "tls_error";
    case ServerNote::kTlsClosedByPeer:
      return "tls_closed_by_peer";
    case ServerNote::kBadRequest:
      return "bad_request";
    case ServerNote::kCompressionFailed:
      return "compression_failed";
  }
  return "?";
}

ServerConnection::ServerConnection(const ServerOptions& options, ServerScratch& scratch,
                                   const tls::Context* tls)
    : options_(options),
      scratch_(scratch),
      decoder_(ws::Role::kServer, ServerDecoderOptions(options)) {
  if (tls == nullptr) return;
  auto s = tls::Session::server(*tls);
  if (!s.ok()) {
    note(ServerNote::kTlsError, 0, std::string(s.status().message()));
    finish("TLS session set-up failed");
    return;
  }
  tls_.emplace(std::move(*s));
  phase_ = ServerPhase::kTls;
}

// ------------------------------------------------------------------ timers

void ServerConnection::arm(ServerTimer t, Instant deadline) {
  deadlines_[static_cast<size_t>(t)] = deadline;
  timer_changed_ = true;
}

void ServerConnection::disarm(ServerTimer t) {
  auto& d = deadlines_[static_cast<size_t>(t)];
  if (!d) return;
  d.reset();
  timer_changed_ = true;
}

void ServerConnection::on_timer(ServerTimer timer, Instant now) {
  (void)now;
  deadlines_[static_cast<size_t>(timer)].reset();  // fired: the driver knows
  if (timer == ServerTimer::kCloseLinger && phase_ == ServerPhase::kClosing) {
    finish("no close frame from the client in time");
  }
}

// ------------------------------------------------------------------- input

void ServerConnection::receive(std::span<std::byte> bytes, size_t slack, Instant now) {
  (void)now;
  if (bytes.empty() || phase_ == ServerPhase::kFlushing || phase_ == ServerPhase::kDone) return;
  if (tls_) {
    if (tls_->feed_ciphertext(bytes) != tls::Errc::kOk) {
      note(ServerNote::kTlsError, 0, "cannot keep unread ciphertext");
      finish("TLS: out of memory");
      return;
    }
    tls_drained_ = false;
  } else {
    pending_ = bytes;
    pending_slack_ = slack;
  }
}

bool ServerConnection::poll(ServerEvent& out, Instant now) {
  (void)now;
  while (true) {
    if (awaiting_answer_) answer_unanswered();
    if (next_request_) {  // keep-alive: the next request starts afresh
      next_request_ = false;
      handshake_ = ws::ServerHandshake();
    }
    if (phase_ == ServerPhase::kFlushing || phase_ == ServerPhase::kDone) {
      pending_ = {};
      decoder_fed_ = false;
      if (tls_ && tls_->unread_ciphertext() > 0) (void)tls_->retain_ciphertext();
      return false;
    }
    if (decoder_fed_) {
      ws::Message msg;
      const ws::Errc e = decoder_.next(msg);
      if (e == ws::Errc::kOk) {
        if (on_message(msg, out)) return true;
        continue;
      }
      decoder_fed_ = false;
      if (e != ws::Errc::kNeedMore && e != ws::Errc::kClosed) {
        if (phase_ != ServerPhase::kOpen) {  // garbage after our close: stop waiting
          start_flushing("bad frames after our close frame");
          continue;
        }
        out = ServerEvent{};
        out.kind = ServerEventKind::kProtocolError;
        out.code = ws::close_code(e);
        out.reason = ws::describe(e);
        (void)send_close(out.code, out.reason, now);
        return true;
      }
    }
    if (!pending_.empty()) {
      if (feed_plain(out)) return true;
      continue;
    }
    if (!tls_) return false;
    if (tls_drained_) {
      const tls::Errc end = std::exchange(tls_end_, tls::Errc::kOk);
      if (end == tls::Errc::kClosed) {
        note(ServerNote::kTlsClosedByPeer);
        start_flushing("TLS close_notify from the client");
        continue;
      }
      if (end != tls::Errc::kOk) {
        note(ServerNote::kTlsError, 0, tls_->error_detail());
        finish("TLS error");
        continue;
      }
      // The session may hold bytes not read yet; it must not borrow the
      // driver's receive buffer past this call.
      if (tls_->unread_ciphertext() > 0) (void)tls_->retain_ciphertext();
      return false;
    }
    if (phase_ == ServerPhase::kTls) {
      drive_tls_handshake();
      if (phase_ == ServerPhase::kTls) tls_drained_ = true;  // wants more bytes
      continue;
    }
    size_t produced = 0;
    const tls::Errc e = tls_->read_plaintext(
        std::span<std::byte>(scratch_.plain.data(), kServerPlaintextChunk), produced);
    if (e != tls::Errc::kOk) {
      tls_drained_ = true;
      if (e != tls::Errc::kWantRead) tls_end_ = e;  // after the plaintext before it
    }
    if (produced > 0) {
      pending_ = std::span<std::byte>(scratch_.plain.data(), produced);
      pending_slack_ = scratch_.plain.size() - produced;
    }
  }
}

void ServerConnection::drive_tls_handshake() {
  const tls::Errc e = tls_->handshake();
  if (e == tls::Errc::kWantRead) return;
  if (e != tls::Errc::kOk) {
    note(ServerNote::kTlsError, 0, tls_->error_detail());
    start_flushing("TLS handshake failed");  // the alert, if any, goes out
    return;
  }
  note(ServerNote::kTlsHandshakeDone, tls_->is_resumed() ? 1 : 0);
  phase_ = ServerPhase::kHttp;
}

bool ServerConnection::feed_plain(ServerEvent& out) {
  if (phase_ == ServerPhase::kHttp) {
    size_t consumed = 0;
    const ws::Errc e = handshake_.feed(pending_, consumed);
    if (e == ws::Errc::kNeedMore) {
      pending_ = {};
      return false;
    }
    pending_ = pending_.subspan(consumed);
    if (e == ws::Errc::kNotUpgrade || e == ws::Errc::kOk) {
      out = ServerEvent{};
      out.request = &handshake_;
      upgrade_request_ = e == ws::Errc::kOk;
      if (e == ws::Errc::kNotUpgrade) {
        out.kind = ServerEventKind::kHttpRequest;
        out.keep_alive = KeepAlive(handshake_);
      } else {
        out.kind = ServerEventKind::kUpgradeRequest;
        asked_compression_ = AskedCompression(handshake_.query());
        out.compression = asked_compression_;
      }
      awaiting_answer_ = true;
      return true;
    }
    ws::ServerHandshake::write_error(out_, e);
    note(ServerNote::kBadRequest, ws::http_status(e));
    start_flushing("bad HTTP request");
    return false;
  }
  if (phase_ == ServerPhase::kOpen || phase_ == ServerPhase::kClosing) {
    decoder_.feed(std::exchange(pending_, {}), pending_slack_);
    decoder_fed_ = true;
    return false;
  }
  pending_ = {};
  return false;
}

bool ServerConnection::on_message(const ws::Message& msg, ServerEvent& out) {
  switch (msg.kind) {
    case ws::MessageKind::kPing:
      if (phase_ == ServerPhase::kOpen) (void)encoder_.reply(out_, msg);
      return false;
    case ws::MessageKind::kPong:
      return false;
    case ws::MessageKind::kClose:
      close_received_ = true;
      if (phase_ == ServerPhase::kOpen) {  // echo it: the handshake is done
        (void)encoder_.reply(out_, msg);
        phase_ = ServerPhase::kClosing;
      }
      out = ServerEvent{};
      out.kind = ServerEventKind::kClose;
      out.code = msg.close_code;
      out.reason = msg.close_reason;
      maybe_finish();
      return true;
    case ws::MessageKind::kText:
    case ws::MessageKind::kBinary: {
      if (phase_ != ServerPhase::kOpen) return false;  // after our close
      std::string_view text = msg.text();
      if (!msg.padded) {  // rare: copy into a padded buffer once
        scratch_.padded.assign(text);
        scratch_.padded.append(parse::kPadding, '\0');
        text = std::string_view(scratch_.padded.data(), msg.payload.size());
      }
      out = ServerEvent{};
      out.kind = ServerEventKind::kText;
      out.text = text;
      out.binary = msg.kind == ws::MessageKind::kBinary;
      return true;
    }
  }
  return false;
}

// -------------------------------------------------------------- requests

void ServerConnection::respond(uint16_t status, std::string_view reason,
                               std::span<const ws::Header> headers, std::string_view body,
                               bool keep_alive) {
  if (!awaiting_answer_) return;
  awaiting_answer_ = false;
  if (upgrade_request_) keep_alive = false;  // a refused upgrade: no more
  std::vector<ws::Header> all(headers.begin(), headers.end());
  all.push_back({"Connection", keep_alive ? "keep-alive" : "close"});
  ws::write_http_response(out_, status, reason, all, body);
  if (keep_alive) {
    next_request_ = true;
  } else {
    start_flushing("response sent");
  }
}

void ServerConnection::answer_unanswered() { respond(500, "Internal Server Error", {}, {}, false); }

void ServerConnection::accept_upgrade() {
  if (!awaiting_answer_ || !upgrade_request_) return;
  awaiting_answer_ = false;
  handshake_.write_accept(out_);
  phase_ = ServerPhase::kOpen;
  upgraded_ = true;
  const parse::Compression c = asked_compression_.value_or(parse::Compression::kNone);
  if (c != parse::Compression::kNone) {
    deflater_.emplace(c, 0, c == parse::Compression::kZstdStream ? options_.zstd_window_log : 0);
  }
  // The handshake's views (path, query, headers) stay valid until the next
  // poll(), which drops the request.
  next_request_ = true;
}

// ------------------------------------------------------------------ output

bool ServerConnection::send_text(std::string_view json) {
  if (phase_ != ServerPhase::kOpen || json.empty()) return false;
  const size_t step = options_.fragment;
  if (!deflater_) {
    if (step == 0 || json.size() <= step) {
      (void)encoder_.text(out_, json);
      return true;
    }
    for (size_t off = 0; off < json.size(); off += step) {
      const size_t n = std::min(step, json.size() - off);
      (void)encoder_.fragment(out_, off == 0 ? ws::Opcode::kText : ws::Opcode::kContinuation,
                              off + n == json.size(),
                              std::as_bytes(std::span<const char>(json.data() + off, n)));
    }
    return true;
  }
  // Compressed: the payload onto the connection's stream, sent as binary.
  // Fragmented zlib-stream goes out as several messages (clients join them
  // up to the suffix); zstd-stream keeps one payload per message and splits
  // it into continuation frames instead.
  std::string& z = scratch_.compressed;
  z.clear();
  if (!deflater_->compress(json, z)) {
    note(ServerNote::kCompressionFailed);
    finish("compression failed (out of memory)");
    return false;
  }
  const auto bytes = std::as_bytes(std::span<const char>(z));
  if (step == 0 || bytes.size() <= step) {
    (void)encoder_.binary(out_, bytes);
    return true;
  }
  const bool zlib = deflater_->compression() == parse::Compression::kZlibStream;
  for (size_t off = 0; off < bytes.size(); off += step) {
    const size_t n = std::min(step, bytes.size() - off);
    if (zlib) {
      (void)encoder_.binary(out_, bytes.subspan(off, n));
    } else {
      (void)encoder_.fragment(out_, off == 0 ? ws::Opcode::kBinary : ws::Opcode::kContinuation,
                              off + n == bytes.size(), bytes.subspan(off, n));
    }
  }
  return true;
}

bool ServerConnection::send_close(uint16_t code, std::string_view reason, Instant now) {
  if (phase_ != ServerPhase::kOpen) return false;
  if (encoder_.close(out_, code, reason) != ws::Errc::kOk &&
      encoder_.close(out_, code) != ws::Errc::kOk) {  // a reason it cannot send
    return false;
  }
  phase_ = ServerPhase::kClosing;
  arm(ServerTimer::kCloseLinger, now + options_.close_linger);
  return true;
}

void ServerConnection::end_after_write(std::string_view why) { start_flushing(why); }

std::span<const std::byte> ServerConnection::take_write() {
  if (write_in_flight_ || phase_ == ServerPhase::kDone) return {};
  if (tls_) {
    if (!out_.empty() && tls_->is_handshake_done()) {
      const tls::Errc e = tls_->write_plaintext(std::as_bytes(std::span<const char>(out_)));
      out_.clear();
      if (e != tls::Errc::kOk) {
        note(ServerNote::kTlsError, 0, std::string(tls::to_string(e)));
        finish("TLS write failed");
        return {};
      }
    }
    if (tls_->pending_ciphertext().empty()) return {};
    tls_->take_ciphertext(inflight_tls_);
    inflight_bytes_ = inflight_tls_.size();
    write_in_flight_ = true;
    return inflight_tls_;
  }
  if (out_.empty()) return {};
  std::swap(out_, inflight_plain_);
  out_.clear();
  inflight_bytes_ = inflight_plain_.size();
  write_in_flight_ = true;
  return std::as_bytes(std::span<const char>(inflight_plain_));
}

size_t ServerConnection::queued_bytes() const noexcept {
  size_t n = out_.size() + inflight_bytes_;
  if (tls_) n += tls_->pending_ciphertext().size();
  return n;
}

void ServerConnection::on_write_done(Instant now) {
  (void)now;
  write_in_flight_ = false;
  inflight_bytes_ = 0;
  maybe_finish();
}

// ----------------------------------------------------------------- closing

void ServerConnection::start_flushing(std::string_view why) {
  if (phase_ == ServerPhase::kDone || phase_ == ServerPhase::kFlushing) return;
  phase_ = ServerPhase::kFlushing;
  close_reason_ = why;
  disarm(ServerTimer::kCloseLinger);
  maybe_finish();
}

void ServerConnection::maybe_finish() {
  if (write_in_flight_ || queued_bytes() != 0) return;
  if (phase_ == ServerPhase::kFlushing) {
    finish(close_reason_);
  } else if (phase_ == ServerPhase::kClosing && close_received_) {
    finish("close handshake done");
  }
}

void ServerConnection::finish(std::string_view why) {
  if (phase_ == ServerPhase::kDone) return;
  phase_ = ServerPhase::kDone;
  close_reason_ = why;
  close_socket_ = true;
  disarm(ServerTimer::kCloseLinger);
  pending_ = {};
  decoder_fed_ = false;
  out_.clear();
  decoder_.release_memory();
}

void ServerConnection::on_transport_lost(Instant now) {
  (void)now;
  finish("connection lost");
}

void ServerConnection::note(ServerNote n, int64_t value, std::string text) {
  notes_.push_back(ServerNoteRecord{n, value, std::move(text)});
}

}  // namespace shardring::conn
