#include "tools/live.h"

#include <cstdio>

#include "absl/strings/str_format.h"
#include "engine/log.h"

namespace shardring::tools {

std::string LiveView::line(const Stats& s) {
  const double dt = s.elapsed_s - last_elapsed_;
  const double rate = dt > 0 ? static_cast<double>(s.events - last_events_) / dt : 0;
  last_events_ = s.events;
  last_elapsed_ = s.elapsed_s;
  return absl::StrFormat(
      "live %6.1fs  shards %u/%u ready (%u connected)  events %d (%.0f/s)  identifies %d  "
      "resumes %d  reconnects %d  rss %.1f MiB",
      s.elapsed_s, s.shards_ready, s.shards, s.shards_connected, s.events, rate, s.identifies,
      s.resumes, s.reconnects, static_cast<double>(s.peak_rss_kib) / 1024);
}

void LiveView::print(const Stats& s) {
  const std::string l = line(s);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", l.c_str());
    std::fflush(stderr);
    drew_ = true;
  } else {
    engine::Log::raw(l);
  }
}

void LiveView::finish() {
  if (tty_ && drew_) std::fputs("\n", stderr);
  drew_ = false;
}

}  // namespace shardring::tools
