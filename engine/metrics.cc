#include "engine/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <unistd.h>

#include "base/json.h"
#include "engine/histogram.h"

namespace shardring::engine {
namespace {

// Bytes reserved per shard and for the rest: a per-shard line is about 60
// bytes and there are 7 per-shard families. Reserving once keeps 10,000
// shards from growing the string a dozen times.
constexpr size_t kBytesPerShard = 7 * 64;
constexpr size_t kBytesFixed = 8 * 1024;

void put_u64(std::string& out, uint64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void put_i64(std::string& out, int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// A sample value: the shortest text that reads back as the same double, and
// the spellings the format gives the special values.
void put_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];  // the longest shortest form: "-2.2250738585072014e-308"
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  }
}

// A JSON number with millisecond resolution, or null (JSON has no NaN).
void put_fixed3(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  // Fixed notation spells out every digit: a time past 10^40 s is no time.
  char buf[48];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
  if (r.ec != std::errc()) {
    out.append("null");
    return;
  }
  out.append(buf, r.ptr);
}

// A label value, escaped as the text format requires: backslash, double
// quote and line feed; every other byte as is (UTF-8 passes through).
void put_label_value(std::string& out, std::string_view s) {
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.append(c == '\\' ? "\\\\" : c == '"' ? "\\\"" : "\\n");
  }
  out.append(s.data() + run, s.size() - run);
}

// HELP and TYPE; `help` is ours (no backslash or line feed to escape).
void put_header(std::string& out, std::string_view name, std::string_view type,
                std::string_view help) {
  out.append("# HELP ").append(name).push_back(' ');
  out.append(help).append("\n# TYPE ").append(name).push_back(' ');
  out.append(type).push_back('\n');
}

void put_scalar(std::string& out, std::string_view name, std::string_view type,
                std::string_view help, uint64_t v) {
  put_header(out, name, type, help);
  out.append(name).push_back(' ');
  put_u64(out, v);
  out.push_back('\n');
}

void put_scalar(std::string& out, std::string_view name, std::string_view type,
                std::string_view help, double v) {
  put_header(out, name, type, help);
  out.append(name).push_back(' ');
  put_value(out, v);
  out.push_back('\n');
}

// `name{shard="N"} `: the start of a per-shard sample.
void put_shard_sample(std::string& out, std::string_view name, uint32_t shard) {
  out.append(name).append("{shard=\"");
  put_u64(out, shard);
  out.append("\"} ");
}

// One per-shard family; `value(m, out)` appends the value, or returns false
// to leave that shard's sample out (an unknown time).
template <class F>
void put_shard_family(std::string& out, std::span<const ShardMetrics> shards, std::string_view name,
                      std::string_view type, std::string_view help, F value) {
  put_header(out, name, type, help);
  for (const ShardMetrics& m : shards) {
    const size_t mark = out.size();
    put_shard_sample(out, name, m.shard);
    if (value(m, out)) {
      out.push_back('\n');
    } else {
      out.resize(mark);
    }
  }
}

// `entries` sorted by key with repeated keys summed: a series must appear
// once in an exposition.
template <class K>
std::vector<std::pair<K, uint64_t>> merged(std::vector<std::pair<K, uint64_t>> entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<K, uint64_t>> out;
  out.reserve(entries.size());
  for (auto& e : entries) {
    if (!out.empty() && out.back().first == e.first) {
      out.back().second += e.second;
    } else {
      out.push_back(std::move(e));
    }
  }
  return out;
}

void put_histogram(std::string& out, std::string_view name, std::string_view help,
                   const HistogramMetrics& h) {
  put_header(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket{le=\"";
  // A snapshot read while writers run may be a few records apart between
  // buckets; the format wants counts that never fall as the bound grows.
  uint64_t running = 0;
  const size_t n = std::min(h.upper_s.size(), h.cumulative.size());
  for (size_t i = 0; i < n; ++i) {
    running = std::max(running, h.cumulative[i]);
    out.append(bucket);
    put_value(out, h.upper_s[i]);
    out.append("\"} ");
    put_u64(out, running);
    out.push_back('\n');
  }
  const uint64_t count = std::max(running, h.count);
  out.append(bucket).append("+Inf\"} ");
  put_u64(out, count);
  out.push_back('\n');
  out.append(name).append("_sum ");
  put_value(out, h.sum_s);
  out.push_back('\n');
  out.append(name).append("_count ");
  put_u64(out, count);
  out.push_back('\n');
}

}  // namespace

}  // namespace shardring::engine

namespace shardring {

std::string_view to_string(ShardState s) noexcept {
  switch (s) {
    case ShardState::kIdle:
      return "idle";
    case ShardState::kConnecting:
      return "connecting";
    case ShardState::kIdentifying:
      return "identifying";
    case ShardState::kResuming:
      return "resuming";
    case ShardState::kReady:
      return "ready";
    case ShardState::kClosing:
      return "closing";
    case ShardState::kAwaitingIdentify:
      return "awaiting_identify";
    case ShardState::kStopped:
      return "stopped";
  }
  return "unknown";
}

}  // namespace shardring

namespace shardring::engine {

HistogramMetrics histogram_metrics(std::span<const uint64_t> buckets,
                                   std::span<const double> bounds_s) {
  HistogramMetrics h;
  h.upper_s.assign(bounds_s.begin(), bounds_s.end());
  h.cumulative.reserve(bounds_s.size());
  const size_t n = std::min(buckets.size(), Histogram::kBuckets);
  double sum_ns = 0;
  uint64_t seen = 0;
  size_t i = 0;
  for (const double bound : bounds_s) {
    const double bound_ns = bound * 1e9;
    for (; i < n && static_cast<double>(Histogram::upper_of(i)) <= bound_ns; ++i) {
      seen += buckets[i];
    }
    h.cumulative.push_back(seen);
  }
  for (i = 0; i < n; ++i) {
    if (buckets[i] == 0) continue;
    const uint64_t upper = Histogram::upper_of(i);
    const uint64_t lower = i < Histogram::kSub ? i : Histogram::upper_of(i - 1) + 1;
    h.count += buckets[i];
    sum_ns += static_cast<double>(buckets[i]) *
              (static_cast<double>(lower) + static_cast<double>(upper - lower) / 2);
  }
  h.sum_s = sum_ns / 1e9;
  return h;
}

std::string render_metrics(const ProcessMetrics& p, std::span<const ShardMetrics> shards) {
  std::string out;
  out.reserve(kBytesFixed + shards.size() * kBytesPerShard +
              (p.closes_by_code.size() + p.events_by_type.size()) * 64);

  // Shards by state: what a dashboard wants at a glance, without summing
  // thousands of per-shard series.
  uint32_t by_state[kShardStateCount + 1] = {};
  for (const ShardMetrics& m : shards) {
    const auto s = static_cast<uint8_t>(m.state);
    ++by_state[s < kShardStateCount ? s : kShardStateCount];
  }
  put_header(out, "shardring_shards", "gauge", "Shards of this process, by state.");
  for (uint8_t s = 0; s <= kShardStateCount; ++s) {
    if (s == kShardStateCount && by_state[s] == 0) break;  // "unknown" only when there are any
    out.append("shardring_shards{state=\"");
    out.append(to_string(static_cast<ShardState>(s)));
    out.append("\"} ");
    put_u64(out, by_state[s]);
    out.push_back('\n');
  }

  put_header(out, "shardring_closes_total", "counter",
             "WebSocket closes by close code, received or sent.");
  for (const auto& [code, n] : merged(p.closes_by_code)) {
    out.append("shardring_closes_total{code=\"");
    put_u64(out, code);
    out.append("\"} ");
    put_u64(out, n);
    out.push_back('\n');
  }
  put_header(out, "shardring_events_total", "counter",
             "Dispatches delivered, by type (\"other\": types not in the known list).");
  for (const auto& [type, n] : merged(p.events_by_type)) {
    out.append("shardring_events_total{type=\"");
    put_label_value(out, type);
    out.append("\"} ");
    put_u64(out, n);
    out.push_back('\n');
  }

  put_scalar(out, "shardring_events_filtered_total", "counter",
             "Dispatches dropped by the event filter (their seqs still count).", p.filtered);
  put_scalar(out, "shardring_backpressure_seconds_total", "counter",
             "Shard-seconds spent paused on a full event ring.",
             static_cast<double>(p.backpressure_ms) / 1000);
  put_scalar(out, "shardring_channel_depth", "gauge",
             "Events waiting in the event rings for a consumer.", p.channel_depth);
  put_scalar(out, "shardring_tls_handshakes_total", "counter", "TLS handshakes completed.",
             p.tls_handshakes);
  put_scalar(out, "shardring_tls_resumed_total", "counter",
             "TLS handshakes resumed from a session ticket.", p.tls_resumed);
  put_scalar(out, "shardring_identifies_total", "counter", "IDENTIFY payloads sent.", p.identifies);
  put_scalar(out, "shardring_resumes_total", "counter", "RESUME payloads sent.", p.resumes);
  put_scalar(out, "shardring_reconnects_total", "counter", "Shard connections reopened.",
             p.reconnects);
  put_scalar(out, "shardring_zombies_total", "counter",
             "Connections closed for a heartbeat without an ACK.", p.zombies);
  put_scalar(out, "shardring_protocol_errors_total", "counter",
             "Connections closed for input that broke the protocol.", p.protocol_errors);
  put_scalar(out, "shardring_replays_skipped_total", "counter",
             "Replayed dispatches not delivered a second time.", p.replays_skipped);
  if (p.start_budget_left >= 0) {
    put_header(out, "shardring_start_budget_remaining", "gauge",
               "Session starts (identifies) left in the current daily window.");
    out.append("shardring_start_budget_remaining ");
    put_i64(out, p.start_budget_left);
    out.push_back('\n');
  }
  put_scalar(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
             p.rss_bytes);
  put_scalar(out, "process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.", p.cpu_seconds);
  put_histogram(out, "shardring_delivery_latency_seconds",
                "From the gateway's send stamp to the handler (load tests only).",
                p.delivery_latency);

  put_shard_family(out, shards, "shardring_shard_state", "gauge",
                   "Connection state: 0 idle, 1 connecting, 2 identifying, 3 resuming, "
                   "4 ready, 5 closing, 6 awaiting_identify, 7 stopped.",
                   [](const ShardMetrics& m, std::string& o) {
                     put_u64(o, static_cast<uint8_t>(m.state));
                     return true;
                   });
  put_shard_family(out, shards, "shardring_shard_state_seconds", "gauge",
                   "Seconds in the current connection state.",
                   [](const ShardMetrics& m, std::string& o) {
                     if (m.state_since_s < 0) return false;
                     put_value(o, m.state_since_s);
                     return true;
                   });
  put_shard_family(out, shards, "shardring_shard_heartbeat_rtt_seconds", "gauge",
                   "Round trip of the last acknowledged heartbeat.",
                   [](const ShardMetrics& m, std::string& o) {
                     if (m.heartbeat_rtt_s < 0) return false;
                     put_value(o, m.heartbeat_rtt_s);
                     return true;
                   });
  put_shard_family(out, shards, "shardring_shard_last_seq", "gauge",
                   "The session's last sequence number.",
                   [](const ShardMetrics& m, std::string& o) {
                     put_u64(o, m.last_seq);
                     return true;
                   });
  put_shard_family(out, shards, "shardring_shard_seconds_since_event", "gauge",
                   "Seconds since the shard's last dispatch.",
                   [](const ShardMetrics& m, std::string& o) {
                     if (m.since_last_event_s < 0) return false;
                     put_value(o, m.since_last_event_s);
                     return true;
                   });
  put_shard_family(out, shards, "shardring_shard_resumes_total", "counter",
                   "RESUME payloads the shard sent.", [](const ShardMetrics& m, std::string& o) {
                     put_u64(o, m.resumes);
                     return true;
                   });
  put_shard_family(out, shards, "shardring_shard_reconnects_total", "counter",
                   "Times the shard's connection was reopened.",
                   [](const ShardMetrics& m, std::string& o) {
                     put_u64(o, m.reconnects);
                     return true;
                   });
  return out;
}

std::string render_shards_json(std::span<const ShardMetrics> shards) {
  std::string out;
  out.reserve(32 + shards.size() * 192);
  out.append("{\"shards\":[");
  bool first = true;
  for (const ShardMetrics& m : shards) {
    out.append(first ? "\n{\"shard\":" : ",\n{\"shard\":");
    first = false;
    put_u64(out, m.shard);
    out.append(",\"state\":");
    base::append_json_string(out, to_string(m.state));
    out.append(",\"state_since_s\":");
    put_fixed3(out, m.state_since_s < 0 ? NAN : m.state_since_s);
    out.append(",\"heartbeat_rtt_ms\":");
    put_fixed3(out, m.heartbeat_rtt_s < 0 ? NAN : m.heartbeat_rtt_s * 1000);
    out.append(",\"last_seq\":");
    put_u64(out, m.last_seq);
    out.append(",\"seconds_since_event\":");
    put_fixed3(out, m.since_last_event_s < 0 ? NAN : m.since_last_event_s);
    out.append(",\"resumes\":");
    put_u64(out, m.resumes);
    out.append(",\"reconnects\":");
    put_u64(out, m.reconnects);
    out.push_back('}');
  }
  out.append("\n]}\n");
  return out;
}

HealthVerdict health(std::span<const ShardMetrics> shards, double grace_s) {
  HealthVerdict v;
  std::string listed;
  for (const ShardMetrics& m : shards) {
    // A NaN time is unknown, never "within grace": a broken clock must not
    // pass for a healthy shard.
    const bool fine = m.state == ShardState::kReady || m.state == ShardState::kAwaitingIdentify ||
                      (m.state_since_s >= 0 && m.state_since_s < grace_s);
    if (fine) continue;
    if (++v.unhealthy > kMaxUnhealthyListed) continue;
    listed.append(v.unhealthy == 1 ? "{\"shard\":" : ",{\"shard\":");
    put_u64(listed, m.shard);
    listed.append(",\"state\":");
    base::append_json_string(listed, to_string(m.state));
    listed.append(",\"for_s\":");
    put_fixed3(listed, m.state_since_s < 0 ? NAN : m.state_since_s);
    listed.push_back('}');
  }
  if (v.unhealthy == 0) {
    v.body = "{\"status\":\"ok\",\"shards\":";
    put_u64(v.body, shards.size());
    v.body.append("}\n");
    return v;
  }
  v.status = 503;
  v.body = "{\"status\":\"unhealthy\",\"unhealthy\":";
  put_u64(v.body, v.unhealthy);
  v.body.append(",\"shards\":[").append(listed).append("]}\n");
  return v;
}

uint64_t current_rss_bytes() {
  // statm: size resident shared text lib data dt, in pages.
  std::FILE* f = std::fopen("/proc/self/statm", "re");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? resident * static_cast<uint64_t>(page) : 0;
}

}  // namespace shardring::engine
