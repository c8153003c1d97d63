// tools/gateway/shared.h: the state the synthetic gateway's I/O threads
// share (Server::Shared), and its one-line logs. Internal to tools/gateway/.
//
// Threads: everything here is set up by Server::start() before the threads
// run and only read afterwards, except the registry (its own mutex), the
// counters (atomics) and `stop` (atomic).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "conn/server.h"
#include "tls/context.h"
#include "tools/gateway/faults.h"
#include "tools/gateway/gateway_options.h"
#include "tools/gateway/mix.h"
#include "tools/gateway/registry.h"
#include "tools/gateway/server.h"

namespace shardring::gatewaysrv {

struct Server::Shared {
  Shared(const GatewayOptions& options, Mix mix);

  const GatewayOptions opt;
  const Faults faults;
  const Mix mix;
  conn::ServerOptions conn_options;
  std::optional<tls::Context> tls;
  uint16_t port = 0;
  std::string url_host;  // HOST:PORT for URLs (empty when listening on all)
  // The clocks read once at start: wall time for the snowflakes the
  // gateway mints, from the steady time every thread passes around.
  Instant start_steady;
  int64_t start_unix_ms = 0;

  Registry registry;
  Counters counters;
  std::atomic<bool> stop{false};
  // Server::reset_all(): each worker resets its connections once per step.
  std::atomic<uint64_t> reset_gen{0};
  std::vector<int> listen_fds;
  std::vector<std::thread> threads;
  bool stopped = false;

  std::string_view scheme_ws() const { return tls ? "wss://" : "ws://"; }
  // HOST:PORT for a URL given to a client that sent `host_header`.
  std::string host_for(std::string_view host_header) const;
  int64_t unix_ms(Instant now) const {
    return start_unix_ms +
           std::chrono::duration_cast<std::chrono::milliseconds>(now - start_steady).count();
  }
};

// One stderr line, "gateway: [shard=N ]msg", written with one write(2) so
// lines of several threads never interleave. `shard` < 0: not about one.
void log_line(int64_t shard, std::string_view msg);
// `s` escaped as the inside of a JSON string: peer and library text in logs.
std::string escaped(std::string_view s);

}  // namespace shardring::gatewaysrv
