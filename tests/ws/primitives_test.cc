// tests/ws/primitives_test.cc: SHA-1 (RFC 3174 vectors), base64 (RFC 4648
// vectors), UTF-8 validation (RFC 3629, against a reference decoder) and
// masking (RFC 6455 5.3, against a byte-at-a-time loop).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/ws/ws_test_util.h"
#include "ws/base64.h"
#include "ws/handshake.h"
#include "ws/mask.h"
#include "ws/sha1.h"
#include "ws/utf8.h"

namespace shardring::ws {
namespace {

using namespace testing_util;

std::string Hex(const Sha1Digest& d) {
  static const char* kHex = "0123456789ABCDEF";
  std::string s;
  for (std::byte b : d) {
    s.push_back(kHex[std::to_integer<int>(b) >> 4]);
    s.push_back(kHex[std::to_integer<int>(b) & 15]);
  }
  return s;
}

// ---- SHA-1 -------------------------------------------------------------------

TEST(WsSha1, MatchesTheFourRfc3174TestVectors) {
  EXPECT_EQ(Hex(sha1("abc")), "A9993E364706816ABA3E25717850C26C9CD0D89D");
  EXPECT_EQ(Hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983E441C3BD26EBAAE4AA1F95129E5E54670F1");
  Sha1 a;
  for (int i = 0; i < 1000000; ++i) a.update("a");
  EXPECT_EQ(Hex(a.final()), "34AA973CD4C4DAA4F61EEB2BDBAD27316534016F");
  Sha1 b;
  for (int i = 0; i < 10; ++i) {
    b.update("0123456701234567012345670123456701234567012345670123456701234567");
  }
  EXPECT_EQ(Hex(b.final()), "DEA356A2CDDD90C7A7ECEDC5EBB563934F460452");
}

TEST(WsSha1, HashesTheEmptyString) {
  EXPECT_EQ(Hex(sha1("")), "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
}

TEST(WsSha1, GivesTheSameDigestWhateverTheUpdatePieces) {
  std::string s;
  for (int i = 0; i < 300; ++i) s.push_back(static_cast<char>(i * 7));
  for (size_t len : {55, 56, 63, 64, 65, 119, 120, 128, 300}) {
    const std::string_view v(s.data(), len);
    const std::string whole = Hex(sha1(v));
    for (size_t cut = 0; cut <= len; cut += 5) {
      Sha1 h;
      h.update(v.substr(0, cut));
      h.update(v.substr(cut));
      ASSERT_EQ(Hex(h.final()), whole) << len << " " << cut;
    }
  }
}

// ---- base64 ------------------------------------------------------------------

TEST(WsBase64, EncodesTheRfc4648TestVectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    std::string out;
    base64_encode(AsBytes(plain), out);
    EXPECT_EQ(out, coded);
    std::byte buf[16];
    size_t n = 0;
    ASSERT_TRUE(base64_decode(coded, buf, n)) << coded;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf), n), plain);
  }
}

TEST(WsBase64, RefusesNonCanonicalOrForeignInput) {
  std::byte buf[16];
  size_t n = 0;
  for (std::string_view bad : {"Zg=", "Zh==", "Zm9=", "Z===", "====", "Zm9v!A==", "=Zg=",
                               "Zg==Zg==", "Zm 9", "Zm9vYg=A"}) {
    EXPECT_FALSE(base64_decode(bad, buf, n)) << bad;
  }
}

TEST(WsBase64, RoundTripsEveryLengthUpTo64) {
  std::mt19937 rng(5);
  for (size_t len = 0; len <= 64; ++len) {
    std::vector<std::byte> in(len);
    for (auto& b : in) b = std::byte(rng());
    std::string coded;
    base64_encode(in, coded);
    ASSERT_EQ(coded.size(), base64_encoded_size(len));
    std::vector<std::byte> out(len + 3);
    size_t n = 0;
    ASSERT_TRUE(base64_decode(coded, out.data(), n));
    out.resize(n);
    ASSERT_EQ(out, in);
  }
}

TEST(WsHandshakeKey, ComputesTheRfc6455SampleAcceptValue) {
  EXPECT_EQ(accept_value("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

// ---- UTF-8 -------------------------------------------------------------------

// Reference: decode by arithmetic, per RFC 3629 section 4.
bool ReferenceUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else
      return false;
    if (i + static_cast<size_t>(n) >= s.size()) return false;  // truncated
    for (int k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3F);
    }
    const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

TEST(WsUtf8, AcceptsTheBoundariesOfEachEncodingLength) {
  for (std::string_view s : {"", "plain ascii", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80",
                             "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80",
                             "\xF4\x8F\xBF\xBF", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"}) {
    EXPECT_TRUE(is_valid_utf8(s)) << s;
  }
}

TEST(WsUtf8, RejectsOverlongsSurrogatesAndCodePointsPastTheEnd) {
  for (std::string_view s :
       {"\xC0\x80", "\xC1\xBF", "\xE0\x9F\xBF", "\xF0\x8F\xBF\xBF", "\xED\xA0\x80", "\xED\xBF\xBF",
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\x80", "\xC2", "\xE2\x82", "\xF0\x9F\x98",
        "0123456789abcdef0123456789\x80"}) {
    EXPECT_FALSE(is_valid_utf8(s)) << testing::PrintToString(s);
  }
}

TEST(WsUtf8, AgreesWithAReferenceDecoderOnEveryShortString) {
  // Every 1- and 2-byte string, and every 3-byte string: 16.8M cases.
  std::string s(3, '\0');
  for (uint32_t v = 0; v < (1u << 24); ++v) {
    s[0] = static_cast<char>(v >> 16);
    s[1] = static_cast<char>(v >> 8);
    s[2] = static_cast<char>(v);
    if (v < 65536) {
      const std::string two = s.substr(1);
      ASSERT_EQ(is_valid_utf8(two), ReferenceUtf8(two)) << v;
    }
    ASSERT_EQ(is_valid_utf8(s), ReferenceUtf8(s)) << v;
  }
}

TEST(WsUtf8, AgreesWithAReferenceDecoderOnRandomFourByteStrings) {
  std::mt19937 rng(11);
  std::string s(4, '\0');
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t v = rng();
    for (int k = 0; k < 4; ++k) s[k] = static_cast<char>(v >> (8 * k));
    if (i % 2) s[0] = static_cast<char>(0xF0 | (v & 7));  // mostly 4-byte leads
    ASSERT_EQ(is_valid_utf8(s), ReferenceUtf8(s)) << v;
  }
}

TEST(WsUtf8, FindsABadByteAtEveryPositionOfTheAsciiFastPath) {
  for (size_t at = 0; at < 48; ++at) {
    std::string s(48, 'a');
    s[at] = '\xFF';
    EXPECT_FALSE(is_valid_utf8(s)) << at;
    s[at] = '\xC3';
    if (at + 1 < s.size()) {
      s[at + 1] = '\xA9';  // a valid 2-byte sequence there
      EXPECT_TRUE(is_valid_utf8(s)) << at;
    } else {
      EXPECT_FALSE(is_valid_utf8(s)) << at;  // truncated at the end
    }
  }
}

TEST(WsUtf8, GivesTheSameAnswerWhereverTheInputIsSplit) {
  const std::string samples[] = {"h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\x98\x80 \xE2\x82\xAC end",
                                 std::string(40, 'a') + "\xE2\x82\xAC" + std::string(40, 'b'),
                                 "abc\xED\xA0\x80xyz", "abc\xE2\x82"};
  for (const std::string& s : samples) {
    const bool whole = is_valid_utf8(s);
    for (size_t a = 0; a <= s.size(); ++a) {
      for (size_t b = a; b <= s.size(); ++b) {
        Utf8Validator v;
        const bool ok = v.feed(AsBytes(s).subspan(0, a)) && v.feed(AsBytes(s).subspan(a, b - a)) &&
                        v.feed(AsBytes(s).subspan(b));
        ASSERT_EQ(ok && v.complete(), whole) << a << " " << b;
      }
    }
  }
}

TEST(WsUtf8, FailsAtTheFirstByteThatCannotContinue) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed(AsBytes("\xF4")));
  EXPECT_FALSE(v.complete());
  EXPECT_FALSE(v.feed(AsBytes("\x90")));  // F4 90: past U+10FFFF
  EXPECT_TRUE(v.failed());
  EXPECT_FALSE(v.feed(AsBytes("a")));  // sticky
  v.reset();
  EXPECT_TRUE(v.feed(AsBytes("a")) && v.complete());
}

// ---- masking -----------------------------------------------------------------

TEST(WsMask, MatchesAByteAtATimeLoopForEveryLengthOffsetAndAlignment) {
  std::mt19937 rng(3);
  std::vector<std::byte> src(400);
  for (auto& b : src) b = std::byte(rng());
  const MaskKey key = {std::byte{0x37}, std::byte{0xfa}, std::byte{0x21}, std::byte{0x3d}};
  for (size_t align = 0; align < 8; ++align) {
    for (size_t len = 0; len <= 300; ++len) {
      for (size_t offset = 0; offset < 8; ++offset) {
        std::vector<std::byte> got(src.begin() + align, src.begin() + align + len);
        mask(got, key, offset);
        for (size_t i = 0; i < len; ++i) {
          ASSERT_EQ(got[i], src[align + i] ^ key[(offset + i) % 4])
              << align << " " << len << " " << offset << " " << i;
        }
        std::vector<std::byte> copy(len + 1, std::byte{0x55});
        mask_copy(copy.data(), src.data() + align, len, key, offset);
        ASSERT_TRUE(std::equal(got.begin(), got.end(), copy.begin()));
        ASSERT_EQ(copy[len], std::byte{0x55});
      }
    }
  }
}

TEST(WsMask, MasksInPiecesTheSameAsWhole) {
  std::vector<std::byte> whole(1000);
  for (size_t i = 0; i < whole.size(); ++i) whole[i] = std::byte(i);
  std::vector<std::byte> pieces = whole;
  const MaskKey key = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  mask(whole, key);
  size_t at = 0;
  for (size_t len : {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233}) {
    mask(std::span(pieces).subspan(at, len), key, at);
    at += len;
  }
  mask(std::span(pieces).subspan(at), key, at);
  EXPECT_EQ(pieces, whole);
  mask(whole, key);  // masking twice is the identity
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(whole[i], std::byte(i));
}

}  // namespace
}  // namespace shardring::ws
