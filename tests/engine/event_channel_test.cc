#include "engine/event_channel.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace shardring::engine {
namespace {

ChannelEvent Make(uint32_t shard, uint64_t seq, std::string_view t, std::string_view d) {
  ChannelEvent e{};
  e.shard = shard;
  e.seq = seq;
  e.t = t;
  e.d = d;
  return e;
}

TEST(EventChannel, DeliversCopiesInOrderAndByteExact) {
  EventChannel ch(16, 4096);
  std::string d1 = R"({"content":"h\u00e9llo 😀"})";
  ASSERT_TRUE(ch.try_push(Make(3, 41, "MESSAGE_CREATE", d1)));
  ASSERT_TRUE(ch.try_push(Make(3, 42, "TYPING_START", "null")));
  d1.assign(d1.size(), 'x');  // the producer's buffer is reused at once
  std::vector<std::string> got;
  EXPECT_EQ(ch.drain(
                [&](const ChannelEvent& e) {
                  got.push_back(std::to_string(e.shard) + "/" + std::to_string(e.seq) + "/" +
                                std::string(e.t) + "/" + std::string(e.d));
                },
                10),
            2u);
  EXPECT_EQ(got, (std::vector<std::string>{"3/41/MESSAGE_CREATE/{\"content\":\"h\\u00e9llo 😀\"}",
                                           "3/42/TYPING_START/null"}));
  EXPECT_TRUE(ch.empty());
}

TEST(EventChannel, FullIsBackpressureNotLoss) {
  EventChannel ch(4, 1024);
  int pushed = 0;
  while (ch.try_push(Make(0, static_cast<uint64_t>(pushed + 1), "X", "{}"))) ++pushed;
  EXPECT_EQ(pushed, 4);  // the record ring is full
  uint64_t next = 1;
  ch.drain([&](const ChannelEvent& e) { EXPECT_EQ(e.seq, next++); }, 100);
  EXPECT_EQ(next, 5u);
  EXPECT_TRUE(ch.try_push(Make(0, 5, "X", "{}")));
}

TEST(EventChannel, ArenaWrapsAroundWithoutCorruptingEvents) {
  EventChannel ch(64, 1024);
  uint64_t seq = 0, seen = 0;
  for (int round = 0; round < 200; ++round) {
    const std::string d(static_cast<size_t>(37 + round % 90), static_cast<char>('a' + round % 26));
    while (!ch.try_push(Make(1, seq + 1, "E", d))) {
      ch.drain(
          [&](const ChannelEvent& e) {
            EXPECT_EQ(e.seq, ++seen);
            EXPECT_EQ(e.d.find_first_not_of(e.d[0]), std::string_view::npos);
          },
          3);
    }
    ++seq;
  }
  ch.drain([&](const ChannelEvent& e) { EXPECT_EQ(e.seq, ++seen); }, 1000);
  EXPECT_EQ(seen, seq);
}

TEST(EventChannel, AnEventLargerThanTheArenaTakesItsOwnBlock) {
  EventChannel ch(8, 1024);
  const std::string big(10'000, 'g');
  ASSERT_TRUE(ch.try_push(Make(2, 1, "GUILD_CREATE", big)));
  EXPECT_EQ(ch.heap_events(), 1u);
  ch.drain([&](const ChannelEvent& e) { EXPECT_EQ(e.d, big); }, 1);
}

TEST(EventChannel, TwoThreadsLoseNothingAndKeepOrder) {
#ifdef SHARDRING_SANITIZED
  constexpr uint64_t kEvents = 200'000;
#else
  constexpr uint64_t kEvents = 500'000;
#endif
  EventChannel ch(1024, 64 * 1024);
  ConsumerWaker waker;
  std::atomic<bool> done{false};
  uint64_t expect = 1;
  bool ok = true;
  std::thread consumer([&] {
    while (true) {
      const size_t n = ch.drain(
          [&](const ChannelEvent& e) {
            const std::string want = std::to_string(e.seq);
            ok &= e.seq == expect++ && e.d == want;
          },
          256);
      if (n == 0) {
        if (done.load() && ch.empty()) break;
        waker.wait([&] { return ch.empty() && !done.load(); });
      }
    }
  });
  for (uint64_t seq = 1; seq <= kEvents; ++seq) {
    const std::string d = std::to_string(seq);
    while (!ch.try_push(Make(0, seq, "E", d))) waker.notify();
    if ((seq & 63) == 0) waker.notify();
  }
  done.store(true);
  waker.force_wake();
  consumer.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(expect, kEvents + 1);
}

}  // namespace
}  // namespace shardring::engine
