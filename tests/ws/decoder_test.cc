// tests/ws/decoder_test.cc: ws::Decoder against RFC 6455 section by
// section: framing (5.2), masking (5.3), fragmentation (5.4), control
// frames (5.5), the examples of 5.7, close codes (7.4), UTF-8 (8.1), and
// every way a read can split the stream.
#include "ws/decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/ws/ws_test_util.h"

namespace shardring::ws {
namespace {

using testing::ElementsAre;
using namespace testing_util;

Decoder Client(size_t max = kMaxMessageBytes) {
  DecoderOptions o;
  o.max_message_bytes = max;
  return Decoder(Role::kClient, o);
}
Decoder Server(size_t max = kMaxMessageBytes) {
  DecoderOptions o;
  o.max_message_bytes = max;
  return Decoder(Role::kServer, o);
}

// ---- RFC 6455 5.7 examples, byte for byte -----------------------------------

TEST(WsDecoder, DecodesTheRfcSingleFrameUnmaskedTextExample) {
  std::string wire = Bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  Decoder dec = Client();
  dec.feed(AsMutableBytes(wire));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_EQ(m.kind, MessageKind::kText);
  EXPECT_EQ(m.text(), "Hello");
  EXPECT_TRUE(m.in_place);
  EXPECT_EQ(dec.next(m), Errc::kNeedMore);
}

TEST(WsDecoder, DecodesTheRfcSingleFrameMaskedTextExampleAsAServer) {
  std::string wire = Bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  Decoder dec = Server();
  dec.feed(AsMutableBytes(wire));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_EQ(m.text(), "Hello");
  // Unmasked in place: the view is the caller's own buffer.
  EXPECT_TRUE(m.in_place);
  EXPECT_EQ(reinterpret_cast<const char*>(m.payload.data()), wire.data() + 6);
  EXPECT_EQ(wire.substr(6), "Hello");
}

TEST(WsDecoder, JoinsTheRfcFragmentedTextExample) {
  std::string wire = Bytes({0x01, 0x03, 0x48, 0x65, 0x6c}) + Bytes({0x80, 0x02, 0x6c, 0x6f});
  Decoder dec = Client();
  dec.feed(AsMutableBytes(wire));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_EQ(m.kind, MessageKind::kText);
  EXPECT_EQ(m.text(), "Hello");
  EXPECT_FALSE(m.in_place);
  EXPECT_TRUE(m.padded);
}

TEST(WsDecoder, DecodesTheRfcPingAndMaskedPongExamples) {
  std::string ping = Bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  Decoder client = Client();
  EXPECT_THAT(DecodeWhole(client, ping).messages, ElementsAre("ping:Hello"));
  std::string pong = Bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  Decoder server = Server();
  EXPECT_THAT(DecodeWhole(server, pong).messages, ElementsAre("pong:Hello"));
}

TEST(WsDecoder, DecodesTheRfc256ByteAnd64KiBBinaryHeaders) {
  const std::string p256(256, '\x5a');
  std::string w256 = Bytes({0x82, 0x7E, 0x01, 0x00}) + p256;
  Decoder a = Client();
  a.feed(AsMutableBytes(w256));
  Message m;
  ASSERT_EQ(a.next(m), Errc::kOk);
  EXPECT_EQ(m.kind, MessageKind::kBinary);
  EXPECT_EQ(m.text(), p256);

  const std::string p64k(65536, '\xa5');
  std::string w64k = Bytes({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}) + p64k;
  Decoder b = Client();
  b.feed(AsMutableBytes(w64k));
  ASSERT_EQ(b.next(m), Errc::kOk);
  EXPECT_EQ(m.payload.size(), 65536u);
  EXPECT_EQ(m.text(), p64k);
}

// ---- Splits: framing must not depend on how reads chunk the stream ----------

std::string MixedWire(bool masked) {
  return Frame("hello", 0x1, true, masked) + Frame(std::string(200, 'b'), 0x2, true, masked) +
         Frame("frag", 0x1, false, masked) +
         Frame("ping!", 0x9, true, masked) +      // between fragments
         Frame("\xE2\x82", 0x0, false, masked) +  // "€" split across frames
         Frame("\xAC-end", 0x0, true, masked) + Frame(std::string(300, 'L'), 0x1, true, masked) +
         Frame("", 0xA, true, masked) + CloseFrame(1000, "bye", masked);
}

std::vector<std::string> MixedExpected() {
  return {"text:hello",
          "binary:" + std::string(200, 'b'),
          "ping:ping!",
          "text:frag\xE2\x82\xAC-end",
          "text:" + std::string(300, 'L'),
          "pong:",
          "close:1000:bye"};
}

TEST(WsDecoder, SameMessagesWhereverTheReadSplits) {
  for (bool server : {false, true}) {
    const std::string wire = MixedWire(server);
    for (size_t cut = 0; cut <= wire.size(); ++cut) {
      SCOPED_TRACE(testing::Message() << "server=" << server << " cut=" << cut);
      Decoder dec = server ? Server() : Client();
      const Decoded d = DecodePieces(dec, wire, {cut});
      EXPECT_EQ(d.messages, MixedExpected());
      EXPECT_EQ(d.last, Errc::kClosed);
    }
  }
}

TEST(WsDecoder, SameMessagesWhereverTwoReadSplitsFall) {
  const std::string wire = Frame("ab", 0x1, false, true) + Frame("p", 0x9, true, true) +
                           Frame("cd", 0x0, true, true) +
                           Frame(std::string(130, 'x'), 0x2, true, true);
  const std::vector<std::string> want = {"ping:p", "text:abcd", "binary:" + std::string(130, 'x')};
  for (size_t a = 0; a <= wire.size(); ++a) {
    for (size_t b = a; b <= wire.size(); ++b) {
      SCOPED_TRACE(testing::Message() << "cuts " << a << "," << b);
      Decoder dec = Server();
      const Decoded d = DecodePieces(dec, wire, {a, b});
      ASSERT_EQ(d.messages, want);
      ASSERT_EQ(d.last, Errc::kNeedMore);
    }
  }
}

TEST(WsDecoder, SameMessagesOneByteAtATime) {
  for (bool server : {false, true}) {
    Decoder dec = server ? Server() : Client();
    const Decoded d = DecodeByteByByte(dec, MixedWire(server));
    EXPECT_EQ(d.messages, MixedExpected());
    EXPECT_EQ(d.last, Errc::kClosed);
  }
}

TEST(WsDecoder, AssemblesA64KiBMessageArrivingInSmallReads) {
  std::mt19937 rng(7);
  std::string payload(65536 + 17, '\0');
  for (char& c : payload) c = static_cast<char>(rng());
  const std::string wire = Frame(payload, 0x2, true, true);
  std::vector<size_t> cuts;
  for (size_t at = 1000; at < wire.size(); at += 1000) cuts.push_back(at);
  Decoder dec = Server();
  const Decoded d = DecodePieces(dec, wire, cuts);
  ASSERT_EQ(d.messages.size(), 1u);
  EXPECT_EQ(d.messages[0], "binary:" + payload);
}

// ---- Copies, views and padding ---------------------------------------------

TEST(WsDecoder, ReturnsAWholeFrameAsAViewIntoTheFedBuffer) {
  std::string wire = Frame("{\"op\":11}", 0x1, true, false) + std::string(kPadding, ' ');
  Decoder dec = Client();
  dec.feed(AsMutableBytes(wire).first(wire.size() - kPadding));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_TRUE(m.in_place);
  EXPECT_EQ(reinterpret_cast<const char*>(m.payload.data()), wire.data() + 2);
  // Nothing readable after the fed span was declared: not padded.
  EXPECT_FALSE(m.padded);
}

TEST(WsDecoder, CountsDeclaredSlackAndFollowingFramesAsPadding) {
  std::string wire = Frame("{}", 0x1, true, false);
  wire += Frame(std::string(kPadding, 'n'), 0x1, true, false);
  Decoder dec = Client();
  dec.feed(AsMutableBytes(wire), /*slack=*/0);
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_TRUE(m.padded);  // the next frame's 66 bytes follow it
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_FALSE(m.padded);  // last in the buffer, no slack declared

  std::string one = Frame("{}", 0x1, true, false);
  one.resize(one.size() + kPadding);
  Decoder dec2 = Client();
  dec2.feed(AsMutableBytes(one).first(one.size() - kPadding), kPadding);
  ASSERT_EQ(dec2.next(m), Errc::kOk);
  EXPECT_TRUE(m.padded);
  Decoder dec3 = Client();
  dec3.feed(AsMutableBytes(one).first(one.size() - kPadding), kPadding - 1);
  ASSERT_EQ(dec3.next(m), Errc::kOk);
  EXPECT_FALSE(m.padded);
}

TEST(WsDecoder, KeepsZeroedPaddingAfterAnAssembledMessage) {
  const std::string wire = Frame("abc", 0x1, false, false) + Frame("def", 0x0, true, false);
  Decoder dec = Client();
  std::string copy = wire;
  dec.feed(AsMutableBytes(copy));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_EQ(m.text(), "abcdef");
  EXPECT_TRUE(m.padded);
  for (size_t i = 0; i < kPadding; ++i) {
    ASSERT_EQ(m.payload.data()[m.payload.size() + i], std::byte{0});
  }
}

TEST(WsDecoder, CopiesAFrameSplitAcrossReadsOnceIntoItsOwnBuffer) {
  std::string wire = Frame("split-me", 0x1, true, false);
  std::string a = wire.substr(0, 5), b = wire.substr(5);
  Decoder dec = Client();
  Message m;
  dec.feed(AsMutableBytes(a));
  ASSERT_EQ(dec.next(m), Errc::kNeedMore);
  a.assign(a.size(), '\xFF');  // the caller may reuse its buffer now
  dec.feed(AsMutableBytes(b));
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_EQ(m.text(), "split-me");
  EXPECT_FALSE(m.in_place);
  EXPECT_TRUE(m.padded);
}

TEST(WsDecoder, FreesALargeBufferOnceItsMessageWasHandedOut) {
  const std::string big(kRetainedBufferBytes + 1, 'z');
  const std::string wire = Frame(big, 0x2, true, false);
  Decoder dec = Client();
  const Decoded d = DecodePieces(dec, wire, {wire.size() / 2});
  ASSERT_EQ(d.messages.size(), 1u);
  EXPECT_EQ(dec.buffer_capacity(), 0u);  // freed by the call that ended it
  // A small split message keeps its (small) buffer for reuse.
  const std::string small = Frame("xy", 0x2, true, false);
  DecodePieces(dec, small, {3});
  EXPECT_GT(dec.buffer_capacity(), 0u);
  dec.release_memory();
  // The largest kept: a message whose buffer (payload and padding) is
  // exactly kRetainedBufferBytes.
  const std::string edge(kRetainedBufferBytes - kPadding, 'e');
  const std::string edge_wire = Frame(edge, 0x2, true, false);
  ASSERT_EQ(DecodePieces(dec, edge_wire, {edge_wire.size() / 2}).messages.size(), 1u);
  const Decoded next = DecodePieces(dec, small, {3});  // the next call resets
  ASSERT_EQ(next.messages.size(), 1u);
  EXPECT_EQ(dec.buffer_capacity(), kRetainedBufferBytes);
  dec.release_memory();
  EXPECT_EQ(dec.buffer_capacity(), 0u);
}

// ---- 5.2 framing errors -----------------------------------------------------

Errc FirstError(Decoder& dec, std::string wire) { return DecodeWhole(dec, wire).last; }

TEST(WsDecoder, RejectsEachReservedBitWithoutAnExtension) {
  for (int rsv : {0x40, 0x20, 0x10}) {
    FrameSpec f;
    f.rsv = rsv;
    Decoder dec = Client();
    const Errc e = FirstError(dec, Frame("x", f));
    EXPECT_EQ(e, Errc::kReservedBits);
    EXPECT_EQ(close_code(e), 1002);
  }
}

TEST(WsDecoder, LetsANegotiatedReservedBitThroughAndReportsIt) {
  FrameSpec f;
  f.rsv = 0x40;
  f.opcode = 0x2;
  DecoderOptions o;
  o.allowed_rsv = 0x40;
  Decoder dec(Role::kClient, o);
  std::string wire = Frame("z", f);
  dec.feed(AsMutableBytes(wire));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kOk);
  EXPECT_EQ(m.rsv, 0x40);
  f.rsv = 0x20;
  Decoder dec2(Role::kClient, o);
  EXPECT_EQ(FirstError(dec2, Frame("z", f)), Errc::kReservedBits);
}

TEST(WsDecoder, RejectsEveryReservedOpcode) {
  for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    SCOPED_TRACE(op);
    Decoder dec = Client();
    EXPECT_EQ(FirstError(dec, Frame("", op, true, false)), Errc::kBadOpcode);
  }
}

TEST(WsDecoder, RejectsControlFramesOver125BytesOrFragmented) {
  for (int op : {0x8, 0x9, 0xA}) {
    Decoder big = Client();
    EXPECT_EQ(FirstError(big, Frame(std::string(126, 'p'), op, true, false)),
              Errc::kBadControlFrame);
    Decoder frag = Client();
    EXPECT_EQ(FirstError(frag, Frame("p", op, false, false)), Errc::kBadControlFrame);
  }
  Decoder ok = Client();
  EXPECT_THAT(DecodeWhole(ok, Frame(std::string(125, 'p'), 0x9, true, false)).messages,
              ElementsAre("ping:" + std::string(125, 'p')));
}

TEST(WsDecoder, ClientRejectsMaskedFramesAndServerRejectsUnmaskedOnes) {
  Decoder client = Client();
  EXPECT_EQ(FirstError(client, Frame("x", 0x1, true, true)), Errc::kMaskedFrame);
  Decoder server = Server();
  EXPECT_EQ(FirstError(server, Frame("x", 0x1, true, false)), Errc::kUnmaskedFrame);
  EXPECT_EQ(close_code(Errc::kMaskedFrame), 1002);
  EXPECT_EQ(close_code(Errc::kUnmaskedFrame), 1002);
}

TEST(WsDecoder, RejectsNonMinimalLengthEncodings) {
  FrameSpec f;
  f.force_length_bytes = 2;
  Decoder a = Client();
  EXPECT_EQ(FirstError(a, Frame(std::string(125, 'a'), f)), Errc::kBadLength);
  f.force_length_bytes = 8;
  Decoder b = Client();
  EXPECT_EQ(FirstError(b, Frame(std::string(65535, 'a'), f)), Errc::kBadLength);
  f.force_length_bytes = 2;
  Decoder c = Client();
  EXPECT_THAT(DecodeWhole(c, Frame(std::string(126, 'a'), f)).messages,
              ElementsAre("text:" + std::string(126, 'a')));
}

TEST(WsDecoder, RejectsA64BitLengthWithTheTopBitSet) {
  std::string wire = Bytes({0x82, 0x7F, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01});
  Decoder dec = Client();
  const Errc e = FirstError(dec, wire);
  EXPECT_EQ(e, Errc::kBadLength);
  EXPECT_EQ(close_code(e), 1002);
}

// ---- 5.4 fragmentation -------------------------------------------------------

TEST(WsDecoder, RejectsAContinuationWithNoMessageStarted) {
  Decoder dec = Client();
  EXPECT_EQ(FirstError(dec, Frame("x", 0x0, true, false)), Errc::kUnexpectedContinuation);
  Decoder after = Client();  // a whole message does not leave one open
  EXPECT_EQ(FirstError(after, Frame("a", 0x1, true, false) + Frame("x", 0x0, true, false)),
            Errc::kUnexpectedContinuation);
}

TEST(WsDecoder, RejectsANewDataFrameInsideAFragmentedMessage) {
  for (int op : {0x1, 0x2}) {
    Decoder dec = Client();
    EXPECT_EQ(FirstError(dec, Frame("a", 0x1, false, false) + Frame("b", op, true, false)),
              Errc::kExpectedContinuation);
  }
}

TEST(WsDecoder, DeliversPingsPongsAndClosesBetweenFragments) {
  const std::string wire = Frame("a", 0x2, false, false) + Frame("1", 0x9, true, false) +
                           Frame("b", 0x0, false, false) + Frame("2", 0xA, true, false) +
                           Frame("", 0x0, false, false) + Frame("c", 0x0, true, false);
  Decoder dec = Client();
  EXPECT_THAT(DecodeWhole(dec, wire).messages, ElementsAre("ping:1", "pong:2", "binary:abc"));
}

TEST(WsDecoder, AcceptsEmptyMessagesAndEmptyFragments) {
  const std::string wire =
      Frame("", 0x1, true, false) + Frame("", 0x2, false, false) + Frame("", 0x0, true, false);
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    Decoder dec = Client();
    EXPECT_THAT(DecodePieces(dec, wire, {cut}).messages, ElementsAre("text:", "binary:"));
  }
}

// ---- Limits ------------------------------------------------------------------

TEST(WsDecoder, RejectsAFrameOverTheMessageLimitBeforeItsPayloadArrives) {
  Decoder dec = Client(/*max=*/1000);
  // Only the header of a 1001-byte frame: refused right away.
  const std::string header = Frame(std::string(1001, 'x'), 0x2, true, false).substr(0, 4);
  const Errc e = FirstError(dec, header);
  EXPECT_EQ(e, Errc::kMessageTooBig);
  EXPECT_EQ(close_code(e), 1009);
  Decoder at_limit = Client(1000);
  EXPECT_EQ(DecodeWhole(at_limit, Frame(std::string(1000, 'x'), 0x2, true, false)).messages.size(),
            1u);
}

TEST(WsDecoder, RejectsAFragmentedMessageWhoseFragmentsCrossTheLimit) {
  const std::string wire = Frame(std::string(600, 'a'), 0x1, false, false) +
                           Frame(std::string(400, 'b'), 0x0, false, false) +
                           Frame("c", 0x0, true, false);
  Decoder dec = Client(1000);
  EXPECT_EQ(FirstError(dec, wire), Errc::kMessageTooBig);
  Decoder ok = Client(1001);
  EXPECT_EQ(DecodeWhole(ok, wire).messages.size(), 1u);
}

TEST(WsDecoder, DefaultMessageLimitIsSixteenMiB) {
  EXPECT_EQ(kMaxMessageBytes, size_t{16} << 20);
  std::string header = Bytes({0x82, 0x7F, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x01});  // 16 MiB + 1
  Decoder dec = Client();
  EXPECT_EQ(FirstError(dec, header), Errc::kMessageTooBig);
  std::string at = Bytes({0x82, 0x7F, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x00});
  Decoder dec2 = Client();
  EXPECT_EQ(FirstError(dec2, at), Errc::kNeedMore);
}

// ---- 5.5.1 and 7.4: close frames ------------------------------------------

TEST(WsDecoder, AcceptsExactlyTheCloseCodesRfc6455Allows) {
  for (uint32_t code = 0; code <= 0xFFFF; ++code) {
    const bool want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                      (code >= 3000 && code <= 4999);
    Decoder dec = Client();
    const Decoded d = DecodeWhole(dec, CloseFrame(code, "", false));
    if (want) {
      ASSERT_EQ(d.messages.size(), 1u) << code;
      ASSERT_EQ(d.messages[0], "close:" + std::to_string(code) + ":");
    } else {
      ASSERT_EQ(d.last, Errc::kBadCloseCode) << code;
      ASSERT_EQ(close_code(d.last), 1002);
    }
  }
  for (uint16_t code : {999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
    EXPECT_FALSE(is_valid_close_code(code)) << code;
  }
  for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1011, 3000, 4004, 4999}) {
    EXPECT_TRUE(is_valid_close_code(code)) << code;
  }
}

TEST(WsDecoder, ReportsAnEmptyCloseAsNoStatusReceived) {
  Decoder dec = Client();
  EXPECT_THAT(DecodeWhole(dec, Frame("", 0x8, true, false)).messages, ElementsAre("close:1005:"));
}

TEST(WsDecoder, RejectsAOneByteClosePayload) {
  Decoder dec = Client();
  const Errc e = FirstError(dec, Frame("\x03", 0x8, true, false));
  EXPECT_EQ(e, Errc::kBadClosePayload);
  EXPECT_EQ(close_code(e), 1002);
}

TEST(WsDecoder, RejectsACloseReasonThatIsNotUtf8) {
  Decoder dec = Client();
  const Errc e = FirstError(dec, CloseFrame(1000, "ok\xC0\xAF", false));
  EXPECT_EQ(e, Errc::kInvalidUtf8);
  EXPECT_EQ(close_code(e), 1007);
  Decoder fine = Client();
  EXPECT_THAT(
      DecodeWhole(fine, CloseFrame(4004, "Authentication failed \xE2\x9C\x93", false)).messages,
      ElementsAre("close:4004:Authentication failed \xE2\x9C\x93"));
}

TEST(WsDecoder, IgnoresEverythingAfterTheCloseFrame) {
  const std::string wire =
      CloseFrame(1001, "away", false) + Frame("late", 0x1, true, false) + "\xFF\xFF";
  Decoder dec = Client();
  const Decoded d = DecodeWhole(dec, wire);
  EXPECT_THAT(d.messages, ElementsAre("close:1001:away"));
  EXPECT_EQ(d.last, Errc::kClosed);
  EXPECT_TRUE(dec.close_received());
  Message m;
  EXPECT_EQ(dec.next(m), Errc::kClosed);
}

// ---- 8.1: UTF-8 in text messages -----------------------------------------

TEST(WsDecoder, RejectsInvalidUtf8InASingleFrameText) {
  for (std::string bad :
       {"\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "abc\xE2\x82", "\x80", "\xFF"}) {
    Decoder dec = Client();
    const Errc e = FirstError(dec, Frame(bad, 0x1, true, false));
    EXPECT_EQ(e, Errc::kInvalidUtf8);
    EXPECT_EQ(close_code(e), 1007);
  }
  Decoder bin = Client();  // binary messages are not UTF-8 checked
  EXPECT_EQ(DecodeWhole(bin, Frame("\xFF", 0x2, true, false)).messages.size(), 1u);
}

TEST(WsDecoder, LeavesTheUtf8CheckToTheOwnerWhenAsked) {
  // check_text_utf8 = false: an owner that validates every text message
  // itself (the engine's JSON parser) gets the bytes unchecked, whole or in
  // fragments; close reasons are still checked.
  DecoderOptions opts;
  opts.check_text_utf8 = false;
  Decoder one(Role::kClient, opts);
  EXPECT_THAT(DecodeWhole(one, Frame("a\xFF", 0x1, true, false)).messages,
              ElementsAre("text:a\xFF"));
  Decoder frag(Role::kClient, opts);
  EXPECT_THAT(
      DecodeWhole(frag, Frame("ok\xE2", 0x1, false, false) + Frame("\xC0", 0x0, true, false))
          .messages,
      ElementsAre("text:ok\xE2\xC0"));
  Decoder close(Role::kClient, opts);
  EXPECT_EQ(FirstError(close, Frame(std::string("\x03\xE8\xFF"), 0x8, true, false)),
            Errc::kInvalidUtf8);
}

TEST(WsDecoder, AcceptsACodePointSplitAcrossFragmentsAndReads) {
  const std::string s = "\xF0\x9F\x98\x80";  // U+1F600
  for (size_t at = 0; at <= 4; ++at) {
    const std::string wire =
        Frame(s.substr(0, at), 0x1, false, true) + Frame(s.substr(at), 0x0, true, true);
    for (size_t cut = 0; cut <= wire.size(); ++cut) {
      Decoder dec = Server();
      ASSERT_THAT(DecodePieces(dec, wire, {cut}).messages, ElementsAre("text:" + s));
    }
  }
}

TEST(WsDecoder, FailsFastOnInvalidUtf8InAnEarlyFragment) {
  // The second fragment makes it invalid; the final one never arrives.
  const std::string wire = Frame("ok\xE2", 0x1, false, false) + Frame("A", 0x0, false, false);
  Decoder dec = Client();
  EXPECT_EQ(FirstError(dec, wire), Errc::kInvalidUtf8);
}

TEST(WsDecoder, RejectsATextMessageEndingInsideACodePoint) {
  const std::string wire = Frame("ok\xE2\x82", 0x1, false, false) + Frame("", 0x0, true, false);
  Decoder dec = Client();
  EXPECT_EQ(FirstError(dec, wire), Errc::kInvalidUtf8);
}

TEST(WsDecoder, FailsFastOnInvalidUtf8InsideOneFrameSplitAcrossReads) {
  std::string wire = Frame("abc\xF5" + std::string(100, 'x'), 0x1, true, false);
  Decoder dec = Client();
  EXPECT_EQ(DecodePieces(dec, wire, {6}).last, Errc::kInvalidUtf8);
}

// ---- Sticky errors -----------------------------------------------------------

TEST(WsDecoder, StaysFailedOnceAFatalErrorWasReported) {
  Decoder dec = Client();
  std::string bad = Frame("x", 0x3, true, false);
  dec.feed(AsMutableBytes(bad));
  Message m;
  ASSERT_EQ(dec.next(m), Errc::kBadOpcode);
  std::string good = Frame("fine", 0x1, true, false);
  dec.feed(AsMutableBytes(good));
  EXPECT_EQ(dec.next(m), Errc::kBadOpcode);
  EXPECT_EQ(dec.status(), Errc::kBadOpcode);
  EXPECT_TRUE(is_fatal(dec.status()));
}

TEST(WsDecoder, ReportsHeaderErrorsAsSoonAsTheFirstTwoBytesArrive) {
  std::string wire = Frame(std::string(70000, 'x'), 0x3, true, false);
  Decoder dec = Client();
  EXPECT_EQ(DecodePieces(dec, wire.substr(0, 2), {1}).last, Errc::kBadOpcode);
}

TEST(WsDecoder, MatchesAnEncoderFreeReferenceOnRandomMessageStreams) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    std::string wire;
    std::vector<std::string> want;
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      std::string p(rng() % 3 == 0 ? rng() % 70000 : rng() % 300, 'a');
      for (char& c : p) c = static_cast<char>('a' + rng() % 26);
      const int frags = 1 + static_cast<int>(rng() % 3);
      size_t at = 0;
      for (int f = 0; f < frags; ++f) {
        const size_t len = f + 1 == frags ? p.size() - at : rng() % (p.size() - at + 1);
        wire += Frame(p.substr(at, len), f == 0 ? 0x1 : 0x0, f + 1 == frags, true);
        at += len;
      }
      want.push_back("text:" + p);
    }
    std::vector<size_t> cuts;
    for (size_t at = rng() % 5000; at < wire.size(); at += 1 + rng() % 5000) {
      cuts.push_back(at);
    }
    Decoder dec = Server();
    const Decoded d = DecodePieces(dec, wire, cuts);
    ASSERT_EQ(d.messages, want) << "round " << round;
    ASSERT_EQ(d.last, Errc::kNeedMore);
  }
}

}  // namespace
}  // namespace shardring::ws
