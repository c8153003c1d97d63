// user_id_from_token (tools/gateway/token.h): the bot user id a Discord
// token's first segment encodes, which READY reports.
#include "tools/gateway/token.h"

#include "gtest/gtest.h"

namespace shardring::gatewaysrv {
namespace {

TEST(UserIdFromToken, DecodesTheFirstSegment) {
  EXPECT_EQ(user_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabc.xyz"), "123456789012345678");
  EXPECT_EQ(user_id_from_token("MTA5OTUxMjIxMTA0MjgyODI4OA.GxYz.abc"), "1099512211042828288");
  // No dot: the whole token is the first segment.
  EXPECT_EQ(user_id_from_token("MTIz"), "123");
}

TEST(UserIdFromToken, PaddingIsOptional) {
  EXPECT_EQ(user_id_from_token("MQ==.a.b"), "1");
  EXPECT_EQ(user_id_from_token("MQ.a.b"), "1");
  EXPECT_EQ(user_id_from_token("MTI=.a.b"), "12");
  EXPECT_EQ(user_id_from_token("MTI.a.b"), "12");
  EXPECT_EQ(user_id_from_token("MTA5OTUxMjIxMTA0MjgyODI4OA==.x"), "1099512211042828288");
  // Padding that does not end a whole quantum, or too much of it.
  EXPECT_EQ(user_id_from_token("MQ=.a.b"), std::nullopt);
  EXPECT_EQ(user_id_from_token("MTIz====.a"), std::nullopt);
  EXPECT_EQ(user_id_from_token("M===.a"), std::nullopt);
  EXPECT_EQ(user_id_from_token("MQ=x.a"), std::nullopt);
}

TEST(UserIdFromToken, OneToTwentyDigits) {
  EXPECT_EQ(user_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=.a.b"), "12345678901234567890");
  EXPECT_EQ(user_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.a.b"), "12345678901234567890");
  EXPECT_EQ(user_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4OTAx.a.b"), std::nullopt);  // 21
}

TEST(UserIdFromToken, AnythingElseIsNotAnId) {
  EXPECT_EQ(user_id_from_token(""), std::nullopt);
  EXPECT_EQ(user_id_from_token(".a.b"), std::nullopt);
  EXPECT_EQ(user_id_from_token("tok"), std::nullopt);
  EXPECT_EQ(user_id_from_token("dG9r.a.b"), std::nullopt);  // "tok"
  EXPECT_EQ(user_id_from_token("M.a.b"), std::nullopt);     // no whole byte
  EXPECT_EQ(user_id_from_token("MT!z.a.b"), std::nullopt);  // not base64
  EXPECT_EQ(user_id_from_token("MT-z.a.b"), std::nullopt);  // URL alphabet, not digits
  EXPECT_EQ(user_id_from_token("MT+z.a.b"), std::nullopt);
}

}  // namespace
}  // namespace shardring::gatewaysrv
