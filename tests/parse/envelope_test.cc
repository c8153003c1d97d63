// tests/parse/envelope_test.cc: Parser::parse and friends on generated input:
// key orders, every JSON type of d with exact byte views, limits, truncation,
// bad UTF-8, duplicates, routing keys and the t-only read.
#include "parse/envelope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/parse/corpus.h"

namespace shardring::parse {
namespace {

using testing::Padded;
using testing::wrap_dispatch;

constexpr Options kFast{.check = Check::kEnvelope};
// Every check, the full one by both its paths (the stage-1 index walk and
// the On-Demand reference).
constexpr Options kBoth[] = {{.check = Check::kFull},
                             {.check = Check::kFull, .fast_path = false},
                             {.check = Check::kEnvelope}};

Errc Parse(Parser& p, std::string_view json, Envelope& env, Options opt = {}) {
  Padded buf(json);
  Errc e = p.parse(buf.view(), env, opt);
  if (e == Errc::kOk && env.d_kind != JsonKind::kAbsent) {
    // The view lies inside the message.
    EXPECT_GE(env.d.data(), buf.begin());
    EXPECT_LE(env.d.data() + env.d.size(), buf.end());
  }
  // Copy the views out before the buffer goes away.
  static thread_local std::string d_copy, t_copy;
  d_copy.assign(env.d);
  env.d = d_copy;
  if (env.t) {
    t_copy.assign(*env.t);
    env.t = t_copy;
  }
  return e;
}

TEST(ParseEnvelope, ReadsOpSeqTypeAndDInEveryKeyOrder) {
  Parser p;
  std::string order = "dost";
  do {
    SCOPED_TRACE(order);
    const std::string msg = wrap_dispatch(R"({"a":[1,"x"],"b":{}})", "MESSAGE_CREATE", 42, order);
    for (Options opt : kBoth) {
      Envelope env;
      ASSERT_EQ(Parse(p, msg, env, opt), Errc::kOk);
      EXPECT_EQ(env.op, 0);
      EXPECT_EQ(env.s, 42u);
      EXPECT_EQ(env.t, "MESSAGE_CREATE");
      EXPECT_EQ(env.type, EventType::kMessageCreate);
      EXPECT_EQ(env.d, R"({"a":[1,"x"],"b":{}})");
      EXPECT_EQ(env.d_kind, JsonKind::kObject);
    }
  } while (std::next_permutation(order.begin(), order.end()));
}

struct DCase {
  std::string_view json;
  JsonKind kind;
};
constexpr DCase kDCases[] = {
    {"{}", JsonKind::kObject},
    {R"({"a":1,"b":[true,false,null],"c":{"d":"e"}})", JsonKind::kObject},
    {"[]", JsonKind::kArray},
    {R"([1,-2.5e+3,{"b":null},[],"s"])", JsonKind::kArray},
    {R"("")", JsonKind::kString},
    {R"("plain")", JsonKind::kString},
    {R"("esc \"quoted\" \\ \/ \b\f\n\r\t")", JsonKind::kString},
    {R"("\u00e9\u4e2d\ud83d\ude00")", JsonKind::kString},
    {"\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"", JsonKind::kString},
    {"0", JsonKind::kNumber},
    {"-0", JsonKind::kNumber},
    {"42", JsonKind::kNumber},
    {"-12.5e-3", JsonKind::kNumber},
    {"1E+400", JsonKind::kNumber},
    {"123456789012345678901234567890", JsonKind::kNumber},
    {"true", JsonKind::kBool},
    {"false", JsonKind::kBool},
    {"null", JsonKind::kNull},
};

// d's view must be its exact text whatever surrounds it.
TEST(ParseEnvelope, DViewIsExactForEveryJsonTypeAndPosition) {
  Parser p;
  const std::string_view spaces[] = {"", " ", "\n\t\r "};
  for (const DCase& c : kDCases) {
    for (std::string_view ws : spaces) {
      const std::string w(ws);
      const std::string d = w + std::string(c.json) + w;
      const std::string msgs[] = {
          "{\"d\":" + d + ",\"op\":0}",
          "{\"op\":0,\"d\":" + d + "}",
          "{\"op\":0," + w + "\"d\"" + w + ":" + d + ",\"s\":null}",
          w + "{" + w + "\"s\":1,\"d\":" + d + "," + w + "\"op\":0" + w + "}" + w,
      };
      for (const std::string& msg : msgs) {
        SCOPED_TRACE(msg);
        for (Options opt : kBoth) {
          for (bool routing : {false, true}) {
            opt.routing_keys = routing;
            Envelope env;
            ASSERT_EQ(Parse(p, msg, env, opt), Errc::kOk);
            EXPECT_EQ(env.d, c.json);
            EXPECT_EQ(env.d_kind, c.kind);
          }
        }
      }
    }
  }
}

TEST(ParseEnvelope, AbsentDIsReportedAbsent) {
  Parser p;
  for (Options opt : kBoth) {
    Envelope env;
    ASSERT_EQ(Parse(p, R"({"op":11})", env, opt), Errc::kOk);
    EXPECT_EQ(env.op, 11);
    EXPECT_EQ(env.d_kind, JsonKind::kAbsent);
    EXPECT_TRUE(env.d.empty());
    EXPECT_FALSE(env.s.has_value());
    EXPECT_FALSE(env.t.has_value());
    EXPECT_EQ(env.type, EventType::kNone);
  }
}

TEST(ParseEnvelope, SeqIsNulloptWhenNullOrAbsentAndCoversUint64) {
  Parser p;
  Envelope env;
  ASSERT_EQ(Parse(p, R"({"op":1,"s":null})", env), Errc::kOk);
  EXPECT_FALSE(env.s.has_value());
  ASSERT_EQ(Parse(p, R"({"op":0,"s":0})", env), Errc::kOk);
  EXPECT_EQ(env.s, 0u);
  ASSERT_EQ(Parse(p, R"({"op":0,"s":9223372036854775808})", env), Errc::kOk);
  EXPECT_EQ(env.s, uint64_t{1} << 63);
  ASSERT_EQ(Parse(p, R"({"op":0,"s":18446744073709551615})", env), Errc::kOk);
  EXPECT_EQ(env.s, UINT64_MAX);
  for (std::string_view bad : {"18446744073709551616", "99999999999999999999999", "-1", "1.5",
                               "1e3", "\"7\"", "true", "nul", "01", "[]", "{}"}) {
    SCOPED_TRACE(bad);
    for (Options opt : kBoth) {
      EXPECT_EQ(Parse(p, "{\"op\":0,\"s\":" + std::string(bad) + "}", env, opt), Errc::kBadSeq);
    }
  }
}

TEST(ParseEnvelope, OpIsRequiredAndMustBeAnInt32) {
  Parser p;
  Envelope env;
  EXPECT_EQ(Parse(p, R"({"s":1,"t":"READY","d":{}})", env), Errc::kMissingOp);
  EXPECT_EQ(Parse(p, R"({})", env), Errc::kMissingOp);
  ASSERT_EQ(Parse(p, R"({"op":2147483647})", env), Errc::kOk);
  EXPECT_EQ(env.op, 2147483647);
  for (std::string_view bad : {"2147483648", "-2147483649", "1.0", "\"0\"", "null", "[0]", "1e0"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(Parse(p, "{\"op\":" + std::string(bad) + "}", env), Errc::kBadOp);
  }
}

TEST(ParseEnvelope, TypeIsNullOrAStringAndUnknownNamesAreKept) {
  Parser p;
  Envelope env;
  ASSERT_EQ(Parse(p, R"({"op":0,"t":"SOMETHING_NEW","d":{}})", env), Errc::kOk);
  EXPECT_EQ(env.type, EventType::kUnknown);
  EXPECT_EQ(env.t, "SOMETHING_NEW");
  ASSERT_EQ(Parse(p, R"({"op":0,"t":null})", env), Errc::kOk);
  EXPECT_EQ(env.type, EventType::kNone);
  EXPECT_FALSE(env.t.has_value());
  ASSERT_EQ(Parse(p, R"({"op":0,"t":""})", env), Errc::kOk);
  EXPECT_EQ(env.t, "");
  EXPECT_EQ(env.type, EventType::kUnknown);
  for (std::string_view bad : {"5", "true", "{}", "[\"READY\"]", "nul"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(Parse(p, "{\"op\":0,\"t\":" + std::string(bad) + "}", env), Errc::kBadType);
  }
}

TEST(ParseEnvelope, TypeWithEscapesIsDecoded) {
  Parser p;
  Envelope env;
  ASSERT_EQ(Parse(p, R"({"op":0,"t":"MESSAGE\u005fCREATE"})", env), Errc::kOk);
  EXPECT_EQ(env.t, "MESSAGE_CREATE");
  EXPECT_EQ(env.type, EventType::kMessageCreate);
  EXPECT_EQ(Parse(p, R"({"op":0,"t":"BAD\qESCAPE"})", env), Errc::kBadJson);
}

TEST(ParseEnvelope, EscapedKeysAreTheKeysTheyDecodeTo) {
  Parser p;
  Envelope env;
  ASSERT_EQ(Parse(p, R"({"\u006fp":7,"\u0064":[1],"\u0073":3,"\u0074":"X"})", env), Errc::kOk);
  EXPECT_EQ(env.op, 7);
  EXPECT_EQ(env.d, "[1]");
  EXPECT_EQ(env.s, 3u);
  EXPECT_EQ(env.t, "X");
  EXPECT_EQ(Parse(p, R"({"op":1,"o\u0070":2})", env), Errc::kDuplicateKey);
  // Escaped keys that are not envelope keys, valid or not.
  for (Options opt : kBoth) {
    EXPECT_EQ(Parse(p, R"({"op":0,"\u0078":1,"x\ny":[]})", env, opt), Errc::kOk);
    EXPECT_EQ(Parse(p, R"({"op":0,"\u0078":"a\u0041","\\\\d":2})", env, opt), Errc::kOk);
    EXPECT_EQ(Parse(p, R"({"op":0,"a\qb":1})", env, opt), Errc::kBadJson);
    EXPECT_EQ(Parse(p, R"({"op":0,"ab\qb":1})", env, opt),
              opt.check == Check::kFull ? Errc::kBadJson : Errc::kOk);
  }
}

TEST(ParseEnvelope, UnknownKeysAreSkipped) {
  Parser p;
  const std::string msg = R"({"_trace":["gw",{"micros":1,"calls":["x",[{"y":null}]]}],"op":0,)"
                          R"("t":"RESUMED","xs":"}]\"{[","s":30,"d":{"k":1},"z":-1.5e3})";
  for (Options opt : kBoth) {
    Envelope env;
    ASSERT_EQ(Parse(p, msg, env, opt), Errc::kOk);
    EXPECT_EQ(env.type, EventType::kResumed);
    EXPECT_EQ(env.s, 30u);
    EXPECT_EQ(env.d, R"({"k":1})");
  }
}

// `shardring gateway` stamps its send time into "_ts_ns" for load tests.
TEST(ParseEnvelope, GatewayStampIsReadWhenItIsAPlainUnsignedInteger) {
  Parser p;
  for (Options opt : kBoth) {
    Envelope env;
    ASSERT_EQ(Parse(p, R"({"t":"X","s":1,"op":0,"_ts_ns":1234567890123,"d":{}})", env, opt),
              Errc::kOk);
    EXPECT_EQ(env.stamp_ns, 1234567890123u);
    EXPECT_EQ(env.d, "{}");
    ASSERT_EQ(Parse(p, R"({"op":0,"d":{},"_ts_ns":18446744073709551615})", env, opt), Errc::kOk);
    EXPECT_EQ(env.stamp_ns, 18446744073709551615u);
    // Not a stamp: left at 0, and the message is still judged as JSON.
    for (std::string_view msg :
         {R"({"op":0,"_ts_ns":-5})", R"({"op":0,"_ts_ns":"5"})", R"({"op":0,"_ts_ns":1.5})",
          R"({"op":0,"_ts_ns":18446744073709551616})", R"({"op":0,"_ts_nsx":5})",
          R"({"op":0,"_ts":5})", R"({"op":0})"}) {
      SCOPED_TRACE(msg);
      ASSERT_EQ(Parse(p, msg, env, opt), Errc::kOk);
      EXPECT_EQ(env.stamp_ns, 0u);
    }
  }
  Envelope env;
  EXPECT_EQ(Parse(p, R"({"op":0,"_ts_ns":12x})", env, {}), Errc::kBadD);
}

// Two parsers reading the same bytes must not see different events.
TEST(ParseEnvelope, DuplicateEnvelopeKeysAreRefused) {
  Parser p;
  for (std::string_view dup :
       {R"({"op":0,"op":1})", R"({"op":0,"s":1,"s":2})", R"({"op":0,"t":"READY","t":"RESUMED"})",
        R"({"op":0,"d":1,"d":{}})", R"({"d":null,"op":0,"d":null})"}) {
    SCOPED_TRACE(dup);
    for (Options opt : kBoth) {
      Envelope env;
      EXPECT_EQ(Parse(p, dup, env, opt), Errc::kDuplicateKey);
    }
  }
}

TEST(ParseEnvelope, WhitespaceAnywhereIsAccepted) {
  Parser p;
  const std::string msg =
      " \r\n\t{ \"t\" :\t\"READY\" ,\n\"s\"\r:\n1 , \"op\" : 0 ,\"d\" :\n{ "
      "\"v\" : [ 1 , 2 ] }\n}\n\t ";
  for (Options opt : kBoth) {
    Envelope env;
    ASSERT_EQ(Parse(p, msg, env, opt), Errc::kOk);
    EXPECT_EQ(env.type, EventType::kReady);
    EXPECT_EQ(env.s, 1u);
    EXPECT_EQ(env.d, "{ \"v\" : [ 1 , 2 ] }");
  }
}

TEST(ParseEnvelope, NotAnObjectOrTrailingDataIsRefused) {
  Parser p;
  Envelope env;
  EXPECT_EQ(Parse(p, "", env), Errc::kEmpty);
  EXPECT_EQ(Parse(p, " \n ", env), Errc::kEmpty);
  EXPECT_EQ(Parse(p, "[1]", env), Errc::kNotObject);
  EXPECT_EQ(Parse(p, "\"op\"", env), Errc::kNotObject);
  EXPECT_EQ(Parse(p, "7", env), Errc::kNotObject);
  EXPECT_EQ(Parse(p, R"({"op":0} {})", env), Errc::kTrailingData);
  EXPECT_EQ(Parse(p, R"({"op":0}})", env), Errc::kTrailingData);
  EXPECT_NE(Parse(p, R"({"op":0} 1)", env), Errc::kOk);
  EXPECT_NE(Parse(p, R"({"op":0}x)", env), Errc::kOk);
  EXPECT_NE(Parse(p, R"({"op":0,})", env), Errc::kOk);
  EXPECT_NE(Parse(p, R"({"op":0 "d":1})", env), Errc::kOk);
  EXPECT_NE(Parse(p, R"({"op":0,"d"})", env), Errc::kOk);
  EXPECT_NE(Parse(p, R"({"op":0,"d":})", env), Errc::kOk);
  EXPECT_NE(Parse(p, R"({op:0})", env), Errc::kOk);
}

// simdjson 3.0.1 skips an unread string followed by ':' as if it were a key;
// the parser reads every string so that such input is refused.
TEST(ParseEnvelope, MisplacedTokensAroundSkippedValuesAreRefusedInEveryMode) {
  Parser p;
  for (std::string_view msg :
       {R"({"op":0,"x":"a":"b"})", R"({"op":0,"t":"X":"Y","d":1})", R"({"op":0,"d":"x":"y"})",
        R"({"x":"a":"op","op":1})", R"({"op":0,"d":{"a":1},"_t":"q":"r","s":1})",
        R"({"op":0,"x":],"d":1})", R"({"op":0,"x":},"d":1})", R"({"op":0,"x":,"d":1})"}) {
    SCOPED_TRACE(msg);
    for (Options opt : kBoth) {
      for (bool routing : {false, true}) {
        opt.routing_keys = routing;
        Envelope env;
        EXPECT_NE(Parse(p, msg, env, opt), Errc::kOk);
      }
    }
  }
  Envelope env;
  for (std::string_view d : {R"({"guild_id":"1":"2"})", R"({"a":],"b":[1]})", R"({"a":},"b":1})"}) {
    EXPECT_NE(Parse(p, "{\"op\":0,\"d\":" + std::string(d) + "}", env,
                    {.check = Check::kEnvelope, .routing_keys = true}),
              Errc::kOk)
        << d;
  }
}

// Every proper prefix of a payload is an error in every mode: never a
// crash, never a success with a shorter d.
TEST(ParseEnvelope, TruncatedInputIsAnErrorAtEveryLength) {
  Parser p;
  std::vector<std::string> msgs = {
      R"({"t":"MESSAGE_CREATE","s":12,"op":0,"d":{"id":"1","content":"h\"i}","a":[1,{"b":[]}],"n":null}})",
      R"({"op":0,"d":"string d","s":1})",
      R"({"op":9,"d":false})",
      R"({"d":-12.5e3,"op":1})",
      R"({"op":11})",
  };
  for (const auto& f : testing::load_corpus()) {
    if (f.name == "disgord_op0_message_create.json" ||
        f.name == "kord_op0_resumed_with_trace.json") {
      msgs.emplace_back(testing::trim(f.bytes));
    }
  }
  ASSERT_EQ(msgs.size(), 7u) << "corpus files missing";
  for (const std::string& msg : msgs) {
    for (size_t n = 0; n < msg.size(); ++n) {
      SCOPED_TRACE(msg.substr(0, n));
      for (Options opt : kBoth) {
        for (bool routing : {false, true}) {
          opt.routing_keys = routing;
          Envelope env;
          EXPECT_NE(Parse(p, std::string_view(msg).substr(0, n), env, opt), Errc::kOk);
        }
      }
    }
    Envelope env;
    EXPECT_EQ(Parse(p, msg, env), Errc::kOk) << msg;
  }
}

TEST(ParseEnvelope, InvalidUtf8InDOrTIsRefusedInEveryMode) {
  Parser p;
  const std::string_view bad[] = {"\xff",         "\xc0\xaf", "\xed\xa0\x80",
                                  "\xf0\x9f\x98", "\x80",     "\xf4\x90\x80\x80"};
  for (std::string_view b : bad) {
    const std::string s(b);
    const std::string msgs[] = {
        "{\"op\":0,\"d\":{\"content\":\"a" + s + "b\"}}",
        "{\"op\":0,\"d\":\"" + s + "\"}",
        "{\"op\":0,\"t\":\"MESSAGE" + s + "\",\"d\":{}}",
        "{\"op\":0,\"_x\":\"" + s + "\"}",
    };
    for (const std::string& msg : msgs) {
      for (Options opt : kBoth) {
        Envelope env;
        EXPECT_EQ(Parse(p, msg, env, opt), Errc::kBadUtf8);
      }
      EventName name;
      Padded buf(msg);
      if (msg.find("\"t\"") != std::string::npos) {
        EXPECT_EQ(p.event_type(buf.view(), name), Errc::kBadUtf8);
      }
    }
  }
}

TEST(ParseEnvelope, ControlCharactersInStringsAreRefused) {
  Parser p;
  Envelope env;
  for (Options opt : kBoth) {
    EXPECT_EQ(Parse(p, "{\"op\":0,\"d\":\"a\nb\"}", env, opt), Errc::kBadJson);
    EXPECT_EQ(Parse(p, std::string("{\"op\":0,\"d\":[\"\0\"]}", 18), env, opt), Errc::kBadJson);
  }
}

// The envelope check only finds d's extent; the full check (or validate_d)
// catches what is wrong inside it.
TEST(ParseEnvelope, InvalidJsonInsideDIsCaughtByTheFullCheck) {
  Parser p;
  for (std::string_view d : {"{]",
                             "[}",
                             "[1 2]",
                             "{\"a\" 1}",
                             "{\"a\":tru}",
                             "{\"a\":nulll}",
                             "{\"a\":01}",
                             "{\"a\":1.}",
                             "{\"a\":-}",
                             "{\"a\":.5}",
                             "[1,]",
                             "{\"a\":1,}",
                             "{\"a\"}",
                             "{1:2}",
                             "[\"\\q\"]",
                             "[\"\\ud800\"]",
                             "[\"\\udc00x\"]",
                             "[\"\\u12\"]",
                             "{\"\\x\":1}",
                             "[1]]",
                             "[[1]",
                             "tru",
                             "nul",
                             "-",
                             "1.5e",
                             "+1",
                             "0x10",
                             "[,1]",
                             "{,}",
                             "[:]",
                             "[\"a\":\"b\"]",
                             "{\"a\":\"b\":\"c\"}",
                             "{\"a\":{\"b\":\"c\":1}}"}) {
    SCOPED_TRACE(d);
    const std::string msg = "{\"op\":0,\"d\":" + std::string(d) + "}";
    Envelope env;
    const Errc full = Parse(p, msg, env);
    EXPECT_TRUE(full == Errc::kBadD || full == Errc::kBadJson || full == Errc::kTrailingData)
        << to_string(full);
    const Errc fast = Parse(p, msg, env, kFast);
    if (fast == Errc::kOk) {
      Padded dbuf(env.d);
      EXPECT_EQ(p.validate_d(dbuf.view()), Errc::kBadD) << env.d;
    }
  }
}

// What the envelope check promises and no more: d's top level is well
// formed, what is below it is only bracket-counted.
TEST(ParseEnvelope, EnvelopeCheckLeavesWhatIsBelowDsTopLevelUnchecked) {
  Parser p;
  for (std::string_view d : {R"({"a":{]})", R"([[1 2]])", R"({"a":["\q"]})", R"({"a":[tru]})"}) {
    SCOPED_TRACE(d);
    const std::string msg = "{\"op\":0,\"d\":" + std::string(d) + "}";
    Envelope env;
    ASSERT_EQ(Parse(p, msg, env, kFast), Errc::kOk);
    EXPECT_EQ(env.d, d);
    EXPECT_EQ(Parse(p, msg, env), Errc::kBadD);
  }
  for (std::string_view d :
       {R"({"a" 1})", R"({"a":1,})", R"([1 2])", R"([1,])", R"({"a":])", R"([,1])"}) {
    SCOPED_TRACE(d);
    Envelope env;
    EXPECT_NE(Parse(p, "{\"op\":0,\"d\":" + std::string(d) + "}", env, kFast), Errc::kOk);
  }
}

std::string Nested(size_t depth, bool objects) {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += objects ? "{\"a\":" : "[";
  s += "1";
  for (size_t i = 0; i < depth; ++i) s += objects ? "}" : "]";
  return s;
}

TEST(ParseEnvelope, FullCheckRefusesNestingDeeperThanMaxDepth) {
  Parser p;
  for (bool objects : {false, true}) {
    // The envelope is level 1, so d may nest kMaxDepth - 1 deep.
    const std::string ok = "{\"op\":0,\"d\":" + Nested(kMaxDepth - 1, objects) + "}";
    const std::string deep = "{\"op\":0,\"d\":" + Nested(kMaxDepth, objects) + "}";
    Envelope env;
    EXPECT_EQ(Parse(p, ok, env), Errc::kOk);
    EXPECT_EQ(Parse(p, deep, env), Errc::kTooDeep);
    // The envelope check does not limit depth: it only counts brackets.
    ASSERT_EQ(Parse(p, deep, env, kFast), Errc::kOk);
    EXPECT_EQ(env.d, Nested(kMaxDepth, objects));
    Padded d(env.d);
    EXPECT_EQ(p.validate_d(d.view()), Errc::kTooDeep);
    Padded d_ok(Nested(kMaxDepth - 1, objects));
    EXPECT_EQ(p.validate_d(d_ok.view()), Errc::kOk);
    // Unknown keys are checked the same way.
    const std::string deep_extra = "{\"op\":0,\"_x\":" + Nested(kMaxDepth, objects) + "}";
    EXPECT_EQ(Parse(p, deep_extra, env), Errc::kTooDeep);
  }
}

TEST(ParseEnvelope, MessagesOverMaxBytesAreRefused) {
  Parser p;
  const std::string head = "{\"op\":0,\"d\":\"";
  std::string msg = head;
  msg.append(kMaxMessageBytes - head.size() - 2, 'x');
  msg += "\"}";
  ASSERT_EQ(msg.size(), kMaxMessageBytes);
  Envelope env;
  ASSERT_EQ(Parse(p, msg, env), Errc::kOk);
  EXPECT_EQ(env.d.size(), kMaxMessageBytes - head.size() - 1 + 1);
  msg.insert(msg.size() - 2, "y");
  EXPECT_EQ(Parse(p, msg, env), Errc::kTooLarge);
  // And the parser still works on small messages afterwards.
  ASSERT_EQ(Parse(p, R"({"op":0,"d":[1]})", env), Errc::kOk);
  EXPECT_EQ(env.d, "[1]");
}

TEST(ParseEnvelope, RoutingKeysComeFromDsTopLevelOnly) {
  Parser p;
  struct Case {
    std::string_view d;
    std::optional<uint64_t> guild, channel;
  };
  const Case cases[] = {
      {R"({"guild_id":"81384788765712384","channel_id":"1"})", 81384788765712384u, 1u},
      {R"({"channel_id":"18446744073709551615","x":{"guild_id":"5"}})", std::nullopt, UINT64_MAX},
      {R"({"message":{"guild_id":"5","channel_id":"6"}})", std::nullopt, std::nullopt},
      {R"({"guild_id":null,"channel_id":"18446744073709551616"})", std::nullopt, std::nullopt},
      {R"({"guild_id":5,"channel_id":""})", std::nullopt, std::nullopt},
      {R"({"guild_id":"12a","channel_id":" 1"})", std::nullopt, std::nullopt},
      {R"([{"guild_id":"5"}])", std::nullopt, std::nullopt},
      {R"("guild_id")", std::nullopt, std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.d);
    for (Options opt : kBoth) {
      opt.routing_keys = true;
      Envelope env;
      ASSERT_EQ(Parse(p, wrap_dispatch(c.d, "X", 1), env, opt), Errc::kOk);
      EXPECT_EQ(env.routing.guild_id, c.guild);
      EXPECT_EQ(env.routing.channel_id, c.channel);
      EXPECT_EQ(env.d, c.d);
    }
    Padded d(c.d);
    RoutingKeys keys;
    const Errc e = p.routing_keys(d.view(), keys);
    if (c.d[0] == '{') {
      ASSERT_EQ(e, Errc::kOk);
      EXPECT_EQ(keys.guild_id, c.guild);
      EXPECT_EQ(keys.channel_id, c.channel);
    } else {
      EXPECT_EQ(e, Errc::kNotObject);
    }
  }
  // Not asked for: not filled.
  Envelope env;
  ASSERT_EQ(Parse(p, wrap_dispatch(R"({"guild_id":"1"})", "X", 1), env), Errc::kOk);
  EXPECT_FALSE(env.routing.guild_id.has_value());
}

TEST(ParseEventType, ReadsTheNameInAnyLayout) {
  Parser p;
  struct Case {
    std::string_view msg;
    std::optional<std::string_view> t;
    EventType type;
  };
  const Case cases[] = {
      {R"({"t":"MESSAGE_CREATE","s":1,"op":0,"d":{}})", "MESSAGE_CREATE",
       EventType::kMessageCreate},
      {R"({"t":null,"s":null,"op":11,"d":null})", std::nullopt, EventType::kNone},
      {R"({"op":0,"d":{"t":"READY"},"t":"GUILD_CREATE","s":1})", "GUILD_CREATE",
       EventType::kGuildCreate},
      {R"({ "t" : "READY" })", "READY", EventType::kReady},
      {R"({"op":10,"d":{"heartbeat_interval":1}})", std::nullopt, EventType::kNone},
      {R"({"t":"MESSAGE\u005fCREATE","op":0})", "MESSAGE_CREATE", EventType::kMessageCreate},
      {"{\"t\":\"CAF\xc3\x89\",\"op\":0}", "CAF\xc3\x89", EventType::kUnknown},
      {R"({"t":"NEW_THING","op":0})", "NEW_THING", EventType::kUnknown},
      {R"({"t":null})", std::nullopt, EventType::kNone},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.msg);
    Padded buf(c.msg);
    EventName name;
    ASSERT_EQ(p.event_type(buf.view(), name), Errc::kOk);
    EXPECT_EQ(name.t, c.t);
    EXPECT_EQ(name.type, c.type);
  }
  EventName name;
  EXPECT_EQ(p.event_type(Padded("[1]").view(), name), Errc::kNotObject);
  EXPECT_EQ(p.event_type(Padded(R"({"t":5})").view(), name), Errc::kBadType);
  // A truncated name is never read as a shorter one.
  const std::string msg = R"({"t":"MESSAGE_CREATE","op":0})";
  for (size_t n = 0; n < 21; ++n) {
    SCOPED_TRACE(n);
    EXPECT_NE(p.event_type(Padded(msg.substr(0, n)).view(), name), Errc::kOk);
  }
}

TEST(ParseEnvelope, ParserGrowsForLargerMessagesAndKeepsWorking) {
  Parser p;
  std::string big = "{\"op\":0,\"d\":[";
  for (int i = 0; i < 200000; ++i) big += "{\"id\":\"" + std::to_string(i) + "\"},";
  big.back() = ']';
  big += '}';
  ASSERT_GT(big.size(), kInitialCapacity * 40);
  Envelope env;
  ASSERT_EQ(Parse(p, R"({"op":1,"d":2})", env), Errc::kOk);
  ASSERT_EQ(Parse(p, big, env), Errc::kOk);
  EXPECT_EQ(env.d.size(), big.size() - 13);
  ASSERT_EQ(Parse(p, R"({"op":1,"d":3})", env), Errc::kOk);
  EXPECT_EQ(env.d, "3");
}

TEST(ParseEnvelope, ValidateDAcceptsEveryValidType) {
  Parser p;
  for (const DCase& c : kDCases) {
    SCOPED_TRACE(c.json);
    EXPECT_EQ(p.validate_d(Padded(c.json).view()), Errc::kOk);
  }
  EXPECT_EQ(p.validate_d(Padded("1 2").view()), Errc::kBadD);
  EXPECT_EQ(p.validate_d(Padded("{} []").view()), Errc::kBadD);
  EXPECT_EQ(p.validate_d(Padded("\"a\" x").view()), Errc::kBadD);
  EXPECT_EQ(p.validate_d(Padded("").view()), Errc::kBadD);
}

// Inputs with one fault each: the full check's two paths name it alike.
TEST(ParseEnvelope, FullCheckPathsNameEachSingleFaultAlike) {
  struct Case {
    std::string_view json;
    Errc want;
  };
  const Case cases[] = {
      {"", Errc::kEmpty},
      {"[1]", Errc::kNotObject},
      {"7", Errc::kNotObject},
      {R"({"op":0}})", Errc::kTrailingData},
      {R"({"op":0} {})", Errc::kTrailingData},
      {R"({"op":0}x)", Errc::kBadJson},
      {R"({"op":0,})", Errc::kBadJson},
      {R"({"op":0 "d":1})", Errc::kBadJson},
      {R"({"op":0,"d"})", Errc::kBadJson},
      {R"({"d":1})", Errc::kMissingOp},
      {R"({"op":1,"op":1})", Errc::kDuplicateKey},
      {R"({"op":1,"d":1,"\u0064":2})", Errc::kDuplicateKey},
      {R"({"op":1.5})", Errc::kBadOp},
      {R"({"op":"1"})", Errc::kBadOp},
      {R"({"op":2147483648})", Errc::kBadOp},
      {R"({"op":1,"s":-1})", Errc::kBadSeq},
      {R"({"op":1,"s":18446744073709551616})", Errc::kBadSeq},
      {R"({"op":1,"s":"1"})", Errc::kBadSeq},
      {R"({"op":1,"t":1})", Errc::kBadType},
      {R"({"op":1,"t":nul})", Errc::kBadType},
      {R"({"op":1,"t":"\q"})", Errc::kBadJson},
      {R"({"op":1,"d":[1,]})", Errc::kBadD},
      {R"({"op":1,"d":{"a":tru}})", Errc::kBadD},
      {R"({"op":1,"d":{"\x":1}})", Errc::kBadD},
      {R"({"op":1,"d":["\ud800"]})", Errc::kBadD},
      {R"({"op":1,"_x":[01]})", Errc::kBadD},
      {R"({"op":1,"\x":1})", Errc::kBadJson},
      {"{\"op\":1,\"d\":\"\xff\"}", Errc::kBadUtf8},
  };
  Parser p;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    for (bool routing : {false, true}) {
      Envelope env;
      EXPECT_EQ(Parse(p, c.json, env, {.routing_keys = routing}), c.want);
      EXPECT_EQ(Parse(p, c.json, env, {.routing_keys = routing, .fast_path = false}), c.want);
    }
  }
}

TEST(ParseErrc, EveryCodeHasAName) {
  for (int i = 0; i <= static_cast<int>(Errc::kBadField); ++i) {
    EXPECT_STRNE(to_string(static_cast<Errc>(i)), "unknown") << i;
  }
  EXPECT_STREQ(to_string(Errc::kBadSeq), "bad_seq");
  EXPECT_STREQ(to_string(JsonKind::kNull), "null");
}

}  // namespace
}  // namespace shardring::parse
