// engine/metrics.h: what the engine shows an operator over HTTP, as text.
// Sans-I/O: a snapshot goes in, bytes come out; run()'s thread takes the
// snapshot and serves the bytes (engine/http_server.h).
//
//   /metrics  render_metrics(): the Prometheus text exposition, format 0.0.4
//   /shards   render_shards_json(): one JSON object per shard
//   /healthz  health(): 200 while every shard is ready or only briefly not
//
// Cardinality is O(shards + event types + close codes): a per-shard series
// never carries a second label, so 10,000 shards cost 10,000 series per
// per-shard family and no more.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/engine.h"

namespace shardring::engine {

// The Content-Type of render_metrics()'s output.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kJsonContentType = "application/json";

// ShardState (its numbers, names and to_string()) is public: engine/engine.h.

// One shard, as of the snapshot. Times are seconds; a negative one is
// unknown (rendered as an absent series in /metrics, null in /shards).
struct ShardMetrics {
  uint32_t shard = 0;
  ShardState state = ShardState::kIdle;
  double state_since_s = 0;        // how long it has been in `state`
  double heartbeat_rtt_s = -1;     // the last heartbeat's ACK; <0: none yet
  uint64_t last_seq = 0;           // the session's last seq (0: none)
  double since_last_event_s = -1;  // since the last dispatch; <0: none yet
  uint64_t resumes = 0;            // since run()
  uint64_t reconnects = 0;         // since run()
};

// A Prometheus histogram: cumulative counts at ascending upper bounds; the
// +Inf bucket is `count`.
struct HistogramMetrics {
  std::vector<double> upper_s;       // ascending, finite
  std::vector<uint64_t> cumulative;  // observations <= upper_s[i]; same size
  uint64_t count = 0;
  double sum_s = 0;
};

// The bounds of shardring_delivery_latency_seconds: 100 us to 10 s, the span
// between a loopback load test and a consumer that has fallen far behind.
inline constexpr double kLatencyBoundsS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1,      2.5,     5,      10};

// A Histogram's buckets (nanoseconds; `buckets[i]` is bucket i's count, as
// Histogram::index_of() places records, Histogram::kBuckets of them) at
// `bounds_s`. A record counts at a bound when its whole bucket lies at or
// below it, so a count is never too high and a record is at most 3.1 % (the
// histogram's resolution) late to reach its bound. Histogram keeps no sum:
// sum_s adds each bucket's midpoint, within 3.1 % too.
HistogramMetrics histogram_metrics(std::span<const uint64_t> buckets,
                                   std::span<const double> bounds_s = kLatencyBoundsS);

// The whole process, as of the snapshot. Counters count since run().
struct ProcessMetrics {
  // One entry per close code received or sent; a code listed twice is
  // summed (the exposition must not repeat a series).
  std::vector<std::pair<uint16_t, uint64_t>> closes_by_code;
  // Delivered dispatches per type: the known types and "other" (never the
  // raw type of every unknown event: that label would be unbounded).
  // Summed per name as closes_by_code.
  std::vector<std::pair<std::string, uint64_t>> events_by_type;
  uint64_t filtered = 0;         // dispatches Config::events dropped
  uint64_t backpressure_ms = 0;  // shard-time paused on a full ring
  uint64_t channel_depth = 0;    // events waiting in the rings now
  uint64_t tls_handshakes = 0;
  uint64_t tls_resumed = 0;
  uint64_t identifies = 0;
  uint64_t resumes = 0;
  uint64_t reconnects = 0;
  uint64_t zombies = 0;            // connections closed for a missing ACK
  uint64_t protocol_errors = 0;    // connections closed for hostile input
  uint64_t replays_skipped = 0;    // replayed seqs not delivered twice
  int64_t start_budget_left = -1;  // session starts left today; <0: unknown (omitted)
  uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
  HistogramMetrics delivery_latency;
};

// The exposition of `process` and `shards`: HELP and TYPE before each
// family, families never interleaved, label values escaped. About 360
// bytes per shard (3.6 MB for 10,000 shards, a few milliseconds to render);
// one string, reserved up front.
std::string render_metrics(const ProcessMetrics& process, std::span<const ShardMetrics> shards);

// {"shards":[\n{...},\n...]}, one shard a line (greppable, and still one
// JSON document): shard, state (its name), state_since_s, heartbeat_rtt_ms,
// last_seq, seconds_since_event, resumes, reconnects. Unknown times: null.
std::string render_shards_json(std::span<const ShardMetrics> shards);

// At most this many shards are listed in an unhealthy verdict's body: with
// every shard down the list would otherwise be as long as /shards, and the
// count says how many there are.
inline constexpr size_t kMaxUnhealthyListed = 100;

struct HealthVerdict {
  int status = 200;  // 200 or 503
  std::string body;  // JSON
  size_t unhealthy = 0;
};

// Healthy (200, {"status":"ok","shards":N}) when every shard is ready, has
// been in its state for less than `grace_s`, or waits at the identify gate
// (kAwaitingIdentify: a large bot's identify storm lasts hours at one
// identify per 5 s per bucket, and a probe that failed meanwhile would get
// the process restarted, starting the storm again and spending the day's
// session starts). Otherwise 503 with the shards that are not, in input
// order, at most kMaxUnhealthyListed:
// {"status":"unhealthy","unhealthy":K,"shards":[{"shard":3,"state":"resuming","for_s":41.2}]}
HealthVerdict health(std::span<const ShardMetrics> shards, double grace_s);

// The resident set size now, from /proc/self/statm (0 when unreadable): the
// one function here that reads anything; Prometheus wants the current size,
// not the peak getrusage() gives.
uint64_t current_rss_bytes();

}  // namespace shardring::engine
