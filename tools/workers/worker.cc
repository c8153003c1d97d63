// shardring-worker-example: an example worker for `shardring run --sink redis`, in C++ with
// hiredis; the same behaviour and flags as worker.py beside it (see docs/workers.md).
//
// Reads the shard streams P:shard:N through a consumer group, handles each event, then
// acknowledges it (XACK, one pipelined round trip per batch). Started again under the same
// --consumer name it first handles what it had read but not acknowledged; entries left pending
// by a worker that died are taken over (XAUTOCLAIM) once idle for --claim-idle-ms.
//
//   build/bin/shardring-worker-example --redis redis://127.0.0.1:6380 --shards 16
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t stop_requested = 0;
void on_stop_signal(int) { stop_requested = 1; }

struct Options {
  std::string redis = "redis://127.0.0.1:6379";
  std::string prefix = "shardring";
  std::string group = "workers";
  std::string consumer;
  long shards = 1;
  long first_shard = 0, last_shard = -1;  // --shard-ids A-B; -1: up to --shards - 1
  long count = 100;
  long block_ms = 2000;
  long claim_idle_ms = 30000;
  std::string out;
  double exit_after_idle_s = 0;
  long handle_delay_ms = 0;  // a test hook: slow handling
};

[[noreturn]] void fail(int code, const std::string& message) {
  std::fprintf(stderr, "shardring-worker-example: %s\n", message.c_str());
  std::exit(code);
}

long parse_long(const std::string& flag, const std::string& text, long min) {
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < min) {
    fail(2, flag + ": expected an integer of at least " + std::to_string(min) + ", got '" + text +
                "'");
  }
  return v;
}

Options parse_flags(int argc, char** argv) {
  Options o;
  char host[256] = "worker";
  gethostname(host, sizeof host - 1);
  o.consumer = std::string(host) + "-" + std::to_string(getpid());
  const std::string known =
      " --redis --prefix --group --consumer --shards --shard-ids --count --block-ms"
      " --claim-idle-ms --out --exit-after-idle-s --handle-delay-ms ";
  for (int i = 1; i < argc; ++i) {
    // --name value or --name=value
    std::string flag = argv[i], value;
    auto eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag.find(' ') != std::string::npos || known.find(" " + flag + " ") == std::string::npos) {
      fail(2, "unknown flag " + flag + " (see docs/workers.md)");
    }
    if (eq == std::string::npos) {
      if (i + 1 == argc) fail(2, flag + ": missing value");
      value = argv[++i];
    }
    if (flag == "--redis") {
      o.redis = value;
    } else if (flag == "--prefix") {
      o.prefix = value;
    } else if (flag == "--group") {
      o.group = value;
    } else if (flag == "--consumer") {
      o.consumer = value;
    } else if (flag == "--shards") {
      o.shards = parse_long(flag, value, 1);
    } else if (flag == "--shard-ids") {
      auto dash = value.find('-');
      o.first_shard = parse_long(flag, value.substr(0, dash), 0);
      o.last_shard =
          dash == std::string::npos ? o.first_shard : parse_long(flag, value.substr(dash + 1), 0);
    } else if (flag == "--count") {
      o.count = parse_long(flag, value, 1);
    } else if (flag == "--block-ms") {
      o.block_ms = parse_long(flag, value, 1);
    } else if (flag == "--claim-idle-ms") {
      o.claim_idle_ms = parse_long(flag, value, 1);
    } else if (flag == "--out") {
      o.out = value;
    } else if (flag == "--exit-after-idle-s") {
      char* end = nullptr;
      o.exit_after_idle_s = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(o.exit_after_idle_s >= 0)) {
        std::string why = flag;
        why += ": expected seconds, got '";
        why += value;
        why += "'";
        fail(2, why);
      }
    } else if (flag == "--handle-delay-ms") {
      o.handle_delay_ms = parse_long(flag, value, 0);
    }
  }
  if (o.last_shard < 0) o.last_shard = o.shards - 1;
  if (o.first_shard > o.last_shard || o.last_shard >= o.shards) {
    fail(2, "--shard-ids must lie within 0..--shards-1");
  }
  return o;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

std::string str(const redisReply* r) { return r && r->str ? std::string(r->str, r->len) : ""; }

// One blocking connection. Any I/O or protocol error ends the process with exit 1: a worker
// is meant to be restarted by its supervisor, and what it had read stays pending for it.
class Redis {
 public:
  explicit Redis(const std::string& url, long block_ms) {
    // redis://HOST[:PORT][/DB]
    const std::string scheme = "redis://";
    if (url.compare(0, scheme.size(), scheme) != 0) fail(2, "--redis: expected redis://HOST:PORT");
    std::string rest = url.substr(scheme.size()), db;
    if (auto slash = rest.find('/'); slash != std::string::npos) {
      db = rest.substr(slash + 1);
      rest.resize(slash);
    }
    std::string host = rest;
    int port = 6379;
    if (auto colon = rest.rfind(':'); colon != std::string::npos) {
      host = rest.substr(0, colon);
      port = static_cast<int>(parse_long("--redis port", rest.substr(colon + 1), 1));
    }
    ctx_ = redisConnect(host.c_str(), port);
    if (ctx_ == nullptr || ctx_->err) fail(1, "redis: cannot connect to " + url + error());
    // A read waits up to --block-ms in Redis; more than that plus slack means Redis is gone.
    long ms = block_ms + 10000;
    redisSetTimeout(ctx_, timeval{ms / 1000, (ms % 1000) * 1000});
    if (!db.empty()) command({"SELECT", db});
  }
  ~Redis() { redisFree(ctx_); }
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;

  // Queue a command; reply() reads the answers in order (a pipeline).
  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      fail(1, "redis: " + error());
    }
  }
  // The next reply; an error reply is returned to the caller.
  Reply reply() {
    void* r = nullptr;
    if (redisGetReply(ctx_, &r) != REDIS_OK || r == nullptr) fail(1, "redis: " + error());
    return Reply(static_cast<redisReply*>(r));
  }
  // One command; an error reply ends the process unless it starts with `tolerated`.
  Reply command(const std::vector<std::string>& args, const char* tolerated = nullptr) {
    append(args);
    Reply r = reply();
    if (r->type == REDIS_REPLY_ERROR &&
        (tolerated == nullptr || std::strncmp(r->str, tolerated, std::strlen(tolerated)) != 0)) {
      fail(1, "redis: " + args[0] + ": " + str(r.get()));
    }
    return r;
  }

 private:
  std::string error() const { return ctx_ ? std::string(": ") + ctx_->errstr : ""; }
  redisContext* ctx_ = nullptr;
};

using Clock = std::chrono::steady_clock;

class Worker {
 public:
  Worker(const Options& o, Redis& redis) : o_(o), redis_(redis) {
    for (long n = o.first_shard; n <= o.last_shard; ++n) {
      streams_.push_back(o.prefix + ":shard:" + std::to_string(n));
      shard_of_[streams_.back()] = n;
    }
    if (!o.out.empty() && (out_ = std::fopen(o.out.c_str(), "a")) == nullptr) {
      fail(1, "cannot open " + o.out);
    }
  }
  ~Worker() {
    if (out_) std::fclose(out_);
  }

  void run() {
    create_groups();
    finish_own_pending();
    const auto claim_every = std::chrono::milliseconds(o_.claim_idle_ms / 2);
    auto idle_since = Clock::now(), last_claim = idle_since - claim_every;
    while (!stop_requested) {
      if (Clock::now() - last_claim >= claim_every) {
        last_claim = Clock::now();
        if (claim() > 0) idle_since = Clock::now();
      }
      if (read(">", true) > 0) {
        idle_since = Clock::now();
      } else if (o_.exit_after_idle_s > 0 &&
                 std::chrono::duration<double>(Clock::now() - idle_since).count() >=
                     o_.exit_after_idle_s) {
        break;
      }
    }
  }

  void print_summary() const {
    long total = 0;
    std::string by_type;
    for (const auto& [t, n] : counts_) {
      total += n;
      by_type += (by_type.empty() ? "" : " ") + t + "=" + std::to_string(n);
    }
    std::fprintf(stderr, "worker %s: handled %ld (%s), claimed %ld\n", o_.consumer.c_str(), total,
                 by_type.c_str(), claimed_);
  }

 private:
  // The group on every stream, from its start; MKSTREAM: the engine may not have written yet.
  void create_groups() {
    for (const auto& key : streams_) {
      redis_.command({"XGROUP", "CREATE", key, o_.group, "0", "MKSTREAM"}, "BUSYGROUP");
    }
  }

  // ID 0 reads this consumer's own pending entries (read before a crash or restart, never
  // acknowledged); each pass acknowledges what it read, so the loop ends.
  void finish_own_pending() {
    while (!stop_requested && read("0", false) > 0) {
    }
  }

  // XREADGROUP over every stream; handles and acknowledges what came. Returns the entry count.
  size_t read(const char* id, bool block) {
    std::vector<std::string> args = {"XREADGROUP", "GROUP", o_.group,
                                     o_.consumer,  "COUNT", std::to_string(o_.count)};
    if (block) args.insert(args.end(), {"BLOCK", std::to_string(o_.block_ms)});
    args.push_back("STREAMS");
    args.insert(args.end(), streams_.begin(), streams_.end());
    args.insert(args.end(), streams_.size(), id);
    Reply r = redis_.command(args);
    if (r->type != REDIS_REPLY_ARRAY) return 0;  // nil: the block timed out
    std::vector<std::pair<std::string, const redisReply*>> batch;
    for (size_t i = 0; i < r->elements; ++i) {  // [key, [entry, ...]]
      const redisReply* s = r->element[i];
      batch.emplace_back(str(s->element[0]), s->element[1]);
    }
    return handle_batch(batch);
  }

  // XAUTOCLAIM, stream by stream, what other consumers left pending for longer than
  // --claim-idle-ms (they died, or hang), and handle it.
  size_t claim() {
    size_t total = 0;
    for (const auto& key : streams_) {
      std::string start = "0-0";
      do {
        Reply r = redis_.command({"XAUTOCLAIM", key, o_.group, o_.consumer,
                                  std::to_string(o_.claim_idle_ms), start, "COUNT",
                                  std::to_string(o_.count)});
        start = str(r->element[0]);  // [next start, [entry, ...], (Redis 7) [deleted id, ...]]
        size_t n = handle_batch({{key, r->element[1]}});
        if (n > 0) std::fprintf(stderr, "claimed %zu entries of %s\n", n, key.c_str());
        claimed_ += static_cast<long>(n);
        total += n;
      } while (start != "0-0" && !stop_requested);
    }
    return total;
  }

  // Handle every entry, then acknowledge them all in one round trip. Returns the entry count.
  size_t handle_batch(const std::vector<std::pair<std::string, const redisReply*>>& batch) {
    size_t entries = 0, acks = 0;
    for (const auto& [key, list] : batch) {
      std::vector<std::string> xack = {"XACK", key, o_.group};
      for (size_t i = 0; i < list->elements; ++i) {
        const redisReply* e = list->element[i];      // [id, [field, value, ...]]
        if (e->type != REDIS_REPLY_ARRAY) continue;  // Redis 6.2's XAUTOCLAIM: deleted
        xack.push_back(str(e->element[0]));
        // Nil fields: trimmed from the stream while pending; nothing to handle, still acked.
        if (e->element[1]->type == REDIS_REPLY_ARRAY) handle(shard_of_[key], e->element[1]);
      }
      if (xack.size() > 3) {
        entries += xack.size() - 3;
        redis_.append(xack);
        ++acks;
      }
    }
    if (out_) std::fflush(out_);
    for (size_t i = 0; i < acks; ++i) {
      if (Reply r = redis_.reply(); r->type == REDIS_REPLY_ERROR) fail(1, "XACK: " + str(r.get()));
    }
    return entries;
  }

  // The example's handling: count by type, write `shard seq t`. A real worker parses `d`
  // (the event's JSON as Discord sent it) here.
  void handle(long shard, const redisReply* fields) {
    std::string seq, t;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
      std::string name = str(fields->element[i]);
      if (name == "seq") seq = str(fields->element[i + 1]);
      if (name == "t") t = str(fields->element[i + 1]);
    }
    ++counts_[t];
    if (out_) std::fprintf(out_, "%ld %s %s\n", shard, seq.c_str(), t.c_str());
    if (o_.handle_delay_ms > 0) usleep(static_cast<useconds_t>(o_.handle_delay_ms) * 1000);
  }

  const Options& o_;
  Redis& redis_;
  std::vector<std::string> streams_;
  std::map<std::string, long> shard_of_;
  std::map<std::string, long> counts_;
  long claimed_ = 0;
  std::FILE* out_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_flags(argc, argv);
  // No SA_RESTART: the flag is seen after the current batch (or blocked read) ends.
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Redis redis(o.redis, o.block_ms);
  Worker worker(o, redis);
  worker.run();
  worker.print_summary();
  return 0;
}
