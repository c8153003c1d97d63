// tools/example/example_bot.cc: a bot that embeds the engine through its one
// public header. It counts events per type, answers READY with a presence
// update (op 3) through Engine::send, and prints a table every few seconds.
//
//   DISCORD_TOKEN=... shardring-example-bot            # real Discord
//   shardring-example-bot ws://127.0.0.1:8080 4        # a local gateway, 4 shards
//   shardring-example-bot ws://127.0.0.1:8080 4 30     # ... and stop after 30 s
//
// Against an installed shardring (docs/interface.md "Build layout"), either
//   find_package(shardring) + target_link_libraries(bot PRIVATE shardring::engine)
// or
//   c++ -std=c++20 example_bot.cc $(pkg-config --cflags --libs shardring)
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "engine/engine.h"

int main(int argc, char** argv) {
  shardring::Config config;
  if (const char* token = std::getenv("DISCORD_TOKEN")) config.token = token;
  if (argc > 1) config.gateway_url = argv[1];
  if (argc > 2) config.total_shards = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10));
  if (argc > 3) config.duration = std::chrono::milliseconds(std::atoll(argv[3]) * 1000);
  config.consumers = 2;

  std::mutex mu;
  std::map<std::string, uint64_t> by_type;  // consumer threads write, tick reads
  shardring::Engine* engine_ptr = nullptr;

  config.on_tick = [&](const shardring::Stats& s) {
    if (static_cast<uint64_t>(s.elapsed_s) % 5 != 0) return;
    std::lock_guard lock(mu);
    std::fprintf(stderr, "after %.0f s: %llu events, %u/%u shards ready\n", s.elapsed_s,
                 static_cast<unsigned long long>(s.events), s.shards_ready, s.shards);
    for (const auto& [type, n] : by_type) {
      std::fprintf(stderr, "  %-28s %llu\n", type.c_str(), static_cast<unsigned long long>(n));
    }
  };

  shardring::Engine engine(std::move(config));
  engine_ptr = &engine;
  engine.on_event([&](const shardring::Event& e) {
    {
      std::lock_guard lock(mu);
      ++by_type[std::string(e.type)];
    }
    if (e.type == "READY") {
      engine_ptr->send(e.shard,
                       R"({"op":3,"d":{"since":null,"activities":[{"name":"shardring","type":0}],)"
                       R"("status":"online","afk":false}})");
    }
  });
  return engine.run();
}
