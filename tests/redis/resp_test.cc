// tests/redis/resp_test.cc: the RESP codec against the bytes Redis writes
// and reads (the protocol spec's examples), fed whole and a byte at a time,
// and every limit crossed.
#include "redis/resp.h"

#include <gtest/gtest.h>

#include <string>

namespace shardring::redis {
namespace {

using Type = Reply::Type;

TEST(CommandWriter, WritesArraysOfBulkStrings) {
  std::string out;
  CommandWriter w(out);
  w.command({"SET", "k", "v"});
  w.begin(4);
  w.arg("XADD");
  w.arg(uint64_t{42});
  w.arg(int64_t{-7});
  w.arg(std::string_view("a\r\nb", 4));
  EXPECT_EQ(out,
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
            "*4\r\n$4\r\nXADD\r\n$2\r\n42\r\n$2\r\n-7\r\n$4\r\na\r\nb\r\n");
  EXPECT_EQ(w.commands(), 2u);
}

TEST(CommandWriter, EmptyArgument) {
  std::string out;
  CommandWriter w(out);
  w.command({"GET", ""});
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
}

// Every reply type, as Redis writes it.
constexpr std::string_view kStream =
    "+OK\r\n"
    "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    ":1000\r\n"
    ":-3\r\n"
    "$5\r\nhe\r\no\r\n"
    "$0\r\n\r\n"
    "$-1\r\n"
    "*-1\r\n"
    "*0\r\n"
    "*3\r\n:1\r\n$3\r\nfoo\r\n*2\r\n+a\r\n$-1\r\n";

void ExpectStream(const std::vector<Reply>& r) {
  ASSERT_EQ(r.size(), 10u);
  EXPECT_EQ(r[0].type, Type::kStatus);
  EXPECT_EQ(r[0].str, "OK");
  EXPECT_TRUE(r[1].is_error());
  EXPECT_EQ(r[1].error_code(), "NOSCRIPT");
  EXPECT_EQ(r[2].integer, 1000);
  EXPECT_EQ(r[3].integer, -3);
  EXPECT_EQ(r[4].type, Type::kBulk);
  EXPECT_EQ(r[4].str, "he\r\no");
  EXPECT_EQ(r[5].type, Type::kBulk);
  EXPECT_EQ(r[5].str, "");
  EXPECT_TRUE(r[6].is_nil());
  EXPECT_TRUE(r[7].is_nil());
  EXPECT_EQ(r[8].type, Type::kArray);
  EXPECT_TRUE(r[8].elements.empty());
  ASSERT_EQ(r[9].elements.size(), 3u);
  EXPECT_EQ(r[9].elements[1].str, "foo");
  EXPECT_EQ(r[9].elements[2].elements[0].str, "a");
  EXPECT_TRUE(r[9].elements[2].elements[1].is_nil());
  EXPECT_EQ(r[9].debug_string(), "[(integer) 1, \"foo\", [a, (nil)]]");
}

TEST(ReplyReader, EveryTypeWhole) {
  ReplyReader rd;
  rd.feed(kStream);
  std::vector<Reply> got;
  Reply r;
  while (rd.next(&r) == ReplyReader::Result::kReply) got.push_back(r);
  ExpectStream(got);
  EXPECT_EQ(rd.buffered(), 0u);
}

TEST(ReplyReader, EveryTypeOneByteAtATime) {
  ReplyReader rd;
  std::vector<Reply> got;
  Reply r;
  for (char c : kStream) {
    rd.feed(std::string_view(&c, 1));
    while (rd.next(&r) == ReplyReader::Result::kReply) got.push_back(r);
  }
  ExpectStream(got);
}

TEST(ReplyReader, IncompleteIsNotAnError) {
  ReplyReader rd;
  rd.feed("$5\r\nhel");
  Reply r;
  EXPECT_EQ(rd.next(&r), ReplyReader::Result::kNeedMore);
  rd.feed("lo\r");
  EXPECT_EQ(rd.next(&r), ReplyReader::Result::kNeedMore);
  rd.feed("\n");
  ASSERT_EQ(rd.next(&r), ReplyReader::Result::kReply);
  EXPECT_EQ(r.str, "hello");
}

ReplyReader::Result ReadOne(std::string_view bytes, std::string* error) {
  ReplyReader rd;
  rd.feed(bytes);
  Reply r;
  auto res = rd.next(&r, error);
  if (res == ReplyReader::Result::kProtocolError) {
    // Sticky: the stream cannot be read past a protocol error.
    std::string again;
    EXPECT_EQ(rd.next(&r, &again), ReplyReader::Result::kProtocolError);
    EXPECT_EQ(again, *error);
  }
  return res;
}

TEST(ReplyReader, HostileRepliesAreProtocolErrors) {
  const char* bad[] = {
      "?what\r\n",                  // unknown type byte
      ":12x\r\n",                   // bad integer
      ":\r\n",                      // empty integer
      ":99999999999999999999\r\n",  // overflow
      "$-2\r\n",                    // negative length
      "$3\r\nabcd\r\n",             // bulk not ended by CRLF
      "*-5\r\n",                    // negative count
      "$+3\r\nabc\r\n",             // a sign RESP never sends
  };
  for (const char* b : bad) {
    std::string error;
    EXPECT_EQ(ReadOne(b, &error), ReplyReader::Result::kProtocolError) << b;
    EXPECT_FALSE(error.empty()) << b;
  }
}

// "$N\r\n" / "*N\r\n" (a helper: GCC 12 warns falsely on "$" + to_string()).
std::string Header(char kind, int64_t n) {
  std::string s(1, kind);
  s += std::to_string(n);
  s += "\r\n";
  return s;
}

TEST(ReplyReader, LimitsAreCrossedNotAllocated) {
  std::string error;
  // One byte over each limit: refused from the header alone.
  EXPECT_EQ(ReadOne(Header('$', kMaxBulkBytes + 1), &error), ReplyReader::Result::kProtocolError);
  EXPECT_NE(error.find("over the limit"), std::string::npos) << error;
  EXPECT_EQ(ReadOne(Header('*', kMaxArrayElements + 1), &error),
            ReplyReader::Result::kProtocolError);
  // At the limit: waits for the bytes (a claim it could still honour).
  EXPECT_EQ(ReadOne(Header('$', kMaxBulkBytes), &error), ReplyReader::Result::kNeedMore);
  EXPECT_EQ(ReadOne(Header('*', kMaxArrayElements) + ":1\r\n", &error),
            ReplyReader::Result::kNeedMore);
  // Nesting: kMaxDepth levels read, one more refused.
  std::string ok, deep;
  for (int i = 0; i < kMaxDepth; ++i) ok += "*1\r\n";
  ok += ":1\r\n";
  EXPECT_EQ(ReadOne(ok, &error), ReplyReader::Result::kReply);
  for (int i = 0; i <= kMaxDepth; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  EXPECT_EQ(ReadOne(deep, &error), ReplyReader::Result::kProtocolError);
  // A line without its CRLF: waits up to kMaxLineBytes, then refuses.
  EXPECT_EQ(ReadOne("+" + std::string(kMaxLineBytes, 'a'), &error), ReplyReader::Result::kNeedMore);
  EXPECT_EQ(ReadOne("+" + std::string(kMaxLineBytes + 1, 'a'), &error),
            ReplyReader::Result::kProtocolError);
}

TEST(ParseInt, WholeDecimalsOnly) {
  int64_t v = 0;
  EXPECT_TRUE(parse_int("0", &v));
  EXPECT_TRUE(parse_int("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_FALSE(parse_int("", &v));
  EXPECT_FALSE(parse_int("-", &v));
  EXPECT_FALSE(parse_int(" 1", &v));
  EXPECT_FALSE(parse_int("1 ", &v));
  EXPECT_FALSE(parse_int("9223372036854775808", &v));
}

}  // namespace
}  // namespace shardring::redis
