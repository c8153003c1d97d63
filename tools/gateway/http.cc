#include "tools/gateway/http.h"

#include <algorithm>
#include <string>

#include "base/json.h"
#include "tools/gateway/text.h"

namespace shardring::gatewaysrv {
namespace {

constexpr ws::Header kJson{"Content-Type", "application/json"};

void reply(conn::ServerConnection& conn, uint16_t status, std::string_view reason,
           std::string_view body, bool keep_alive) {
  const ws::Header headers[] = {kJson};
  conn.respond(status, reason, headers, body, keep_alive);
}

void not_found(conn::ServerConnection& conn, bool keep_alive) {
  reply(conn, 404, "Not Found", R"({"message": "404: Not Found", "code": 0})", keep_alive);
}

// {"url":"ws://HOST:PORT" for the client that asked.
std::string url_member(const Server::Shared& sh, const ws::ServerHandshake& request) {
  std::string body = R"({"url":)";
  base::append_json_string(body,
                           cat(sh.scheme_ws(), sh.host_for(request.header("Host").value_or(""))));
  return body;
}

}  // namespace

void serve_http(const Server::Shared& sh, const ws::ServerHandshake& request, bool keep_alive,
                conn::ServerConnection& conn) {
  if (request.method() != "GET") {
    const ws::Header headers[] = {{"Allow", "GET"}, kJson};
    conn.respond(405, "Method Not Allowed", headers,
                 R"({"message": "405: Method Not Allowed", "code": 0})", false);
    return;
  }
  const std::string_view path = request.path();
  if (path == "/api/v10/gateway/bot" || path == "/api/gateway/bot") {
    if (sh.opt.token) {
      const auto auth = request.header("Authorization");
      if (!auth || *auth != cat("Bot ", *sh.opt.token)) {
        reply(conn, 401, "Unauthorized", R"({"message": "401: Unauthorized", "code": 0})",
              keep_alive);
        return;
      }
    }
    std::string body = url_member(sh, request);
    // Discord grants large bots more daily starts than 1000; never fewer
    // than the shards it recommends.
    const int64_t starts = std::max<int64_t>(1000, int64_t{sh.opt.shards} * 2);
    append_to(&body, R"(,"shards":)", sh.opt.shards, R"(,"session_start_limit":{"total":)", starts,
              R"(,"remaining":)", starts, R"(,"reset_after":0,"max_concurrency":)",
              sh.opt.max_concurrency, "}}");
    reply(conn, 200, "OK", body, keep_alive);
    return;
  }
  if (path == "/api/v10/gateway" || path == "/api/gateway") {
    reply(conn, 200, "OK", url_member(sh, request) + "}", keep_alive);
    return;
  }
  not_found(conn, keep_alive);
}

bool admit_upgrade(const ws::ServerHandshake& request,
                   std::optional<parse::Compression> compression, conn::ServerConnection& conn) {
  if (request.path() != "/") {
    not_found(conn, false);
    return false;
  }
  if (!compression) {
    std::string body = R"({"message": "compress must be zlib-stream or zstd-stream, not )";
    base::append_json_escaped(body, ws::query_param(request.query(), "compress").value_or(""));
    body += R"(", "code": 0})";
    reply(conn, 400, "Bad Request", body, false);
    return false;
  }
  return true;
}

}  // namespace shardring::gatewaysrv
