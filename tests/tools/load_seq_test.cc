// tests/tools/load_seq_test.cc: `shardring load`'s seq check counts exactly
// the gaps and repeats of each shard's session, and nothing else.
#include "tools/load_seq.h"

#include <gtest/gtest.h>

namespace shardring::tools {
namespace {

Event At(uint32_t shard, uint64_t session, uint64_t seq) {
  Event e{};
  e.shard = shard;
  e.session = session;
  e.seq = seq;
  return e;
}

TEST(LoadSeqCheck, InOrderAcrossShardsIsClean) {
  SeqCheck c(3);
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    for (uint32_t shard = 0; shard < 3; ++shard) c.on_event(At(shard, 7 + shard, seq));
  }
  EXPECT_EQ(c.gaps(), 0u);
  EXPECT_EQ(c.repeats(), 0u);
  EXPECT_EQ(c.text(), "every shard's seqs in order: nothing lost, nothing twice");
}

TEST(LoadSeqCheck, GapsAndRepeatsAreCountedPerShard) {
  SeqCheck c(2);
  for (uint64_t seq : {1, 2, 3, 6, 7, 7, 5, 8}) c.on_event(At(0, 1, seq));
  for (uint64_t seq : {1, 2, 3}) c.on_event(At(1, 2, seq));
  EXPECT_EQ(c.gaps(), 1u);     // 3 -> 6
  EXPECT_EQ(c.lost(), 2u);     // 4 and 5 (5 came back later: a repeat, not a recovery)
  EXPECT_EQ(c.repeats(), 2u);  // the second 7, and 5 after 7
  EXPECT_EQ(c.json(), R"("seq_gaps":1,"seq_lost":2,"seq_repeats":2)");
  EXPECT_EQ(c.text(), "1 gaps (2 events lost), 2 events delivered twice");
}

TEST(LoadSeqCheck, ANewSessionStartsItsOwnCount) {
  SeqCheck c(1);
  for (uint64_t seq : {1, 2, 3, 4}) c.on_event(At(0, 1, seq));
  // IDENTIFY again: READY is seq 1 of the new session.
  for (uint64_t seq : {1, 2}) c.on_event(At(0, 9, seq));
  EXPECT_EQ(c.gaps(), 0u);
  EXPECT_EQ(c.repeats(), 0u);
}

TEST(LoadSeqCheck, AShardOutOfRangeIsIgnored) {
  SeqCheck c(1);
  c.on_event(At(5, 1, 1));
  c.on_event(At(5, 1, 1));
  EXPECT_EQ(c.repeats(), 0u);
}

}  // namespace
}  // namespace shardring::tools
