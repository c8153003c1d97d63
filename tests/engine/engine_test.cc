// The public Engine API against a real `shardring gateway` process on
// loopback: ordering and exactly-once delivery through the consumer
// threads, backpressure from a slow handler, user sends.
#include "engine/engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

extern char** environ;

namespace shardring {
namespace {

class GatewayProcess {
 public:
  explicit GatewayProcess(std::vector<std::string> flags) {
    const char* dir = std::getenv("SHARDRING_BIN_DIR");
    const std::string bin = std::string(dir ? dir : "build/bin") + "/shardring";
    log_ = ::testing::TempDir() + "gateway-" + std::to_string(::getpid()) + ".log";
    std::vector<std::string> args = {bin, "gateway", "--listen", "127.0.0.1:0", "--threads", "1"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    const std::regex re("listening on 127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 500 && pid_ > 0 && port_ == 0; ++i) {
      std::ifstream in(log_);
      std::stringstream ss;
      ss << in.rdbuf();
      std::smatch m;
      const std::string text = ss.str();
      if (std::regex_search(text, m, re))
        port_ = std::stoi(m[1]);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~GatewayProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGINT);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  int port() const { return port_; }
  // Everything the gateway logged so far.
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_;
};

TEST(Engine, ASlowHandlerGetsEveryEventInOrderThroughBackpressure) {
  constexpr int kEventsPerShard = 3000;
  constexpr uint64_t kLastSeq = kEventsPerShard + 2;  // READY, one GUILD_CREATE
  GatewayProcess gw({"--shards", "2", "--rate", "0", "--events", std::to_string(kEventsPerShard),
                     "--guilds-per-shard", "1", "--max-concurrency", "2"});
  ASSERT_GT(gw.port(), 0);
  Config cfg;
  cfg.gateway_url = "ws://127.0.0.1:" + std::to_string(gw.port());
  cfg.total_shards = 2;
  cfg.max_concurrency = 2;
  cfg.threads = 1;
  cfg.consumers = 1;
  cfg.handle_signals = false;
  cfg.duration = std::chrono::seconds(60);  // a bound; the handler stops it sooner
  Engine engine(cfg);
  std::map<uint32_t, uint64_t> last;
  std::atomic<uint64_t> done{0};
  bool in_order = true;
  engine.on_event([&](const Event& e) {
    in_order &= e.seq == last[e.shard] + 1;
    last[e.shard] = e.seq;
    if (e.seq < 1500) {  // slow at first: the channel fills and reads pause
      std::this_thread::sleep_for(std::chrono::microseconds(150));
    }
    if (e.seq == kLastSeq && ++done == 2) engine.stop();
  });
  EXPECT_EQ(engine.run(), 0);
  const Stats s = engine.stats();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(last[0], kLastSeq);
  EXPECT_EQ(last[1], kLastSeq);
  EXPECT_EQ(s.events, 2 * kLastSeq);
  EXPECT_GT(s.backpressure_ms, 0u) << "the slow handler never filled the channel";
  EXPECT_EQ(s.zombies, 0u);
}

// consumers = 0: handlers run on the core threads. Every event arrives
// once, in seq order per shard, on the core thread that owns its shard (one
// thread per shard, never a consumer thread); on_idle is called from there
// too, and sends from the handler still work.
TEST(Engine, InlineHandlersGetEveryEventOnceInOrderOnTheShardsCoreThread) {
  constexpr int kShards = 4;
  constexpr int kEventsPerShard = 2000;
  constexpr uint64_t kLastSeq = kEventsPerShard + 2;  // READY, one GUILD_CREATE
  GatewayProcess gw({"--shards", std::to_string(kShards), "--rate", "0", "--events",
                     std::to_string(kEventsPerShard), "--guilds-per-shard", "1",
                     "--max-concurrency", std::to_string(kShards)});
  ASSERT_GT(gw.port(), 0);
  Config cfg;
  cfg.gateway_url = "ws://127.0.0.1:" + std::to_string(gw.port());
  cfg.total_shards = kShards;
  cfg.max_concurrency = kShards;
  cfg.threads = 2;
  cfg.consumers = 0;
  cfg.handle_signals = false;
  cfg.duration = std::chrono::seconds(60);  // a bound; the handler stops it sooner
  Engine engine(cfg);
  std::mutex mu;  // two core threads call the handler
  std::map<uint32_t, uint64_t> last;
  std::map<uint32_t, std::set<std::string>> threads_of;
  std::set<std::string> idle_threads;
  bool in_order = true;
  int done = 0;
  std::atomic<bool> sent{false};
  auto thread_name = [] {
    char name[32] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    return std::string(name);
  };
  engine.on_event([&](const Event& e) {
    if (e.type == "READY" && e.shard == 0) {
      sent =
          engine
              .send(0, R"({"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}})")
              .queued;
    }
    std::lock_guard lock(mu);
    in_order &= e.seq == last[e.shard] + 1;
    last[e.shard] = e.seq;
    threads_of[e.shard].insert(thread_name());
    if (e.seq == kLastSeq && ++done == kShards) engine.stop();
  });
  engine.on_idle([&] {
    std::lock_guard lock(mu);
    idle_threads.insert(thread_name());
  });
  EXPECT_EQ(engine.run(), 0);
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(sent);
  std::set<std::string> all;
  for (uint32_t shard = 0; shard < kShards; ++shard) {
    EXPECT_EQ(last[shard], kLastSeq) << shard;
    ASSERT_EQ(threads_of[shard].size(), 1u) << shard;
    EXPECT_EQ(threads_of[shard].begin()->rfind("shardring-io", 0), 0u)
        << *threads_of[shard].begin();
    all.insert(*threads_of[shard].begin());
  }
  EXPECT_EQ(all.size(), 2u);  // both core threads ran handlers
  EXPECT_EQ(idle_threads, all);
  const Stats s = engine.stats();
  EXPECT_EQ(s.events, kShards * kLastSeq);
  EXPECT_EQ(s.reconnects, 0u);
}

TEST(Engine, SendReachesTheGatewayAndOversizePayloadsAreRefused) {
  GatewayProcess gw({"--shards", "1", "--rate", "20"});
  ASSERT_GT(gw.port(), 0);
  Config cfg;
  cfg.gateway_url = "ws://127.0.0.1:" + std::to_string(gw.port());
  cfg.total_shards = 1;
  cfg.threads = 1;
  cfg.handle_signals = false;
  cfg.duration = std::chrono::seconds(20);
  Engine engine(cfg);
  std::atomic<bool> sent{false};
  std::atomic<int> after{0};
  engine.on_event([&](const Event& e) {
    if (e.type == "READY") {
      EXPECT_FALSE(engine.send(0, std::string(5000, 'x')));  // over 4096 bytes
      EXPECT_FALSE(engine.send(7, "{}"));                    // not our shard
      sent =
          engine
              .send(0, R"({"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}})")
              .queued;
    } else if (sent && ++after == 30) {
      engine.stop();  // the connection outlived the presence update
    }
  });
  EXPECT_EQ(engine.run(), 0);
  EXPECT_TRUE(sent);
  EXPECT_GE(after.load(), 30);
  EXPECT_EQ(engine.stats().reconnects, 0u);
  // The gateway received the presence update as sent (its d, escaped in
  // its log line), and nothing of the refused ones.
  const std::string log = gw.log();
  EXPECT_NE(
      log.find(
          R"(received op 3 {\"since\":null,\"activities\":[],\"status\":\"idle\",\"afk\":false})"),
      std::string::npos)
      << log;
  EXPECT_EQ(log.find("xxxxxxxx"), std::string::npos);
}

// A SessionStore of the bot's own (here: in memory), carried across runs.
class MemoryStore final : public SessionStore {
 public:
  bool load(SavedRun* out, std::string* /*error*/) override {
    std::lock_guard lock(mu_);
    *out = run_;
    return true;
  }
  bool save(const SavedRun& run, std::string* /*error*/) override {
    std::lock_guard lock(mu_);
    run_ = run;
    ++saves_;
    return true;
  }
  std::string name() const override { return "memory"; }
  SavedRun saved() {
    std::lock_guard lock(mu_);
    return run_;
  }

 private:
  std::mutex mu_;
  SavedRun run_;
  int saves_ = 0;
};

// Two runs with one store, handlers on consumer threads then inline: the
// second run RESUMEs every shard and no handler sees an event twice (an
// event is named by its session and seq); each shard's seqs run on without
// a gap. A stop that ends the sessions leaves nothing to resume.
TEST(Engine, AStoreCarriesEverySessionAcrossRunsAndNoEventIsHandledTwice) {
  constexpr uint32_t kShards = 4;
  GatewayProcess gw(
      {"--shards", "4", "--rate", "300", "--max-concurrency", "4", "--identify-window-ms", "10"});
  ASSERT_GT(gw.port(), 0);
  auto store = std::make_shared<MemoryStore>();
  std::mutex mu;
  std::set<std::tuple<uint32_t, uint64_t, uint64_t>> seen;
  std::map<uint32_t, std::vector<uint64_t>> seqs;
  bool twice = false;
  auto run = [&](unsigned consumers, std::optional<StopMode> how) {
    Config cfg;
    cfg.token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDe.engine-test";
    cfg.gateway_url = "ws://127.0.0.1:" + std::to_string(gw.port());
    cfg.total_shards = kShards;
    cfg.max_concurrency = kShards;
    cfg.identify_window = std::chrono::milliseconds(20);
    cfg.threads = 2;
    cfg.consumers = consumers;
    cfg.handle_signals = false;
    cfg.session_store = store;
    cfg.checkpoint_interval = std::chrono::milliseconds(100);
    cfg.duration = std::chrono::seconds(20);  // a bound
    Engine engine(cfg);
    std::atomic<uint64_t> handled{0};
    engine.on_event([&](const Event& e) {
      {
        std::lock_guard lock(mu);
        twice |= !seen.emplace(e.shard, e.session, e.seq).second;
        seqs[e.shard].push_back(e.seq);
      }
      if (++handled == 1500) how ? engine.stop(*how) : engine.stop();
    });
    EXPECT_EQ(engine.run(), 0);
    return engine.stats();
  };
  const Stats first = run(2, std::nullopt);
  EXPECT_EQ(first.identifies, kShards);
  SavedRun saved = store->saved();
  EXPECT_EQ(saved.bot_user_id, 123456789012345678u);
  ASSERT_EQ(saved.shards.size(), kShards);
  for (const SavedShard& s : saved.shards) {
    EXPECT_FALSE(s.session_id.empty());
    EXPECT_EQ(s.seq, seqs[s.shard].back()) << "a clean stop saves what was handled";
  }
  const Stats second = run(0, StopMode::kEndSessions);
  EXPECT_EQ(second.identifies, 0u);
  EXPECT_EQ(second.resumes, kShards);
  EXPECT_EQ(second.sessions_restored, kShards);
  EXPECT_FALSE(twice);
  for (auto& [shard, v] : seqs) {
    for (size_t i = 1; i < v.size(); ++i) ASSERT_EQ(v[i], v[i - 1] + 1) << "shard " << shard;
  }
  EXPECT_TRUE(store->saved().shards.empty()) << "ending the sessions leaves none to resume";
}

}  // namespace
}  // namespace shardring
