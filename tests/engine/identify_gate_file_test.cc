#include "engine/identify_gate_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace shardring::engine {
namespace {
using Clock = IdentifyGate::Clock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

int64_t ns_of(Clock::time_point t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

// A fresh directory under the test's temporary directory, removed with
// everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "identify_gate_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<FileIdentifyGate> open_gate(const std::string& dir, uint32_t max_concurrency,
                                            milliseconds window) {
  auto gate = FileIdentifyGate::open(dir, max_concurrency, window);
  if (!gate.ok()) {
    ADD_FAILURE() << gate.status();
    return nullptr;
  }
  return std::move(*gate);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string time_text(Clock::time_point t) {
  char text[32];
  std::snprintf(text, sizeof text, "%019" PRId64 "\n", ns_of(t));
  return text;
}

TEST(FileIdentifyGate, CreatesTheDirectoryAndKeepsOneTimeFilePerBucket) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/gate";
  auto gate = open_gate(dir, /*max_concurrency=*/4, milliseconds(5000));
  ASSERT_NE(gate, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0077, 0u);  // 0700 (less the umask)

  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  ASSERT_TRUE(gate->try_acquire(5, t0, &retry));  // bucket 1
  const std::string path = FileIdentifyGate::bucket_path(dir, 4, 1);
  EXPECT_EQ(path, dir + "/identify-4-1");
  EXPECT_EQ(read_all(path), "0000000000001000000\n");
  EXPECT_FALSE(std::filesystem::exists(FileIdentifyGate::bucket_path(dir, 4, 0)));
  EXPECT_EQ(gate->granted(), 1u);
  EXPECT_EQ(gate->io_errors(), 0u);

  // An existing directory is fine, and a second gate sees the first's grant.
  auto again = open_gate(dir, 4, milliseconds(5000));
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(again->try_acquire(1, t0 + milliseconds(1), &retry));
  EXPECT_EQ(retry, t0 + milliseconds(5125));
}

TEST(FileIdentifyGate, LeavesTheMarginAfterTheWindow) {
  TempDir tmp;
  auto gate = open_gate(tmp.path(), 1, milliseconds(5000));
  ASSERT_NE(gate, nullptr);
  const milliseconds spacing = milliseconds(5000) + identify_margin(milliseconds(5000));
  EXPECT_EQ(gate->spacing(), spacing);
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  ASSERT_TRUE(gate->try_acquire(0, t0, &retry));
  EXPECT_FALSE(gate->try_acquire(1, t0 + spacing - milliseconds(1), &retry));
  EXPECT_EQ(retry, t0 + spacing);
  EXPECT_TRUE(gate->try_acquire(1, t0 + spacing, &retry));
}

TEST(FileIdentifyGate, GrantsTheLowestWaitingShardOfTheProcessFirst) {
  TempDir tmp;
  auto gate = open_gate(tmp.path(), 2, milliseconds(100));
  ASSERT_NE(gate, nullptr);
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  ASSERT_TRUE(gate->try_acquire(0, t0, &retry));
  EXPECT_FALSE(gate->try_acquire(6, t0, &retry));
  EXPECT_FALSE(gate->try_acquire(4, t0, &retry));
  const auto open = t0 + gate->spacing();
  EXPECT_FALSE(gate->try_acquire(6, open, &retry));  // 4 is first in line
  EXPECT_EQ(retry, open + milliseconds(1));
  EXPECT_TRUE(gate->try_acquire(4, open, &retry));
  gate->withdraw(6);
  EXPECT_TRUE(gate->try_acquire(8, open + gate->spacing(), &retry));
}

// Each gate opens its own file descriptors, so their locks exclude each
// other exactly as two processes' do.
TEST(FileIdentifyGate, TwoGatesOnOneDirectoryShareTheBuckets) {
  TempDir tmp;
  const milliseconds window(100);
  auto a = open_gate(tmp.path(), 2, window);
  auto b = open_gate(tmp.path(), 2, window);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const milliseconds spacing = a->spacing();
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  ASSERT_TRUE(a->try_acquire(0, t0, &retry));
  EXPECT_FALSE(b->try_acquire(2, t0 + spacing - milliseconds(1), &retry));
  EXPECT_EQ(retry, t0 + spacing);
  EXPECT_TRUE(b->try_acquire(2, t0 + spacing, &retry));
  EXPECT_FALSE(a->try_acquire(4, t0 + spacing, &retry));  // a reads b's grant
  EXPECT_EQ(retry, t0 + 2 * spacing);
  a->withdraw(4);

  // Both ask every millisecond for 40 spacings: each bucket is granted once
  // per spacing, never sooner, to one gate or the other.
  std::map<uint32_t, std::vector<Clock::time_point>> grants;  // by bucket
  std::set<const FileIdentifyGate*> winners;
  const Clock::time_point start = t0 + 2 * spacing;
  for (auto now = start; now < start + 40 * spacing; now += milliseconds(1)) {
    for (FileIdentifyGate* gate : {b.get(), a.get()}) {
      for (uint32_t shard = gate == a.get() ? 0 : 1; shard < 8; shard += 2) {
        if (gate->try_acquire(shard, now, &retry)) {
          grants[shard % 2].push_back(now);
          winners.insert(gate);
        }
      }
    }
  }
  ASSERT_EQ(grants.size(), 2u);
  for (const auto& [bucket, times] : grants) {
    EXPECT_EQ(times.size(), 40u) << bucket;
    for (size_t i = 1; i < times.size(); ++i) {
      EXPECT_GE(times[i] - times[i - 1], spacing) << bucket << " " << i;
    }
  }
  EXPECT_EQ(winners.size(), 2u);
}

TEST(FileIdentifyGate, TwoGatesAcrossThreadsNeverGrantABucketWithinTheSpacing) {
  TempDir tmp;
  const milliseconds window(10);
  auto a = open_gate(tmp.path(), 2, window);
  auto b = open_gate(tmp.path(), 2, window);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::mutex mu;
  std::map<uint32_t, std::vector<Clock::time_point>> grants;
  const Clock::time_point end = Clock::now() + milliseconds(150);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      FileIdentifyGate* gate = t % 2 == 0 ? a.get() : b.get();
      Clock::time_point retry;
      for (Clock::time_point now = Clock::now(); now < end; now = Clock::now()) {
        for (uint32_t shard = static_cast<uint32_t>(t); shard < 16; shard += 4) {
          const Clock::time_point asked = Clock::now();
          if (gate->try_acquire(shard, asked, &retry)) {
            std::lock_guard lock(mu);
            grants[shard % 2].push_back(asked);
          }
        }
        std::this_thread::yield();
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(grants.size(), 2u);
  for (auto& [bucket, times] : grants) {
    std::sort(times.begin(), times.end());
    EXPECT_GE(times.size(), 2u) << bucket;
    for (size_t i = 1; i < times.size(); ++i) {
      EXPECT_GE(times[i] - times[i - 1], a->spacing()) << bucket << " " << i;
    }
  }
  EXPECT_EQ(a->io_errors() + b->io_errors(), 0u);
}

// A grant as a child process records it: bucket, child, the time granted.
struct GrantRecord {
  uint32_t bucket;
  uint32_t child;
  int64_t ns;
};

// Real processes, each with its own gate on one directory, all asking as
// fast as they can: no bucket is granted twice within the window (nor within
// window + margin, measured at the times the grants were asked for), whoever
// asks. Each child opens its gate after fork(): an inherited descriptor
// would share the parent's locks.
TEST(FileIdentifyGate, ProcessesNeverGrantABucketTwiceInOneWindow) {
  TempDir tmp;
  constexpr uint32_t kChildren = 3;
  constexpr uint32_t kBuckets = 2;
  const milliseconds window(20);
  const milliseconds spacing = window + identify_margin(window);
  const milliseconds run(300);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::vector<pid_t> children;
  for (uint32_t c = 0; c < kChildren; ++c) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto gate = FileIdentifyGate::open(tmp.path(), kBuckets, window);
      if (!gate.ok()) ::_exit(2);
      const Clock::time_point end = Clock::now() + run;
      Clock::time_point retry;
      while (Clock::now() < end) {
        for (uint32_t shard = c; shard < 4 * kChildren; shard += kChildren) {
          const Clock::time_point now = Clock::now();
          if ((*gate)->try_acquire(shard, now, &retry)) {
            const GrantRecord r{shard % kBuckets, c, ns_of(now)};
            // Smaller than PIPE_BUF: written whole, never interleaved.
            if (::write(fds[1], &r, sizeof r) != sizeof r) ::_exit(3);
          }
        }
      }
      ::_exit((*gate)->io_errors() == 0 ? 0 : 4);
    }
    children.push_back(pid);
  }
  ::close(fds[1]);
  std::vector<GrantRecord> records;
  GrantRecord r{};
  while (::read(fds[0], &r, sizeof r) == sizeof r) records.push_back(r);
  ::close(fds[0]);
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }

  std::map<uint32_t, std::vector<GrantRecord>> by_bucket;
  std::set<uint32_t> winners;
  for (const GrantRecord& g : records) {
    by_bucket[g.bucket].push_back(g);
    winners.insert(g.child);
  }
  ASSERT_EQ(by_bucket.size(), kBuckets);
  for (auto& [bucket, grants] : by_bucket) {
    std::sort(grants.begin(), grants.end(),
              [](const GrantRecord& x, const GrantRecord& y) { return x.ns < y.ns; });
    // 300 ms at one grant per 25 ms is 12; a loaded machine starts the
    // children late, so only a few are required.
    EXPECT_GE(grants.size(), 4u) << bucket;
    for (size_t i = 1; i < grants.size(); ++i) {
      EXPECT_GE(nanoseconds(grants[i].ns - grants[i - 1].ns), spacing)
          << "bucket " << bucket << ": children " << grants[i - 1].child << " and "
          << grants[i].child;
    }
  }
  EXPECT_GE(winners.size(), 2u);  // the buckets really were shared
}

TEST(FileIdentifyGate, ALockHeldElsewhereAnswersWithABusyRetry) {
  TempDir tmp;
  auto gate = open_gate(tmp.path(), 1, milliseconds(100));
  ASSERT_NE(gate, nullptr);
  const int fd = ::open(FileIdentifyGate::bucket_path(tmp.path(), 1, 0).c_str(),
                        O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  EXPECT_FALSE(gate->try_acquire(0, t0, &retry));
  EXPECT_EQ(retry, t0 + kFileGateBusyRetry);
  EXPECT_EQ(gate->lock_busy(), 1u);
  ASSERT_EQ(::flock(fd, LOCK_UN), 0);
  EXPECT_TRUE(gate->try_acquire(0, retry, &retry));
  ::close(fd);
  EXPECT_EQ(gate->io_errors(), 0u);
}

// A time later than the clock + spacing was stored before a reboot (the
// monotonic clock restarted); one within it is another process's fresh grant.
TEST(FileIdentifyGate, IgnoresAStoredTimePastTheClockPlusTheSpacing) {
  TempDir tmp;
  auto gate = open_gate(tmp.path(), 2, milliseconds(100));
  ASSERT_NE(gate, nullptr);
  // Well past the real clock, so `now` is the clock the gate goes by.
  const Clock::time_point now = Clock::now() + std::chrono::hours(1);
  const milliseconds spacing = gate->spacing();
  write_all(FileIdentifyGate::bucket_path(tmp.path(), 2, 0), time_text(now + spacing));
  write_all(FileIdentifyGate::bucket_path(tmp.path(), 2, 1),
            time_text(now + spacing + nanoseconds(1)));
  Clock::time_point retry;
  EXPECT_FALSE(gate->try_acquire(0, now, &retry));
  EXPECT_EQ(retry, now + 2 * spacing);
  EXPECT_TRUE(gate->try_acquire(1, now, &retry));
  EXPECT_EQ(read_all(FileIdentifyGate::bucket_path(tmp.path(), 2, 1)), time_text(now));

  // A previous boot's time (ten days of uptime) with today's clock.
  TempDir fresh;
  auto today = open_gate(fresh.path(), 1, milliseconds(5000));
  ASSERT_NE(today, nullptr);
  write_all(FileIdentifyGate::bucket_path(fresh.path(), 1, 0),
            time_text(Clock::now() + std::chrono::hours(240)));
  EXPECT_TRUE(today->try_acquire(0, Clock::now(), &retry));
}

// A file that holds no time (a write cut short, or someone else's bytes)
// gets `now` without a grant: the bucket waits one spacing.
TEST(FileIdentifyGate, AFileWithoutATimeCostsOneSpacing) {
  TempDir tmp;
  auto gate = open_gate(tmp.path(), 2, milliseconds(100));
  ASSERT_NE(gate, nullptr);
  const std::string p0 = FileIdentifyGate::bucket_path(tmp.path(), 2, 0);
  const std::string p1 = FileIdentifyGate::bucket_path(tmp.path(), 2, 1);
  write_all(p0, "00000000012");  // no newline: cut short
  write_all(p1, std::string(40, '7') + "\n");
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  EXPECT_FALSE(gate->try_acquire(0, t0, &retry));
  EXPECT_EQ(retry, t0 + gate->spacing());
  EXPECT_EQ(read_all(p0), time_text(t0));
  EXPECT_FALSE(gate->try_acquire(1, t0, &retry));
  EXPECT_EQ(read_all(p1), time_text(t0));  // the longer tail is cut
  EXPECT_EQ(gate->io_errors(), 2u);
  EXPECT_TRUE(gate->try_acquire(0, t0 + gate->spacing(), &retry));
  EXPECT_TRUE(gate->try_acquire(1, t0 + gate->spacing(), &retry));

  write_all(p0, "0\n");  // short, but a time
  EXPECT_TRUE(gate->try_acquire(2, t0 + 2 * gate->spacing(), &retry));
  EXPECT_EQ(gate->io_errors(), 2u);
}

TEST(FileIdentifyGate, AnIoErrorAsksAgainLater) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/gate";
  auto gate = open_gate(dir, 1, milliseconds(100));
  ASSERT_NE(gate, nullptr);
  ASSERT_EQ(::rmdir(dir.c_str()), 0);  // the bucket file cannot be created
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  Clock::time_point retry;
  EXPECT_FALSE(gate->try_acquire(0, t0, &retry));
  EXPECT_EQ(retry, t0 + kFileGateErrorRetry);
  EXPECT_EQ(gate->io_errors(), 1u);
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  EXPECT_TRUE(gate->try_acquire(0, retry, &retry));
  EXPECT_EQ(gate->io_errors(), 1u);
}

// A lock on a file no longer in DIR excludes nobody: the gate reopens it.
TEST(FileIdentifyGate, ReopensABucketFileRemovedWhileOpen) {
  TempDir tmp;
  auto a = open_gate(tmp.path(), 1, milliseconds(100));
  auto b = open_gate(tmp.path(), 1, milliseconds(100));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const Clock::time_point t0 = Clock::time_point{} + milliseconds(1);
  const milliseconds spacing = a->spacing();
  Clock::time_point retry;
  ASSERT_TRUE(a->try_acquire(0, t0, &retry));
  ASSERT_EQ(::unlink(FileIdentifyGate::bucket_path(tmp.path(), 1, 0).c_str()), 0);
  ASSERT_TRUE(b->try_acquire(1, t0 + spacing, &retry));
  EXPECT_FALSE(a->try_acquire(2, t0 + spacing + milliseconds(1), &retry));
  EXPECT_EQ(retry, t0 + 2 * spacing);
  EXPECT_EQ(a->io_errors(), 0u);
}

TEST(MakeIdentifyGate, BuildsTheGateTheSpecNames) {
  auto local = make_identify_gate("local", 4, milliseconds(5000));
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_NE(dynamic_cast<LocalIdentifyGate*>(local->get()), nullptr);

  TempDir tmp;
  const std::string dir = tmp.path() + "/gate";
  auto file = make_identify_gate("file:" + dir, 4, milliseconds(5000));
  ASSERT_TRUE(file.ok()) << file.status();
  auto* gate = dynamic_cast<FileIdentifyGate*>(file->get());
  ASSERT_NE(gate, nullptr);
  EXPECT_EQ(gate->dir(), dir);
  EXPECT_EQ(gate->buckets(), 4u);
  EXPECT_EQ(gate->window(), milliseconds(5000));
}

TEST(MakeIdentifyGate, RefusesWhatItCannotBuild) {
  TempDir tmp;
  const std::string file = tmp.path() + "/a-file";
  write_all(file, "x");
  const std::string no_parent = tmp.path() + "/missing/gate";
  for (const std::string& spec : std::vector<std::string>{
           "", "redis", "Local", "local ", "file", "file:", "file:" + file, "file:" + no_parent}) {
    auto gate = make_identify_gate(spec, 1, milliseconds(5000));
    ASSERT_FALSE(gate.ok()) << spec;
    const std::string message(gate.status().message());
    EXPECT_EQ(message.rfind("--identify-gate: ", 0), 0u) << message;
    if (spec.rfind("file:/", 0) != 0) {
      EXPECT_NE(message.find("local or file:DIR"), std::string::npos) << message;
    }
  }
  auto not_dir = make_identify_gate("file:" + file, 1, milliseconds(5000));
  EXPECT_NE(not_dir.status().message().find("not a directory"), std::string_view::npos);
  auto missing = make_identify_gate("file:" + no_parent, 1, milliseconds(5000));
  EXPECT_NE(missing.status().message().find("cannot create"), std::string_view::npos);
}

TEST(MakeIdentifyGate, RefusesADirectoryItCannotWrite) {
  TempDir tmp;
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
  const std::string dir = tmp.path() + "/read-only";
  ASSERT_EQ(::mkdir(dir.c_str(), 0500), 0);
  const auto refused = [&dir] {
    auto gate = make_identify_gate("file:" + dir, 1, milliseconds(5000));
    if (gate.ok()) return false;
    const std::string message(gate.status().message());
    return message.starts_with("--identify-gate: ") &&
           message.find("not writable") != std::string::npos;
  };
  if (::geteuid() != 0) {
    EXPECT_TRUE(refused());
    return;
  }
  // Root writes any directory: ask as nobody, in a child that can drop to it.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
      ::_exit(2);
    }
    ::_exit(refused() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "cannot become nobody here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace shardring::engine
