// engine/notes.cc: what a shard's connection noted (conn::Note) as log lines
// and the core thread's counters. The wording of the log lines is part of
// what operators read (docs/interface.md, "Logs and exit codes").
#include <algorithm>
#include <chrono>

#include "engine/core_loop.h"
#include "engine/log.h"

namespace shardring::engine {

void CoreThread::Loop::on_note(Shard& sh, const conn::NoteRecord& n) {
  const uint32_t shard = sh.conn.shard();
  using conn::Note;
  switch (n.note) {
    case Note::kTlsHandshakeFailed:
      Log::write(Level::kWarn, shard, "TLS handshake failed",
                 {{"host", sh.url.host}, {"error", n.text}});
      break;
    case Note::kTlsHandshakeDone:
      counters.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
      if (n.value != 0) counters.tls_resumed.fetch_add(1, std::memory_order_relaxed);
      break;
    case Note::kTlsSetupFailed:
      Log::write(Level::kError, shard, "TLS session set-up failed", {{"error", n.text}});
      break;
    case Note::kTlsRecordError:
      ++counters.protocol_errors;
      Log::write(Level::kWarn, shard, "TLS record error", {{"error", n.text}});
      break;
    case Note::kTlsClosedByPeer:
      Log::write(Level::kInfo, shard, "TLS close_notify from peer");
      break;
    case Note::kTlsWriteFailed:
      Log::write(Level::kWarn, shard, "TLS write failed", {{"error", n.text}});
      break;
    case Note::kBadUrl:
      Log::write(Level::kError, shard, "bad gateway url for a WebSocket request");
      break;
    case Note::kUpgradeRefused:
      Log::write(Level::kWarn, shard, "WebSocket upgrade refused",
                 {{"status", n.value}, {"error", n.text}});
      break;
    case Note::kConnected:
      Log::write(Level::kDebug, shard, "connected",
                 {{"url", sh.url.authority()}, {"tls", n.value != 0}});
      break;
    case Note::kBadFrame:
      ++counters.protocol_errors;
      Log::write(Level::kWarn, shard, "bad WebSocket frame from gateway; closing and resuming",
                 {{"close_code", n.value}});
      break;
    case Note::kBadCompressedStream:
      ++counters.protocol_errors;
      Log::write(Level::kWarn, shard, "bad compressed stream from gateway; closing and resuming",
                 {{"error", n.text}, {"compress", parse::to_string(s.client.compression)}});
      break;
    case Note::kBadPayload:
      ++counters.protocol_errors;
      Log::write(Level::kWarn, shard, "bad gateway payload; closing and resuming",
                 {{"error", n.text}, {"bytes", n.value}});
      break;
    case Note::kPeerClosed:
      Bump(counters.closes[CloseSlot(n.value)]);
      if (shared.on_shard_change) {
        shared.on_shard_change({ShardChange::Kind::kClosed, shard, static_cast<uint16_t>(n.value)});
      }
      Log::write(Level::kInfo, shard, "gateway closed the connection",
                 {{"code", n.value}, {"reason", n.text}});
      break;
    case Note::kPeerNotReading:
      Log::write(Level::kWarn, shard, "gateway is not reading; dropping the connection",
                 {{"queued_bytes", n.value}});
      break;
    case Note::kIdentifying:
      ++counters.identifies;
      Log::write(Level::kInfo, shard, "identifying");
      break;
    case Note::kResuming:
      ++counters.resumes;
      Log::write(Level::kInfo, shard, "resuming", {{"seq", n.value}});
      break;
    case Note::kHeartbeat:
      ++counters.heartbeats;
      if (heartbeat_timer_shard == &sh) {
        // Lateness: deadline to the frame queued for the socket.
        const auto late = Clock::now() - heartbeat_deadline;
        counters.heartbeat_late.record(static_cast<uint64_t>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::nanoseconds>(late).count())));
      }
      break;
    case Note::kZombie:
      ++counters.zombies;
      if (shared.on_shard_change) shared.on_shard_change({ShardChange::Kind::kZombie, shard, 0});
      Log::write(Level::kWarn, shard, "no heartbeat ACK: zombie connection, resuming");
      break;
    case Note::kReady:
      if (const uint64_t id = sh.conn.session().user_id(); id != 0) {
        shared.bot_user_id.store(id, std::memory_order_relaxed);
      }
      if (shared.on_shard_change) shared.on_shard_change({ShardChange::Kind::kReady, shard, 0});
      Log::write(Level::kInfo, shard, "ready", {{"seq", n.value}});
      break;
    case Note::kResumed:
      if (shared.on_shard_change) {
        shared.on_shard_change({ShardChange::Kind::kResumed, shard, 0});
      }
      Log::write(Level::kInfo, shard, "resumed", {{"seq", n.value}});
      break;
    case Note::kBadReady:
      ++counters.protocol_errors;
      Log::write(Level::kWarn, shard, "READY without a session_id; closing");
      break;
    case Note::kBadHello:
      ++counters.protocol_errors;
      Log::write(Level::kWarn, shard, "HELLO without a valid heartbeat_interval");
      break;
    case Note::kReconnectRequested:
      Log::write(Level::kInfo, shard, "gateway asked to reconnect (op 7)");
      break;
    case Note::kInvalidSession:
      Log::write(Level::kInfo, shard, "invalid session (op 9)", {{"resumable", n.value != 0}});
      break;
    case Note::kUnknownOpcode:
      Log::write(Level::kDebug, shard, "ignoring unknown opcode", {{"op", n.value}});
      break;
    case Note::kDispatchWithoutSeq:
      Log::write(Level::kDebug, shard, "dispatch without a seq; ignored");
      break;
    case Note::kFiltered:
      ++counters.filtered;
      break;
    case Note::kReconnecting:
      ++counters.reconnects;
      Log::write(Level::kDebug, shard, "reconnecting", {{"delay_ms", n.value}, {"mode", n.text}});
      break;
    case Note::kSendRefused:
      Log::write(Level::kWarn, shard, "user send refused", {{"error", n.text}});
      break;
  }
}

}  // namespace shardring::engine
