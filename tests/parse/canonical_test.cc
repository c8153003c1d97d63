// tests/parse/canonical_test.cc: the Check::kEnvelope fast path
// (parse/canonical.h). It must take Discord's and our gateway's layouts,
// agree field for field with the general path whenever it decides, and leave
// everything else (errors included) to the general path.
#include "parse/canonical.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>
#include <string>
#include <vector>

#include "parse/digits.h"
#include "tests/parse/corpus.h"

namespace shardring::parse {
namespace {

using testing::Padded;

struct Outcome {
  bool fast = false;  // the fast path decided
  Errc general = Errc::kOk;
};

// Runs both paths on `json` and checks they agree whenever the fast one
// decides; returns what happened.
Outcome Compare(std::string_view json, bool routing) {
  Padded buf(json);
  Parser p;
  detail::Marks marks;
  Envelope fast, general;
  Outcome o;
  o.fast = detail::try_canonical(buf.view(), routing, fast, marks);
  // Each marking kernel decides alike (AVX-512 falls back to AVX2 on a CPU
  // without it).
  for (detail::Simd simd : {detail::Simd::kAvx2, detail::Simd::kAvx512}) {
    Envelope k;
    const bool took = detail::try_canonical(buf.view(), routing, k, marks, simd);
    EXPECT_EQ(took, o.fast) << static_cast<int>(simd) << " " << json.substr(0, 200);
    if (took && o.fast) {
      EXPECT_EQ(k.op, fast.op);
      EXPECT_EQ(k.s, fast.s);
      EXPECT_EQ(k.t, fast.t);
      EXPECT_EQ(k.d.data(), fast.d.data());
      EXPECT_EQ(k.d.size(), fast.d.size());
      EXPECT_EQ(k.routing.guild_id, fast.routing.guild_id);
      EXPECT_EQ(k.routing.channel_id, fast.routing.channel_id);
      EXPECT_EQ(k.stamp_ns, fast.stamp_ns);
    }
  }
  o.general = p.parse(buf.view(), general,
                      {.check = Check::kEnvelope, .routing_keys = routing, .fast_path = false});
  if (o.fast) {
    EXPECT_EQ(o.general, Errc::kOk) << json.substr(0, 200);
    if (o.general == Errc::kOk) {
      EXPECT_EQ(fast.op, general.op);
      EXPECT_EQ(fast.s, general.s);
      EXPECT_EQ(fast.t, general.t);
      EXPECT_EQ(fast.type, general.type);
      EXPECT_EQ(fast.d.data(), general.d.data());
      EXPECT_EQ(fast.d.size(), general.d.size());
      EXPECT_EQ(fast.d_kind, general.d_kind);
      EXPECT_EQ(fast.routing.guild_id, general.routing.guild_id);
      EXPECT_EQ(fast.routing.channel_id, general.routing.channel_id);
      EXPECT_EQ(fast.stamp_ns, general.stamp_ns);
    }
  }
  return o;
}

std::string Minified(std::string_view json) {
  simdjson::dom::parser dom;
  simdjson::dom::element e;
  if (dom.parse(std::string(json)).get(e) != simdjson::SUCCESS) return std::string(json);
  return simdjson::minify(e);
}

TEST(Canonical, TakesTheSyntheticGatewaysLayoutWithEveryField) {
  const std::string msg =
      R"({"t":"MESSAGE_CREATE","s":42,"op":0,"_ts_ns":1234567,"d":{"id":"1","guild_id":"81384788765712384",)"
      R"("channel_id":"222","content":"a \"quoted\" {brace} [and] \\ back\\\\","n":[1,{"x":"}"}],"e":{}}})";
  for (bool routing : {false, true}) {
    SCOPED_TRACE(routing);
    Padded buf(msg);
    detail::Marks marks;
    Envelope env;
    ASSERT_TRUE(detail::try_canonical(buf.view(), routing, env, marks));
    EXPECT_EQ(env.op, 0);
    EXPECT_EQ(env.s, 42u);
    EXPECT_EQ(env.t, "MESSAGE_CREATE");
    EXPECT_EQ(env.type, EventType::kMessageCreate);
    EXPECT_EQ(env.stamp_ns, 1234567u);
    EXPECT_EQ(env.d_kind, JsonKind::kObject);
    EXPECT_TRUE(env.d.starts_with(R"({"id":"1")"));
    EXPECT_TRUE(env.d.ends_with(R"("e":{}})"));
    if (routing) {
      EXPECT_EQ(env.routing.guild_id, 81384788765712384u);
      EXPECT_EQ(env.routing.channel_id, 222u);
    } else {
      EXPECT_FALSE(env.routing.guild_id);
    }
    EXPECT_TRUE(Compare(msg, routing).fast);
  }
}

TEST(Canonical, TakesControlMessagesOfEveryOpcode) {
  for (std::string_view msg : {
           R"({"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["gw"]}})",
           R"({"t":null,"s":null,"op":11,"d":null})",
           R"({"t":null,"s":null,"op":9,"d":false})",
           R"({"t":null,"s":null,"op":9,"d":true})",
           R"({"t":null,"s":null,"op":7,"d":null})",
           R"({"op":11})",
           R"({"d":[1,2,[3]],"op":-5})",
       }) {
    SCOPED_TRACE(msg);
    EXPECT_TRUE(Compare(msg, true).fast);
  }
}

// The members in Discord's order are matched byte for byte; a message that
// leaves that order anywhere (a member more, fewer, moved, spaced or
// repeated) is walked member by member and still read, or refused, exactly
// as the general path reads it.
TEST(Canonical, TheCanonicalOrderAndEveryNearMissReadAlike) {
  struct Case {
    std::string_view msg;
    bool taken;
    int32_t op;
  };
  for (const Case& c : {
           Case{R"({"t":"READY","s":1,"op":0,"d":{"v":10}})", true, 0},
           Case{R"({"t":"READY","s":1,"op":0,"_ts_ns":7,"d":{"v":10}})", true, 0},
           Case{R"({"t":"READY","s":1,"op":0,"d":{"v":10},"x":1})", true, 0},
           Case{R"({"t":"READY","s":1,"op":0,"_ts_ns":7,"x":2,"d":{}})", true, 0},
           Case{R"({"s":1,"t":"READY","op":0,"d":{}})", true, 0},
           Case{R"({"t":"READY", "s":1,"op":0,"d":{}})", true, 0},
           Case{R"({"t":"READY","s":1,"op":0,"d":{}} )", true, 0},
           Case{R"({"t":null,"s":null,"op":11,"d":null})", true, 11},
           Case{R"({"t":"READY","s":1,"op":0})", true, 0},
           Case{R"({"t":"READY","s":1,"op":0,"d":{},"op":1})", false, 0},
           Case{R"({"t":"READY","s":1,"op":0,"d":{},"d":{}})", false, 0},
           Case{R"({"t":"READY","s":1,"op":0,"d":{}}})", false, 0},
           Case{R"({"t":"READY","s":1,"op":0,"d":{})", false, 0},
           Case{R"({"t":"READY","s":1,"op":x,"d":{}})", false, 0},
           Case{R"({"t":"ready","s":1,"op":0,"d":{}})", false, 0},
           // Numbers' ends are found 16 bytes at a time: around that width.
           Case{R"({"t":"READY","s":1234567890123456,"op":0,"d":{}})", true, 0},
           Case{
               R"({"t":"READY","s":12345678901234567,"op":0,"_ts_ns":18446744073709551615,"d":{}})",
               true, 0},
           Case{R"({"t":"READY","s":1.5,"op":0,"d":{}})", false, 0},
           Case{R"({"t":"READY","s":1e3,"op":0,"d":{}})", false, 0},
           Case{R"({"t":"READY","s":-1,"op":0,"d":{}})", false, 0},
           Case{R"({"t":null,"s":null,"op":-12,"d":null})", true, -12},
           Case{R"({"t":null,"s":null,"op":-,"d":null})", false, 0},
           Case{R"({"t":null,"s":null,"op":01,"d":null})", false, 0},
           // Event names are checked 16 bytes at a time: around that width.
           Case{R"({"t":"ABCDEFGHIJKLMNO_","s":1,"op":0,"d":{}})", true, 0},
           Case{R"({"t":"ABCDEFGHIJKLMNOP_0123456789XYZ_Q","s":1,"op":0,"d":{}})", true, 0},
           Case{R"({"t":"ABCDEFGHIJKLMNOPq","s":1,"op":0,"d":{}})", false, 0},
           Case{R"({"t":"ABCDEFGHIJKLMNO-","s":1,"op":0,"d":{}})", false, 0},
           Case{"{\"t\":\"ABCDEFGHIJKLMNOPQR\xc3\xa9\",\"s\":1,\"op\":0,\"d\":{}}", false, 0},
       }) {
    SCOPED_TRACE(c.msg);
    const Outcome o = Compare(c.msg, true);
    EXPECT_EQ(o.fast, c.taken);
    if (c.taken) {
      Padded buf(c.msg);
      detail::Marks marks;
      Envelope env;
      ASSERT_TRUE(detail::try_canonical(buf.view(), true, env, marks));
      EXPECT_EQ(env.op, c.op);
    }
  }
}

TEST(Canonical, AgreesWithTheGeneralPathOnTheWholeCorpusPrettyAndMinified) {
  uint64_t seq = 1;
  size_t dispatches = 0;
  for (const auto& f : testing::load_corpus()) {
    if (f.kind == testing::FileKind::kRest) continue;
    const std::string frame =
        f.kind == testing::FileKind::kBareD
            ? testing::wrap_dispatch(testing::trim(f.bytes), f.event, seq++, "tsod")
            : f.bytes;
    SCOPED_TRACE(f.name);
    for (bool routing : {false, true}) {
      Compare(frame, routing);  // pretty-printed: decided or not, never a disagreement
      const std::string compact = Minified(frame);
      const Outcome o = Compare(compact, routing);
      if (o.general == Errc::kOk && compact.find("\"op\":0") != std::string::npos) {
        EXPECT_TRUE(o.fast) << "a minified dispatch went to the general path";
        ++dispatches;
      }
    }
  }
  EXPECT_GT(dispatches, 20u);
}

TEST(Canonical, LeavesEverythingItCannotVouchForToTheGeneralPath) {
  for (std::string_view msg : {
           R"({"t":"X","s":1,"op":0,"op":0,"d":{}})",  // duplicate key
           R"({"t":"X","s":1,"op":0,"d":{},"d":{}})",
           R"({"t":"X","s":1,"d":{}})",  // no op
           R"({"t":"X","s":1,"op":-0,"d":{}})",
           R"({"t":"X","s":1,"op":1.0,"d":{}})",
           R"({"t":"X","s":1,"op":2147483648,"d":{}})",
           R"({"t":"X","s":01,"op":0,"d":{}})",
           R"({"t":"X","s":-1,"op":0,"d":{}})",
           R"({"t":"X","s":18446744073709551616,"op":0,"d":{}})",
           R"({"t":"lower","s":1,"op":0,"d":{}})",
           R"({"t":"","s":1,"op":0,"d":{}})",
           R"({"t":"X\u0041","s":1,"op":0,"d":{}})",
           R"({"t":"X","s":1,"op":0,"d":{"a":[}]}})",  // mismatched brackets
           R"({"t":"X","s":1,"op":0,"d":{"a":1}} x)",  // trailing data
           R"({"t":"X","s":1,"op":0,"d":{"a":1}}})",
           R"({"t":"X","s":1,"op":0,"d":{"a\"b":1}})",     // an escape in a key
           R"({"t":"X","s":1,"op":0,"d":{"a" 1}})",        // no colon
           R"({"t":"X","s":1,"op":0,"d":{"a":1 "b":2}})",  // no comma
           R"({"t":"X","s":1,"op":0,"d":{"a":}})",         // no value
           R"({"t":"X","s":1,"op":0,"d":{"a":]}})",
           R"({"t":"X","s":1,"op":0,"d":{"a":"open}})",  // unterminated string
           R"({"t":"X","s":1,"op":0,"d":12})",           // numbers and strings in d
           R"({"t":"X","s":1,"op":0,"d":"text"})",
           R"({"t":"X","s":1,"op":0,"d":nul})",
           R"(["op",0])",
           R"({})",
           "",
       }) {
    SCOPED_TRACE(msg);
    EXPECT_FALSE(Compare(msg, true).fast);
  }
  // Control characters: inside a string, or outside one other than space.
  EXPECT_FALSE(Compare(std::string("{\"op\":0,\"d\":{\"a\":\"x\ny\"}}"), true).fast);
  EXPECT_FALSE(Compare(std::string("{\"op\":0,\"d\":{\"a\":1\x01}}"), true).fast);
  EXPECT_TRUE(Compare(std::string("{\"op\":0,\n \"d\":{\"a\" :\t1\r\n}}  "), true).fast);
  // Invalid UTF-8 anywhere, even in a value nobody reads.
  EXPECT_FALSE(Compare(std::string("{\"op\":0,\"d\":{\"a\":\"\xff\"}}"), true).fast);
  EXPECT_FALSE(Compare(std::string("{\"op\":0,\"x\":\"\xc3\",\"d\":{}}"), true).fast);
}

TEST(Canonical, NumbersAtTheirLimitsReadAsTheGeneralPathReadsThem) {
  for (std::string_view v :
       {"0", "7", "12345678", "123456789", "1234567890123456", "12345678901234567",
        "9999999999999999999", "18446744073709551615", "18446744073709551616",
        "99999999999999999999", "000000000000000000001", "00000000000000000001", "1a345678",
        "12345678901234x67"}) {
    SCOPED_TRACE(v);
    const std::string sv(v);
    // s (a JSON integer, no leading zero), the stamp and a routing key.
    Compare(R"({"t":"X","s":)" + sv + R"(,"op":0,"d":{}})", true);
    Compare(R"({"t":"X","s":1,"op":0,"_ts_ns":)" + sv + R"(,"d":{}})", true);
    Compare(R"({"t":"X","s":1,"op":0,"d":{"guild_id":")" + sv + R"("}})", true);
  }
  Padded buf(R"({"t":"X","s":18446744073709551615,"op":0,"_ts_ns":18446744073709551615,)"
             R"("d":{"guild_id":"18446744073709551615","channel_id":"18446744073709551616"}})");
  detail::Marks marks;
  Envelope env;
  ASSERT_TRUE(detail::try_canonical(buf.view(), true, env, marks));
  EXPECT_EQ(env.s, UINT64_MAX);
  EXPECT_EQ(env.stamp_ns, UINT64_MAX);
  EXPECT_EQ(env.routing.guild_id, UINT64_MAX);
  EXPECT_FALSE(env.routing.channel_id);
}

// Below d's top level brackets are counted, as simdjson skips a value: any
// depth, kinds not matched (the general path accepts both, envelope.h).
TEST(Canonical, NestingIsCountedAtAnyDepthLikeTheGeneralPath) {
  auto nested = [](size_t depth, std::string_view inner = "") {
    return "{\"op\":0,\"d\":" + std::string(depth, '[') + std::string(inner) +
           std::string(depth, ']') + "}";
  };
  for (size_t depth : {1, 2, 63, 64, 65, 1000, 1025, 5000, 100000}) {
    SCOPED_TRACE(depth);
    const Outcome o = Compare(nested(depth), false);
    EXPECT_TRUE(o.fast);
    EXPECT_EQ(o.general, Errc::kOk);
  }
  // One bracket short or one too many: both refuse.
  for (std::string_view bad : {"[[[]]", "[[]]]", "{\"a\":[[]}"}) {
    SCOPED_TRACE(bad);
    const std::string json = "{\"op\":0,\"d\":" + std::string(bad) + "}";
    EXPECT_FALSE(Compare(json, false).fast);
    EXPECT_NE(Compare(json, false).general, Errc::kOk);
  }
  // Kinds crossed below the top level: counted like the general path.
  const Outcome crossed = Compare(R"({"op":0,"d":{"a":{],"b":[1}}})", true);
  EXPECT_TRUE(crossed.fast);
  EXPECT_EQ(crossed.general, Errc::kOk);
}

// The closing bracket at every offset of a block, behind every count of
// brackets before it in that block and in the blocks before.
TEST(Canonical, MatchingBracketAtEveryOffsetAgrees) {
  for (size_t pad = 0; pad < 70; ++pad) {
    for (size_t depth : {1, 2, 3, 31, 32, 33, 64, 65, 130}) {
      const std::string json = "{\"op\":0,\"d\":{\"k\":" + std::string(depth, '[') + "\"" +
                               std::string(pad, 'x') + "\"" + std::string(depth, ']') +
                               ",\"guild_id\":\"5\"}}";
      SCOPED_TRACE(json);
      const Outcome o = Compare(json, true);
      EXPECT_TRUE(o.fast);
      EXPECT_EQ(o.general, Errc::kOk);
    }
  }
}

// Backslash runs and quotes at every offset around the 64-byte blocks the
// SIMD pass works in.
TEST(Canonical, EscapesAcrossBlockBoundariesAgree) {
  const std::vector<std::string> tails = {R"(\")",     R"(\\)",     R"(\\\")",   R"(\\\\)",
                                          R"(\\\\\")", R"(\u0022)", R"(x\"}{][)"};
  size_t decided = 0;
  for (size_t pad = 0; pad < 140; ++pad) {
    for (const std::string& tail : tails) {
      const std::string msg = R"({"t":"X","s":1,"op":0,"d":{"k":")" + std::string(pad, 'a') + tail +
                              R"(","guild_id":"7","z":[{"q":"]"}]}})";
      SCOPED_TRACE(msg);
      const Outcome o = Compare(msg, true);
      EXPECT_EQ(o.fast, o.general == Errc::kOk);
      decided += o.fast;
    }
  }
  EXPECT_GT(decided, 140u * 5);
}

// UTF-8 is checked from the first block holding a byte >= 0x80: a bad or a
// good sequence at every offset around the 64-byte blocks, after an ASCII
// run and after an earlier multi-byte character, decides as the general path.
TEST(Canonical, Utf8AtEveryOffsetAroundTheBlocksAgrees) {
  const std::vector<std::string> seqs = {
      "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",  // valid: 2, 3 and 4 bytes
      "\xff",     "\xc3",         "\xe2\x82",
      "\xc0\xaf", "\xed\xa0\x80", "\x80"};  // invalid
  size_t decided = 0, refused = 0;
  for (size_t pad = 0; pad < 140; ++pad) {
    for (const std::string& seq : seqs) {
      for (const std::string& lead : {std::string(), std::string("\xc3\xa9")}) {
        const std::string msg = R"({"t":"X","s":1,"op":0,"d":{"k":")" + lead +
                                std::string(pad, 'a') + seq + R"(","guild_id":"7"}})";
        SCOPED_TRACE(pad);
        const Outcome o = Compare(msg, true);
        EXPECT_EQ(o.fast, o.general == Errc::kOk);
        decided += o.fast;
        refused += o.general == Errc::kBadUtf8;
      }
    }
  }
  EXPECT_EQ(decided, 140u * 3 * 2);
  EXPECT_EQ(refused, 140u * 6 * 2);
}

// The fast path's UTF-8 verdict is simdjson's validator's on the whole
// message: random strings of valid sequences, broken ones and stray bytes,
// at every alignment to the 64-byte blocks, with bytes >= 0x80 in the
// padding past the message (which must not count), on both kernels.
TEST(Canonical, Utf8VerdictIsSimdjsonsOnTheWholeMessage) {
  const std::vector<std::string> pieces = {
      "a", "bc", "\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf",
      "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
      // broken: stray continuations, overlongs, surrogates, too large,
      // truncated leads, bytes never used
      "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xf0\x8f\xbf\xbf",
      "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xf8", "\xff"};
  std::mt19937_64 rng(7);
  size_t taken = 0, refused = 0;
  for (int round = 0; round < 3000; ++round) {
    const bool broken_ok = round % 3 == 0;  // else valid pieces only, mostly
    std::string text(rng() % 130, 'x');
    const size_t n = 1 + rng() % 12;
    for (size_t i = 0; i < n; ++i) {
      const size_t pick = rng() % (broken_ok ? pieces.size() : 11);
      text += pieces[pick];
      text += std::string(rng() % 70, 'y');
    }
    const std::string msg = R"({"t":"X","s":1,"op":0,"d":{"k":")" + text + R"("}})";
    const bool valid = simdjson::validate_utf8(msg.data(), msg.size());
    // The message, then padding of bytes >= 0x80 (a lead and continuations).
    std::string buf = msg + std::string(64, '\xe2');
    for (size_t i = msg.size(); i < buf.size(); i += 3) buf[i] = '\x82';
    for (detail::Simd simd : {detail::Simd::kAvx2, detail::Simd::kAvx512}) {
      detail::Marks marks;
      Envelope env;
      const bool took =
          detail::try_canonical(std::string_view(buf.data(), msg.size()), true, env, marks, simd);
      EXPECT_EQ(took, valid) << static_cast<int>(simd) << " round " << round;
      taken += took;
      refused += !took;
    }
  }
  // Both verdicts are common, so neither is taken for granted.
  EXPECT_GT(taken, 1000u);
  EXPECT_GT(refused, 1000u);
  // A sequence cut at a block's end and followed by blocks of ASCII (what
  // skips ASCII blocks must still see it), or complete there.
  const std::string head = R"({"t":"X","s":1,"op":0,"d":{"k":")";
  for (const std::string seq : {"\xc3", "\xe2\x82", "\xe2", "\xf0\x9f\x98", "\xf0\x9f", "\xf0",
                                "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"}) {
    for (size_t block_end : {64u, 128u, 192u}) {
      for (size_t shift : {0u, 1u, 2u}) {
        const size_t fill = block_end + shift - seq.size() - head.size();
        const std::string msg =
            head + std::string(fill, 'x') + seq + std::string(80, 'z') + R"("}})";
        for (detail::Simd simd : {detail::Simd::kAvx2, detail::Simd::kAvx512}) {
          Padded buf(msg);
          detail::Marks marks;
          Envelope env;
          EXPECT_EQ(detail::try_canonical(buf.view(), true, env, marks, simd),
                    simdjson::validate_utf8(msg.data(), msg.size()))
              << static_cast<int>(simd) << " " << block_end << "+" << shift << " " << seq.size();
        }
      }
    }
  }
}

// Every prefix of a valid message is decided only if the general path
// accepts it too (it accepts none of them).
TEST(Canonical, NoTruncationIsTaken) {
  const std::string msg =
      R"({"t":"GUILD_CREATE","s":3,"op":0,"d":{"guild_id":"1","a":[1,2,{"b":"c\"d"}],"e":null}})";
  for (size_t n = 0; n < msg.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_FALSE(Compare(msg.substr(0, n), true).fast);
  }
}

TEST(Canonical, ParserUsesItAndGivesTheSameEnvelope) {
  const std::string msg =
      R"({"t":"TYPING_START","s":9,"op":0,"d":{"channel_id":"5","guild_id":"6"}})";
  Padded buf(msg);
  Parser p;
  Envelope fast, general;
  ASSERT_EQ(p.parse(buf.view(), fast, {.check = Check::kEnvelope, .routing_keys = true}),
            Errc::kOk);
  ASSERT_EQ(p.parse(buf.view(), general,
                    {.check = Check::kEnvelope, .routing_keys = true, .fast_path = false}),
            Errc::kOk);
  EXPECT_EQ(fast.routing.guild_id, 6u);
  EXPECT_EQ(fast.routing.channel_id, 5u);
  EXPECT_EQ(fast.d, general.d);
  EXPECT_EQ(fast.type, EventType::kTypingStart);
}

// The digit reader both paths share: every length, both sides of 2^64, and a
// bad byte at every position of the eight-at-a-time part and the tail.
TEST(Digits, DecimalsAtEveryLengthAndLimit) {
  using detail::decimal_u64;
  uint64_t v = 0;
  for (size_t n = 1; n <= 19; ++n) {
    v = v * 10 + n % 10;
    std::string s;
    for (size_t i = 1; i <= n; ++i) s += static_cast<char>('0' + i % 10);
    EXPECT_EQ(decimal_u64(s), v) << s;
    for (size_t i = 0; i < n; ++i) {
      for (char bad : {'/', ':', 'a', ' ', '\0'}) {
        std::string b = s;
        b[i] = bad;
        EXPECT_FALSE(decimal_u64(b)) << b;
      }
    }
  }
  EXPECT_EQ(decimal_u64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(decimal_u64("18446744073709551616"));
  EXPECT_FALSE(decimal_u64("99999999999999999999"));
  EXPECT_EQ(decimal_u64("00000000000000000001"), 1u);
  EXPECT_FALSE(decimal_u64("000000000000000000001"));  // 21 digits
  EXPECT_FALSE(decimal_u64(""));
  EXPECT_EQ(detail::snowflake(R"("81384788765712384")"), 81384788765712384u);
  EXPECT_FALSE(detail::snowflake(R"("")"));
  EXPECT_FALSE(detail::snowflake("81384788765712384"));
  EXPECT_FALSE(detail::snowflake(R"("8138478876571238x")"));
}

}  // namespace
}  // namespace shardring::parse
