#include "tools/run_cmd.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_format.h"
#include "engine/engine.h"
#include "engine/event_channel.h"
#include "engine/log.h"
#include "engine/per_thread.h"
#include "engine/sink.h"
#include "engine/text.h"
#include "tools/command_reader.h"
#include "tools/live.h"
#include "tools/options.h"
#include "tools/redis_handoff.h"

namespace shardring::tools {
namespace {

std::string SummaryJson(const Stats& s) {
  return absl::StrFormat(
      "\"events\":%d,\"filtered\":%d,\"shards\":%d,\"identifies\":%d,\"resumes\":%d,"
      "\"reconnects\":%d,\"zombies\":%d,\"protocol_errors\":%d,\"backpressure_ms\":%d,"
      "\"tls_handshakes\":%d,\"tls_resumed\":%d,\"cpu_s\":%.3f,"
      "\"peak_rss_kib\":%d,\"elapsed_s\":%.3f,\"events_per_s\":%.1f,\"sessions_restored\":%d",
      s.events, s.filtered, s.shards, s.identifies, s.resumes, s.reconnects, s.zombies,
      s.protocol_errors, s.backpressure_ms, s.tls_handshakes, s.tls_resumed, s.cpu_s,
      s.peak_rss_kib, s.elapsed_s,
      s.elapsed_s > 0 ? static_cast<double>(s.events) / s.elapsed_s : 0.0, s.sessions_restored);
}

}  // namespace

int run_main(std::span<const std::string_view> args) {
  bool help = false;
  std::string usage;
  auto opts = parse_run_options(args, std::getenv("DISCORD_TOKEN"), &help, &usage,
                                std::getenv("CREDENTIALS_DIRECTORY"));
  if (help) {
    std::cout << "usage: shardring run [flags]\n\nConnects shards to a Discord gateway and "
                 "writes every dispatch event to a sink.\n\n"
              << usage;
    return 0;
  }
  if (!opts.ok()) {
    std::cerr << "shardring run: " << opts.status().message() << "\n";
    return 2;
  }
  RunOptions o = std::move(*opts);
  // A closed stdout pipe (`shardring run | head`) is an ordinary write
  // error (EPIPE): the sink fails, the run stops with its summary, exit 4.
  signal(SIGPIPE, SIG_IGN);
  // A live view on a terminal keeps the screen for itself: per-shard info
  // lines (identifying, ready...) are left out there, warnings stay.
  const bool live_tty = o.live && isatty(2) && o.log_format == LogFormat::kText;
  engine::Log::configure(
      o.log_format == LogFormat::kJson ? engine::Log::Format::kJson : engine::Log::Format::kText,
      live_tty ? std::max(static_cast<engine::Level>(o.log_level), engine::Level::kWarn)
               : static_cast<engine::Level>(o.log_level));
  engine::Log::set_secret(o.token);
  if (o.standby) {
    // Nothing runs until another process's shards are free to take over.
    auto taken = RedisHandOff::wait_for_orphans(o);
    if (!taken.ok()) {
      std::cerr << "shardring run: --standby: " << taken.status().message() << "\n";
      return 1;
    }
    if (!*taken) return 0;  // stopped while waiting
    o.shard_ids = **taken;
  }

  Config cfg;
  cfg.token = o.token;
  cfg.api = o.api;
  if (o.gateway) cfg.gateway_url = o.gateway->to_string();
  if (o.total_shards) cfg.total_shards = static_cast<uint32_t>(*o.total_shards);
  if (o.shard_ids) {
    cfg.first_shard = o.shard_ids->first;
    cfg.last_shard = o.shard_ids->second;
  }
  if (o.max_concurrency) cfg.max_concurrency = static_cast<uint32_t>(*o.max_concurrency);
  cfg.intents = static_cast<uint64_t>(o.intents);
  cfg.compress = o.compress;
  cfg.coalesce = std::chrono::microseconds(o.coalesce_us);
  cfg.uring_fallbacks = o.uring_fallbacks;
  cfg.validate_d = o.validate_d;
  cfg.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
  cfg.large_threshold = static_cast<uint16_t>(o.large_threshold);
  cfg.threads = static_cast<unsigned>(o.threads);
  cfg.consumers = static_cast<unsigned>(o.consumers);
  cfg.events = o.events;
  // With --state, a file sink keeps READY lines whatever --events says: a
  // READY starts a session of its shard in the file, which is how the next
  // start tells the saved session's lines from a newer one's (exactly once
  // across restarts).
  if (!cfg.events.empty() && o.state_path && o.sink == SinkKind::kNdjsonFile &&
      std::find(cfg.events.begin(), cfg.events.end(), "READY") == cfg.events.end()) {
    cfg.events.emplace_back("READY");
    engine::Log::write(engine::Level::kInfo, -1,
                       "--events: READY kept in the sink file (with --state it marks where each "
                       "session starts)");
  }
  cfg.ca_file = o.ca_file;
  cfg.insecure = o.insecure;
  cfg.identify_window = std::chrono::milliseconds(o.identify_window_ms);
  cfg.routing_keys = false;  // the CLI sinks do not use them
  if (o.duration_s) {
    cfg.duration = std::chrono::milliseconds(static_cast<int64_t>(*o.duration_s * 1000));
  }
  cfg.identify_gate = o.identify_gate;
  cfg.metrics_listen = o.metrics_listen;
  cfg.presence_json = o.presence;
  cfg.health_grace = std::chrono::seconds(o.health_grace_s);
  if (o.start_reserve) cfg.start_reserve = static_cast<uint32_t>(*o.start_reserve);
  cfg.checkpoint_interval = std::chrono::milliseconds(o.checkpoint_ms);
  cfg.resume_max_age = std::chrono::seconds(o.resume_max_age_s);
  cfg.stop_mode = o.logout ? StopMode::kEndSessions : StopMode::kKeepSessions;
  if (o.state_path) cfg.session_store = std::make_shared<FileSessionStore>(*o.state_path);

  // --redis: the identify gate, the session store, the stream sink.
  RedisHandOff redis(o);
  if (std::string error; !redis.configure(cfg, &error)) {
    std::cerr << "shardring run: " << error << "\n";
    return 2;
  }
  std::shared_ptr<engine::Output> out;
  if (o.sink != SinkKind::kNull && o.sink != SinkKind::kRedis) {
    auto opened = engine::Output::open(o.sink == SinkKind::kNdjsonFile ? o.sink_path : "-");
    if (!opened.ok()) {
      std::cerr << "shardring run: --sink: " << opened.status().message() << "\n";
      return 2;
    }
    out = *opened;
  }
  if (out && cfg.session_store) {
    // The sink says what is written (write(2) returned), with its file
    // offset; after a crash, replays the file already holds are skipped.
    cfg.sink_progress = [out](std::vector<Durable>& by_shard) { return out->progress(by_shard); };
    if (o.sink == SinkKind::kNdjsonFile) {
      SavedRun saved;
      std::string error;
      if (!cfg.session_store->load(&saved, &error)) {
        std::cerr << "shardring run: --state: " << error << "\n";
        return 2;
      }
      auto held = engine::find_written_replays(o.sink_path, saved);
      if (!held.ok()) {
        std::cerr << "shardring run: --sink: " << held.status().message() << "\n";
        return 2;
      }
      uint64_t shards_held = 0;
      for (const Durable& d : *held) shards_held += d.seq != 0;
      if (shards_held > 0) {
        engine::Log::write(engine::Level::kInfo, -1,
                           "sink file already holds events after the checkpoint: replays of "
                           "them are not written again",
                           {{"sink", out->name()}, {"shards", shards_held}});
      }
      out->set_skip(std::move(*held));
    }
  }
  // One writer per consumer thread, made on first use.
  engine::PerThread<engine::NdjsonWriter> writers(
      [&out] { return std::make_unique<engine::NdjsonWriter>(out); });

  LiveView live(isatty(2));
  if (o.live) {
    cfg.on_tick = [&](const Stats& s) {
      if (o.log_format == LogFormat::kJson) {
        engine::Log::raw(
            cat("{\"msg\":\"live\",", SummaryJson(s), ",\"shards_ready\":", s.shards_ready, "}"));
      } else {
        live.print(s);
      }
    };
  }

  // SIGHUP reopens the sink file (log rotation). The writers carry it out
  // before their next write: nothing is lost or written twice.
  if (o.sink == SinkKind::kNdjsonFile) cfg.on_hangup = [&out] { out->request_reopen(); };

  Engine eng(std::move(cfg));
  redis.attach(eng);
  if (out) {
    // A failed write stops the run: shards close as on SIGTERM, the summary
    // is printed, exit 4. The Output reports its failure once; fail() logs it.
    out->on_failure([&eng](const std::string& reason) { eng.fail(reason); });
    eng.on_event([&](const Event& e) { writers.mine().append(engine::ToChannelEvent(e)); });
    eng.on_idle([&] {
      if (engine::NdjsonWriter* w = writers.existing()) w->flush();
    });
  }
  // --commands: read on a thread of its own while the engine runs (sends
  // before the shards start are refused and logged).
  std::unique_ptr<CommandReader> commands;
  if (!o.commands.empty()) {
    commands = std::make_unique<CommandReader>(eng, o.commands);
    std::string error;
    if (!commands->start(&error)) {
      std::cerr << "shardring run: " << error << "\n";
      return 2;
    }
  }
  redis.start();
  int rc = eng.run();
  if (commands) commands->stop();
  live.finish();
  writers.for_each([](engine::NdjsonWriter& w) { w.flush(); });
  // The last flush may fail too (fail() logs it; run() has returned).
  if (rc == 0 && out && out->failed()) rc = 4;
  Stats s = eng.stats();
  rc = redis.finish(rc, &s);
  // `events` is what the sink holds: after a failure, the lines written
  // whole (events delivered after it were dropped). Equal to the engine's
  // count otherwise.
  if (out) s.events = out->lines();
  if (o.log_format == LogFormat::kJson) {
    engine::Log::raw(cat("{\"msg\":\"summary\",", SummaryJson(s), "}"));
  } else {
    engine::Log::raw(cat("summary {", SummaryJson(s), "}"));
  }
  // A fatal close or a sink failure was logged when it happened; the
  // summary stays the last line (docs/interface.md).
  return rc;
}

}  // namespace shardring::tools
