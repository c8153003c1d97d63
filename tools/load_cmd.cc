// tools/load_cmd.cc: `shardring load` (docs/interface.md): spawns `shardring
// gateway` pinned to its own cores (or uses --gateway), runs the engine on
// the other cores with a null sink, shows live progress on stderr and prints
// a summary: events/s, engine CPU per million events, memory per shard, the
// identify storm, heartbeat lateness and delivery latency percentiles.
//
// Delivery latency is the gateway's send stamp ("_ts_ns", steady clock) to
// the handler on the consumer thread: the same host and the same clock, so
// it covers the gateway's send queue, the kernel, TLS, framing, parsing and
// the hand-off ring.
#include "tools/load_cmd.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "engine/cpus.h"
#include "engine/engine.h"
#include "engine/histogram.h"
#include "engine/identify_gate.h"
#include "engine/log.h"
#include "engine/per_thread.h"
#include "engine/text.h"
#include "tools/live.h"
#include "tools/load_report.h"
#include "tools/load_reset.h"
#include "tools/load_seq.h"
#include "tools/options.h"
#include "tools/redis_handoff.h"

namespace shardring::tools {
namespace {

using Clock = std::chrono::steady_clock;

// How long the spawned gateway may take to print its "listening on" line.
constexpr std::chrono::seconds kGatewayStartTimeout{10};
// How long it may take to exit after SIGTERM before it is killed.
constexpr std::chrono::seconds kGatewayStopTimeout{5};

// "0-3,6": for the summary.
std::string cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    append(out, out.empty() ? "" : ",", cpus[i]);
    if (j > i) append(out, "-", cpus[j]);
    i = j + 1;
  }
  return out;
}

uint64_t current_rss_kib() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
}

double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string last_lines(const std::string& text, size_t n) {
  std::vector<std::string_view> lines;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
    append(out, lines[i], "\n");
  }
  return out;
}

// The first unsigned integer after `"key":` in our own JSON output.
std::optional<uint64_t> json_u64(const std::string& json, std::string_view key) {
  const std::string needle = cat("\"", key, "\":");
  const size_t at = json.find(needle);
  if (at == std::string::npos) return std::nullopt;
  uint64_t v = 0;
  size_t i = at + needle.size();
  if (i >= json.size() || json[i] < '0' || json[i] > '9') return std::nullopt;
  for (; i < json.size() && json[i] >= '0' && json[i] <= '9'; ++i) {
    v = v * 10 + static_cast<uint64_t>(json[i] - '0');
  }
  return v;
}

// Runs argv[0] (found on PATH) to completion, stdout and stderr to `log`.
absl::Status run_program(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(cat("cannot write ", log));
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  ::close(fd);
  if (pid < 0) return absl::InternalError("fork failed");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return absl::FailedPreconditionError(
        cat(argv[0], " is not installed (scripts/setup.sh installs it)"));
  }
  return absl::InternalError(cat(argv[0], " failed: ", last_lines(read_file(log), 5)));
}

struct Pki {
  std::string ca, cert, key;
};

// A CA and a server certificate for 127.0.0.1 and localhost, made now with
// the openssl CLI and valid for two days: nothing to check in or expire.
absl::StatusOr<Pki> make_throwaway_pki(const std::string& dir) {
  const std::string log = dir + "/openssl.log";
  const Pki p{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", dir + "/ca.key", "-out", p.ca, "-days", "2", "-subj", "/CN=shardring load CA"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", p.key, "-out", dir + "/server.csr", "-subj", "/CN=localhost"},
      {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", p.ca, "-CAkey",
       dir + "/ca.key", "-set_serial", "1", "-out", p.cert, "-days", "2", "-extfile",
       dir + "/san.ext"},
  };
  {
    std::ofstream ext(dir + "/san.ext");
    ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    if (!ext.flush()) return absl::InternalError(cat("cannot write ", dir, "/san.ext"));
  }
  for (const auto& argv : steps) {
    if (absl::Status s = run_program(argv, log); !s.ok()) return s;
  }
  return p;
}

// `shardring gateway` in its own process group, pinned to its cores, its
// stderr in a file. Killed with the load process (PR_SET_PDEATHSIG).
class GatewayProcess {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayProcess>> spawn(const std::vector<std::string>& argv,
                                                               const std::vector<int>& cpus,
                                                               const std::string& log) {
    auto g = std::unique_ptr<GatewayProcess>(new GatewayProcess());
    g->log_ = log;
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : cpus) CPU_SET(c, &set);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0 || null_fd < 0) return absl::InternalError(cat("cannot write ", log));
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);
      setpgid(0, 0);  // a terminal's Ctrl-C goes to `load`, which stops us
      sched_setaffinity(0, sizeof set, &set);
      dup2(null_fd, 0);
      dup2(null_fd, 1);
      dup2(fd, 2);
      execv("/proc/self/exe", args.data());
      _exit(127);
    }
    ::close(fd);
    ::close(null_fd);
    if (pid < 0) return absl::InternalError("fork failed");
    g->pid_ = pid;
    const auto deadline = Clock::now() + kGatewayStartTimeout;
    while (Clock::now() < deadline) {
      const std::string text = read_file(log);
      const size_t at = text.find("listening on ");
      const size_t eol = at == std::string::npos ? at : text.find(' ', at + 13);
      if (eol != std::string::npos) {
        const std::string addr = text.substr(at + 13, eol - at - 13);
        const size_t colon = addr.rfind(':');
        const int port = colon == std::string::npos ? 0 : std::atoi(addr.c_str() + colon + 1);
        if (port <= 0 || port > 65535) {
          return absl::InternalError(cat("cannot read the gateway's port from: ", addr));
        }
        g->port_ = static_cast<uint16_t>(port);
        return g;
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        g->pid_ = -1;
        return absl::InternalError(
            cat("the gateway exited before listening:\n", last_lines(read_file(log), 10)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return absl::DeadlineExceededError(
        cat("the gateway did not start listening within 10 s:\n", last_lines(read_file(log), 10)));
  }

  ~GatewayProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  uint16_t port() const { return port_; }
  // Sends `sig` (SIGUSR1: the gateway resets every connection).
  void signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  // Whether it is still running (false: it died during the run).
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  // SIGTERM, then wait (SIGKILL after kGatewayStopTimeout). Returns the CPU
  // seconds it used, or an error with its last log lines.
  absl::StatusOr<double> stop() {
    if (pid_ <= 0) {
      return absl::InternalError(cat("the gateway had exited:\n", last_lines(read_file(log_), 10)));
    }
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + kGatewayStopTimeout;
    int status = 0;
    rusage ru{};
    while (true) {
      const pid_t r = wait4(pid_, &status, WNOHANG, &ru);
      if (r == pid_) break;
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        wait4(pid_, &status, 0, &ru);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return absl::InternalError(
          cat("the gateway did not stop cleanly:\n", last_lines(read_file(log_), 10)));
    }
    return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
  }

 private:
  GatewayProcess() = default;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string log_;
};

// A temporary directory, removed with its files.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/shardring-load.XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string latency_json(const LatencySummary& l) {
  return absl::StrFormat("{\"count\":%d,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}", l.count, l.p50_ms,
                         l.p99_ms, l.max_ms);
}

std::string latency_text(const LatencySummary& l, std::string_view what) {
  if (l.count == 0) return cat("no samples (0 ", what, ")");
  return absl::StrFormat("p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%d %s)", l.p50_ms, l.p99_ms,
                         l.max_ms, l.count, what);
}

}  // namespace

int load_main(std::span<const std::string_view> args) {
  bool help = false;
  std::string usage;
  auto opts = parse_load_options(args, &help, &usage);
  if (help) {
    std::cout << "usage: shardring load [flags]\n\nStarts a synthetic gateway pinned to its own "
                 "core(s) (or uses --gateway), runs the engine\nwith a null sink against it, "
                 "shows live progress on stderr and prints a summary.\n\n"
              << usage;
    return 0;
  }
  if (!opts.ok()) {
    std::cerr << "shardring load: " << opts.status().message() << "\n";
    return 2;
  }
  const LoadOptions& o = *opts;
  signal(SIGPIPE, SIG_IGN);
  engine::Log::configure(engine::Log::Format::kText, engine::Level::kWarn);

  // Cores: the spawned gateway gets the last `gateway_threads` of ours, the
  // engine the rest; with a single core they share it (and say so).
  const std::vector<int> cpus = engine::allowed_cpus();
  std::vector<int> engine_cpus = cpus, gateway_cpus;
  const bool spawn = !o.gateway;
  if (spawn) {
    const size_t g = std::min<size_t>(static_cast<size_t>(o.gateway_threads),
                                      cpus.size() > 1 ? cpus.size() - 1 : 1);
    gateway_cpus.assign(cpus.end() - static_cast<std::ptrdiff_t>(g), cpus.end());
    if (cpus.size() > 1)
      engine_cpus.assign(cpus.begin(), cpus.end() - static_cast<std::ptrdiff_t>(g));
    if (cpus.size() == 1) {
      std::cerr << "shardring load: one CPU only: the gateway and the engine share it, so "
                   "figures are not the engine's alone\n";
    }
  }

  TempDir tmp;
  if (tmp.path().empty()) {
    std::cerr << "shardring load: cannot make a temporary directory in /tmp\n";
    return 1;
  }
  std::unique_ptr<GatewayProcess> gw;
  std::string gateway_url, ca_file = o.ca_file;
  const std::string stats_path = tmp.path() + "/gateway-stats.json";
  if (spawn) {
    std::vector<std::string> argv = {"shardring",
                                     "gateway",
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--threads",
                                     std::to_string(gateway_cpus.size()),
                                     "--shards",
                                     std::to_string(o.shards),
                                     "--max-concurrency",
                                     std::to_string(o.max_concurrency),
                                     "--identify-window-ms",
                                     std::to_string(std::max<int64_t>(1, o.identify_window_ms / 4)),
                                     "--heartbeat-ms",
                                     std::to_string(o.heartbeat_ms),
                                     "--rate",
                                     absl::StrFormat("%g", o.rate),
                                     "--stats-json",
                                     stats_path};
    if (!o.mix_file.empty()) argv.insert(argv.end(), {"--mix", o.mix_file});
    if (o.idle) argv.insert(argv.end(), {"--events", "0", "--guilds-per-shard", "0"});
    if (o.tls) {
      auto pki = make_throwaway_pki(tmp.path());
      if (!pki.ok()) {
        std::cerr << "shardring load: --tls: " << pki.status().message() << "\n";
        return 1;
      }
      argv.insert(argv.end(), {"--tls-cert", pki->cert, "--tls-key", pki->key});
      ca_file = pki->ca;
    }
    auto g = GatewayProcess::spawn(argv, gateway_cpus, tmp.path() + "/gateway.log");
    if (!g.ok()) {
      std::cerr << "shardring load: " << g.status().message() << "\n";
      return 1;
    }
    gw = std::move(*g);
    gateway_url = cat(o.tls ? "wss" : "ws", "://127.0.0.1:", gw->port(), "/");
  } else {
    gateway_url = o.gateway->to_string();
  }
  if (!engine::pin_to(engine_cpus)) {
    std::cerr << "shardring load: cannot pin to CPUs " << cpu_list(engine_cpus) << "\n";
  }
  const uint64_t baseline_kib = current_rss_kib();

  Config cfg;
  cfg.token = "shardring-load";
  cfg.gateway_url = gateway_url;
  cfg.total_shards = static_cast<uint32_t>(o.shards);
  cfg.max_concurrency = static_cast<uint32_t>(o.max_concurrency);
  cfg.identify_window = std::chrono::milliseconds(o.identify_window_ms);
  cfg.threads = static_cast<unsigned>(o.threads);
  cfg.consumers = static_cast<unsigned>(o.consumers);
  cfg.ca_file = ca_file;
  cfg.insecure = o.insecure;
  cfg.routing_keys = false;
  cfg.compress = o.compress;
  cfg.coalesce = std::chrono::microseconds(o.coalesce_us);
  cfg.uring_fallbacks = o.uring_fallbacks;
  cfg.validate_d = o.validate_d;
  cfg.duration = std::chrono::milliseconds(static_cast<int64_t>(o.duration_s * 1000));
  // --sink redis: the events into Redis streams, as `run --sink redis`
  // writes them (tools/redis_handoff.h); Redis's own CPU from INFO.
  RunOptions redis_opts;
  std::unique_ptr<RedisHandOff> redis;
  double redis_cpu_before = 0;
  if (o.sink_redis) {
    redis_opts.redis = o.redis;
    redis_opts.redis_prefix = o.redis_prefix;
    redis_opts.sink = SinkKind::kRedis;
    redis_opts.total_shards = o.shards;
    redis_opts.redis_maxlen = o.redis_maxlen;
    redis = std::make_unique<RedisHandOff>(redis_opts);
    std::string error;
    if (!redis->configure(cfg, &error)) {
      std::cerr << "shardring load: " << error << "\n";
      return 2;
    }
    const auto cpu = RedisHandOff::server_cpu_s(*o.redis);
    if (!cpu) {
      std::cerr << "shardring load: --redis: cannot read INFO cpu from " << o.redis->to_string()
                << "\n";
      return 1;
    }
    redis_cpu_before = *cpu;
  }
  LiveView live(isatty(2));
  // The first tick after every shard was ready starts the steady state: its
  // rates leave the identify storm out.
  std::mutex steady_mu;
  std::optional<Stats> steady_from;
  // RSS at the last tick with every shard ready: memory the shards hold
  // (the peak also counts the identify storm's transient buffers).
  uint64_t ready_rss_kib = 0;
  // Delivery latency: one histogram per consumer thread, made on first use.
  engine::PerThread<engine::Histogram> hists([] { return std::make_unique<engine::Histogram>(); });
  // --report: a CSV row per tick, charts at the end.
  std::unique_ptr<LoadReport> report;
  if (!o.report_dir.empty()) {
    report = std::make_unique<LoadReport>();
    std::string error;
    if (!report->open(o.report_dir, &error)) {
      std::cerr << "shardring load: " << error << "\n";
      return 1;
    }
  }
  // --gateway-reset-at: the spawned gateway resets every connection then.
  std::unique_ptr<GatewayReset> reset;
  if (o.gateway_reset_at_s > 0) {
    reset = std::make_unique<GatewayReset>(static_cast<uint32_t>(o.shards), o.gateway_reset_at_s);
    reset->attach(cfg);
  }
  cfg.on_tick = [&](const Stats& s) {
    live.print(s);
    if (reset && gw && reset->due(s.elapsed_s)) {
      reset->fired();
      gw->signal(SIGUSR1);
    }
    if (report) {
      // With --sink redis the lag to the stream, else the delivery latency.
      auto delivery = std::make_unique<engine::Histogram>();
      if (redis) {
        redis->merge_lag(*delivery);
      } else {
        hists.for_each([&](engine::Histogram& h) { delivery->merge_from(h); });
      }
      report->tick(s, current_rss_kib(), *delivery);
    }
    std::lock_guard lock(steady_mu);
    if (!steady_from && s.all_ready_s > 0) steady_from = s;
    if (s.shards_ready == s.shards && s.shards > 0) ready_rss_kib = current_rss_kib();
  };

  Engine eng(std::move(cfg));
  if (redis) redis->attach(eng);
  SeqCheck seqs(static_cast<uint32_t>(o.shards));
  if (!redis)
    eng.on_event([&](const Event& e) {
      seqs.on_event(e);
      if (e.sent_ns <= 0) return;
      const int64_t now =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
              .count();
      hists.mine().record(static_cast<uint64_t>(std::max<int64_t>(0, now - e.sent_ns)));
    });
  std::cerr << "shardring load: " << o.shards << " shards against " << gateway_url
            << (spawn ? absl::StrFormat(" (spawned, CPUs %s)", cpu_list(gateway_cpus)) : "")
            << ", engine on CPUs " << cpu_list(engine_cpus) << ", "
            << absl::StrFormat("%g", o.duration_s) << " s\n";
  if (redis) redis->start();
  int rc = eng.run();
  live.finish();
  Stats s = eng.stats();
  std::optional<double> redis_cpu;
  LatencySummary redis_lag;
  if (redis) {
    rc = redis->finish(rc, &s);  // s.events: what Redis holds
    if (auto cpu = RedisHandOff::server_cpu_s(*o.redis)) redis_cpu = *cpu - redis_cpu_before;
    engine::Histogram lag;
    redis->merge_lag(lag);
    redis_lag.count = lag.count();
    redis_lag.p50_ms = static_cast<double>(lag.quantile(0.50)) / 1e6;
    redis_lag.p99_ms = static_cast<double>(lag.quantile(0.99)) / 1e6;
    redis_lag.max_ms = static_cast<double>(lag.max()) / 1e6;
  }

  int exit_code = rc;
  std::optional<double> gateway_cpu;
  std::optional<uint64_t> gateway_sent;
  if (gw) {
    const bool was_alive = gw->alive();
    auto stopped = gw->stop();
    if (stopped.ok() && was_alive) {
      gateway_cpu = *stopped;
      gateway_sent = json_u64(read_file(stats_path), "events_sent");
    } else {
      std::cerr << "shardring load: " << stopped.status().message() << "\n";
      if (exit_code == 0) exit_code = 1;
    }
  }

  auto delivery_hist = std::make_unique<engine::Histogram>();
  hists.for_each([&](engine::Histogram& h) { delivery_hist->merge_from(h); });
  LatencySummary delivery;
  delivery.count = delivery_hist->count();
  delivery.p50_ms = static_cast<double>(delivery_hist->quantile(0.50)) / 1e6;
  delivery.p99_ms = static_cast<double>(delivery_hist->quantile(0.99)) / 1e6;
  delivery.max_ms = static_cast<double>(delivery_hist->max()) / 1e6;

  const double eps = s.elapsed_s > 0 ? static_cast<double>(s.events) / s.elapsed_s : 0;
  const double cpu_per_m = s.events > 0 ? s.cpu_s * 1e6 / static_cast<double>(s.events) : 0;
  // Steady state: from the first tick with every shard ready to the end.
  double steady_s = 0, steady_eps = 0, steady_cpu_per_m = 0;
  {
    std::lock_guard lock(steady_mu);
    if (steady_from && s.elapsed_s > steady_from->elapsed_s + 0.5) {
      steady_s = s.elapsed_s - steady_from->elapsed_s;
      const double ev = static_cast<double>(s.events - steady_from->events);
      steady_eps = ev / steady_s;
      steady_cpu_per_m = ev > 0 ? (s.cpu_s - steady_from->cpu_s) * 1e6 / ev : 0;
    }
  }
  const uint64_t grown = s.peak_rss_kib > baseline_kib ? s.peak_rss_kib - baseline_kib : 0;
  const double per_shard_kib = static_cast<double>(grown) / static_cast<double>(o.shards);
  const uint64_t ready_grown = ready_rss_kib > baseline_kib ? ready_rss_kib - baseline_kib : 0;
  const double ready_per_shard_kib =
      static_cast<double>(ready_grown) / static_cast<double>(o.shards);

  // The identify schedule: each bucket's shards one window plus the margin
  // apart (engine/identify_gate.h), the first at once.
  const int64_t per_bucket = (o.shards + o.max_concurrency - 1) / o.max_concurrency;
  const auto window = std::chrono::milliseconds(o.identify_window_ms);
  const double schedule_s =
      static_cast<double>((per_bucket - 1) * (window + engine::identify_margin(window)).count()) /
      1000;
  std::string json = absl::StrFormat(
      "{\"shards\":%d,\"idle\":%s,\"tls\":%s,\"compress\":\"%s\",\"coalesce_us\":%d,\"validate_d\":"
      "%s,\"rate\":%g,\"duration_s\":%g,\"elapsed_s\":%.3f,"
      "\"engine_threads\":%d,\"consumers\":%d,\"engine_cpus\":\"%s\",\"gateway_cpus\":\"%s\","
      "\"events\":%d,\"events_per_s\":%.1f,\"cpu_s\":%.3f,\"cpu_s_per_million_events\":%.3f,"
      "\"steady_s\":%.3f,\"steady_events_per_s\":%.1f,\"steady_cpu_s_per_million_events\":%.3f,"
      "\"peak_rss_kib\":%d,\"baseline_rss_kib\":%d,\"rss_per_shard_kib\":%.2f,"
      "\"ready_rss_kib\":%d,\"ready_rss_per_shard_kib\":%.2f,"
      "\"shards_ready\":%d,\"storm_s\":%.3f,\"identifies\":%d,\"resumes\":%d,"
      "\"reconnects\":%d,\"zombies\":%d,\"protocol_errors\":%d,\"backpressure_ms\":%d,"
      "\"heartbeat_lateness_ms\":%s,\"delivery_latency_ms\":%s",
      o.shards, o.idle ? "true" : "false",
      o.tls || gateway_url.starts_with("wss") ? "true" : "false", compress_name(o.compress),
      o.coalesce_us, o.validate_d ? "true" : "false", o.rate, o.duration_s, s.elapsed_s,
      o.threads != 0 ? o.threads : static_cast<int64_t>(engine_cpus.size()), o.consumers,
      cpu_list(engine_cpus), cpu_list(gateway_cpus), s.events, eps, s.cpu_s, cpu_per_m, steady_s,
      steady_eps, steady_cpu_per_m, s.peak_rss_kib, baseline_kib, per_shard_kib, ready_rss_kib,
      ready_per_shard_kib, s.shards_ever_ready, s.all_ready_s, s.identifies, s.resumes,
      s.reconnects, s.zombies, s.protocol_errors, s.backpressure_ms,
      latency_json(s.heartbeat_lateness), latency_json(delivery));
  append(json, absl::StrFormat(",\"storm_schedule_s\":%.3f", schedule_s));
  if (gateway_sent) append(json, ",\"gateway_events_sent\":", *gateway_sent);
  if (gateway_cpu) append(json, absl::StrFormat(",\"gateway_cpu_s\":%.3f", *gateway_cpu));
  std::string redis_line;
  if (redis) {
    const double per_m =
        redis_cpu && s.events > 0 ? *redis_cpu * 1e6 / static_cast<double>(s.events) : 0;
    append(json, absl::StrFormat(",\"sink\":\"redis\",\"redis_cpu_s\":%.3f,"
                                 "\"redis_cpu_s_per_million_events\":%.3f,\"redis_lag_ms\":%s",
                                 redis_cpu.value_or(-1), per_m, latency_json(redis_lag)));
    redis_line = absl::StrFormat(
        "  into redis           %d events; redis cpu %.2f s (%.3f s per million events)\n"
        "  lag to the stream    %s\n",
        s.events, redis_cpu.value_or(-1), per_m, latency_text(redis_lag, "events"));
  }
  if (!redis) {
    append(json, ",", seqs.json());
    redis_line += "  seq check            " + seqs.text() + "\n";
  }
  if (reset) {
    const GatewayReset::Summary rs = reset->summary();
    append(json, ",\"gateway_reset\":", GatewayReset::json(rs));
    redis_line += "  " + GatewayReset::text(rs);
  }
  json += "}";

  std::string table = absl::StrFormat(
      "shardring load: %d shards, %s%s, rate %s, %.1f s\n"
      "  events               %d  (%.0f/s)%s\n"
      "  engine cpu           %.2f s  (%.3f s per million events)%s\n"
      "  steady state         %s\n"
      "  peak rss             %.1f MiB  (%.1f KiB per shard above the %.1f MiB baseline)\n"
      "  rss, all shards up   %s\n"
      "  identify storm       %s\n"
      "  heartbeat lateness   %s\n"
      "  delivery latency     %s\n"
      "  identifies %d  resumes %d  reconnects %d  zombies %d  protocol errors %d  "
      "backpressure %d ms\n",
      o.shards, gateway_url.starts_with("wss") ? "TLS" : "plain",
      o.compress == Compression::kNone ? "" : cat(", ", compress_name(o.compress)),
      o.idle       ? std::string("idle (no events)")
      : o.rate > 0 ? absl::StrFormat("%g/s per shard", o.rate)
                   : std::string("unlimited"),
      s.elapsed_s, s.events, eps,
      gateway_sent ? absl::StrFormat("  gateway sent %d", *gateway_sent) : "", s.cpu_s, cpu_per_m,
      gateway_cpu ? absl::StrFormat("  gateway cpu %.2f s", *gateway_cpu) : "",
      steady_s > 0 ? absl::StrFormat("%.0f events/s, %.3f engine cpu s per million events "
                                     "(the last %.1f s, every shard ready)",
                                     steady_eps, steady_cpu_per_m, steady_s)
                   : std::string("not reached (not every shard was ready long enough)"),
      static_cast<double>(s.peak_rss_kib) / 1024, per_shard_kib,
      static_cast<double>(baseline_kib) / 1024,
      ready_rss_kib > 0
          ? absl::StrFormat("%.1f MiB  (%.1f KiB per shard; the last second with "
                            "every shard ready)",
                            static_cast<double>(ready_rss_kib) / 1024, ready_per_shard_kib)
          : std::string("not reached"),
      s.all_ready_s > 0
          ? absl::StrFormat("%.3f s until all %d shards were ready; the bucket schedule "
                            "allows %.3f s",
                            s.all_ready_s, s.shards, schedule_s)
          : absl::StrFormat("not all shards became ready (%d of %d)", s.shards_ever_ready,
                            s.shards),
      latency_text(s.heartbeat_lateness, "heartbeats"), latency_text(delivery, "events"),
      s.identifies, s.resumes, s.reconnects, s.zombies, s.protocol_errors, s.backpressure_ms);
  std::cout << table << redis_line << std::flush;
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path, std::ios::binary | std::ios::trunc);
    out << json << "\n";
    if (!out.flush()) {
      std::cerr << "shardring load: --json: cannot write " << o.json_path << "\n";
      if (exit_code == 0) exit_code = 1;
    }
  }
  // The charts come after the run (gnuplot is not timed with it); the
  // summary stays the last line.
  if (report) std::cerr << report->finish() << "\n";
  engine::Log::raw(cat("summary ", json));
  return exit_code;
}

}  // namespace shardring::tools
