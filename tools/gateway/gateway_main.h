// tools/gateway/gateway_main.h: the entry point of `shardring gateway`.
// Start-up and shutdown only; runs on the process's main thread.
#pragma once

#include <span>
#include <string_view>

namespace shardring::gatewaysrv {

// Parses the flags (docs/interface.md "shardring gateway"), runs the server
// until SIGINT or SIGTERM, writes --stats-json, and returns the process's
// exit code: 0 after a clean stop (or --help), 2 for bad flags (the message
// on stderr names the flag), 1 when the server cannot start (port in use,
// io_uring unavailable). `args` excludes the program and subcommand names.
int gateway_main(std::span<const std::string_view> args);

}  // namespace shardring::gatewaysrv
