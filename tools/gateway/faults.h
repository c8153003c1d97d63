// tools/gateway/faults.h: the synthetic gateway's fault injection, for
// tests and soaks (docs/interface.md, "Fault injection"): the flags of
// GatewayOptions that make it misbehave on purpose, read once at start-up
// and then only read by every I/O thread. All off by default.
//
// Who applies which: the Discord role (discord.cc) stops ACKing, sends op 7
// and op 9 on a period, and ends a connection after N events; the
// connection (conn::ServerOptions::fragment) splits messages into frames;
// the I/O driver (worker.cc) writes in segments and delays each send batch.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "tools/gateway/gateway_options.h"

namespace shardring::gatewaysrv {

struct Faults {
  explicit Faults(const GatewayOptions& o);

  // What happens once a connection has sent this many template events.
  enum class AfterEvents : uint8_t {
    kNothing,
    kDropTcp,    // --close-every: TCP closed without a close frame
    kCloseCode,  // --close-after: close frame with close_code
  };
  // The events a connection may send before its fault (UINT64_MAX: none).
  [[nodiscard]] uint64_t events_before_fault() const noexcept { return events_before_fault_; }
  // The fault due after `events` template events on one connection.
  [[nodiscard]] AfterEvents after_events(uint64_t events) const noexcept;
  uint16_t close_code = 0;  // for kCloseCode

  // --no-ack-after: whether heartbeat number `acks` + 1 gets its ACK.
  [[nodiscard]] bool acks(uint64_t acks_sent) const noexcept {
    return no_ack_after == 0 || acks_sent < no_ack_after;
  }
  uint64_t no_ack_after = 0;

  // --reconnect-every, --invalid-session-every: op 7 / op 9 d=true periods.
  std::optional<std::chrono::nanoseconds> reconnect_every;
  std::optional<std::chrono::nanoseconds> invalid_session_every;

  uint32_t fragment = 0;               // frame payload bytes
  uint32_t segment = 0;                // bytes per send call
  std::chrono::milliseconds delay{0};  // before each send batch

 private:
  uint64_t close_every_ = 0;
  uint64_t close_after_ = 0;
  uint64_t events_before_fault_ = UINT64_MAX;
};

}  // namespace shardring::gatewaysrv
