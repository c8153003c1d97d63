// engine/observe.cc: what run()'s thread shows an operator over HTTP
// (Config::metrics_listen): /metrics, /healthz and /shards, rendered by
// engine/metrics.h from a snapshot of the core threads' shard slots and
// counters, the consumers' latency samples, and the process's CPU and RSS.
#include <memory>
#include <string>

#include "engine/engine_impl.h"
#include "parse/event_type.h"

namespace shardring {

void Engine::Impl::collect(engine::ProcessMetrics* p, std::vector<engine::ShardMetrics>* out) {
  const Stats st = stats();
  std::array<uint64_t, engine::kCloseCodeSlots> closes{};
  std::array<uint64_t, parse::kEventTypeCount> types{};
  auto latency = std::make_unique<engine::Histogram>();
  for (const auto& c : shared->counters) {
    for (size_t i = 0; i < closes.size(); ++i) {
      closes[i] += c->closes[i].load(std::memory_order_relaxed);
    }
    for (size_t i = 0; i < types.size(); ++i) {
      types[i] += c->events_by_type[i].load(std::memory_order_relaxed);
    }
    latency->merge_from(c->delivery_latency);
  }
  for (const auto& h : consumer_latency) latency->merge_from(*h);
  for (size_t i = 0; i < closes.size(); ++i) {
    // The "other" slot has no code of its own: it is reported as 0.
    if (closes[i] != 0) {
      p->closes_by_code.emplace_back(i == engine::kOtherCloseSlot ? 0 : engine::CloseCodeOfSlot(i),
                                     closes[i]);
    }
  }
  for (size_t i = 1; i < types.size(); ++i) {  // kNone never reaches a handler
    const auto type = static_cast<parse::EventType>(i);
    p->events_by_type.emplace_back(
        type == parse::EventType::kUnknown ? "other" : std::string(parse::to_string(type)),
        types[i]);
  }
  for (const auto& per_core : shared->channels) {
    for (const auto& ch : per_core) p->channel_depth += ch->depth();
  }
  p->filtered = st.filtered;
  p->backpressure_ms = st.backpressure_ms;
  p->tls_handshakes = st.tls_handshakes;
  p->tls_resumed = st.tls_resumed;
  p->identifies = st.identifies;
  p->resumes = st.resumes;
  p->reconnects = st.reconnects;
  p->zombies = st.zombies;
  p->protocol_errors = st.protocol_errors;
  p->replays_skipped = st.replays_skipped;
  // Every IDENTIFY spends a start of the day's budget /gateway/bot reported.
  if (bot) {
    p->start_budget_left =
        static_cast<int64_t>(bot->remaining) - static_cast<int64_t>(st.identifies);
  }
  p->rss_bytes = engine::current_rss_bytes();
  p->cpu_seconds = st.cpu_s;
  std::vector<uint64_t> buckets(engine::Histogram::kBuckets);
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] = latency->bucket(i);
  p->delivery_latency = engine::histogram_metrics(buckets);
  for (const ShardInfo& s : shard_infos()) {
    engine::ShardMetrics m;
    m.shard = s.shard;
    m.state = s.state;
    m.state_since_s = s.state_for_s;
    m.heartbeat_rtt_s = s.heartbeat_rtt_s;
    m.last_seq = s.last_seq;
    m.since_last_event_s = s.since_last_event_s;
    m.resumes = s.resumes;
    m.reconnects = s.reconnects;
    out->push_back(m);
  }
}

engine::HttpReply Engine::Impl::serve_http(std::string_view path) {
  engine::HttpReply r;
  if (path != "/metrics" && path != "/healthz" && path != "/shards") {
    r.status = 404;
    r.body = "not found: try /metrics, /healthz or /shards\n";
    return r;
  }
  engine::ProcessMetrics process;
  std::vector<engine::ShardMetrics> shards;
  collect(&process, &shards);
  if (path == "/metrics") {
    r.content_type = std::string(engine::kPrometheusContentType);
    r.body = engine::render_metrics(process, shards);
    if (config.metrics_extra) config.metrics_extra(r.body);
  } else if (path == "/shards") {
    r.content_type = std::string(engine::kJsonContentType);
    r.body = engine::render_shards_json(shards);
  } else {
    const engine::HealthVerdict v =
        engine::health(shards, static_cast<double>(config.health_grace.count()));
    r.status = v.status;
    r.content_type = std::string(engine::kJsonContentType);
    r.body = v.body;
  }
  return r;
}

}  // namespace shardring
