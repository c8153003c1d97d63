#include "engine/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/rng.h"
#include "engine/histogram.h"
#include "simdjson.h"

namespace shardring::engine {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

// Checks what a Prometheus server needs of a text exposition (format
// 0.0.4): every sample after its family's HELP and TYPE, families never
// interleaved or repeated, no series twice, values that parse, a histogram's
// buckets cumulative and ending in +Inf. Returns "" or what is wrong.
std::string check_exposition(const std::string& text) {
  if (text.empty() || text.back() != '\n') return "does not end in a line feed";
  std::set<std::string> families, series;
  std::string family, type;
  bool helped = false;
  double last_bucket = -1;
  for (const std::string& line : lines_of(text)) {
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      if (!families.insert(name).second) return "family repeated: " + name;
      family = name;
      helped = true;
      type.clear();
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const size_t sp = line.find(' ', 7);
      if (line.substr(7, sp - 7) != family || !helped) return "TYPE without HELP: " + line;
      type = line.substr(sp + 1);
      if (type != "counter" && type != "gauge" && type != "histogram") return "type: " + line;
      last_bucket = -1;
      continue;
    }
    if (line.empty() || line[0] == '#') return "stray line: " + line;
    const size_t name_end = line.find_first_of("{ ");
    const std::string name = line.substr(0, name_end);
    const bool in_family =
        name == family ||
        (type == "histogram" &&
         (name == family + "_bucket" || name == family + "_sum" || name == family + "_count"));
    if (type.empty() || !in_family) return "sample outside its family: " + line;
    size_t value_at = name_end + 1;
    if (line[name_end] == '{') {
      // Label values: quoted, with \\ \" \n the only escapes.
      size_t i = name_end + 1;
      for (;;) {
        const size_t eq = line.find('=', i);
        if (eq == std::string::npos || line[eq + 1] != '"') return "labels: " + line;
        i = eq + 2;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size() ||
                std::string("\\\"n").find(line[i + 1]) == std::string::npos) {
              return "escape: " + line;
            }
            ++i;
          }
          ++i;
        }
        if (i >= line.size()) return "unterminated label: " + line;
        ++i;
        if (line[i] == '}') break;
        if (line[i] != ',') return "labels: " + line;
        ++i;
      }
      value_at = i + 2;
      if (line[i + 1] != ' ') return "no space before the value: " + line;
    }
    const std::string key = line.substr(0, value_at - 1);
    if (!series.insert(key).second) return "series repeated: " + key;
    const std::string value = line.substr(value_at);
    double v = 0;
    if (value == "+Inf") {
      v = INFINITY;
    } else if (value == "NaN") {
      v = NAN;
    } else {
      size_t used = 0;
      v = std::stod(value, &used);
      if (used != value.size()) return "value: " + line;
    }
    if (name == family + "_bucket") {
      if (v < last_bucket) return "buckets not cumulative: " + line;
      last_bucket = v;
    }
    if (name == family + "_count" && v != last_bucket) return "count is not the +Inf bucket";
  }
  return "";
}

ShardMetrics shard(uint32_t id, ShardState state, double since_s = 1) {
  ShardMetrics m;
  m.shard = id;
  m.state = state;
  m.state_since_s = since_s;
  return m;
}

ProcessMetrics sample_process() {
  ProcessMetrics p;
  p.closes_by_code = {{4000, 2}, {1006, 1}};
  p.events_by_type = {{"MESSAGE_CREATE", 10}, {"GUILD_CREATE", 3}, {"other", 1}};
  p.filtered = 5;
  p.backpressure_ms = 1500;
  p.channel_depth = 7;
  p.tls_handshakes = 4;
  p.tls_resumed = 2;
  p.identifies = 3;
  p.resumes = 1;
  p.start_budget_left = 997;
  p.rss_bytes = 123456789;
  p.cpu_seconds = 1.25;
  p.delivery_latency.upper_s = {0.001, 0.01};
  p.delivery_latency.cumulative = {2, 5};
  p.delivery_latency.count = 6;
  p.delivery_latency.sum_s = 2.5;
  return p;
}

TEST(Metrics, IsAValidExposition) {
  std::vector<ShardMetrics> shards;
  for (uint32_t i = 0; i < 20; ++i) {
    ShardMetrics m = shard(i, static_cast<ShardState>(i % kShardStateCount), i * 0.5);
    m.heartbeat_rtt_s = i % 3 == 0 ? -1 : 0.04;
    m.since_last_event_s = i % 4 == 0 ? -1 : 0.25;
    m.last_seq = i * 100;
    shards.push_back(m);
  }
  const std::string text = render_metrics(sample_process(), shards);
  EXPECT_EQ(check_exposition(text), "") << text;
  EXPECT_EQ(check_exposition(render_metrics(ProcessMetrics{}, {})), "");
}

TEST(Metrics, PerShardSeriesCarryOnlyTheShardLabel) {
  ShardMetrics m = shard(3, ShardState::kResuming, 41.5);
  m.heartbeat_rtt_s = 0.0415;
  m.last_seq = 12345;
  m.since_last_event_s = 2.5;
  m.resumes = 4;
  m.reconnects = 6;
  const std::string text = render_metrics(ProcessMetrics{}, std::span(&m, 1));
  EXPECT_TRUE(has_line(text, "shardring_shard_state{shard=\"3\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "shardring_shard_state_seconds{shard=\"3\"} 41.5"));
  EXPECT_TRUE(has_line(text, "shardring_shard_heartbeat_rtt_seconds{shard=\"3\"} 0.0415"));
  EXPECT_TRUE(has_line(text, "shardring_shard_last_seq{shard=\"3\"} 12345"));
  EXPECT_TRUE(has_line(text, "shardring_shard_seconds_since_event{shard=\"3\"} 2.5"));
  EXPECT_TRUE(has_line(text, "shardring_shard_resumes_total{shard=\"3\"} 4"));
  EXPECT_TRUE(has_line(text, "shardring_shard_reconnects_total{shard=\"3\"} 6"));
  EXPECT_TRUE(has_line(text, "# TYPE shardring_shard_resumes_total counter"));
  EXPECT_TRUE(has_line(text, "# TYPE shardring_shard_state gauge"));
  // The HELP line is where the numbers are explained.
  EXPECT_NE(text.find("# HELP shardring_shard_state Connection state: 0 idle, 1 connecting, 2 "
                      "identifying, 3 resuming, 4 ready, 5 closing, 6 awaiting_identify, 7 "
                      "stopped."),
            std::string::npos);
}

TEST(Metrics, UnknownTimesAreAbsentSeries) {
  ShardMetrics m = shard(9, ShardState::kIdle, -1);
  const std::string text = render_metrics(ProcessMetrics{}, std::span(&m, 1));
  EXPECT_EQ(text.find("shardring_shard_heartbeat_rtt_seconds{"), std::string::npos);
  EXPECT_EQ(text.find("shardring_shard_seconds_since_event{"), std::string::npos);
  EXPECT_EQ(text.find("shardring_shard_state_seconds{"), std::string::npos);
  EXPECT_TRUE(has_line(text, "shardring_shard_state{shard=\"9\"} 0"));
  EXPECT_EQ(check_exposition(text), "");
}

TEST(Metrics, ProcessSeries) {
  const std::string text = render_metrics(sample_process(), {});
  for (const char* line : {
           "shardring_closes_total{code=\"1006\"} 1",
           "shardring_closes_total{code=\"4000\"} 2",
           "shardring_events_total{type=\"MESSAGE_CREATE\"} 10",
           "shardring_events_total{type=\"other\"} 1",
           "shardring_events_filtered_total 5",
           "shardring_backpressure_seconds_total 1.5",
           "shardring_channel_depth 7",
           "shardring_tls_handshakes_total 4",
           "shardring_tls_resumed_total 2",
           "shardring_identifies_total 3",
           "shardring_resumes_total 1",
           "shardring_start_budget_remaining 997",
           "process_resident_memory_bytes 123456789",
           "process_cpu_seconds_total 1.25",
           "# TYPE shardring_delivery_latency_seconds histogram",
           "shardring_delivery_latency_seconds_bucket{le=\"0.001\"} 2",
           "shardring_delivery_latency_seconds_bucket{le=\"0.01\"} 5",
           "shardring_delivery_latency_seconds_bucket{le=\"+Inf\"} 6",
           "shardring_delivery_latency_seconds_sum 2.5",
           "shardring_delivery_latency_seconds_count 6",
       }) {
    EXPECT_TRUE(has_line(text, line)) << line << "\n" << text;
  }
}

TEST(Metrics, StartBudgetIsLeftOutWhenUnknown) {
  ProcessMetrics p = sample_process();
  p.start_budget_left = -1;
  EXPECT_EQ(render_metrics(p, {}).find("shardring_start_budget_remaining"), std::string::npos);
  p.start_budget_left = 0;
  EXPECT_TRUE(has_line(render_metrics(p, {}), "shardring_start_budget_remaining 0"));
}

TEST(Metrics, EscapesLabelValues) {
  ProcessMetrics p;
  p.events_by_type = {{"A\\B\"C\nD", 1}};
  const std::string text = render_metrics(p, {});
  EXPECT_TRUE(has_line(text, "shardring_events_total{type=\"A\\\\B\\\"C\\nD\"} 1")) << text;
  EXPECT_EQ(check_exposition(text), "");
}

TEST(Metrics, RepeatedLabelValuesAreSummed) {
  ProcessMetrics p;
  p.closes_by_code = {{4000, 1}, {1000, 5}, {4000, 2}};
  p.events_by_type = {{"READY", 1}, {"READY", 1}};
  const std::string text = render_metrics(p, {});
  EXPECT_TRUE(has_line(text, "shardring_closes_total{code=\"4000\"} 3"));
  EXPECT_TRUE(has_line(text, "shardring_closes_total{code=\"1000\"} 5"));
  EXPECT_TRUE(has_line(text, "shardring_events_total{type=\"READY\"} 2"));
  EXPECT_EQ(check_exposition(text), "");
}

TEST(Metrics, CountsShardsByState) {
  std::vector<ShardMetrics> shards = {shard(0, ShardState::kReady), shard(1, ShardState::kReady),
                                      shard(2, ShardState::kAwaitingIdentify),
                                      shard(3, static_cast<ShardState>(200))};
  const std::string text = render_metrics(ProcessMetrics{}, shards);
  EXPECT_TRUE(has_line(text, "shardring_shards{state=\"ready\"} 2"));
  EXPECT_TRUE(has_line(text, "shardring_shards{state=\"awaiting_identify\"} 1"));
  EXPECT_TRUE(has_line(text, "shardring_shards{state=\"idle\"} 0"));
  EXPECT_TRUE(has_line(text, "shardring_shards{state=\"unknown\"} 1"));
  EXPECT_EQ(render_metrics(ProcessMetrics{}, {}).find("state=\"unknown\""), std::string::npos);
}

TEST(Metrics, NonCumulativeSnapshotIsMadeCumulative) {
  // Buckets read while a writer runs can be a record apart.
  ProcessMetrics p;
  p.delivery_latency.upper_s = {0.001, 0.01, 0.1};
  p.delivery_latency.cumulative = {4, 3, 5};
  p.delivery_latency.count = 4;
  const std::string text = render_metrics(p, {});
  EXPECT_TRUE(has_line(text, "shardring_delivery_latency_seconds_bucket{le=\"0.01\"} 4"));
  EXPECT_TRUE(has_line(text, "shardring_delivery_latency_seconds_bucket{le=\"+Inf\"} 5"));
  EXPECT_TRUE(has_line(text, "shardring_delivery_latency_seconds_count 5"));
  EXPECT_EQ(check_exposition(text), "");
}

TEST(Metrics, SeriesGrowWithShardsAloneNotShardsTimesAnything) {
  ProcessMetrics p = sample_process();
  for (int i = 0; i < 40; ++i)
    p.events_by_type.emplace_back(std::string(1, 'T').append(std::to_string(i)), 1);
  std::vector<ShardMetrics> shards;
  for (uint32_t i = 0; i < 1000; ++i) {
    ShardMetrics m = shard(i, ShardState::kReady);
    m.heartbeat_rtt_s = 0.01;
    m.since_last_event_s = 0.5;
    shards.push_back(m);
  }
  const std::string with = render_metrics(p, shards);
  const std::string without = render_metrics(p, {});
  const auto samples = [](const std::string& t) {
    size_t n = 0;
    for (const auto& l : lines_of(t)) n += !l.empty() && l[0] != '#';
    return n;
  };
  EXPECT_EQ(samples(with) - samples(without), 7u * shards.size());
  EXPECT_EQ(check_exposition(with), "");
}

TEST(Metrics, HistogramFromBuckets) {
  Histogram h;
  h.record(400'000);         // 0.4 ms
  h.record(4'000'000);       // 4 ms
  h.record(20'000'000'000);  // 20 s: past every bound
  std::vector<uint64_t> buckets(Histogram::kBuckets);
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] = h.bucket(i);
  const HistogramMetrics m = histogram_metrics(buckets);
  ASSERT_EQ(m.upper_s.size(), std::size(kLatencyBoundsS));
  ASSERT_EQ(m.cumulative.size(), m.upper_s.size());
  const auto at = [&](double bound) {
    for (size_t i = 0; i < m.upper_s.size(); ++i) {
      if (m.upper_s[i] == bound) return m.cumulative[i];
    }
    ADD_FAILURE() << bound;
    return uint64_t{0};
  };
  EXPECT_EQ(at(0.00025), 0u);
  EXPECT_EQ(at(0.0005), 1u);
  EXPECT_EQ(at(0.0025), 1u);
  EXPECT_EQ(at(0.005), 2u);
  EXPECT_EQ(at(10), 2u);
  EXPECT_EQ(m.count, 3u);
  EXPECT_NEAR(m.sum_s, 20.0044, 20.0044 / 32);
}

TEST(Metrics, HistogramCountsAreNeverTooHighAndAtMostOneBucketLate) {
  Histogram h;
  base::Rng rng(7);
  std::vector<uint64_t> values;
  for (int i = 0; i < 20000; ++i) {
    // Log-uniform from 1 us to 100 s.
    const double ns = std::pow(10.0, 3 + 8 * rng.unit());
    values.push_back(static_cast<uint64_t>(ns));
    h.record(values.back());
  }
  std::vector<uint64_t> buckets(Histogram::kBuckets);
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] = h.bucket(i);
  const HistogramMetrics m = histogram_metrics(buckets);
  double true_sum = 0;
  for (uint64_t v : values) true_sum += static_cast<double>(v) / 1e9;
  for (size_t j = 0; j < m.upper_s.size(); ++j) {
    const double bound_ns = m.upper_s[j] * 1e9;
    uint64_t at_or_below = 0, well_below = 0;
    for (uint64_t v : values) {
      at_or_below += static_cast<double>(v) <= bound_ns;
      well_below += static_cast<double>(v) <= bound_ns * (1 - 1.0 / 32);
    }
    EXPECT_LE(m.cumulative[j], at_or_below) << m.upper_s[j];
    EXPECT_GE(m.cumulative[j], well_below) << m.upper_s[j];
  }
  EXPECT_EQ(m.count, values.size());
  EXPECT_NEAR(m.sum_s, true_sum, true_sum / 32);
}

TEST(Metrics, StateNames) {
  const std::map<ShardState, std::string> names = {
      {ShardState::kIdle, "idle"},
      {ShardState::kConnecting, "connecting"},
      {ShardState::kIdentifying, "identifying"},
      {ShardState::kResuming, "resuming"},
      {ShardState::kReady, "ready"},
      {ShardState::kClosing, "closing"},
      {ShardState::kAwaitingIdentify, "awaiting_identify"},
      {ShardState::kStopped, "stopped"},
  };
  ASSERT_EQ(names.size(), kShardStateCount);
  for (const auto& [s, name] : names) EXPECT_EQ(to_string(s), name);
  EXPECT_EQ(to_string(static_cast<ShardState>(kShardStateCount)), "unknown");
}

TEST(ShardsJson, OneObjectPerShardLine) {
  ShardMetrics a = shard(0, ShardState::kReady, 12.3456);
  a.heartbeat_rtt_s = 0.0415;
  a.last_seq = 99;
  a.since_last_event_s = 0.25;
  a.resumes = 1;
  a.reconnects = 2;
  ShardMetrics b = shard(7, ShardState::kAwaitingIdentify, 3);
  const std::vector<ShardMetrics> shards = {a, b};
  const std::string text = render_shards_json(shards);
  EXPECT_EQ(lines_of(text).size(), 4u) << text;  // {"shards":[, two shards, ]}
  EXPECT_EQ(lines_of(text)[2],
            "{\"shard\":7,\"state\":\"awaiting_identify\",\"state_since_s\":3.000,"
            "\"heartbeat_rtt_ms\":null,\"last_seq\":0,\"seconds_since_event\":null,"
            "\"resumes\":0,\"reconnects\":0}");

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
  simdjson::dom::array list;
  ASSERT_EQ(doc["shards"].get(list), simdjson::SUCCESS);
  ASSERT_EQ(list.size(), 2u);
  const auto first = list.at(0);
  EXPECT_EQ(uint64_t(first["shard"]), 0u);
  EXPECT_EQ(std::string_view(first["state"]), "ready");
  EXPECT_DOUBLE_EQ(double(first["state_since_s"]), 12.346);
  EXPECT_DOUBLE_EQ(double(first["heartbeat_rtt_ms"]), 41.5);
  EXPECT_EQ(uint64_t(first["last_seq"]), 99u);
  EXPECT_DOUBLE_EQ(double(first["seconds_since_event"]), 0.25);
  EXPECT_EQ(uint64_t(first["resumes"]), 1u);
  EXPECT_EQ(uint64_t(first["reconnects"]), 2u);
}

TEST(ShardsJson, TimesTooLongToSpellAreNull) {
  ShardMetrics m = shard(1, ShardState::kIdle, 1e300);
  m.since_last_event_s = INFINITY;
  const std::string text = render_shards_json(std::span(&m, 1));
  EXPECT_NE(text.find("\"state_since_s\":null"), std::string::npos) << text;
  EXPECT_NE(text.find("\"seconds_since_event\":null"), std::string::npos) << text;
}

TEST(ShardsJson, NoShards) {
  const std::string text = render_shards_json({});
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
  EXPECT_EQ(simdjson::dom::array(doc["shards"]).size(), 0u);
}

TEST(Health, OkWhenReadyOrWithinGrace) {
  const std::vector<ShardMetrics> shards = {shard(0, ShardState::kReady, 500),
                                            shard(1, ShardState::kResuming, 29.9),
                                            shard(2, ShardState::kIdle, 0)};
  const HealthVerdict v = health(shards, 30);
  EXPECT_EQ(v.status, 200);
  EXPECT_EQ(v.body, "{\"status\":\"ok\",\"shards\":3}\n");
  EXPECT_EQ(v.unhealthy, 0u);
  EXPECT_EQ(health({}, 30).status, 200);
}

TEST(Health, UnhealthyAtTheGraceAndPast) {
  const std::vector<ShardMetrics> shards = {shard(0, ShardState::kReady, 500),
                                            shard(3, ShardState::kResuming, 41.2),
                                            shard(4, ShardState::kIdle, 30)};
  const HealthVerdict v = health(shards, 30);
  EXPECT_EQ(v.status, 503);
  EXPECT_EQ(v.unhealthy, 2u);
  EXPECT_EQ(v.body,
            "{\"status\":\"unhealthy\",\"unhealthy\":2,\"shards\":["
            "{\"shard\":3,\"state\":\"resuming\",\"for_s\":41.200},"
            "{\"shard\":4,\"state\":\"idle\",\"for_s\":30.000}]}\n");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(v.body).get(doc), simdjson::SUCCESS);
}

TEST(Health, WaitingToIdentifyIsNeverUnhealthy) {
  const std::vector<ShardMetrics> shards = {shard(0, ShardState::kAwaitingIdentify, 7200)};
  EXPECT_EQ(health(shards, 30).status, 200);
}

TEST(Health, UnknownTimeIsNotWithinGrace) {
  const std::vector<ShardMetrics> shards = {shard(0, ShardState::kConnecting, NAN),
                                            shard(1, ShardState::kConnecting, -1)};
  const HealthVerdict v = health(shards, 30);
  EXPECT_EQ(v.status, 503);
  EXPECT_EQ(v.unhealthy, 2u);
  EXPECT_NE(v.body.find("\"for_s\":null"), std::string::npos);
}

TEST(Health, ListsAtMostMaxUnhealthyShards) {
  const auto listed = [](const std::string& body) {
    size_t n = 0;
    for (size_t at = body.find("\"shard\":"); at != std::string::npos;
         at = body.find("\"shard\":", at + 1)) {
      ++n;
    }
    return n;
  };
  std::vector<ShardMetrics> shards;
  for (uint32_t i = 0; i < kMaxUnhealthyListed; ++i) {
    shards.push_back(shard(i, ShardState::kIdle, 100));
  }
  HealthVerdict v = health(shards, 30);
  EXPECT_EQ(v.unhealthy, kMaxUnhealthyListed);
  EXPECT_EQ(listed(v.body), kMaxUnhealthyListed);
  shards.push_back(shard(kMaxUnhealthyListed, ShardState::kIdle, 100));
  v = health(shards, 30);
  EXPECT_EQ(v.unhealthy, kMaxUnhealthyListed + 1);
  EXPECT_EQ(listed(v.body), kMaxUnhealthyListed);
  EXPECT_NE(v.body.find("\"unhealthy\":" + std::to_string(kMaxUnhealthyListed + 1)),
            std::string::npos);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(v.body).get(doc), simdjson::SUCCESS);
}

TEST(Metrics, ResidentSetSizeIsRead) { EXPECT_GT(current_rss_bytes(), 1u << 20); }

}  // namespace
}  // namespace shardring::engine
