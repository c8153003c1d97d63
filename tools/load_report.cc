// tools/load_report.cc: see load_report.h.
#include "tools/load_report.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "engine/text.h"

extern char** environ;

namespace shardring::tools {

namespace {

// The charts: one PNG each, seconds on x.
constexpr const char* kPlot =
    R"(# Charts of report.csv (shardring load --report); run: gnuplot report.gp
set datafile separator ','
set terminal pngcairo size 900,420 noenhanced font ',10'
set key top left
set grid
set xlabel 'second'
set output 'events.png'
set title 'events/s delivered'
plot 'report.csv' using 1:2 with lines lw 2 title 'events/s'
set output 'cpu.png'
set title 'engine CPU (cores)'
plot 'report.csv' using 1:3 with lines lw 2 title 'cores'
set output 'memory.png'
set title 'RSS (MiB) and shards ready'
set y2tics
set ytics nomirror
plot 'report.csv' using 1:4 with lines lw 2 title 'RSS MiB', \
     '' using 1:5 axes x1y2 with lines lw 2 title 'shards ready'
unset y2tics
set ytics mirror
set output 'latency.png'
set title 'heartbeat lateness and delivery latency (ms)'
set logscale y
plot 'report.csv' using 1:($8 > 0 ? $8 : 1/0) with lines lw 2 title 'heartbeat p99', \
     '' using 1:($9 > 0 ? $9 : 1/0) with lines title 'heartbeat max', \
     '' using 1:($11 > 0 ? $11 : 1/0) with lines lw 2 title 'delivery p99', \
     '' using 1:($12 > 0 ? $12 : 1/0) with lines title 'delivery max'
)";

// Runs `gnuplot report.gp` in `dir`: its exit status; -1 when it could not
// be started (ENOENT: not installed, *missing set).
int RunGnuplot(const std::string& dir, bool* missing) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  const char* argv[] = {"gnuplot", "report.gp", nullptr};
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, "gnuplot", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    *missing = err == ENOENT;
    return -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

bool LoadReport::open(const std::string& dir, std::string* error) {
  dir_ = dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = cat("--report: cannot make ", dir, ": ", ec.message());
    return false;
  }
  csv_.open(dir + "/report.csv", std::ios::trunc);
  if (!csv_) {
    *error = cat("--report: cannot write ", dir, "/report.csv: ", std::strerror(errno));
    return false;
  }
  csv_ << kColumns << "\n";
  return true;
}

void LoadReport::tick(const Stats& s, uint64_t rss_kib, const engine::Histogram& delivery) {
  if (!csv_.is_open()) return;
  const double dt = have_prev_ ? s.elapsed_s - prev_.elapsed_s : s.elapsed_s;
  const double events = static_cast<double>(s.events - (have_prev_ ? prev_.events : 0));
  const double cpu = s.cpu_s - (have_prev_ ? prev_.cpu_s : 0);
  const uint64_t paused = s.backpressure_ms - (have_prev_ ? prev_.backpressure_ms : 0);
  const auto d = delivery_->next(delivery);
  const LatencySummary& h = s.heartbeat_lateness_last_s;
  ++rows_;
  csv_ << absl::StrFormat("%d,%.1f,%.3f,%.1f,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%d\n", rows_,
                          dt > 0 ? events / dt : 0.0, dt > 0 ? cpu / dt : 0.0,
                          static_cast<double>(rss_kib) / 1024, s.shards_ready, s.shards_connected,
                          h.p50_ms, h.p99_ms, h.max_ms, static_cast<double>(d.p50) / 1e6,
                          static_cast<double>(d.p99) / 1e6, static_cast<double>(d.max) / 1e6,
                          paused);
  csv_.flush();
  prev_ = s;
  have_prev_ = true;
}

std::string LoadReport::finish() {
  if (!csv_.is_open()) return "";
  csv_.close();
  {
    std::ofstream gp(dir_ + "/report.gp", std::ios::trunc);
    gp << kPlot;
  }
  const std::string written = cat(dir_, "/report.csv (", rows_, " rows), ", dir_, "/report.gp");
  bool missing = false;
  const int rc = RunGnuplot(dir_, &missing);
  if (missing) {
    return cat("report: ", written, "; no charts: gnuplot is not installed (Debian: gnuplot-nox)");
  }
  if (rc != 0) return cat("report: ", written, "; gnuplot failed (exit ", rc, "): no charts");
  return cat("report: ", written, ", ", dir_, "/{events,cpu,memory,latency}.png");
}

}  // namespace shardring::tools
