#include "tools/gateway/gateway_main.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "tools/gateway/gateway_options.h"
#include "tools/gateway/server.h"

namespace shardring::gatewaysrv {
namespace {

bool write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << text << '\n';
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int gateway_main(std::span<const std::string_view> args) {
  bool help = false;
  std::string usage;
  absl::StatusOr<GatewayOptions> options = parse_gateway_options(args, &help, &usage);
  if (!options.ok()) {
    std::fprintf(stderr, "shardring gateway: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  if (help) {
    std::fputs(usage.c_str(), stdout);
    return 0;
  }
  // Signals are taken by sigwait() below; the I/O threads inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<Server>> server = Server::start(*options);
  if (!server.ok()) {
    std::fprintf(stderr, "shardring gateway: %s\n", std::string(server.status().message()).c_str());
    return absl::IsInvalidArgument(server.status()) || absl::IsNotFound(server.status()) ? 2 : 1;
  }
  int sig = 0;
  // SIGUSR1 (fault): every connection reset at once, the sessions kept.
  while (sigwait(&set, &sig) == 0 && sig == SIGUSR1) {
    std::fprintf(stderr, "gateway: SIGUSR1 received, resetting every connection (sessions kept)\n");
    (*server)->reset_all();
  }
  std::fprintf(stderr, "gateway: %s received, closing connections (1001)\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->stop();
  int rc = 0;
  if (!options->stats_json.empty()) {
    if (!write_file_atomically(options->stats_json, (*server)->stats_json())) {
      std::fprintf(stderr, "shardring gateway: --stats-json: cannot write %s\n",
                   options->stats_json.c_str());
      rc = 1;
    }
  }
  const Stats s = (*server)->stats();
  std::fprintf(
      stderr,
      "gateway: stopped: %llu connections, %llu identifies, %llu "
      "resumes, %llu events sent\n",
      static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.identifies),
      static_cast<unsigned long long>(s.resumes), static_cast<unsigned long long>(s.events_sent));
  return rc;
}

}  // namespace shardring::gatewaysrv
