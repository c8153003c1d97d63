// tests/parse/corpus.h: loads the real-payload corpus (SHARDRING_CORPUS_DIR,
// by default tests/data/corpus; see its SOURCES.md) for the parse tests and
// benchmarks, and owns padded copies of messages. Test-only; any thread.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parse/envelope.h"

namespace shardring::parse::testing {

// A message followed by exactly kPadding bytes of `fill`, in a heap block of
// exactly that size, so a sanitizer catches any read past the padding and
// `fill` shows that nothing depends on what the padding holds.
class Padded {
 public:
  explicit Padded(std::string_view bytes, char fill = '"')
      : size_(bytes.size()), buf_(std::make_unique<char[]>(bytes.size() + kPadding)) {
    if (!bytes.empty()) std::memcpy(buf_.get(), bytes.data(), bytes.size());
    std::memset(buf_.get() + bytes.size(), fill, kPadding);
  }
  std::string_view view() const { return {buf_.get(), size_}; }
  const char* begin() const { return buf_.get(); }
  const char* end() const { return buf_.get() + size_; }

 private:
  size_t size_;
  std::unique_ptr<char[]> buf_;
};

enum class FileKind { kFull, kBareD, kRest };

struct CorpusFile {
  std::string name;   // file name
  std::string bytes;  // contents, unchanged
  FileKind kind;
  std::string event;  // for bare d files: the dispatch it is the d of
};

inline std::filesystem::path corpus_dir() {
  if (const char* env = std::getenv("SHARDRING_CORPUS_DIR"); env && *env) {
    return env;
  }
  if (const char* src = std::getenv("SHARDRING_SOURCE_DIR"); src && *src) {
    return std::filesystem::path(src) / "tests" / "data" / "corpus";
  }
#ifdef SHARDRING_SOURCE_DIR
  return std::filesystem::path(SHARDRING_SOURCE_DIR) / "tests" / "data" / "corpus";
#else
  return std::filesystem::path("tests") / "data" / "corpus";
#endif
}

// The dispatch a bare-d file belongs to (see SOURCES.md); "" if unmapped.
inline std::string bare_d_event(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kMap[] = {
      {"dad_d_interaction_create_", "INTERACTION_CREATE"},
      {"dad_d_message_crossposted", "MESSAGE_CREATE"},
      {"dad_d_voice_state", "VOICE_STATE_UPDATE"},
      {"serenity_d_guild_create_big", "GUILD_CREATE"},
      {"serenity_d_message_embed_unicode", "MESSAGE_CREATE"},
      {"serenity_d_message_reaction_add_emoji", "MESSAGE_REACTION_ADD"},
      {"serenity_d_ready", "READY"},
      {"serenity_d_typing_start", "TYPING_START"},
      {"serenity_d_voice_state_update", "VOICE_STATE_UPDATE"},
      {"twilight_d_guild_members_chunk", "GUILD_MEMBERS_CHUNK"},
  };
  for (const auto& [prefix, event] : kMap) {
    if (name.starts_with(prefix)) return std::string(event);
  }
  return "";
}

// Every *.json file of the corpus, sorted by name.
inline std::vector<CorpusFile> load_corpus() {
  std::vector<CorpusFile> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(corpus_dir(), ec)) {
    if (!e.is_regular_file() || e.path().extension() != ".json") continue;
    std::ifstream in(e.path(), std::ios::binary);
    CorpusFile f;
    f.name = e.path().filename().string();
    f.bytes.assign(std::istreambuf_iterator<char>(in), {});
    if (f.name.find("_rest_") != std::string::npos) {
      f.kind = FileKind::kRest;
    } else if (f.name.find("_d_") != std::string::npos) {
      f.kind = FileKind::kBareD;
      f.event = bare_d_event(f.name);
    } else {
      f.kind = FileKind::kFull;
    }
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(),
            [](const CorpusFile& a, const CorpusFile& b) { return a.name < b.name; });
  return out;
}

// {"op":0,"s":<seq>,"t":"<event>","d":<d>} with the four keys in the order
// `order` gives (a permutation of "osdt": o=op, s=s, t=t, d=d).
inline std::string wrap_dispatch(std::string_view d, std::string_view event, uint64_t seq,
                                 std::string_view order = "tsod") {
  std::string out = "{";
  for (char k : order) {
    if (out.size() > 1) out += ',';
    switch (k) {
      case 'o':
        out += "\"op\":0";
        break;
      case 's':
        out += "\"s\":" + std::to_string(seq);
        break;
      case 't':
        out += "\"t\":\"" + std::string(event) + "\"";
        break;
      case 'd':
        out += "\"d\":";
        out += d;
        break;
    }
  }
  out += '}';
  return out;
}

// JSON text without its leading and trailing whitespace.
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_json_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_json_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace shardring::parse::testing
