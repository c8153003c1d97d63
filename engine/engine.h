// engine/engine.h: the one header a C++ bot includes to run its gateway
// shards with shardring. Nothing else of the library needs to be included.
//
//   shardring::Config config;
//   config.token = getenv("DISCORD_TOKEN");
//   shardring::Engine engine(std::move(config));
//   engine.on_event([](const shardring::Event& e) { ... });  // consumer threads
//   return engine.run();   // blocks until stop(), a signal, or a fatal close
//
// Threads: run() starts `threads` core threads (one io_uring each, pinned)
// and `consumers` consumer threads; handlers run on the consumer threads,
// every event of one shard on the same consumer, in seq order. With
// consumers = 0 handlers run on the core threads themselves (inline: no
// hand-off, no copy of d), each shard's events on its core thread in seq
// order. stop(), fail() and send() may be called from any thread, handlers
// included.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session_store.h"
#include "gateway/payloads.h"
#include "parse/compression.h"

namespace shardring {

namespace engine {
class IdentifyGate;  // engine/identify_gate.h
}

// Transport compression (the gateway URL's compress=).
using Compression = parse::Compression;

// The longest Config::coalesce accepted.
inline constexpr std::chrono::microseconds kMaxCoalesce{10'000};
// Config::connect_timeout: the default and the bounds.
inline constexpr std::chrono::milliseconds kConnectTimeout{15'000};
inline constexpr std::chrono::milliseconds kMinConnectTimeout{100};
inline constexpr std::chrono::milliseconds kMaxConnectTimeout{600'000};

// Where a shard stands (Engine::shards(), /shards, /healthz). The numbers
// are the value of the shardring_shard_state metric: dashboards and alerts
// compare against them, so they never change meaning; new states take new
// numbers.
enum class ShardState : uint8_t {
  kIdle = 0,         // no connection: first dial pending, backoff, resolving, TCP connect
  kConnecting = 1,   // TLS, WebSocket upgrade, waiting for HELLO
  kIdentifying = 2,  // IDENTIFY sent, waiting for READY
  kResuming = 3,     // RESUME sent, waiting for RESUMED
  kReady = 4,        // READY or RESUMED on a live connection: events flow
  kClosing = 5,      // our close frame is out, or the socket winding down
  // HELLO done, waiting for the identify gate: its turn in an identify
  // storm, not a fault.
  kAwaitingIdentify = 6,
  kStopped = 7,  // no more connections (a stop or a fatal close)
};
inline constexpr uint8_t kShardStateCount = 8;
// "idle", "connecting", "identifying", "resuming", "ready", "closing",
// "awaiting_identify", "stopped".
std::string_view to_string(ShardState s) noexcept;

// One shard, as Engine::shards() sees it (values a few microseconds old).
struct ShardInfo {
  uint32_t shard = 0;
  ShardState state = ShardState::kIdle;
  double state_for_s = 0;          // seconds in this state
  double heartbeat_rtt_s = -1;     // last heartbeat to its ACK; -1: none yet
  uint64_t last_seq = 0;           // of the last event delivered
  double since_last_event_s = -1;  // -1: no event yet
  uint64_t resumes = 0;            // RESUMEs sent, in this run
  uint64_t reconnects = 0;
};

// What happened to a shard (Config::on_shard_change).
struct ShardChange {
  enum class Kind : uint8_t { kReady, kResumed, kClosed, kZombie } kind;
  uint32_t shard;
  uint16_t close_code;  // kClosed: the gateway's close code (1006: no close frame)
};

// Config::checkpoint_interval: the default and the bounds.
inline constexpr std::chrono::milliseconds kCheckpointInterval{1000};
inline constexpr std::chrono::milliseconds kMinCheckpointInterval{10};
inline constexpr std::chrono::milliseconds kMaxCheckpointInterval{3'600'000};
// Config::resume_max_age: the default (Discord keeps a disconnected session
// resumable for a few minutes) and the bound.
inline constexpr std::chrono::seconds kResumeMaxAge{300};
inline constexpr std::chrono::seconds kMaxResumeMaxAge{86'400};

// How a clean stop ends the shards' connections.
enum class StopMode : uint8_t {
  // With a session store: close with 4000 (a code Discord does not take as
  // the end of the session, unlike 1000 and 1001) and save each session, so
  // the next run RESUMEs. Without one: as kEndSessions.
  kKeepSessions,
  // Close with 1000: Discord ends every session (the next run identifies).
  kEndSessions,
};

struct Config {
  std::string token;  // never logged; scrubbed from every log line
  // "wss://gateway.discord.gg" (or ws:// on loopback). Empty: ask
  // GET {api}/gateway/bot.
  std::string gateway_url;
  std::string api = "https://discord.com/api/v10";
  uint32_t total_shards = 0;                        // 0: /gateway/bot's "shards"
  std::optional<uint32_t> first_shard, last_shard;  // inclusive; all by default
  uint32_t max_concurrency = 0;                     // 0: /gateway/bot's, else 1
  uint64_t intents = gateway::kDefaultIntents;
  Compression compress = Compression::kNone;
  // Wake-up batching. After a loop pass that handled a few completions (a
  // busy one handles many and never waits), a core thread lets more gather
  // this long before it waits again: at a real bot's pace one wake-up of the
  // core and of the consumer then serves many events, not one each. Adds at
  // most this much delivery latency; heartbeats and other timers keep their
  // time. 0: off. At most kMaxCoalesce.
  std::chrono::microseconds coalesce{1000};
  // io_uring set-up features to do without even where the kernel has them
  // ("single_issuer,defer_taskrun,coop_taskrun,registered_fd" or "all"; a
  // missing one falls back on its own): for measuring what each brings and
  // testing each fallback path. Empty: the best the kernel has.
  std::string uring_fallbacks;
  // TCP connect, TLS handshake and WebSocket upgrade together must finish
  // within this, else the attempt is dropped, logged and retried with
  // backoff (a gateway that accepts and never answers).
  std::chrono::milliseconds connect_timeout = kConnectTimeout;
  uint16_t large_threshold = gateway::kDefaultLargeThreshold;
  std::string presence_json;  // IDENTIFY "presence", optional
  unsigned threads = 0;       // 0: online cores
  // Consumer threads running the handlers. 0: handlers run inline on the
  // core threads, saving the copy of d and the hand-off (about a sixth of
  // the engine's CPU per event at full speed); a handler then holds up its
  // core's other shards while it runs (no backpressure: a slow handler slows
  // reading) and, with threads > 1, is called from several threads at once.
  unsigned consumers = 1;
  // Dispatch types to deliver (MESSAGE_CREATE, ...); empty: all. Others are
  // dropped after reading only `t` (their seq still counts for heartbeats).
  std::vector<std::string> events;
  bool routing_keys = true;  // fill Event::guild_id/channel_id
  // What is checked of a dispatch's d before it is delivered. false: d's
  // extent, its top level (`{"k":v,...}` / `[v,...]`), UTF-8 and strings
  // (no raw control characters); what lies deeper is handed on as received
  // for the bot's own JSON parser to read (the fast path). true: all of d is
  // validated as JSON first, about 2x the parsing cost; a d that fails either
  // check closes the connection with 1007 and the shard resumes.
  bool validate_d = false;
  std::string ca_file;                              // extra PEM roots for wss://
  bool insecure = false;                            // skip certificate checks
  std::chrono::milliseconds identify_window{5000};  // Discord: 5 s per bucket
  // Where the shards of this process ask before they IDENTIFY: "local"
  // (this process) or "file:DIR" (every process of the machine using DIR
  // shares the buckets: run slices of one bot with first_shard/last_shard).
  std::string identify_gate = "local";
  // Builds the identify gate instead (`--identify-gate redis`: the CLI's
  // engine/identify_gate_redis.h), given the bucket count and the window;
  // null with *error set when it cannot. Unset: identify_gate above.
  std::function<std::unique_ptr<engine::IdentifyGate>(
      uint32_t max_concurrency, std::chrono::milliseconds window, std::string* error)>
      identify_gate_factory;
  // The daily session starts (/gateway/bot's session_start_limit) to keep
  // unspent: run() refuses to start (returns 3) when identifying every shard
  // without a saved session would leave fewer. Unset: 5% of the total. Not
  // checked when /gateway/bot is not asked (gateway_url and total_shards
  // given).
  std::optional<uint32_t> start_reserve;
  // Where several processes share the daily budget (`--identify-gate
  // redis`: P:budget): given Discord's session_start_limit (remaining,
  // reset_after_ms), the IDENTIFYs this start needs and the reserve,
  // reserve them in the shared budget. Returns the starts left there
  // before this reservation, and false (with nothing reserved) when they
  // would go below the reserve: run() then refuses to start (3). Unset:
  // Discord's own count is checked alone.
  std::function<bool(uint32_t remaining, int64_t reset_after_ms, uint32_t to_identify,
                     uint32_t reserve, uint32_t* shared_remaining)>
      start_budget;
  // When false, run() does not install SIGINT/SIGTERM handlers.
  bool handle_signals = true;
  // With handle_signals: when set, SIGHUP is taken too and calls this on
  // run()'s thread (log rotation: a sink reopens its file; see
  // Output::request_reopen in engine/sink.h). When empty, SIGHUP keeps its
  // default action.
  std::function<void()> on_hangup;
  std::optional<std::chrono::milliseconds> duration;  // stop after this long
  // Where sessions are kept between runs (docs/interface.md "--state").
  // Null: none; a clean stop then closes with 1000.
  std::shared_ptr<SessionStore> session_store;
  // With a store: how often it is checkpointed while running (and on every
  // clean stop). After a crash at most this much is replayed.
  std::chrono::milliseconds checkpoint_interval = kCheckpointInterval;
  // A saved session older than this identifies instead of resuming.
  std::chrono::seconds resume_max_age = kResumeMaxAge;
  // How stop(), a signal and `duration` end the shards (stop(mode) can
  // choose per call). --logout: kEndSessions.
  StopMode stop_mode = StopMode::kKeepSessions;
  // What counts as done for a checkpoint. Unset: an event is done once its
  // handler returned and, when on_idle is set, on_idle returned after it (a
  // sink that buffers writes there). Set: the sink says itself. Called on
  // run()'s thread at each checkpoint: fill `by_shard[shard id]` (resize as
  // needed) with the last event of each shard it made durable, and return
  // the sink's own position to keep in the store (SavedRun::sink).
  std::function<std::string(std::vector<Durable>& by_shard)> sink_progress;
  // "HOST:PORT" (an IP literal; port 0: any free one, logged): serve
  // /metrics (Prometheus), /healthz and /shards over HTTP from run()'s
  // thread. Empty: off.
  std::string metrics_listen;
  // Appends more Prometheus families to /metrics (the text exposition
  // format, each with its # HELP and # TYPE lines), on run()'s thread.
  std::function<void(std::string& out)> metrics_extra;
  // /healthz: a shard not ready (and not waiting its turn to identify) for
  // longer than this makes the process unhealthy (503).
  std::chrono::seconds health_grace{30};
  // The bot's own logging: each log line (scrubbed of the token, without
  // its newline; text or JSON as configured) with its level (0 debug, 1
  // info, 2 warn, 3 error) and shard (-1: none), instead of stderr. Called
  // on the thread that logs (core threads included): keep it quick. Unset:
  // stderr, written by a thread of its own so no core thread waits on it.
  std::function<void(int level, int64_t shard, std::string_view line)> on_log;
  // Called about once a second on a background thread (live views).
  std::function<void(const struct Stats&)> on_tick;
  // Called on the shard's core thread when it becomes ready (READY),
  // resumes (RESUMED), its connection closes (with the code) or it goes
  // zombie (no heartbeat ACK). Must be quick: the core thread's other shards
  // wait meanwhile.
  std::function<void(const ShardChange&)> on_shard_change;
};

// One dispatch event. The views are valid only during the handler call.
struct Event {
  uint32_t shard;
  uint64_t seq;
  std::string_view type;  // "MESSAGE_CREATE"
  uint16_t type_id;       // parse::EventType value, for switch statements
  std::string_view d;     // the event's `d`, byte for byte as received
  uint64_t guild_id;      // from d.guild_id; 0 when absent
  uint64_t channel_id;    // from d.channel_id; 0 when absent
  int64_t received_ns;    // steady-clock time the frame was read
  // Steady-clock time the gateway sent it, from the envelope key "_ts_ns"
  // that `shardring gateway` adds (same host, same clock: delivery latency
  // in load tests). Discord sends no such key: 0.
  int64_t sent_ns;
  // The Discord session the event belongs to, as a 64-bit digest of its
  // session id: with `seq` it names the event across resumes and restarts,
  // so a consumer can drop the repeats a crash replays (at most
  // Config::checkpoint_interval of them).
  uint64_t session;
};

// The answer to a command (Engine::send and the typed helpers).
struct SendResult {
  bool queued = false;
  std::string_view reason;  // why it was refused (static text); empty when queued
  explicit operator bool() const noexcept { return queued; }
};

// Percentiles of a latency distribution (within 3.1 % above the true value).
struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct Stats {
  uint64_t events = 0;        // delivered to handlers
  uint64_t filtered = 0;      // dispatches --events dropped (their seqs counted)
  uint32_t shards = 0;        // run by this process
  uint32_t shards_ready = 0;  // READY or RESUMED on a live connection
  uint32_t shards_connected = 0;
  uint32_t shards_ever_ready = 0;  // READY at least once since run()
  uint64_t identifies = 0;
  uint64_t resumes = 0;
  uint64_t sessions_restored = 0;  // saved sessions taken up at start (RESUME)
  uint64_t reconnects = 0;
  uint64_t heartbeats = 0;
  uint64_t zombies = 0;
  uint64_t replays_skipped = 0;  // replayed seqs not delivered twice
  uint64_t backpressure_ms = 0;  // time shards spent paused on a full ring
  uint64_t protocol_errors = 0;  // connections closed for hostile input
  uint64_t tls_handshakes = 0;   // completed (wss://)
  uint64_t tls_resumed = 0;      // of those, resumed from a session ticket
  double cpu_s = 0;
  uint64_t peak_rss_kib = 0;
  double elapsed_s = 0;
  // Seconds from run() until every shard of this process had been READY
  // once: the identify storm (0 until then).
  double all_ready_s = 0;
  // Heartbeats sent on their timer: from the deadline to the frame queued
  // for the socket. A core thread that falls behind shows here first.
  LatencySummary heartbeat_lateness;
  // The same, of the heartbeats since the previous tick: set in the Stats
  // given to Config::on_tick only.
  LatencySummary heartbeat_lateness_last_s;
};

class Engine {
 public:
  explicit Engine(Config config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs on consumer threads (core threads with consumers = 0); set before
  // run().
  void on_event(std::function<void(const Event&)> handler);
  // Consumer threads call this when they run dry (a sink flushes here); with
  // consumers = 0 a core thread calls it after a loop pass that delivered.
  void on_idle(std::function<void()> handler);
  // As on_idle, for a sink that may hold events it could not write yet (it
  // buffers through a Redis outage): the handler returns how soon a consumer
  // thread calls it again when no event comes; zero: not before one does.
  // Core threads (consumers = 0) ignore it.
  void on_idle_timed(std::function<std::chrono::milliseconds()> handler);

  // Blocks until stop(), fail(), SIGINT/SIGTERM, `duration`, or a fatal
  // close. Returns 0 on a clean stop, 2 for bad configuration, 3 when the
  // gateway refused the bot for good (4004, 4010-4014, REST 401), 4 after
  // fail() (unless 3), 1 for other start-up failures. The reason is logged.
  int run();
  // Any thread. Shards close (with Config::stop_mode, or `mode`) and run()
  // returns within ~2 s.
  void stop();
  void stop(StopMode mode);
  // Any thread, handlers included: the sink failed for good (disk full, a
  // closed pipe), so events can no longer be kept. Logs `reason` once (the
  // first call's; later calls only stop), stops as stop() does, and run()
  // returns 4. Never blocks. Handlers still called until the shards have
  // closed should drop their events.
  void fail(std::string_view reason);
  // Any thread: true once the engine is stopping (stop(), fail(), a signal,
  // `duration`): a sink waiting on a server bounds its retries then.
  bool stopping() const noexcept;
  // Any thread: queues a gateway payload ({"op":N,"d":...}) for `shard`,
  // sent in order behind the 120/60 s limit. Checked first (engine/
  // commands.h): a JSON object of at most 4096 bytes; op 3 (presence), 4
  // (voice state), 8 (request guild members) or 31 (soundboard sounds),
  // never 1, 2 or 6; an op 8 for all of a guild's members at most once per
  // guild per 30 s. Refused, with the reason, when a check fails, the
  // shard is not run here, or run() has not started the shards.
  SendResult send(uint32_t shard, std::string payload);
  // The typed commands, checked and queued as send() does.
  // Op 3: `presence_json` is its d ({"since":null,"activities":[...],
  // "status":"online","afk":false}).
  SendResult update_presence(uint32_t shard, std::string_view presence_json);
  // Op 4: join `channel_id` of `guild_id` (0: leave voice).
  SendResult update_voice_state(uint32_t shard, uint64_t guild_id, uint64_t channel_id,
                                bool self_mute, bool self_deaf);
  // Op 8 by query: members whose name starts with `query` ("" with limit 0:
  // all of them, which needs the GUILD_MEMBERS intent), answered with
  // GUILD_MEMBERS_CHUNK dispatches carrying `nonce`.
  SendResult request_guild_members(uint32_t shard, uint64_t guild_id, std::string_view query,
                                   uint32_t limit, bool presences = false,
                                   std::string_view nonce = {});

  // Any thread: the sink lost what it had written of `shard` past `seq` of
  // the session `session` (Event::session), e.g. a Redis that came back
  // from an older snapshot. The shard RESUMEs from `seq` (its connection
  // closes with 4000), the gateway replays what follows, and those events
  // are delivered again. False when the shard is not run here or the
  // shards are not running; nothing happens when the shard's session is
  // another one by now (the lost events cannot be replayed).
  bool rewind(uint32_t shard, uint64_t seq, uint64_t session);

  Stats stats() const;
  // Any thread, while run() runs (empty before): every shard of this
  // process, by shard id.
  std::vector<ShardInfo> shards() const;
  // The close code of a fatal close (0 when none) and its explanation.
  uint16_t fatal_code() const;
  std::string fatal_message() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardring
