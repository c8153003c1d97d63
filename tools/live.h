// tools/live.h: the one-line live view of `shardring run --live` and
// `shardring load`, written about once a second from Config::on_tick.
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine.h"

namespace shardring::tools {

class LiveView {
 public:
  // `tty`: redraw one line in place; otherwise one log line per tick.
  explicit LiveView(bool tty) : tty_(tty) {}
  // "live 12.0s  shards 98/100 ready (100 connected)  events 1200 (100/s) ..."
  // with the event rate since the previous call.
  std::string line(const Stats& s);
  // Writes line(s) to stderr the way this view was made for.
  void print(const Stats& s);
  // On a terminal, ends the redrawn line so what follows starts clean.
  void finish();

 private:
  bool tty_;
  bool drew_ = false;
  uint64_t last_events_ = 0;
  double last_elapsed_ = 0;
};

}  // namespace shardring::tools
