#include "engine/engine.h"

#include "engine/engine_impl.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>

#include "absl/strings/str_join.h"
#include "base/json.h"
#include "engine/core.h"
#include "engine/cpus.h"
#include "engine/log.h"
#include "engine/rest.h"
#include "engine/sessions.h"
#include "engine/text.h"
#include "gateway/session.h"
#include "parse/envelope.h"
#include "parse/inflate.h"

namespace shardring {

using engine::Level;
using engine::Log;
using Clock = std::chrono::steady_clock;

static LatencySummary Summarize(const engine::Histogram& h) {
  LatencySummary s;
  s.count = h.count();
  s.p50_ms = static_cast<double>(h.quantile(0.50)) / 1e6;
  s.p99_ms = static_cast<double>(h.quantile(0.99)) / 1e6;
  s.max_ms = static_cast<double>(h.max()) / 1e6;
  return s;
}

absl::Status Engine::Impl::resolve_gateway(uint32_t* max_concurrency) {
  const bool need_rest = config.gateway_url.empty() || config.total_shards == 0;
  if (!need_rest) return absl::OkStatus();
  auto api = engine::parse_url(config.api);
  if (!api.ok()) return absl::InvalidArgumentError(cat("--api: ", api.status().message()));
  engine::Url url = *api;
  if (!url.path.empty() && url.path.back() == '/') url.path.pop_back();
  url.path += "/gateway/bot";
  tls::ClientOptions topts;
  topts.ca_file = config.ca_file;
  if (config.insecure) topts.verification = tls::Verification::kInsecure;
  Log::write(Level::kInfo, -1, "asking for the gateway", {{"url", url.to_string()}});
  auto resp = engine::http_get(url, config.token.empty() ? "" : "Bot " + config.token, topts);
  if (!resp.ok()) {
    return absl::UnavailableError(
        cat("GET ", url.to_string(), " failed: ", resp.status().message()));
  }
  if (resp->status == 401) {
    return absl::PermissionDeniedError(
        "GET /gateway/bot answered 401 Unauthorized: the bot token is wrong or was reset "
        "(check --token / DISCORD_TOKEN)");
  }
  if (resp->status != 200) {
    return absl::UnavailableError(cat("GET /gateway/bot answered HTTP ", resp->status));
  }
  parse::GatewayBot bot;
  std::string_view field;
  if (parse::parse_gateway_bot(resp->body, bot, &field) != parse::Errc::kOk) {
    return absl::UnavailableError(cat("GET /gateway/bot: bad body (field '", field, "')"));
  }
  if (config.gateway_url.empty()) config.gateway_url = bot.url;
  if (config.total_shards == 0) config.total_shards = bot.shards;
  if (*max_concurrency == 0) *max_concurrency = bot.max_concurrency;
  Log::write(Level::kInfo, -1, "gateway",
             {{"url", bot.url},
              {"shards", bot.shards},
              {"max_concurrency", bot.max_concurrency},
              {"session_starts_remaining", bot.remaining},
              {"reset_after_ms", bot.reset_after_ms}});
  this->bot = bot;
  return absl::OkStatus();
}

int Engine::Impl::run() {
  started = Clock::now();
  Log::set_secret(config.token);
  if (config.on_log) {
    Log::set_sink([f = config.on_log](engine::Level l, int64_t shard, std::string_view line) {
      f(static_cast<int>(l), shard, line);
    });
  }
  // Lines queued while the shards run go out on a thread of their own;
  // whatever run() returns, they are written before it does.
  Log::start_writer();
  struct Flush {
    bool sink;
    ~Flush() {
      Log::flush();
      if (sink) Log::set_sink(nullptr);
    }
  } flush_at_exit{static_cast<bool>(config.on_log)};
  if (config.session_store) {
    keeper = std::make_unique<engine::SessionKeeper>(config.session_store);
    if (absl::Status st = keeper->load(bot_user_id_from_token(config.token)); !st.ok()) {
      Log::write(Level::kError, -1, std::string(st.message()));
      return 2;
    }
  }
  uint32_t max_concurrency = config.max_concurrency;
  if (absl::Status s = resolve_gateway(&max_concurrency); !s.ok()) {
    Log::write(Level::kError, -1, std::string(s.message()));
    return s.code() == absl::StatusCode::kPermissionDenied  ? 3
           : s.code() == absl::StatusCode::kInvalidArgument ? 2
                                                            : 1;
  }
  if (max_concurrency == 0) max_concurrency = 1;
  if (config.total_shards == 0) {
    Log::write(Level::kError, -1, "total shard count is 0");
    return 2;
  }
  first = config.first_shard.value_or(0);
  last = config.last_shard.value_or(config.total_shards - 1);
  if (first > last || last >= config.total_shards) {
    Log::write(Level::kError, -1,
               cat("shard ids ", first, "-", last, " do not fit ", config.total_shards, " shards"));
    return 2;
  }
  auto gw = engine::parse_url(config.gateway_url);
  if (!gw.ok() || (gw->scheme != engine::Scheme::kWs && gw->scheme != engine::Scheme::kWss)) {
    Log::write(Level::kError, -1, cat("bad gateway url '", config.gateway_url, "'"));
    return 2;
  }
  if (gw->scheme == engine::Scheme::kWs && !engine::is_loopback_host(gw->host)) {
    Log::write(Level::kError, -1, "ws:// (no TLS) is allowed only for loopback gateways");
    return 2;
  }
  gw->query = engine::set_query_param(gw->query, "v", "10");
  gw->query = engine::set_query_param(gw->query, "encoding", "json");
  // Transport compression: Config::compress, or a compress= already in
  // the URL; the two must agree.
  parse::Compression compression = config.compress;
  if (auto v = engine::query_value(gw->query, "compress")) {
    const auto named = parse::compression_from_name(*v);
    if (!named || (compression != parse::Compression::kNone && *named != compression)) {
      Log::write(Level::kError, -1,
                 cat("the gateway url asks for compress=", *v, ", which ",
                     named ? "contradicts --compress" : "is not none, zlib-stream or zstd-stream"));
      return 2;
    }
    compression = *named;
  }
  if (compression != parse::Compression::kNone) {
    gw->query = engine::set_query_param(gw->query, "compress", parse::to_string(compression));
  }

  engine::Settings s;
  s.gateway = *gw;
  gateway::Config& session = s.client.session;
  session.token = config.token;
  session.intents = config.intents;
  session.shard_count = config.total_shards;
  session.gateway_url = gw->to_string();
  session.large_threshold = config.large_threshold;
  session.presence_json = config.presence_json;
  s.client.compression = compression;
  s.client.routing_keys = config.routing_keys;
  s.client.validate_d = config.validate_d;
  if (config.coalesce.count() < 0 || config.coalesce > kMaxCoalesce) {
    Log::write(
        Level::kError, -1,
        cat("coalesce must be 0 to ", kMaxCoalesce.count(), " us, got ", config.coalesce.count()));
    return 2;
  }
  s.coalesce = config.coalesce;
  auto fallbacks = engine::parse_uring_fallbacks(config.uring_fallbacks);
  if (!fallbacks.ok()) {
    Log::write(Level::kError, -1, cat("uring fallbacks: ", fallbacks.status().message()));
    return 2;
  }
  s.uring_fallbacks = *fallbacks;
  if (config.connect_timeout < kMinConnectTimeout || config.connect_timeout > kMaxConnectTimeout) {
    Log::write(Level::kError, -1,
               cat("connect timeout must be ", kMinConnectTimeout.count(), " to ",
                   kMaxConnectTimeout.count(), " ms, got ", config.connect_timeout.count()));
    return 2;
  }
  s.connect_timeout = config.connect_timeout;
  // Under a service manager's watchdog every core loop turns at least 4
  // times per interval, so one stalled loop is seen within it.
  notifier = engine::Notifier::from_env();
  if (notifier.watchdog().count() > 0) {
    s.max_wait = std::clamp(notifier.watchdog() / 4, std::chrono::microseconds(1000), s.max_wait);
  }
  if (!config.metrics_listen.empty()) {
    auto listener = engine::HttpListener::open(
        config.metrics_listen, [this](std::string_view path) { return serve_http(path); });
    if (!listener.ok()) {
      Log::write(Level::kError, -1, cat("--metrics: ", listener.status().message()));
      return 2;
    }
    http = std::move(*listener);
    Log::write(Level::kInfo, -1, "metrics listening",
               {{"address", cat(config.metrics_listen.substr(0, config.metrics_listen.rfind(':')),
                                ":", http->port())},
                {"paths", "/metrics /healthz /shards"}});
  }
  if (!config.events.empty()) {
    std::string error;
    auto f = parse::EventFilter::parse(absl::StrJoin(config.events, ","), &error);
    if (!f) {
      Log::write(Level::kError, -1, cat("--events: ", error));
      return 2;
    }
    s.client.filter = *f;
  }
  s.tls.ca_file = config.ca_file;
  if (config.insecure) s.tls.verification = tls::Verification::kInsecure;
  if (std::string err = gateway::config_error(session); !err.empty()) {
    Log::write(Level::kError, -1, err);
    return 2;
  }

  const uint32_t nshards = last - first + 1;
  if (config.checkpoint_interval < kMinCheckpointInterval ||
      config.checkpoint_interval > kMaxCheckpointInterval) {
    Log::write(
        Level::kError, -1,
        cat("checkpoint interval must be ", kMinCheckpointInterval.count(), " to ",
            kMaxCheckpointInterval.count(), " ms, got ", config.checkpoint_interval.count()));
    return 2;
  }
  if (config.resume_max_age.count() < 0 || config.resume_max_age > kMaxResumeMaxAge) {
    Log::write(Level::kError, -1,
               cat("resume max age must be 0 to ", kMaxResumeMaxAge.count(), " s, got ",
                   config.resume_max_age.count()));
    return 2;
  }
  std::vector<engine::Restore> restore;
  if (keeper) {
    restore = keeper->plan({first, last, config.total_shards, config.intents, compression},
                           config.resume_max_age, UnixMs(), &restored);
  }
  // The daily budget of session starts: every shard without a session to
  // resume spends one (a refused resume spends one more later).
  if (bot) {
    const uint32_t to_identify = nshards - restored;
    const uint32_t reserve = config.start_reserve.value_or((bot->total * 5 + 99) / 100);
    uint32_t remaining = bot->remaining;
    bool refused = remaining < to_identify || remaining - to_identify < reserve;
    std::string where = "session_start_limit.remaining";
    // Several processes share the budget: reserve this start's identifies
    // there, so simultaneous starts cannot together go below the reserve.
    if (!refused && config.start_budget) {
      refused = !config.start_budget(bot->remaining, bot->reset_after_ms, to_identify, reserve,
                                     &remaining);
      where = "the shared start budget";
    }
    if (refused) {
      Log::write(
          Level::kError, -1,
          cat("not starting: ", to_identify, " shards must identify and ", where, " is ", remaining,
              " of ", bot->total, ", which would leave fewer than the reserve of ", reserve,
              " (--start-reserve); Discord resets it in ", bot->reset_after_ms / 1000,
              " s. Running out of starts gets the token reset."));
      return 3;
    }
  }
  // Core thread t is pinned to the t-th CPU this process may use.
  const std::vector<int> cpus = engine::allowed_cpus();
  unsigned threads = config.threads != 0 ? config.threads : static_cast<unsigned>(cpus.size());
  threads = std::min<unsigned>(threads, nshards);
  const unsigned nconsumers = config.consumers;  // 0: handlers inline
  s.consumers = nconsumers;
  // Signals go to this thread only: blocked before any thread starts (the
  // resolver's, made with Shared, included), else the kernel may hand a
  // SIGTERM to a thread that takes its default action.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  if (config.on_hangup) sigaddset(&sigs, SIGHUP);
  struct Mask {
    sigset_t old;
    bool on;
    Mask(const sigset_t& s, bool on) : on(on) {
      if (on) pthread_sigmask(SIG_BLOCK, &s, &old);
    }
    ~Mask() {
      if (on) pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    Mask(const Mask&) = delete;
    Mask& operator=(const Mask&) = delete;
  } mask(sigs, config.handle_signals);
  absl::StatusOr<std::unique_ptr<engine::IdentifyGate>> gate =
      absl::InvalidArgumentError("no identify gate");
  if (config.identify_gate_factory) {
    std::string error;
    auto made = config.identify_gate_factory(max_concurrency, config.identify_window, &error);
    if (made) {
      gate = std::move(made);
    } else {
      gate = absl::InvalidArgumentError(cat("--identify-gate: ", error));
    }
  } else {
    gate =
        engine::make_identify_gate(config.identify_gate, max_concurrency, config.identify_window);
  }
  if (!gate.ok()) {
    Log::write(Level::kError, -1, std::string(gate.status().message()));
    return 2;
  }
  shared = std::make_unique<engine::Shared>(std::move(s), std::move(*gate));
  shared->on_fatal = [this] { request_stop(); };
  shared->on_shard_change = config.on_shard_change;
  shared->first_shard = first;
  shared->restore = std::move(restore);
  shared->end_sessions.store(!keeper || config.stop_mode == StopMode::kEndSessions);
  shared->track_done = keeper != nullptr && !config.sink_progress;
  if (shared->track_done) shared->done.assign(nshards, Durable{});
  if (nconsumers == 0) {
    shared->deliver_inline = [this](const engine::ChannelEvent& e) { handle(e); };
    shared->idle_inline = [this] {
      if (idle) idle();
    };
  }
  shared->shards_here = nshards;
  for (unsigned c = 0; c < nconsumers; ++c) {
    shared->wakers.push_back(std::make_unique<engine::ConsumerWaker>());
    shared->flushed_gen.push_back(std::make_unique<std::atomic<uint64_t>>(0));
    consumer_latency.push_back(std::make_unique<engine::Histogram>());
    delivered.push_back(std::make_unique<std::atomic<uint64_t>>(0));
  }
  std::vector<std::vector<uint32_t>> assign(threads);
  shard_core.resize(nshards);
  for (uint32_t i = 0; i < nshards; ++i) {
    assign[i % threads].push_back(first + i);
    shard_core[i] = i % threads;
  }
  for (unsigned t = 0; t < threads; ++t) {
    shared->counters.push_back(std::make_unique<engine::CoreCounters>());
    std::vector<std::unique_ptr<engine::EventChannel>> row;
    for (unsigned c = 0; c < nconsumers; ++c)
      row.push_back(std::make_unique<engine::EventChannel>());
    shared->channels.push_back(std::move(row));
  }

  for (unsigned c = 0; c < nconsumers; ++c) consumers.emplace_back([this, c] { consumer_main(c); });
  const std::string shard_range = cat(first, "-", last);
  Log::write(Level::kInfo, -1, "starting",
             {{"gateway", shared->settings.gateway.to_string()},
              {"shards", shard_range},
              {"total_shards", config.total_shards},
              {"threads", threads},
              {"consumers", nconsumers},
              {"max_concurrency", max_concurrency},
              {"simd", parse::simd_kernel()}});
  int rc = 0;
  // Every CoreThread exists before any starts: send() from a handler may
  // look any of them up while the others are still starting.
  for (unsigned t = 0; t < threads; ++t) {
    cores.push_back(std::make_unique<engine::CoreThread>(t, *shared, assign[t]));
  }
  started_cores.store(true, std::memory_order_release);
  for (unsigned t = 0; t < threads; ++t) {
    if (absl::Status st = cores[t]->start(cpus[t % cpus.size()]); !st.ok()) {
      Log::write(Level::kError, -1, std::string(st.message()));
      rc = 1;
      break;
    }
  }

  if (rc == 0) control(sigs);
  const int mode = stop_mode.load();
  const StopMode how = mode >= 0 ? static_cast<StopMode>(mode) : config.stop_mode;
  shared->end_sessions.store(!keeper || how == StopMode::kEndSessions);
  shared->stopping.store(true, std::memory_order_release);
  for (auto& c : cores) c->wake();
  for (auto& c : cores) c->join();
  consumers_stop.store(true, std::memory_order_release);
  for (auto& w : shared->wakers) w->force_wake();
  for (auto& t : consumers) t.join();
  if (keeper && rc == 0) {
    // The core threads' last snapshots were taken after their shards
    // closed, and the consumers published everything they handled.
    if (shared->fatal_code.load() != 0) {
      keeper->clear(shared->bot_user_id.load(), UnixMs());
    } else {
      checkpoint();
    }
  }
  if (config.on_tick) config.on_tick(stats());
  if (rc != 0) return rc;
  if (shared->fatal_code.load() != 0) return 3;
  return failed.load() ? 4 : 0;
}

std::unique_ptr<engine::Histogram> Engine::Impl::heartbeat_lateness() const {
  auto late = std::make_unique<engine::Histogram>();
  if (shared) {
    for (const auto& c : shared->counters) late->merge_from(c->heartbeat_late);
  }
  return late;
}

Stats Engine::Impl::stats() const {
  Stats st;
  for (const auto& d : delivered) st.events += d->load(std::memory_order_relaxed);
  st.shards = shared ? last - first + 1 : 0;
  if (shared) {
    for (const auto& c : shared->counters) {
      st.events += c->delivered_inline.load(std::memory_order_relaxed);
      st.identifies += c->identifies.load(std::memory_order_relaxed);
      st.resumes += c->resumes.load(std::memory_order_relaxed);
      st.sessions_restored = restored;
      st.reconnects += c->reconnects.load(std::memory_order_relaxed);
      st.heartbeats += c->heartbeats.load(std::memory_order_relaxed);
      st.zombies += c->zombies.load(std::memory_order_relaxed);
      st.backpressure_ms += c->backpressure_ms.load(std::memory_order_relaxed);
      st.protocol_errors += c->protocol_errors.load(std::memory_order_relaxed);
      st.filtered += c->filtered.load(std::memory_order_relaxed);
      st.tls_handshakes += c->tls_handshakes.load(std::memory_order_relaxed);
      st.tls_resumed += c->tls_resumed.load(std::memory_order_relaxed);
      st.shards_connected += c->connected.load(std::memory_order_relaxed);
      st.shards_ready += c->ready.load(std::memory_order_relaxed);
    }
    st.heartbeat_lateness = Summarize(*heartbeat_lateness());
    st.shards_ever_ready = shared->ever_ready.load(std::memory_order_relaxed);
    const int64_t all_ready = shared->all_ready_ns.load(std::memory_order_acquire);
    if (all_ready != 0) {
      st.all_ready_s =
          static_cast<double>(all_ready - std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              started.time_since_epoch())
                                              .count()) /
          1e9;
    }
  }
  st.cpu_s = CpuSeconds();
  st.peak_rss_kib = PeakRssKib();
  st.elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();
  return st;
}

Engine::Engine(Config config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}
Engine::~Engine() = default;

void Engine::on_event(std::function<void(const Event&)> handler) {
  impl_->handler = std::move(handler);
}
void Engine::on_idle(std::function<void()> handler) {
  if (!handler) {
    impl_->idle = nullptr;
    return;
  }
  impl_->idle = [h = std::move(handler)] {
    h();
    return std::chrono::milliseconds(0);
  };
}

void Engine::on_idle_timed(std::function<std::chrono::milliseconds()> handler) {
  impl_->idle = std::move(handler);
}
int Engine::run() { return impl_->run(); }
void Engine::stop() { impl_->request_stop(); }
void Engine::stop(StopMode mode) {
  impl_->stop_mode.store(static_cast<int>(mode));
  impl_->request_stop();
}
void Engine::fail(std::string_view reason) { impl_->fail(reason); }

bool Engine::stopping() const noexcept { return impl_->stop_requested.load(); }

SendResult Engine::send(uint32_t shard, std::string payload) {
  if (!impl_->started_cores.load(std::memory_order_acquire)) {
    return {false, "the shards are not running"};
  }
  if (shard < impl_->first || shard > impl_->last) return {false, "not a shard of this process"};
  const engine::CommandOutcome c = impl_->commands.check(payload, Clock::now());
  if (!c.queued) return {false, c.reason};
  if (!impl_->cores[impl_->shard_core[shard - impl_->first]]->queue_send(shard,
                                                                         std::move(payload))) {
    return {false, "not a shard of this process"};
  }
  return {true, {}};
}

bool Engine::rewind(uint32_t shard, uint64_t seq, uint64_t session) {
  if (!impl_->started_cores.load(std::memory_order_acquire)) return false;
  if (shard < impl_->first || shard > impl_->last) return false;
  engine::Log::write(engine::Level::kWarn, shard, "the sink lost events: resuming from its seq",
                     {{"seq", seq}});
  return impl_->cores[impl_->shard_core[shard - impl_->first]]->queue_rewind(shard, seq, session);
}

SendResult Engine::update_presence(uint32_t shard, std::string_view presence_json) {
  return send(shard, cat("{\"op\":3,\"d\":", presence_json, "}"));
}

SendResult Engine::update_voice_state(uint32_t shard, uint64_t guild_id, uint64_t channel_id,
                                      bool self_mute, bool self_deaf) {
  return send(shard, cat("{\"op\":4,\"d\":{\"guild_id\":\"", guild_id, "\",\"channel_id\":",
                         channel_id == 0 ? std::string("null") : cat("\"", channel_id, "\""),
                         ",\"self_mute\":", self_mute ? "true" : "false",
                         ",\"self_deaf\":", self_deaf ? "true" : "false", "}}"));
}

SendResult Engine::request_guild_members(uint32_t shard, uint64_t guild_id, std::string_view query,
                                         uint32_t limit, bool presences, std::string_view nonce) {
  std::string p = cat("{\"op\":8,\"d\":{\"guild_id\":\"", guild_id, "\",\"query\":");
  base::append_json_string(p, query);
  p += cat(",\"limit\":", limit, ",\"presences\":", presences ? "true" : "false");
  if (!nonce.empty()) {
    p += ",\"nonce\":";
    base::append_json_string(p, nonce);
  }
  p += "}}";
  return send(shard, std::move(p));
}

Stats Engine::stats() const { return impl_->stats(); }

std::vector<ShardInfo> Engine::shards() const { return impl_->shard_infos(); }

std::vector<ShardInfo> Engine::Impl::shard_infos() const {
  std::vector<ShardInfo> out;
  if (!started_cores.load(std::memory_order_acquire)) return out;
  const int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  out.resize(last - first + 1);
  for (const auto& core : cores) {
    const std::vector<uint32_t>& ids = core->shard_ids();
    for (size_t i = 0; i < ids.size(); ++i) {
      const engine::StatusSlot& st = core->status(i);
      ShardInfo& info = out[ids[i] - first];
      info.shard = ids[i];
      info.state = static_cast<ShardState>(st.state.load(std::memory_order_relaxed));
      const int64_t since = st.state_since_ns.load(std::memory_order_relaxed);
      info.state_for_s = since == 0 ? 0 : static_cast<double>(now - since) / 1e9;
      const int32_t rtt = st.rtt_ms.load(std::memory_order_relaxed);
      info.heartbeat_rtt_s = rtt < 0 ? -1 : rtt / 1e3;
      info.last_seq = st.last_seq.load(std::memory_order_relaxed);
      const int64_t last = st.last_event_ns.load(std::memory_order_relaxed);
      info.since_last_event_s = last == 0 ? -1 : static_cast<double>(now - last) / 1e9;
      info.resumes = st.resumes.load(std::memory_order_relaxed);
      info.reconnects = st.reconnects.load(std::memory_order_relaxed);
    }
  }
  return out;
}

uint16_t Engine::fatal_code() const { return impl_->shared ? impl_->shared->fatal_code.load() : 0; }
std::string Engine::fatal_message() const {
  if (!impl_->shared) return {};
  std::lock_guard lock(impl_->shared->fatal_mu);
  return impl_->shared->fatal_message;
}

}  // namespace shardring
