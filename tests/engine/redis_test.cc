// tests/engine/redis_test.cc: the Redis hand-off against a real
// redis-server on loopback: the link, the stream sink's exactly-once
// appends (E-seq IDs, resends, new sessions), fencing, outages and error
// replies, the session store and shard claims.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "engine/event_channel.h"
#include "engine/identify_gate_redis.h"
#include "engine/redis_commands.h"
#include "engine/redis_link.h"
#include "engine/redis_sink.h"
#include "engine/redis_store.h"
#include "engine/redis_trim.h"
#include "gateway/session_key.h"
#include "redis/scripts.h"
#include "tests/engine/redis_server.h"

namespace shardring::engine {
namespace {

using redis::Reply;
using testing::RedisServer;

TEST(RedisUrl, Parses) {
  auto u = parse_redis_url("redis://127.0.0.1:7001/3");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 7001);
  EXPECT_EQ(u->db, 3);
  EXPECT_EQ(u->to_string(), "redis://127.0.0.1:7001/3");
  u = parse_redis_url("redis://:s3cret@[::1]");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->password, "s3cret");
  EXPECT_EQ(u->to_string(), "redis://[::1]:6379/0");  // never the password
  u = parse_redis_url("redis://user:pw@cache.internal:6380");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->user, "user");
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h:x",
                          "redis://h/-1", "redis://h/db", "redis://[::1"}) {
    auto r = parse_redis_url(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().substr(0, 9), "--redis: ") << bad;
    }
  }
}

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveRedisServer()) GTEST_SKIP() << "redis-server not installed";
    server_ = std::make_unique<RedisServer>();
    ASSERT_TRUE(server_->ok()) << "redis-server did not start";
    link_ = std::make_unique<RedisLink>(server_->url());
  }
  Reply Call(std::initializer_list<std::string_view> args) {
    Reply r;
    std::string error;
    EXPECT_TRUE(link_->call(args, &r, &error)) << error;
    return r;
  }
  // The stream's entries as "ID seq t d".
  std::vector<std::string> Entries(std::string_view stream) {
    std::vector<std::string> out;
    Reply r = Call({"XRANGE", stream, "-", "+"});
    for (const Reply& e : r.elements) {
      std::string line = e.elements[0].str;
      for (const Reply& f : e.elements[1].elements) line += " " + f.str;
      out.push_back(line);
    }
    return out;
  }
  std::shared_ptr<RedisOutput> Output(std::vector<std::string> fences = {},
                                      size_t buffer_bytes = 0) {
    RedisSinkOptions o;
    o.buffer_bytes = buffer_bytes;
    o.url = server_->url();
    o.prefix = "t";
    o.fences = std::move(fences);
    o.stop_retry = std::chrono::milliseconds(300);
    o.stopping = [this] { return stopping_.load(); };
    o.rewind = [this](uint32_t shard, uint64_t seq, uint64_t session) {
      rewinds_.push_back({shard, seq, session});
    };
    auto out = std::make_shared<RedisOutput>(o);
    out->on_failure([this](const std::string& why) { failures_.push_back(why); });
    return out;
  }
  static ChannelEvent Ev(uint32_t shard, uint64_t session, uint64_t seq, std::string_view t,
                         std::string_view d) {
    ChannelEvent e{};
    e.shard = shard;
    e.session = session;
    e.seq = seq;
    e.t = t;
    e.d = d;
    return e;
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisLink> link_;
  std::atomic<bool> stopping_{false};
  std::vector<std::string> failures_;
  struct Rewound {
    uint32_t shard;
    uint64_t seq, session;
  };
  std::vector<Rewound> rewinds_;
};

TEST_F(RedisTest, LinkPipelinesAndReloadsLostScripts) {
  std::string wire;
  redis::CommandWriter w(wire);
  for (int i = 0; i < 1000; ++i) w.command({"INCR", "n"});
  std::vector<Reply> replies;
  std::string error;
  ASSERT_TRUE(link_->exchange(wire, 1000, &replies, &error)) << error;
  ASSERT_EQ(replies.size(), 1000u);
  EXPECT_EQ(replies.back().integer, 1000);

  // How many replies Redis has answered NOSCRIPT so far.
  auto noscripts = [&] {
    const std::string info = Call({"INFO", "errorstats"}).str;
    const size_t at = info.find("errorstat_NOSCRIPT:count=");
    return at == std::string::npos ? 0 : std::stoi(info.substr(at + 25));
  };
  RedisScript script("return ARGV[1] .. '!'");
  for (int round = 0; round < 2; ++round) {
    // Not loaded on this connection yet: loaded ahead of the batch, no
    // NOSCRIPT. Then flushed away under the live connection: EVALSHA answers
    // NOSCRIPT, the link loads the script and sends the batch again.
    wire.clear();
    redis::CommandWriter(wire).command({"EVALSHA", script.sha1, "0", "hi"});
    ASSERT_TRUE(link_->exchange(wire, 1, &replies, &error, {&script})) << error;
    EXPECT_EQ(replies[0].str, "hi!");
    EXPECT_EQ(noscripts(), round);
    Call({"SCRIPT", "FLUSH"});
  }
}

TEST_F(RedisTest, SinkAppendsEachEventOnceWithEpochSeqIds) {
  auto out = Output();
  RedisWriter writer(out);
  const uint64_t s1 = gateway::session_key_of("session-a");
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    writer.append(Ev(0, s1, seq, "MESSAGE_CREATE", R"({"id":"1","content":"a\"b"})"));
  }
  writer.append(Ev(1, s1, 7, "GUILD_CREATE", "{}"));
  writer.flush();
  auto e0 = Entries("t:shard:0");
  ASSERT_EQ(e0.size(), 3u);
  const std::string epoch = e0[0].substr(0, e0[0].find('-'));
  EXPECT_EQ(e0[0], epoch + "-1 seq 1 t MESSAGE_CREATE d {\"id\":\"1\",\"content\":\"a\\\"b\"}");
  EXPECT_EQ(e0[2].substr(0, e0[2].find(' ')), epoch + "-3");
  EXPECT_EQ(Entries("t:shard:1").size(), 1u);
  EXPECT_EQ(out->lines(), 4u);

  // A resend (a lost reply, a replay after a resume) adds nothing; what
  // follows is appended.
  for (uint64_t seq = 2; seq <= 5; ++seq) writer.append(Ev(0, s1, seq, "TYPING_START", "{}"));
  writer.flush();
  e0 = Entries("t:shard:0");
  ASSERT_EQ(e0.size(), 5u);
  EXPECT_EQ(e0[3].substr(0, e0[3].find(' ')), epoch + "-4");
  EXPECT_EQ(out->skipped(), 2u);
  std::vector<Durable> by_shard;
  out->progress(by_shard);
  ASSERT_GE(by_shard.size(), 2u);
  EXPECT_EQ(by_shard[0], (Durable{s1, 5}));
  EXPECT_EQ(by_shard[1], (Durable{s1, 7}));

  // A new session starts at seq 1 under a later epoch: IDs keep growing.
  const uint64_t s2 = gateway::session_key_of("session-b");
  writer.append(Ev(0, s2, 1, "READY", "{}"));
  writer.append(Ev(0, s2, 2, "GUILD_CREATE", "{}"));
  writer.flush();
  e0 = Entries("t:shard:0");
  ASSERT_EQ(e0.size(), 7u);
  const std::string epoch2 = e0[5].substr(0, e0[5].find('-'));
  EXPECT_GT(std::stoull(epoch2), std::stoull(epoch));
  EXPECT_EQ(e0[6].substr(0, e0[6].find(' ')), epoch2 + "-2");
  Reply h = Call({"HMGET", "t:session:0", "sink_session", "epoch", "seq"});
  EXPECT_EQ(h.elements[0].str, std::to_string(s2));
  EXPECT_EQ(h.elements[1].str, epoch2);
  EXPECT_EQ(h.elements[2].str, "2");
  EXPECT_TRUE(failures_.empty());
}

TEST_F(RedisTest, ManyEventsSplitIntoCallsKeepOrder) {
  auto out = Output();
  RedisWriter writer(out);
  const uint64_t s = 42;
  const size_t n = RedisWriter::kMaxEventsPerCall * 2 + 3;
  for (uint64_t seq = 1; seq <= n; ++seq) {
    for (uint32_t shard = 0; shard < 3; ++shard) writer.append(Ev(shard, s, seq, "X", "[1]"));
  }
  writer.flush();
  for (uint32_t shard = 0; shard < 3; ++shard) {
    auto e = Entries(redis::key("t", "shard", shard));
    ASSERT_EQ(e.size(), n);
    for (size_t i = 0; i < n; ++i) {
      const std::string seq = std::to_string(i + 1);
      std::string want = "-";
      want.append(seq).append(" seq ").append(seq).append(" ");
      ASSERT_NE(e[i].find(want), std::string::npos) << e[i];
    }
  }
}

TEST_F(RedisTest, FencedWriterFailsAndWritesNothing) {
  auto fences = claim_shards(*link_, "t", 0, 1);
  ASSERT_TRUE(fences.ok()) << fences.status();
  auto out = Output(*fences);
  RedisWriter writer(out);
  writer.append(Ev(0, 9, 1, "X", "{}"));
  writer.flush();
  EXPECT_EQ(Entries("t:shard:0").size(), 1u);
  // Another process takes the shards over: this writer may not write.
  auto newer = claim_shards(*link_, "t", 0, 1);
  ASSERT_TRUE(newer.ok());
  EXPECT_NE((*newer)[0], (*fences)[0]);
  writer.append(Ev(0, 9, 2, "X", "{}"));
  writer.flush();
  EXPECT_EQ(Entries("t:shard:0").size(), 1u);
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_NE(failures_[0].find("FENCED"), std::string::npos) << failures_[0];
  EXPECT_TRUE(out->failed());
}

TEST_F(RedisTest, ErrorThatWaitingCannotFixFailsTheSink) {
  Call({"SET", "t:shard:0", "not a stream"});
  auto out = Output();
  RedisWriter writer(out);
  writer.append(Ev(0, 9, 1, "X", "{}"));
  writer.flush();
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_NE(failures_[0].find("WRONGTYPE"), std::string::npos) << failures_[0];
}

TEST_F(RedisTest, OutageWaitsAndLostWritesAreReplayed) {
  auto out = Output();
  RedisWriter writer(out);
  writer.append(Ev(0, 9, 1, "X", "{}"));
  writer.append(Ev(1, 9, 1, "X", "{}"));
  writer.flush();
  server_->kill();
  // The flush waits for Redis to come back, then writes.
  auto done = std::async(std::launch::async, [&] {
    writer.append(Ev(0, 9, 2, "X", "{}"));
    writer.flush();
  });
  EXPECT_EQ(done.wait_for(std::chrono::milliseconds(400)), std::future_status::timeout);
  ASSERT_TRUE(server_->restart());
  done.get();
  EXPECT_TRUE(failures_.empty());
  // The restarted server kept nothing (no persistence here): it lost seq 1
  // of shard 0, so seq 2 is not appended (it would leave a hole) and the
  // shard is resumed from what the stream holds (nothing: seq 0).
  EXPECT_TRUE(Entries("t:shard:0").empty());
  ASSERT_EQ(rewinds_.size(), 1u);
  EXPECT_EQ(rewinds_[0].shard, 0u);
  EXPECT_EQ(rewinds_[0].seq, 0u);
  EXPECT_EQ(rewinds_[0].session, 9u);
  EXPECT_EQ(out->rewinds(), 1u);
  // What the old connection still delivers is dropped; the replay from seq
  // 1 is appended, every seq once.
  writer.append(Ev(0, 9, 3, "X", "{}"));
  writer.append(Ev(0, 9, 1, "X", "{}"));
  writer.append(Ev(0, 9, 2, "X", "{}"));
  writer.append(Ev(0, 9, 3, "X", "{}"));
  writer.flush();
  auto e = Entries("t:shard:0");
  ASSERT_EQ(e.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(e[i].find(" seq " + std::to_string(i + 1) + " "), std::string::npos) << e[i];
  }
  // Shard 1 lost its seq 1 too: found at its next append.
  writer.append(Ev(1, 9, 2, "X", "{}"));
  writer.flush();
  ASSERT_EQ(rewinds_.size(), 2u);
  EXPECT_EQ(rewinds_[1].shard, 1u);
}

TEST_F(RedisTest, OutageBuffersUpToTheLimitThenWaits) {
  constexpr size_t kBuffer = 64 * 1024;
  auto out = Output({}, kBuffer);
  RedisWriter writer(out);
  server_->kill();
  const std::string d(1000, 'x');
  // Below the limit the consumer is never held up: each event is taken,
  // and idle() asks to be called again after the backoff.
  uint64_t seq = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (out->buffered() + d.size() + 1 < kBuffer) {
    writer.append(Ev(0, 9, ++seq, "X", d));
    if (seq == 1) {
      const auto again = writer.idle();
      EXPECT_GT(again.count(), 0);
      EXPECT_LE(again, RedisOutput::kMaxBackoff);
      EXPECT_EQ(out->waiting(), 1);
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_GT(seq, 50u);
  EXPECT_GT(out->buffered(), kBuffer - 2 * d.size());
  // The event that fills the buffer waits for Redis: the consumer stops,
  // the rings fill, the shards stop reading.
  auto done = std::async(std::launch::async, [&] {
    writer.append(Ev(0, 9, seq + 1, "X", d));
    writer.append(Ev(0, 9, seq + 2, "X", d));
  });
  EXPECT_EQ(done.wait_for(std::chrono::milliseconds(400)), std::future_status::timeout);
  ASSERT_TRUE(server_->restart());
  done.get();
  seq += 2;
  writer.flush();
  EXPECT_TRUE(failures_.empty());
  EXPECT_EQ(out->buffered(), 0u);
  EXPECT_EQ(out->waiting(), 0);
  EXPECT_EQ(writer.idle().count(), 0);
  // Every buffered event reached the stream once, in order.
  auto e = Entries("t:shard:0");
  ASSERT_EQ(e.size(), seq);
  for (uint64_t i = 0; i < seq; ++i) {
    EXPECT_NE(e[i].find(" seq " + std::to_string(i + 1) + " "), std::string::npos) << e[i];
  }
  EXPECT_EQ(out->lines(), seq);
}

TEST_F(RedisTest, StoppingBoundsTheRetries) {
  auto out = Output();
  RedisWriter writer(out);
  server_->kill();
  stopping_ = true;
  const auto t0 = std::chrono::steady_clock::now();
  writer.append(Ev(0, 9, 1, "X", "{}"));
  writer.flush();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_NE(failures_[0].find("stopping with events not written"), std::string::npos);
}

TEST_F(RedisTest, StoreRoundTripsAndResumesFromTheStream) {
  RedisSessionStore store(server_->url(), "t", std::make_pair(0u, 2u));
  SavedRun run;
  std::string error;
  ASSERT_TRUE(store.load(&run, &error)) << error;
  EXPECT_TRUE(run.shards.empty());
  EXPECT_EQ(run.bot_user_id, 0u);

  run.bot_user_id = 1234;
  run.total_shards = 3;
  run.intents = 513;
  run.compress = parse::Compression::kZlibStream;
  run.saved_unix_ms = 1700000000000;
  run.shards.push_back({0, "sess-0", "wss://resume.example/", 10, 1700000000000, {}});
  run.shards.push_back({2, "sess-2", "", 20, 1700000000001, {}});
  ASSERT_TRUE(store.save(run, &error)) << error;

  // The sink appended past shard 0's checkpoint: resume from the stream.
  auto out = Output();
  RedisWriter writer(out);
  for (uint64_t seq = 11; seq <= 15; ++seq) {
    writer.append(Ev(0, gateway::session_key_of("sess-0"), seq, "X", "{}"));
  }
  writer.flush();

  SavedRun got;
  ASSERT_TRUE(store.load(&got, &error)) << error;
  EXPECT_EQ(got.bot_user_id, 1234u);
  EXPECT_EQ(got.total_shards, 3u);
  EXPECT_EQ(got.intents, 513u);
  EXPECT_EQ(got.compress, parse::Compression::kZlibStream);
  ASSERT_EQ(got.shards.size(), 2u);
  EXPECT_EQ(got.shards[0].shard, 0u);
  EXPECT_EQ(got.shards[0].session_id, "sess-0");
  EXPECT_EQ(got.shards[0].resume_url, "wss://resume.example/");
  EXPECT_EQ(got.shards[0].seq, 15u);
  EXPECT_EQ(got.shards[0].written, (Durable{gateway::session_key_of("sess-0"), 15}));
  EXPECT_EQ(got.shards[1].shard, 2u);
  EXPECT_EQ(got.shards[1].seq, 20u);
  EXPECT_EQ(got.shards[1].alive_unix_ms, 1700000000001);

  // Shard 2 without a session now: its session is removed, its sink
  // fields and fence stay.
  run.shards.pop_back();
  ASSERT_TRUE(store.save(run, &error)) << error;
  ASSERT_TRUE(store.load(&got, &error)) << error;
  ASSERT_EQ(got.shards.size(), 1u);

  // Another slice's store sees only its own shards.
  RedisSessionStore other(server_->url(), "t", std::make_pair(1u, 2u));
  ASSERT_TRUE(other.load(&got, &error)) << error;
  EXPECT_TRUE(got.shards.empty());

  // A process fenced off (another claimed shard 0 since) saves nothing
  // over its successor's session; the other shards it still holds are saved.
  auto fences = claim_shards(*link_, "t", 0, 2);
  ASSERT_TRUE(fences.ok());
  ASSERT_TRUE(claim_shards(*link_, "t", 0, 0).ok());
  store.set_fences([&](uint32_t s) { return (*fences)[s]; });
  Call({"SCRIPT", "FLUSH"});  // and the save script is loaded again
  run.shards[0].session_id = "stale";
  run.shards.push_back({1, "sess-1", "", 5, 1700000000002, {}});
  ASSERT_TRUE(store.save(run, &error)) << error;
  ASSERT_TRUE(store.load(&got, &error)) << error;
  ASSERT_EQ(got.shards.size(), 2u);
  EXPECT_EQ(got.shards[0].session_id, "sess-0");
  EXPECT_EQ(got.shards[1].session_id, "sess-1");

  Call({"HSET", "t:run", "version", "99"});
  EXPECT_FALSE(store.load(&got, &error));
  EXPECT_NE(error.find("version 99"), std::string::npos) << error;
}

TEST_F(RedisTest, CommandsAreSentOnceAndInterruptedOnesAreNotSentAgain) {
  std::mutex mu;
  std::vector<std::pair<uint32_t, std::string>> sent;
  auto options = [&] {
    RedisCommands::Options o;
    o.url = server_->url();
    o.prefix = "t";
    o.send = [&](uint32_t shard, std::string payload) {
      std::lock_guard lock(mu);
      sent.emplace_back(shard, std::move(payload));
      return RedisCommands::Outcome{shard != 1, shard != 1 ? "" : "refused here"};
    };
    o.slice = [] { return std::make_optional(std::make_pair(0u, 1u)); };
    return o;
  };
  auto results = [&] {
    std::map<std::string, std::string> out;
    for (const Reply& e : Call({"XRANGE", "t:command-results", "-", "+"}).elements) {
      const auto& f = e.elements[1].elements;
      out[f[1].str] = f[5].str + (f[7].str.empty() ? "" : ": " + f[7].str);
    }
    return out;
  };
  auto wait_results = [&](size_t n) {
    for (int i = 0; i < 500 && results().size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return results();
  };
  {
    RedisCommands commands(options());
    commands.start();
    // The group is created at "$": wait for it before appending.
    for (int i = 0; i < 500 && Call({"EXISTS", "t:commands"}).integer == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Call({"XADD", "t:commands", "*", "id", "a", "shard", "0", "op", "3", "d", "{\"x\":1}"});
    Call({"XADD", "t:commands", "*", "id", "b", "shard", "1", "op", "3", "d", "{}"});
    Call({"XADD", "t:commands", "*", "id", "c", "shard", "7", "op", "3", "d", "{}"});
    auto r = wait_results(2);
    EXPECT_EQ(r["a"], "sent");
    EXPECT_EQ(r["b"], "refused: refused here");
    EXPECT_EQ(r.count("c"), 0u);  // another slice's shard
    commands.stop();
  }
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0], (std::pair<uint32_t, std::string>{0, "{\"op\":3,\"d\":{\"x\":1}}"}));
  }
  // A crash after reading a command and before confirming it: the entry is
  // pending in the group. The next start reports it, never sends it.
  Call({"XADD", "t:commands", "*", "id", "d", "shard", "0", "op", "3", "d", "{}"});
  Reply read = Call({"XREADGROUP", "GROUP", "gateway-0-1", "engine", "STREAMS", "t:commands", ">"});
  ASSERT_EQ(read.elements.size(), 1u);
  {
    RedisCommands commands(options());
    commands.start();
    auto r = wait_results(3);
    EXPECT_EQ(r["d"], "refused: " + std::string(kInterrupted));
    commands.stop();
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(sent.size(), 2u);
  EXPECT_EQ(Call({"XPENDING", "t:commands", "gateway-0-1"}).elements[0].integer, 0);
}

TEST_F(RedisTest, GateSpacesEachBucketsIdentifiesAcrossProcesses) {
  // Two processes' gates (one bucket per shard % 2) on one Redis, shards
  // 0-7 split between them: every shard gets its turn, and within a bucket
  // no two grants come closer than window + margin, whoever granted them.
  const auto window = std::chrono::milliseconds(60);
  // a reserved its 4 IDENTIFYs in the shared budget at start, b none: b's
  // 4 are spent from P:budget as they are taken.
  Call({"HSET", "t:budget", "remaining", "100", "reset_at", "99999999999999"});
  RedisIdentifyGate a(server_->url(), "t", 2, window, 4);
  RedisIdentifyGate b(server_->url(), "t", 2, window, 0);
  using Clock = IdentifyGate::Clock;
  std::vector<std::pair<Clock::time_point, uint32_t>> grants;
  std::set<uint32_t> left = {0, 1, 2, 3, 4, 5, 6, 7};
  std::vector<Clock::time_point> next(8, Clock::now());
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!left.empty() && Clock::now() < deadline) {
    for (auto it = left.begin(); it != left.end();) {
      const uint32_t shard = *it;
      Clock::time_point retry;
      const auto now = Clock::now();
      if (now >= next[shard] && (shard < 4 ? a : b).try_acquire(shard, now, &retry)) {
        grants.emplace_back(now, shard);
        it = left.erase(it);
        continue;
      }
      if (now >= next[shard]) next[shard] = retry;
      ++it;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_TRUE(left.empty()) << left.size() << " shards never granted";
  for (uint32_t bucket = 0; bucket < 2; ++bucket) {
    std::vector<Clock::time_point> times;
    for (auto& [t, shard] : grants) {
      if (shard % 2 == bucket) times.push_back(t);
    }
    ASSERT_EQ(times.size(), 4u);
    for (size_t i = 1; i < times.size(); ++i) {
      // Taken by the core a poll after Redis granted it: allow that jitter.
      EXPECT_GE(times[i] - times[i - 1], window + identify_margin(window) - kRedisGatePoll * 2)
          << "bucket " << bucket << " grant " << i;
    }
  }
  EXPECT_GE(a.won() + b.won(), 8u);  // more when a window was taken too late
  std::string budget;
  for (int i = 0; i < 200 && budget != "96"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    budget = Call({"HGET", "t:budget", "remaining"}).str;
  }
  EXPECT_EQ(budget, "96");
}

TEST_F(RedisTest, TrimKeepsWhatAnyGroupHasNotAcknowledged) {
  auto out = Output();
  RedisWriter writer(out);
  for (uint64_t seq = 1; seq <= 10; ++seq) writer.append(Ev(0, 9, seq, "X", "{}"));
  writer.flush();
  RedisTrimmer::Options o;
  o.url = server_->url();
  o.prefix = "t";
  o.slice = [] { return std::make_optional(std::make_pair(0u, 0u)); };
  std::string error;
  {
    // No group reads the stream: nothing says what was handled, all kept.
    RedisTrimmer t(o);
    ASSERT_TRUE(t.trim_once(&error)) << error;
    EXPECT_EQ(Call({"XLEN", "t:shard:0"}).integer, 10);
  }
  // Group a: 6 delivered, 4 acknowledged (entries 5 and 6 pending).
  Call({"XGROUP", "CREATE", "t:shard:0", "a", "0"});
  Reply read = Call({"XREADGROUP", "GROUP", "a", "c", "COUNT", "6", "STREAMS", "t:shard:0", ">"});
  std::vector<std::string> ids;
  for (const Reply& e : read.elements[0].elements[1].elements) ids.push_back(e.elements[0].str);
  ASSERT_EQ(ids.size(), 6u);
  for (int i = 0; i < 4; ++i) Call({"XACK", "t:shard:0", "a", ids[i]});
  {
    RedisTrimmer t(o);
    ASSERT_TRUE(t.trim_once(&error)) << error;
    EXPECT_EQ(Call({"XLEN", "t:shard:0"}).integer, 6);  // from seq 5 on
    EXPECT_EQ(t.trimmed(), 4u);
  }
  // Group b: everything delivered and acknowledged; a still holds 5-6.
  Call({"XGROUP", "CREATE", "t:shard:0", "b", "0"});
  read = Call({"XREADGROUP", "GROUP", "b", "c", "STREAMS", "t:shard:0", ">"});
  for (const Reply& e : read.elements[0].elements[1].elements) {
    Call({"XACK", "t:shard:0", "b", e.elements[0].str});
  }
  Call({"XACK", "t:shard:0", "a", ids[4]});
  Call({"XACK", "t:shard:0", "a", ids[5]});
  {
    // a has acknowledged 1-6 and not been delivered 7-10: those stay.
    RedisTrimmer t(o);
    ASSERT_TRUE(t.trim_once(&error)) << error;
    EXPECT_EQ(Call({"XLEN", "t:shard:0"}).integer, 4);
    EXPECT_EQ(t.cut_unread(), 0u);
  }
  {
    // A cap of 1 cuts 3 entries group a has not read: counted.
    o.maxlen = 1;
    RedisTrimmer t(o);
    ASSERT_TRUE(t.trim_once(&error)) << error;
    EXPECT_EQ(Call({"XLEN", "t:shard:0"}).integer, 1);
    EXPECT_EQ(t.cut_unread(), 3u);
  }
}

TEST_F(RedisTest, StartBudgetIsSharedAndKeepsTheReserve) {
  // Discord says 100 left, resetting in an hour; reserve 10.
  auto a = reserve_starts(*link_, "t", 100, 3'600'000, 60, 10);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->reserved);
  EXPECT_EQ(a->before, 100u);
  // A second process starting at once sees Discord's 100 too, but the
  // shared budget knows 60 are spent: 40 more would leave 0 < 10.
  auto b = reserve_starts(*link_, "t", 100, 3'600'000, 40, 10);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->reserved);
  EXPECT_EQ(b->before, 40u);
  auto c = reserve_starts(*link_, "t", 100, 3'600'000, 30, 10);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->reserved);
  EXPECT_EQ(Call({"HGET", "t:budget", "remaining"}).str, "10");
  EXPECT_GT(Call({"PTTL", "t:budget"}).integer, 3'500'000);
  // Discord's own count caps it (starts we did not see).
  auto d = reserve_starts(*link_, "t", 5, 3'600'000, 0, 0);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->before, 5u);
  // Past its reset, Discord's count seeds it anew.
  Call({"HSET", "t:budget", "reset_at", "1"});
  auto e = reserve_starts(*link_, "t", 1000, 3'600'000, 1, 0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->before, 1000u);
}

}  // namespace
}  // namespace shardring::engine
