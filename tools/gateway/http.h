// tools/gateway/http.h: the synthetic gateway's plain HTTP side, on the same
// port as its WebSocket: GET /api/v10/gateway/bot (and /gateway), the
// refusals of an upgrade it does not serve, and the error answers. Stage:
// after conn::ServerConnection has read a request head; the answer goes
// back through it. No I/O of its own; any I/O thread.
#pragma once

#include <optional>

#include "conn/server.h"
#include "parse/inflate.h"
#include "tools/gateway/shared.h"
#include "ws/handshake.h"

namespace shardring::gatewaysrv {

// Answers a request that is not an upgrade (`keep_alive`: what HTTP allows,
// from conn::ServerEvent).
void serve_http(const Server::Shared& sh, const ws::ServerHandshake& request, bool keep_alive,
                conn::ServerConnection& conn);

// Whether to accept an upgrade to `request`'s target with the compression
// its query asked for (nullopt: a value not known). False after answering
// 404 (a path other than "/") or 400 (an unknown compress=).
[[nodiscard]] bool admit_upgrade(const ws::ServerHandshake& request,
                                 std::optional<parse::Compression> compression,
                                 conn::ServerConnection& conn);

}  // namespace shardring::gatewaysrv
