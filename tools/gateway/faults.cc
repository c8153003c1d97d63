#include "tools/gateway/faults.h"

#include <algorithm>

namespace shardring::gatewaysrv {
namespace {

std::optional<std::chrono::nanoseconds> Period(double seconds) {
  if (seconds <= 0) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(seconds));
}

}  // namespace

Faults::Faults(const GatewayOptions& o)
    : close_code(o.close_code),
      no_ack_after(o.no_ack_after),
      reconnect_every(Period(o.reconnect_every_s)),
      invalid_session_every(Period(o.invalid_session_every_s)),
      fragment(o.fragment),
      segment(o.segment),
      delay(o.delay_ms),
      close_every_(o.close_every),
      close_after_(o.close_after) {
  events_before_fault_ =
      std::min(close_every_ ? close_every_ : UINT64_MAX, close_after_ ? close_after_ : UINT64_MAX);
}

Faults::AfterEvents Faults::after_events(uint64_t events) const noexcept {
  // --close-every wins when both are due: the TCP connection goes first.
  if (close_every_ && events >= close_every_) return AfterEvents::kDropTcp;
  if (close_after_ && events >= close_after_) return AfterEvents::kCloseCode;
  return AfterEvents::kNothing;
}

}  // namespace shardring::gatewaysrv
