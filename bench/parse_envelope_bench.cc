// bench/parse_envelope_bench.cc: the gateway envelope parser over the real
// corpus, against what other gateway libraries parse with, each building its
// full DOM of the same bytes (simdjson DOM, RapidJSON, nlohmann::json), and
// against simdjson::validate_utf8 over the same bytes (the floor any parser
// that checks its input must pay) and memcpy.
// bench/parse_compare.sh runs it with repetitions and prints median ratios.
//
// Message sets:
//   gateway  2,000 events drawn from `shardring gateway`'s built-in mix, as
//            it sends them (and as Discord does: compact, "t" first): the
//            proportions and sizes of a bot's traffic.
//   mix      dispatch frames of 128 B .. 4 KiB of the corpus (full op 0
//            frames, bare d files wrapped as {"t":..,"s":..,"op":0,"d":..}),
//            pretty-printed as their authors wrote them.
//   frames   every full frame of the corpus, as received.
//   file:X   one corpus file (bare d files wrapped).
//   capture  with --capture=PATH[,PATH...]: your own gateway traffic. A file
//            of several lines is one payload per line (gateway payloads, or
//            `shardring run` NDJSON lines, read as dispatches with two extra
//            keys); any other file is one payload.
// Every message sits in one arena followed by kPadding bytes, as the ws
// layer hands them over. Bytes/s counts message bytes; items/s counts events.
#include <benchmark/benchmark.h>
#if SHARDRING_HAVE_GATEWAY_MIX
#include <random>

#include "tools/gateway/mix.h"
#endif
#include <simdjson.h>
#if __has_include(<rapidjson/document.h>)
#include <rapidjson/document.h>
#define SHARDRING_HAVE_RAPIDJSON 1
#endif
#if __has_include(<nlohmann/json.hpp>)
#include <nlohmann/json.hpp>
#define SHARDRING_HAVE_NLOHMANN 1
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "parse/envelope.h"
#include "tests/parse/corpus.h"

namespace {

using shardring::parse::Check;
using shardring::parse::Envelope;
using shardring::parse::Errc;
using shardring::parse::EventName;
using shardring::parse::kPadding;
using shardring::parse::Parser;
namespace pt = shardring::parse::testing;

struct MessageSet {
  std::string arena;
  std::vector<std::pair<size_t, size_t>> spans;  // offset, size
  size_t bytes = 0;

  void add(std::string_view m) {
    spans.emplace_back(arena.size(), m.size());
    arena.append(m);
    arena.append(kPadding, ' ');
    bytes += m.size();
  }
  std::vector<std::string_view> views() const {
    std::vector<std::string_view> v;
    for (auto [off, n] : spans) v.emplace_back(arena.data() + off, n);
    return v;
  }
};

std::string as_frame(const pt::CorpusFile& f, uint64_t seq) {
  if (f.kind == pt::FileKind::kBareD) {
    return pt::wrap_dispatch(pt::trim(f.bytes), f.event, seq, "tsod");
  }
  return f.bytes;
}

void finish(benchmark::State& state, const MessageSet& set) {
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(set.bytes));
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(set.spans.size()));
}

enum class Mode {
  kFull,
  kEnvelope,
  kRouting,
  kFullRouting,
  kTypeOnly,
  kUtf8,
  kMemcpy,
  kSimdjsonDom,
  kRapidJson,
  kNlohmann,
};

void run(benchmark::State& state, const MessageSet* set, Mode mode) {
  const std::vector<std::string_view> msgs = set->views();
  Parser parser;
  Envelope env;
  EventName name;
  std::string sink(set->arena.size(), '\0');
  simdjson::dom::parser dom;
  for (auto _ : state) {
    for (std::string_view m : msgs) {
      switch (mode) {
        case Mode::kFull:
        case Mode::kEnvelope:
        case Mode::kRouting:
        case Mode::kFullRouting: {
          const Check check =
              mode == Mode::kFull || mode == Mode::kFullRouting ? Check::kFull : Check::kEnvelope;
          const bool routing = mode == Mode::kRouting || mode == Mode::kFullRouting;
          if (parser.parse(m, env, {.check = check, .routing_keys = routing}) != Errc::kOk) {
            state.SkipWithError("parse failed");
            return;
          }
          benchmark::DoNotOptimize(env.d.data());
          benchmark::DoNotOptimize(env.routing.guild_id);
          break;
        }
        case Mode::kTypeOnly:
          if (parser.event_type(m, name) != Errc::kOk) {
            state.SkipWithError("event_type failed");
            return;
          }
          benchmark::DoNotOptimize(name.type);
          break;
        case Mode::kUtf8: {
          bool ok = simdjson::validate_utf8(m.data(), m.size());
          benchmark::DoNotOptimize(ok);
          break;
        }
        case Mode::kMemcpy:
          std::memcpy(sink.data(), m.data(), m.size());
          benchmark::DoNotOptimize(sink.data());
          benchmark::ClobberMemory();
          break;
        case Mode::kSimdjsonDom: {  // the padding is there: no copy
          simdjson::dom::element doc;
          if (dom.parse(m.data(), m.size(), false).get(doc) != simdjson::SUCCESS) {
            state.SkipWithError("simdjson DOM failed");
            return;
          }
          benchmark::DoNotOptimize(doc);
          break;
        }
        case Mode::kRapidJson: {
#ifdef SHARDRING_HAVE_RAPIDJSON
          rapidjson::Document doc;
          doc.Parse<rapidjson::kParseValidateEncodingFlag>(m.data(), m.size());
          if (doc.HasParseError()) {
            state.SkipWithError("RapidJSON failed");
            return;
          }
          benchmark::DoNotOptimize(doc);
#endif
          break;
        }
        case Mode::kNlohmann: {
#ifdef SHARDRING_HAVE_NLOHMANN
          auto doc = nlohmann::json::parse(m.begin(), m.end(), nullptr, false);
          if (doc.is_discarded()) {
            state.SkipWithError("nlohmann failed");
            return;
          }
          benchmark::DoNotOptimize(doc);
#endif
          break;
        }
      }
    }
  }
  finish(state, *set);
}

}  // namespace

// --capture=PATH[,PATH...] (taken out of argv): the "capture" set.
MessageSet load_capture(int& argc, char** argv) {
  MessageSet set;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!a.starts_with("--capture=")) {
      argv[kept++] = argv[i];
      continue;
    }
    a.remove_prefix(10);
    while (!a.empty()) {
      const size_t comma = a.find(',');
      const std::string path(a.substr(0, comma));
      a = comma == std::string_view::npos ? std::string_view() : a.substr(comma + 1);
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "--capture: cannot read %s\n", path.c_str());
        std::exit(2);
      }
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      std::vector<std::string_view> lines;
      for (size_t at = 0; at < text.size();) {
        size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        std::string_view line(text.data() + at, nl - at);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (!line.empty()) lines.push_back(line);
        at = nl + 1;
      }
      if (lines.size() <= 1) {
        set.add(text);
        continue;
      }
      for (std::string_view l : lines) {
        // A `shardring run` line has no "op": read it as a dispatch.
        if (l.starts_with("{\"shard\":")) {
          set.add("{\"op\":0," + std::string(l.substr(1)));
        } else {
          set.add(l);
        }
      }
    }
  }
  argc = kept;
  return set;
}

int main(int argc, char** argv) {
  static std::vector<pt::CorpusFile> corpus = pt::load_corpus();
  static std::vector<std::pair<std::string, MessageSet>> sets;
  if (MessageSet capture = load_capture(argc, argv); !capture.spans.empty()) {
    sets.emplace_back("capture", std::move(capture));
  }
#if SHARDRING_HAVE_GATEWAY_MIX
  {
    namespace gs = shardring::gatewaysrv;
    const gs::Mix gm = gs::Mix::builtin();
    std::mt19937_64 rng(20261128);
    MessageSet gateway;
    std::string payload;
    for (uint64_t i = 0; i < 2000; ++i) {
      const gs::Splice splice{i + 1, 1'700'000'000'000'000'000ull + i * 1'000,
                              gs::guild_id(0, 1, static_cast<uint32_t>(i % 3)),
                              1'100'000'000'000'000'000ull + i * 16};
      payload.clear();
      gs::append_payload(payload, gm.pick(rng()), splice);
      gateway.add(payload);
    }
    sets.emplace_back("gateway", std::move(gateway));
  }
#endif
  MessageSet mix, frames;
  uint64_t seq = 1;
  for (const auto& f : corpus) {
    if (f.kind == pt::FileKind::kRest) continue;
    const std::string frame = as_frame(f, seq++);
    const bool dispatch =
        f.kind == pt::FileKind::kBareD || f.name.find("_op0_") != std::string::npos;
    if (dispatch && frame.size() >= 128 && frame.size() <= 4096) mix.add(frame);
    if (f.kind == pt::FileKind::kFull) frames.add(frame);
  }
  sets.emplace_back("mix", std::move(mix));
  sets.emplace_back("frames", std::move(frames));
  for (const auto& f : corpus) {
    if (f.kind == pt::FileKind::kRest) continue;
    MessageSet one;
    one.add(as_frame(f, 1));
    sets.emplace_back("file:" + f.name, std::move(one));
  }
  static constexpr std::pair<const char*, Mode> kModes[] = {
      {"BM_ParseFull", Mode::kFull},
      {"BM_ParseEnvelope", Mode::kEnvelope},
      {"BM_ParseEnvelopeRouting", Mode::kRouting},
      {"BM_ParseFullRouting", Mode::kFullRouting},
      {"BM_ParseEventTypeOnly", Mode::kTypeOnly},
      {"BM_SimdjsonValidateUtf8", Mode::kUtf8},
      {"BM_Memcpy", Mode::kMemcpy},
      {"BM_PeerSimdjsonDom", Mode::kSimdjsonDom},
#ifdef SHARDRING_HAVE_RAPIDJSON
      {"BM_PeerRapidJson", Mode::kRapidJson},
#endif
#ifdef SHARDRING_HAVE_NLOHMANN
      {"BM_PeerNlohmann", Mode::kNlohmann},
#endif
  };
  for (const auto& [label, set] : sets) {
    for (const auto& [name, mode] : kModes) {
      benchmark::RegisterBenchmark((std::string(name) + "/" + label).c_str(), run, &set, mode);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
