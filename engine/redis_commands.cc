// engine/redis_commands.cc: see redis_commands.h.
#include "engine/redis_commands.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/log.h"
#include "redis/resp.h"
#include "redis/scripts.h"

namespace shardring::engine {

namespace {

using redis::Reply;

std::string_view Field(const Reply& fields, std::string_view name) {
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    if (fields.elements[i].str == name) return fields.elements[i + 1].str;
  }
  return {};
}

}  // namespace

RedisCommands::RedisCommands(Options opts)
    : opts_(std::move(opts)),
      stream_(redis::key(opts_.prefix, "commands")),
      results_(redis::key(opts_.prefix, "command-results")),
      link_(opts_.url) {}

RedisCommands::~RedisCommands() { stop(); }

void RedisCommands::start() {
  thread_ = std::thread([this] { run(); });
}

void RedisCommands::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

bool RedisCommands::step(bool pending_only, bool* got_any, std::string* error) {
  *got_any = false;
  std::string wire;
  redis::CommandWriter w(wire);
  if (pending_only) {
    w.command({"XREADGROUP", "GROUP", group_, "engine", "COUNT", std::to_string(kCommandBatch),
               "STREAMS", stream_, "0"});
  } else {
    w.command({"XREADGROUP", "GROUP", group_, "engine", "COUNT", std::to_string(kCommandBatch),
               "BLOCK", std::to_string(kCommandBlock.count()), "STREAMS", stream_, ">"});
  }
  std::vector<Reply> replies;
  if (!link_.exchange(wire, 1, &replies, error)) return false;
  const Reply& r = replies[0];
  if (r.is_error()) {
    *error = r.str;
    if (r.error_code() == "NOGROUP") link_.close();  // the stream was deleted: create again
    return false;
  }
  if (r.is_nil() || r.elements.empty()) return true;
  const Reply& entries = r.elements[0].elements.at(1);
  if (entries.elements.empty()) return true;
  *got_any = true;
  std::string out;
  redis::CommandWriter ack(out);
  ack.command({"MULTI"});
  std::vector<std::string_view> ids;
  for (const Reply& e : entries.elements) {
    const std::string& entry_id = e.elements.at(0).str;
    ids.push_back(entry_id);
    const Reply& fields = e.elements.at(1);
    if (fields.is_nil()) continue;  // trimmed away while pending
    std::string_view id = Field(fields, "id");
    std::string_view shard_text = Field(fields, "shard");
    int64_t shard = -1, op = -1;
    redis::parse_int(shard_text, &shard);
    redis::parse_int(Field(fields, "op"), &op);
    if (shard >= 0 &&
        (static_cast<uint64_t>(shard) < first_ || static_cast<uint64_t>(shard) > last_)) {
      continue;  // another slice's shard: its own group answers it
    }
    Outcome o;
    if (pending_only) {
      o.reason = std::string(kInterrupted);
    } else if (id.empty()) {
      o.reason = "no id field";
    } else if (shard < 0) {
      o.reason = "no shard field, or not a shard id";
    } else if (op < 0) {
      o.reason = "no op field, or not a number";
    } else {
      std::string_view d = Field(fields, "d");
      std::string payload = "{\"op\":";
      payload.append(std::to_string(op)).append(",\"d\":");
      payload.append(d.empty() ? std::string_view("null") : d).append("}");
      o = opts_.send(static_cast<uint32_t>(shard), std::move(payload));
    }
    (o.sent ? sent_ : refused_).fetch_add(1);
    if (!o.sent) {
      Log::write(Level::kWarn, shard, "command refused",
                 {{"id", id}, {"entry", entry_id}, {"reason", o.reason}});
    }
    ack.command({"XADD", results_, "MAXLEN", "~", std::to_string(kCommandResultsMaxLen), "*", "id",
                 id, "shard", shard_text, "status", o.sent ? "sent" : "refused", "reason",
                 o.reason});
  }
  ack.begin(3 + ids.size());
  ack.arg("XACK");
  ack.arg(stream_);
  ack.arg(group_);
  for (std::string_view id : ids) ack.arg(id);
  ack.command({"EXEC"});
  // The outcome must be recorded and the entries acknowledged, whatever it
  // takes: a lost connection here is retried with the same batch, never
  // by reading (and sending) the commands again.
  std::chrono::milliseconds backoff{50};
  int tries_while_stopping = 0;
  for (;;) {
    std::vector<Reply> done;
    std::string why;
    if (link_.exchange(out, ack.commands(), &done, &why)) {
      if (!done.back().is_error()) return true;
      why = done.back().str;
    }
    if (stop_.load() && ++tries_while_stopping > 10) {
      // Stopping with Redis gone: the entries stay pending, and the next
      // start reports them interrupted (never sent twice).
      Log::write(Level::kError, -1, "redis: command results not recorded at stop",
                 {{"error", why}, {"commands", ids.size()}});
      return true;
    }
    Log::write(Level::kWarn, -1, "redis: recording command results failed: retrying",
               {{"error", why}});
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

void RedisCommands::run() {
  // Signals are the engine's (its signalfd): never delivered here.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::chrono::milliseconds backoff{50};
  bool pending_done = false;
  bool created = false;
  bool down = false;
  while (!stop_.load()) {
    if (group_.empty()) {
      auto slice = opts_.slice();
      if (!slice) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      first_ = slice->first;
      last_ = slice->second;
      group_ = absl::StrCat("gateway-", first_, "-", last_);
    }
    std::string error;
    bool ok = true;
    if (!created) {
      Reply r;
      // From now on when the group is new; a restart continues where the
      // group stands (commands added while stopped are read then).
      ok = link_.call({"XGROUP", "CREATE", stream_, group_, "$", "MKSTREAM"}, &r, &error);
      if (ok && r.is_error() && r.error_code() != "BUSYGROUP") {
        ok = false;
        error = r.str;
      }
      created = ok;
    }
    bool got = false;
    if (ok) {
      ok = step(!pending_done, &got, &error);
      if (ok && !pending_done && !got) pending_done = true;
    }
    if (ok) {
      if (down) Log::write(Level::kInfo, -1, "redis commands: reading again", {{"group", group_}});
      down = false;
      backoff = std::chrono::milliseconds(50);
      continue;
    }
    if (!down) {
      Log::write(Level::kWarn, -1, "redis commands: cannot read: retrying",
                 {{"group", group_}, {"error", error}});
    }
    down = true;
    created = created && link_.connected();
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace shardring::engine
