#include "engine/session_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/json.h"
#include "simdjson.h"

namespace shardring {
namespace {

std::string ErrnoText(int err) { return absl::StrCat(std::strerror(err), " (errno ", err, ")"); }

// Writes all of `data`; false with errno set.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A 64-bit number written as a JSON string (JavaScript readers keep every
// digit of a string; a bare number loses precision past 2^53).
// Takes the lookup's result, not an element: a missing field must be an
// error here, never the exception converting it would throw.
bool GetU64String(simdjson::simdjson_result<simdjson::dom::element> e, uint64_t* out) {
  std::string_view s;
  return e.get_string().get(s) == simdjson::SUCCESS && ParseU64(s, out);
}

}  // namespace

std::string FileSessionStore::to_json(const SavedRun& run) {
  std::string j = absl::StrCat(
      "{\"version\":", kSessionStoreVersion, ",\"bot_user_id\":\"", run.bot_user_id,
      "\",\"total_shards\":", run.total_shards, ",\"intents\":", run.intents, ",\"compress\":\"",
      parse::to_string(run.compress), "\",\"saved_unix_ms\":", run.saved_unix_ms, ",\"sink\":");
  base::append_json_string(j, run.sink);
  j += ",\"shards\":[";
  for (size_t i = 0; i < run.shards.size(); ++i) {
    const SavedShard& s = run.shards[i];
    absl::StrAppend(&j, i ? ",\n" : "\n", "{\"shard\":", s.shard, ",\"session_id\":");
    base::append_json_string(j, s.session_id);
    j += ",\"resume_url\":";
    base::append_json_string(j, s.resume_url);
    absl::StrAppend(&j, ",\"seq\":", s.seq, ",\"alive_unix_ms\":", s.alive_unix_ms,
                    ",\"written_session\":\"", s.written.session,
                    "\",\"written_seq\":", s.written.seq, "}");
  }
  j += "]}\n";
  return j;
}

bool FileSessionStore::from_json(std::string_view text, SavedRun* out, std::string* error) {
  *out = SavedRun{};
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (auto e = parser.parse(padded).get(root)) {
    *error = absl::StrCat("not JSON (", simdjson::error_message(e), ")");
    return false;
  }
  int64_t version = 0;
  if (root["version"].get_int64().get(version) != simdjson::SUCCESS) {
    *error = "no \"version\": not a shardring session store";
    return false;
  }
  if (version != kSessionStoreVersion) {
    *error =
        absl::StrCat("version ", version, ", this shardring reads version ", kSessionStoreVersion);
    return false;
  }
  auto bad = [&](const char* field) {
    *error = absl::StrCat("bad or missing \"", field, "\"");
    return false;
  };
  uint64_t u = 0;
  std::string_view sv;
  int64_t i = 0;
  if (!GetU64String(root["bot_user_id"], &out->bot_user_id)) return bad("bot_user_id");
  if (root["total_shards"].get_uint64().get(u) || u > UINT32_MAX) return bad("total_shards");
  out->total_shards = static_cast<uint32_t>(u);
  if (root["intents"].get_uint64().get(out->intents)) return bad("intents");
  if (root["compress"].get_string().get(sv)) return bad("compress");
  const auto c = parse::compression_from_name(sv);
  if (!c) return bad("compress");
  out->compress = *c;
  if (root["saved_unix_ms"].get_int64().get(out->saved_unix_ms)) return bad("saved_unix_ms");
  if (root["sink"].get_string().get(sv)) return bad("sink");
  out->sink.assign(sv);
  simdjson::dom::array shards;
  if (root["shards"].get_array().get(shards)) return bad("shards");
  for (simdjson::dom::element e : shards) {
    SavedShard s;
    if (e["shard"].get_uint64().get(u) || u > UINT32_MAX) return bad("shards[].shard");
    s.shard = static_cast<uint32_t>(u);
    if (e["session_id"].get_string().get(sv) || sv.empty()) return bad("shards[].session_id");
    s.session_id.assign(sv);
    if (e["resume_url"].get_string().get(sv)) return bad("shards[].resume_url");
    s.resume_url.assign(sv);
    if (e["seq"].get_uint64().get(s.seq)) return bad("shards[].seq");
    if (e["alive_unix_ms"].get_int64().get(i)) return bad("shards[].alive_unix_ms");
    s.alive_unix_ms = i;
    if (!GetU64String(e["written_session"], &s.written.session)) {
      return bad("shards[].written_session");
    }
    if (e["written_seq"].get_uint64().get(s.written.seq)) return bad("shards[].written_seq");
    if (!out->shards.empty() && out->shards.back().shard >= s.shard) {
      *error = "shards are not in increasing order";
      return false;
    }
    out->shards.push_back(std::move(s));
  }
  return true;
}

bool FileSessionStore::load(SavedRun* out, std::string* error) {
  *out = SavedRun{};
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;  // never written: nothing to resume
    *error = absl::StrCat(path_, ": cannot open: ", ErrnoText(errno));
    return false;
  }
  std::string text;
  char buf[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = absl::StrCat(path_, ": cannot read: ", ErrnoText(errno));
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  std::string why;
  if (!from_json(text, out, &why)) {
    *error = absl::StrCat(path_, ": ", why);
    return false;
  }
  return true;
}

bool FileSessionStore::save(const SavedRun& run, std::string* error) {
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = absl::StrCat(tmp, ": cannot create: ", ErrnoText(errno));
    return false;
  }
  const std::string text = to_json(run);
  if (!WriteAll(fd, text) || ::fsync(fd) != 0) {
    *error = absl::StrCat(tmp, ": cannot write: ", ErrnoText(errno));
    ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    *error = absl::StrCat(path_, ": cannot replace: ", ErrnoText(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  // The rename itself is durable once the directory is synced.
  const size_t slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

uint64_t bot_user_id_from_token(std::string_view token) noexcept {
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0) return 0;
  const std::string_view seg = token.substr(0, dot);
  // base64 (either alphabet), padding optional.
  uint64_t id = 0;
  uint32_t acc = 0;
  int bits = 0;
  size_t digits = 0;
  for (char ch : seg) {
    int v = -1;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    if (ch == '+' || ch == '-') v = 62;
    if (ch == '/' || ch == '_') v = 63;
    if (ch == '=') break;
    if (v < 0) return 0;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      const char c = static_cast<char>((acc >> bits) & 0xff);
      if (c < '0' || c > '9' || ++digits > 20) return 0;
      const uint64_t d = static_cast<uint64_t>(c - '0');
      if (id > (UINT64_MAX - d) / 10) return 0;
      id = id * 10 + d;
    }
  }
  return digits == 0 ? 0 : id;
}

}  // namespace shardring
