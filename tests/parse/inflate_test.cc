// tests/parse/inflate_test.cc: zlib-stream and zstd-stream, both directions:
// exact round trips over many payloads on one stream (the real corpus
// included), payloads split across messages, corrupt and truncated input,
// every limit crossed (size, ratio, zstd window), memory per stream, and
// that the parser reads the inflated payload in place.
#include "parse/inflate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <span>
#include <string>
#include <vector>

#include "parse/envelope.h"
#include "tests/parse/corpus.h"

namespace shardring::parse {
namespace {

std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string event(uint64_t seq) {
  return "{\"t\":\"MESSAGE_CREATE\",\"s\":" + std::to_string(seq) + ",\"op\":0,\"d\":{\"id\":\"1" +
         std::to_string(seq * 7919) + "\",\"content\":\"h\xc3\xa9llo w\xc3\xb6rld " +
         std::to_string(seq) +
         "\",\"channel_id\":\"81384788765712384\",\"guild_id\":\"41771983423143937\"}}";
}

// A payload that barely compresses: pseudo-random printable JSON string.
std::string noisy(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s = "{\"op\":0,\"d\":\"";
  while (s.size() < n) s.push_back(static_cast<char>('a' + rng() % 26));
  s += "\"}";
  return s;
}

class StreamTest : public ::testing::TestWithParam<Compression> {};

INSTANTIATE_TEST_SUITE_P(Both, StreamTest,
                         ::testing::Values(Compression::kZlibStream, Compression::kZstdStream),
                         [](const auto& info) {
                           return info.param == Compression::kZlibStream ? "zlib" : "zstd";
                         });

TEST(Compression, NamesRoundTrip) {
  for (Compression c : {Compression::kNone, Compression::kZlibStream, Compression::kZstdStream}) {
    EXPECT_EQ(compression_from_name(to_string(c)), c);
  }
  EXPECT_EQ(compression_from_name("zlib"), std::nullopt);
  EXPECT_EQ(compression_from_name(""), std::nullopt);
  EXPECT_EQ(compression_from_name("ZLIB-STREAM"), std::nullopt);
}

TEST_P(StreamTest, ManyPayloadsOnOneStreamRoundTripExactly) {
  Deflater def(GetParam());
  Inflater inf(GetParam());
  InflateBuffer out;
  std::vector<std::string> payloads;
  for (uint64_t i = 1; i <= 2000; ++i) payloads.push_back(event(i));
  const auto corpus = testing::load_corpus();
  ASSERT_EQ(corpus.size(), 37u) << "corpus (*.json) at " << testing::corpus_dir();
  for (const auto& f : corpus) payloads.push_back(f.bytes);  // incl. 2.8 MB
  payloads.push_back(noisy(300'000, 1));
  payloads.push_back(event(2001));
  size_t compressed_total = 0, plain_total = 0;
  for (const auto& p : payloads) {
    std::string msg;
    ASSERT_TRUE(def.compress(p, msg));
    if (GetParam() == Compression::kZlibStream) {
      ASSERT_GE(msg.size(), 4u);
      EXPECT_EQ(msg.substr(msg.size() - 4), std::string("\x00\x00\xff\xff", 4));
    }
    std::string_view got;
    ASSERT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kOk);
    ASSERT_EQ(got, p);
    ASSERT_GE(out.size(), got.size() + kPadding);  // the parser's slack
    compressed_total += msg.size();
    plain_total += p.size();
  }
  // One stream: later events reuse the earlier ones' bytes.
  EXPECT_LT(compressed_total * 3, plain_total);
}

TEST_P(StreamTest, TheParserReadsTheInflatedPayloadInPlace) {
  Deflater def(GetParam());
  Inflater inf(GetParam());
  InflateBuffer out;
  Parser parser;
  for (uint64_t i = 1; i <= 50; ++i) {
    std::string msg;
    ASSERT_TRUE(def.compress(event(i), msg));
    std::string_view payload;
    ASSERT_EQ(inf.inflate(bytes(msg), out, &payload), InflateErrc::kOk);
    Envelope env;
    ASSERT_EQ(parser.parse(payload, env), Errc::kOk);
    EXPECT_EQ(env.s, i);
    EXPECT_EQ(env.type, EventType::kMessageCreate);
  }
}

TEST(ZlibStream, APayloadSplitAcrossMessagesAtEveryPointIsJoined) {
  const std::string p1 = event(1), p2 = event(2), p3 = event(3);
  Deflater def(Compression::kZlibStream);
  std::string m1, m2, m3;
  ASSERT_TRUE(def.compress(p1, m1));
  ASSERT_TRUE(def.compress(p2, m2));
  ASSERT_TRUE(def.compress(p3, m3));
  for (size_t cut = 0; cut < m2.size(); ++cut) {
    SCOPED_TRACE(cut);
    Inflater inf(Compression::kZlibStream);
    InflateBuffer out;
    std::string_view got;
    ASSERT_EQ(inf.inflate(bytes(m1), out, &got), InflateErrc::kOk);
    ASSERT_EQ(got, p1);
    ASSERT_EQ(inf.inflate(bytes(std::string_view(m2).substr(0, cut)), out, &got),
              InflateErrc::kNeedMore);
    EXPECT_TRUE(got.empty());
    out.assign(out.size(), 'x');  // another connection used the buffer meanwhile
    ASSERT_EQ(inf.inflate(bytes(std::string_view(m2).substr(cut)), out, &got), InflateErrc::kOk);
    ASSERT_EQ(got, p2);
    ASSERT_EQ(inf.inflate(bytes(m3), out, &got), InflateErrc::kOk);
    ASSERT_EQ(got, p3);
  }
}

TEST_P(StreamTest, GarbageIsCorruptAndTheStreamStaysBrokenUntilReset) {
  Inflater inf(GetParam());
  InflateBuffer out;
  std::string_view got;
  const std::string garbage = std::string("{\"op\":0}") + std::string("\x00\x00\xff\xff", 4);
  EXPECT_EQ(inf.inflate(bytes(garbage), out, &got), InflateErrc::kCorrupt);
  Deflater def(GetParam());
  std::string msg;
  ASSERT_TRUE(def.compress(event(1), msg));
  EXPECT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kCorrupt);
  inf.reset();
  ASSERT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kOk);
  EXPECT_EQ(got, event(1));
}

TEST_P(StreamTest, AFlippedByteInAWarmStreamNeverCrashesAndNeverPassesUnnoticed) {
  Deflater def(GetParam());
  std::vector<std::string> msgs;
  for (uint64_t i = 1; i <= 20; ++i) {
    std::string m;
    ASSERT_TRUE(def.compress(event(i), m));
    msgs.push_back(m);
  }
  const std::string& victim = msgs[10];
  for (size_t at = 0; at < victim.size(); ++at) {
    Inflater inf(GetParam());
    InflateBuffer out;
    std::string_view got;
    for (size_t k = 0; k < 10; ++k)
      ASSERT_EQ(inf.inflate(bytes(msgs[k]), out, &got), InflateErrc::kOk);
    std::string bad = victim;
    bad[at] = static_cast<char>(bad[at] ^ 0x55);
    const InflateErrc e = inf.inflate(bytes(bad), out, &got);
    // Either refused, or inflated to something that is not the event (the
    // parser or the seq check catches it), or, for zlib, incomplete.
    if (e == InflateErrc::kOk) {
      EXPECT_NE(got, event(11)) << at;
    }
  }
}

TEST(ZstdStream, ATruncatedMessageIsRefusedNotHalfDelivered) {
  Deflater def(Compression::kZstdStream);
  std::string m1, m2;
  ASSERT_TRUE(def.compress(event(1), m1));
  ASSERT_TRUE(def.compress(event(2), m2));
  for (size_t cut = 1; cut < m2.size(); ++cut) {
    Inflater inf(Compression::kZstdStream);
    InflateBuffer out;
    std::string_view got;
    ASSERT_EQ(inf.inflate(bytes(m1), out, &got), InflateErrc::kOk);
    const InflateErrc e = inf.inflate(bytes(std::string_view(m2).substr(0, cut)), out, &got);
    EXPECT_EQ(e, InflateErrc::kCorrupt) << cut << " gave " << got;
  }
}

TEST_P(StreamTest, ABombStopsAtTheRatioLimitWithBoundedMemory) {
  // 64 MiB of one repeated byte compresses about 1000:1.
  const std::string bomb = "{\"op\":0,\"d\":\"" + std::string(64 << 20, 'a') + "\"}";
  Deflater def(GetParam());
  std::string msg;
  ASSERT_TRUE(def.compress(bomb, msg));
  ASSERT_LT(msg.size() * kMaxInflateRatio, bomb.size());
  Inflater inf(GetParam());
  InflateBuffer out;
  std::string_view got;
  EXPECT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kBomb);
  EXPECT_LE(out.size(), 2 * kInflateRatioFloorBytes + kPadding);
}

TEST_P(StreamTest, HighlyCompressiblePayloadsUnderTheFloorAreFine) {
  // 900 KiB of one byte: past any ratio, but under the floor.
  const std::string p = "{\"op\":0,\"d\":\"" + std::string(900 << 10, 'a') + "\"}";
  ASSERT_LT(p.size(), kInflateRatioFloorBytes);
  Deflater def(GetParam());
  std::string msg;
  ASSERT_TRUE(def.compress(p, msg));
  Inflater inf(GetParam());
  InflateBuffer out;
  std::string_view got;
  ASSERT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kOk);
  EXPECT_EQ(got, p);
}

TEST_P(StreamTest, APayloadOverTheSizeLimitIsRefused) {
  const std::string big = noisy(kMaxInflatedBytes + 1, 2);
  Deflater def(GetParam());
  std::string msg;
  ASSERT_TRUE(def.compress(big, msg));
  Inflater inf(GetParam());
  InflateBuffer out;
  std::string_view got;
  EXPECT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kTooLarge);
  EXPECT_LE(out.size(), kMaxInflatedBytes + 1 + kPadding);  // one byte to see it is over
  // Exactly at the limit passes.
  const std::string fits = noisy(kMaxInflatedBytes - 2, 3);
  ASSERT_EQ(fits.size(), kMaxInflatedBytes);
  Deflater def2(GetParam());
  msg.clear();
  ASSERT_TRUE(def2.compress(fits, msg));
  Inflater inf2(GetParam());
  ASSERT_EQ(inf2.inflate(bytes(msg), out, &got), InflateErrc::kOk);
  EXPECT_EQ(got.size(), kMaxInflatedBytes);
}

TEST(ZstdStream, AWindowOverTheLimitIsRefused) {
  Deflater def(Compression::kZstdStream, 3, kZstdMaxWindowLog + 1);
  std::string msg;
  ASSERT_TRUE(def.compress(event(1), msg));
  Inflater inf(Compression::kZstdStream);
  InflateBuffer out;
  std::string_view got;
  EXPECT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kTooLarge);
  // At the limit it is accepted.
  Deflater ok(Compression::kZstdStream, 3, kZstdMaxWindowLog);
  msg.clear();
  ASSERT_TRUE(ok.compress(event(1), msg));
  Inflater inf2(Compression::kZstdStream);
  ASSERT_EQ(inf2.inflate(bytes(msg), out, &got), InflateErrc::kOk);
}

TEST(Inflate, MemoryPerStreamIsCounted) {
  InflateBuffer out;
  std::string_view got;
  {
    Deflater def(Compression::kZlibStream);
    Inflater inf(Compression::kZlibStream);
    std::string msg;
    ASSERT_TRUE(def.compress(event(1), msg));
    ASSERT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kOk);
    // zlib: its state (~7 KiB) and the 32 KiB window the format needs.
    EXPECT_GE(inf.memory_bytes(), 32u << 10);
    EXPECT_LE(inf.memory_bytes(), 48u << 10);
    ::testing::Test::RecordProperty("zlib_inflate_bytes", static_cast<int>(inf.memory_bytes()));
  }
  {
    Deflater def(Compression::kZstdStream, 3, 17);
    Inflater inf(Compression::kZstdStream);
    std::string msg;
    ASSERT_TRUE(def.compress(event(1), msg));
    ASSERT_EQ(inf.inflate(bytes(msg), out, &got), InflateErrc::kOk);
    // zstd: the context, its 128 KiB block input buffer, and an output
    // buffer of the frame's window (here 128 KiB) plus a block: ~600 KiB.
    EXPECT_GE(inf.memory_bytes(), 128u << 10);
    EXPECT_LE(inf.memory_bytes(), 700u << 10);
    ::testing::Test::RecordProperty("zstd_inflate_bytes", static_cast<int>(inf.memory_bytes()));
  }
}

TEST(Inflate, NoneCopiesWithPadding) {
  Inflater inf(Compression::kNone);
  InflateBuffer out;
  std::string_view got;
  ASSERT_EQ(inf.inflate(bytes("{\"op\":11}"), out, &got), InflateErrc::kOk);
  EXPECT_EQ(got, "{\"op\":11}");
  EXPECT_GE(out.size(), got.size() + kPadding);
}

}  // namespace
}  // namespace shardring::parse
