// tools/load_report.h: `shardring load --report DIR`: the run second by
// second, as DIR/report.csv, and charts of it, DIR/*.png, drawn by gnuplot
// from DIR/report.gp (docs/interface.md "shardring load").
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "engine/histogram.h"

namespace shardring::tools {

class LoadReport {
 public:
  // The CSV's columns, in order.
  static constexpr const char* kColumns =
      "second,events_per_s,cpu_cores,rss_mib,shards_ready,shards_connected,"
      "heartbeat_p50_ms,heartbeat_p99_ms,heartbeat_max_ms,delivery_p50_ms,delivery_p99_ms,"
      "delivery_max_ms,backpressure_ms";

  // Makes DIR (and its parents) and opens DIR/report.csv; false with *error.
  bool open(const std::string& dir, std::string* error);
  // One row: a tick's Stats (events, CPU and backpressure as the difference
  // from the previous tick; the heartbeats of the last second), the RSS now,
  // and `delivery`, the cumulative delivery-latency histogram.
  void tick(const Stats& s, uint64_t rss_kib, const engine::Histogram& delivery);
  // Writes DIR/report.gp and runs gnuplot on it. Returns what a user should
  // read (the files written, or why there are no charts).
  std::string finish();

 private:
  std::string dir_;
  std::ofstream csv_;
  uint64_t rows_ = 0;
  Stats prev_{};
  bool have_prev_ = false;
  std::unique_ptr<engine::HistogramWindow> delivery_ = std::make_unique<engine::HistogramWindow>();
};

}  // namespace shardring::tools
