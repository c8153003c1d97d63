// tests/engine/session_store_test.cc: the session store file, checkpoints
// and the NDJSON sink's record of what it wrote (exactly once across
// restarts): the pieces `--state` is made of, without sockets.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/event_channel.h"
#include "engine/session_store.h"
#include "engine/sink.h"
#include "gateway/session_key.h"
#include "gtest/gtest.h"

namespace shardring::engine {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/shardring-store-XXXXXX";
  const char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

SavedRun SampleRun() {
  SavedRun run;
  run.bot_user_id = 198622483471925248ULL;
  run.total_shards = 16;
  run.intents = 513;
  run.compress = parse::Compression::kZstdStream;
  run.saved_unix_ms = 1'796'568'309'570;
  run.sink = "file 65024 11125356 752259";
  SavedShard a;
  a.shard = 3;
  a.session_id = "5c4b8ce27187466ec895c867776050d4";
  a.resume_url = "wss://gateway-us-east1-b.discord.gg";
  a.seq = 103;
  a.alive_unix_ms = 1'796'568'309'000;
  a.written = Durable{0xfedcba9876543210ULL, 104};
  SavedShard b = a;
  b.shard = 7;
  b.session_id = "quote\"and\\back";
  b.resume_url = "";
  b.written = Durable{};
  run.shards = {a, b};
  return run;
}

TEST(FileSessionStore, SavesAndLoadsEveryField) {
  const std::string dir = TempDir();
  FileSessionStore store(dir + "/state.json");
  std::string error;
  ASSERT_TRUE(store.save(SampleRun(), &error)) << error;
  SavedRun got;
  ASSERT_TRUE(store.load(&got, &error)) << error;
  const SavedRun want = SampleRun();
  EXPECT_EQ(got.bot_user_id, want.bot_user_id);
  EXPECT_EQ(got.total_shards, 16u);
  EXPECT_EQ(got.intents, 513u);
  EXPECT_EQ(got.compress, parse::Compression::kZstdStream);
  EXPECT_EQ(got.saved_unix_ms, want.saved_unix_ms);
  EXPECT_EQ(got.sink, want.sink);
  ASSERT_EQ(got.shards.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got.shards[i].shard, want.shards[i].shard);
    EXPECT_EQ(got.shards[i].session_id, want.shards[i].session_id);
    EXPECT_EQ(got.shards[i].resume_url, want.shards[i].resume_url);
    EXPECT_EQ(got.shards[i].seq, want.shards[i].seq);
    EXPECT_EQ(got.shards[i].alive_unix_ms, want.shards[i].alive_unix_ms);
    EXPECT_EQ(got.shards[i].written, want.shards[i].written);
  }
  // Written atomically: no temporary file is left behind, and the file is
  // the owner's only (it holds session ids).
  EXPECT_NE(access((dir + "/state.json.tmp").c_str(), F_OK), 0);
  struct stat st {};
  ASSERT_EQ(stat((dir + "/state.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The token is never in it: only the bot's id.
  EXPECT_EQ(ReadFile(dir + "/state.json").find("Bot "), std::string::npos);
}

TEST(FileSessionStore, AMissingFileIsAnEmptyStore) {
  FileSessionStore store(TempDir() + "/none.json");
  SavedRun got;
  std::string error;
  ASSERT_TRUE(store.load(&got, &error)) << error;
  EXPECT_TRUE(got.shards.empty());
  EXPECT_EQ(got.bot_user_id, 0u);
}

TEST(FileSessionStore, RefusesWhatIsNotAStoreOfThisVersion) {
  const std::string dir = TempDir();
  auto load_text = [&](const std::string& text) {
    std::ofstream(dir + "/s.json") << text;
    SavedRun got;
    std::string error;
    EXPECT_FALSE(FileSessionStore(dir + "/s.json").load(&got, &error)) << text;
    return error;
  };
  EXPECT_NE(load_text("{\"version\":1,").find("not JSON"), std::string::npos);
  EXPECT_NE(load_text("{}").find("not a shardring session store"), std::string::npos);
  EXPECT_NE(load_text("{\"version\":2}").find("version 2"), std::string::npos);
  std::string good = FileSessionStore::to_json(SampleRun());
  std::string bad = good;
  bad.replace(bad.find("\"zstd-stream\""), 13, "\"brotli\"");
  EXPECT_NE(load_text(bad).find("compress"), std::string::npos);
  bad = good;
  bad.replace(bad.find("\"written_session\""), 17, "\"written_sessionX\"");
  EXPECT_NE(load_text(bad).find("written_session"), std::string::npos);  // missing: no throw
  bad = good;
  bad.replace(bad.find("\"bot_user_id\""), 13, "\"bot_user_idX\"");
  EXPECT_NE(load_text(bad).find("bot_user_id"), std::string::npos);
  bad = good;
  bad.replace(bad.find("\"shard\":7"), 9, "\"shard\":2");
  EXPECT_NE(load_text(bad).find("increasing"), std::string::npos);
  // The error names the file.
  EXPECT_NE(load_text("[]").find(dir + "/s.json"), std::string::npos);
}

TEST(FileSessionStore, AFailedSaveLeavesTheOldStore) {
  const std::string dir = TempDir();
  FileSessionStore store(dir + "/state.json");
  std::string error;
  ASSERT_TRUE(store.save(SampleRun(), &error));
  // The temporary file's name is taken by a directory: the save fails.
  ASSERT_EQ(mkdir((dir + "/state.json.tmp").c_str(), 0700), 0);
  SavedRun other = SampleRun();
  other.shards.clear();
  EXPECT_FALSE(store.save(other, &error));
  EXPECT_NE(error.find("state.json.tmp"), std::string::npos);
  SavedRun got;
  ASSERT_TRUE(store.load(&got, &error));
  EXPECT_EQ(got.shards.size(), 2u);
}

TEST(BotUserIdFromToken, DecodesTheFirstSegment) {
  EXPECT_EQ(bot_user_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabc.xyz"), 123456789012345678u);
  EXPECT_EQ(bot_user_id_from_token("MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"),
            198622483471925248u);
  EXPECT_EQ(bot_user_id_from_token("MTIz.x.y"), 123u);   // "123", no padding
  EXPECT_EQ(bot_user_id_from_token("MTIz=.x.y"), 123u);  // padding
  EXPECT_EQ(bot_user_id_from_token("test-token"), 0u);   // no dot
  EXPECT_EQ(bot_user_id_from_token("aGVsbG8.x.y"), 0u);  // "hello": not digits
  EXPECT_EQ(bot_user_id_from_token(".x.y"), 0u);         // empty segment
  EXPECT_EQ(bot_user_id_from_token("M!Iz.x.y"), 0u);     // not base64
  // 21 digits: over 2^64, not a snowflake.
  EXPECT_EQ(bot_user_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4OTAx.x.y"), 0u);
}

ShardSnapshot Snap(uint64_t key, uint64_t last_seq, Durable delivered) {
  ShardSnapshot s;
  s.session_id = "x";
  s.session_key = key;
  s.last_seq = last_seq;
  s.delivered = delivered;
  return s;
}

TEST(CheckpointSeq, ClaimsOnlyWhatIsDoneOrFiltered) {
  // Everything handed on is done: the session's last seq (later ones were
  // filtered).
  EXPECT_EQ(checkpoint_seq(Snap(9, 50, {9, 40}), {9, 40}), 50u);
  // Events handed on and not done yet: the last done one.
  EXPECT_EQ(checkpoint_seq(Snap(9, 50, {9, 40}), {9, 30}), 30u);
  // Nothing of this session done yet: 0 (the whole session is replayed).
  EXPECT_EQ(checkpoint_seq(Snap(9, 50, {9, 40}), {8, 900}), 0u);
  // Nothing of this session handed on (all filtered so far): its last seq.
  EXPECT_EQ(checkpoint_seq(Snap(9, 50, {8, 900}), {8, 900}), 50u);
  // Done read after the snapshot, further along: it counts.
  EXPECT_EQ(checkpoint_seq(Snap(9, 50, {9, 50}), {9, 70}), 70u);
  // A restored session that has delivered nothing yet: where it was saved.
  EXPECT_EQ(checkpoint_seq(Snap(9, 103, {}), {}), 103u);
}

ChannelEvent Ev(uint32_t shard, uint64_t session, uint64_t seq, std::string_view t,
                std::string_view d) {
  ChannelEvent e{};
  e.shard = shard;
  e.session = session;
  e.seq = seq;
  e.t = t;
  e.d = d;
  return e;
}

TEST(NdjsonSink, RecordsWhatItWroteWithTheFileOffset) {
  const std::string path = TempDir() + "/out.ndjson";
  auto out = Output::open(path);
  ASSERT_TRUE(out.ok());
  {
    NdjsonWriter w(*out);
    w.append(Ev(2, 77, 1, "READY", R"({"session_id":"s"})"));
    w.append(Ev(2, 77, 2, "MESSAGE_CREATE", "{}"));
    std::vector<Durable> before;
    EXPECT_EQ((*out)->progress(before).substr(0, 5), "file ");
    EXPECT_TRUE(before.empty());  // buffered, not written: not durable
    w.flush();
  }
  std::vector<Durable> by_shard;
  const std::string pos = (*out)->progress(by_shard);
  ASSERT_EQ(by_shard.size(), 3u);
  EXPECT_EQ(by_shard[2], (Durable{77, 2}));
  unsigned long dev = 0, ino = 0, offset = 0;  // NOLINT(runtime/int)
  ASSERT_EQ(std::sscanf(pos.c_str(), "file %lu %lu %lu", &dev, &ino, &offset), 3);
  EXPECT_EQ(offset, ReadFile(path).size());
}

// A run wrote shard 0's session S up to seq 5 and checkpointed at 3, then
// crashed; the next run resumes S from 3 and Discord replays 4, 5, 6...
TEST(NdjsonSink, ReplaysTheFileHoldsAreNotWrittenAgain) {
  const std::string path = TempDir() + "/out.ndjson";
  const uint64_t s = gateway::session_key_of("S");
  SavedRun saved;
  {
    auto out = Output::open(path);
    ASSERT_TRUE(out.ok());
    NdjsonWriter w(*out);
    w.append(Ev(0, s, 1, "READY", R"({"session_id":"S"})"));
    w.append(Ev(0, s, 2, "MESSAGE_CREATE", "{}"));
    w.append(Ev(1, 5, 9, "MESSAGE_CREATE", "{}"));  // another shard, not saved
    w.flush();
    std::vector<Durable> by_shard;
    saved.sink = (*out)->progress(by_shard);  // the checkpoint
    SavedShard sh;
    sh.shard = 0;
    sh.session_id = "S";
    sh.seq = 2;
    sh.written = by_shard[0];
    saved.shards.push_back(sh);
    w.append(Ev(0, s, 3, "MESSAGE_CREATE", "{}"));
    w.append(Ev(0, s, 4, "MESSAGE_CREATE", "{}"));
    w.flush();
  }  // crash: nothing more saved
  auto held = find_written_replays(path, saved);
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0], (Durable{s, 4}));
  auto out = Output::open(path);
  ASSERT_TRUE(out.ok());
  (*out)->set_skip(*held);
  {
    NdjsonWriter w(*out);
    for (uint64_t seq = 3; seq <= 6; ++seq) w.append(Ev(0, s, seq, "MESSAGE_CREATE", "{}"));
    // Another session of shard 0 starts at 1 again: written.
    w.append(Ev(0, gateway::session_key_of("T"), 1, "READY", R"({"session_id":"T"})"));
    EXPECT_EQ(w.skipped(), 2u);
    w.flush();
  }
  const std::string text = ReadFile(path);
  std::vector<std::string> shard0;
  std::istringstream lines(text);
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind("{\"shard\":0,", 0) == 0) shard0.push_back(l.substr(0, l.find(",\"t\"")));
  }
  EXPECT_EQ(shard0, (std::vector<std::string>{"{\"shard\":0,\"seq\":1", "{\"shard\":0,\"seq\":2",
                                              "{\"shard\":0,\"seq\":3", "{\"shard\":0,\"seq\":4",
                                              "{\"shard\":0,\"seq\":5", "{\"shard\":0,\"seq\":6",
                                              "{\"shard\":0,\"seq\":1"}));
}

// After the checkpoint the shard's session ended and a new one (READY)
// wrote lines: those are not the saved session's, and hold nothing back.
TEST(NdjsonSink, ANewSessionAfterTheCheckpointHoldsNothingBack) {
  const std::string path = TempDir() + "/out.ndjson";
  const uint64_t s = gateway::session_key_of("S");
  const uint64_t t = gateway::session_key_of("T");
  SavedRun saved;
  {
    auto out = Output::open(path);
    ASSERT_TRUE(out.ok());
    NdjsonWriter w(*out);
    w.append(Ev(0, s, 1, "READY", R"({"session_id":"S"})"));
    w.flush();
    std::vector<Durable> by_shard;
    saved.sink = (*out)->progress(by_shard);
    SavedShard sh;
    sh.shard = 0;
    sh.session_id = "S";
    sh.seq = 1;
    sh.written = by_shard[0];
    saved.shards.push_back(sh);
    w.append(Ev(0, t, 1, "READY", R"({"v":10,"session_id":"T"})"));
    w.append(Ev(0, t, 2, "MESSAGE_CREATE", "{}"));
    w.flush();
  }
  auto held = find_written_replays(path, saved);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ((*held)[0], Durable{});
}

TEST(NdjsonSink, ARotatedFileIsReadFromItsStart) {
  const std::string dir = TempDir();
  const std::string path = dir + "/out.ndjson";
  const uint64_t s = gateway::session_key_of("S");
  std::ofstream(path) << "{\"shard\":0,\"seq\":8,\"t\":\"MESSAGE_CREATE\",\"d\":{}}\n";
  SavedRun saved;
  saved.sink = "file 1 2 999999";  // another file
  SavedShard sh;
  sh.shard = 0;
  sh.session_id = "S";
  sh.seq = 5;
  sh.written = Durable{s, 6};
  saved.shards.push_back(sh);
  auto held = find_written_replays(path, saved);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ((*held)[0], (Durable{s, 8}));
  // A missing file holds nothing.
  auto none = find_written_replays(dir + "/missing", saved);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace shardring::engine
