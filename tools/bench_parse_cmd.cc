// tools/bench_parse_cmd.cc: see bench_parse_cmd.h.
#include "tools/bench_parse_cmd.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "engine/text.h"
#include "parse/envelope.h"
#include "simdjson.h"
#include "tools/flags.h"

namespace shardring::tools {

namespace {

using Clock = std::chrono::steady_clock;
using shardring::cat;

// 1234567 -> "1,234,567".
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// Every payload, each followed by parse::kPadding spaces (what the parser
// and simdjson's DOM without a copy both need), in one arena.
struct PayloadSet {
  std::string arena;
  std::vector<std::pair<size_t, size_t>> spans;  // offset, size
  size_t bytes = 0;
  size_t skipped = 0;       // not JSON: left out
  std::string first_error;  // where and why, for the first one skipped

  void add(std::string_view m) {
    spans.emplace_back(arena.size(), m.size());
    arena.append(m);
    arena.append(parse::kPadding, ' ');
    bytes += m.size();
  }
  std::vector<std::string_view> views() const {
    std::vector<std::string_view> v;
    v.reserve(spans.size());
    for (auto [off, n] : spans) v.emplace_back(arena.data() + off, n);
    return v;
  }
};

// One payload as the engine would see it: a gateway payload (it has "op")
// as is; a `shardring run` line ("shard", "seq", "t", "d") as the dispatch
// it came from; anything else (a bare d) as the d of a dispatch.
void AddPayload(PayloadSet& set, std::string_view text, simdjson::dom::parser& dom,
                const std::string& where) {
  simdjson::dom::element doc;
  if (auto err = dom.parse(text.data(), text.size()).get(doc); err != simdjson::SUCCESS) {
    if (set.skipped++ == 0) set.first_error = cat(where, ": ", simdjson::error_message(err));
    return;
  }
  simdjson::dom::object obj;
  if (doc.get(obj) == simdjson::SUCCESS) {
    if (obj["op"].error() == simdjson::SUCCESS) {
      set.add(text);
      return;
    }
    if (obj["shard"].error() == simdjson::SUCCESS && obj["d"].error() == simdjson::SUCCESS &&
        text.starts_with('{')) {
      set.add(cat("{\"op\":0,", text.substr(1)));
      return;
    }
  }
  set.add(cat("{\"op\":0,\"s\":", set.spans.size() + 1, ",\"t\":\"CAPTURE\",\"d\":", text, "}"));
}

// A file of lines, one payload each (NDJSON), or of one JSON document (one
// payload). False when it cannot be read.
bool LoadFile(PayloadSet& set, const std::string& path, simdjson::dom::parser& dom) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return false;
  std::vector<std::pair<std::string_view, size_t>> lines;  // text, line number
  size_t number = 0;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + at, nl - at);
    ++number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    if (!line.empty()) lines.emplace_back(line, number);
    at = nl + 1;
  }
  // NDJSON when the first line is a document of its own (no parse of the
  // whole file: a large capture would need a tape of its size); otherwise
  // one document (pretty-printed) when the whole text is one.
  simdjson::dom::element doc;
  const bool ndjson = !lines.empty() && dom.parse(lines[0].first).get(doc) == simdjson::SUCCESS;
  if (!ndjson && dom.parse(text).get(doc) == simdjson::SUCCESS) {
    std::string_view whole = text;
    while (!whole.empty() && std::isspace(static_cast<unsigned char>(whole.back()))) {
      whole.remove_suffix(1);
    }
    AddPayload(set, whole, dom, path);
    return true;
  }
  for (auto [line, n] : lines) AddPayload(set, line, dom, cat(path, ":", n));
  return true;
}

enum class Mode { kOurs, kOursValidateD, kOursTypeOnly, kSimdjsonDom, kValidateUtf8 };

struct Row {
  Mode mode;
  const char* name;
};
constexpr Row kRows[] = {
    {Mode::kOurs, "shardring (default check + routing keys)"},
    {Mode::kOursValidateD, "shardring --validate-d"},
    {Mode::kOursTypeOnly, "shardring t only (--events)"},
    {Mode::kSimdjsonDom, "simdjson DOM"},
    {Mode::kValidateUtf8, "simdjson validate_utf8"},
};

// One pass over every payload; false (with *error) when one is refused.
bool Pass(Mode mode, const std::vector<std::string_view>& msgs, parse::Parser& parser,
          simdjson::dom::parser& dom, uint64_t* sink, std::string* error) {
  parse::Envelope env;
  parse::EventName name;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string_view m = msgs[i];
    parse::Errc e = parse::Errc::kOk;
    switch (mode) {
      case Mode::kOurs:
      case Mode::kOursValidateD:
        e = parser.parse(
            m, env,
            {.check = mode == Mode::kOurs ? parse::Check::kEnvelope : parse::Check::kFull,
             .routing_keys = true});
        *sink += env.d.size() + env.routing.guild_id.value_or(0);
        break;
      case Mode::kOursTypeOnly:
        e = parser.event_type(m, name);
        *sink += static_cast<uint64_t>(name.type);
        break;
      case Mode::kSimdjsonDom: {
        simdjson::dom::element doc;
        if (dom.parse(m.data(), m.size(), false).get(doc) != simdjson::SUCCESS) {
          *error = cat("simdjson refused payload ", i + 1);
          return false;
        }
        *sink += static_cast<uint64_t>(doc.type());
        break;
      }
      case Mode::kValidateUtf8:
        *sink += simdjson::validate_utf8(m.data(), m.size()) ? 1 : 0;
        break;
    }
    if (e != parse::Errc::kOk) {
      *error = cat("payload ", i + 1, ": ", parse::to_string(e));
      return false;
    }
  }
  return true;
}

struct Figure {
  double mb_per_s = 0;
  double events_per_s = 0;
  std::string error;  // the parser refused a payload: no figure
};

Figure Measure(Mode mode, const PayloadSet& set, const BenchParseOptions& o) {
  const std::vector<std::string_view> msgs = set.views();
  parse::Parser parser;
  simdjson::dom::parser dom;
  uint64_t sink = 0;
  Figure f;
  if (!Pass(mode, msgs, parser, dom, &sink, &f.error)) return f;  // warm-up, and the check
  std::vector<double> rates;
  for (int64_t r = 0; r < o.repetitions; ++r) {
    uint64_t passes = 0;
    const auto t0 = Clock::now();
    std::chrono::duration<double> took{};
    do {
      (void)Pass(mode, msgs, parser, dom, &sink, &f.error);
      ++passes;
      took = Clock::now() - t0;
    } while (took.count() < o.seconds);
    rates.push_back(static_cast<double>(passes) / took.count());
  }
  std::sort(rates.begin(), rates.end());
  const double per_s = rates[rates.size() / 2];
  f.mb_per_s = per_s * static_cast<double>(set.bytes) / 1e6;
  f.events_per_s = per_s * static_cast<double>(msgs.size());
  if (sink == 42) std::cerr << "";  // keeps the work observable
  return f;
}

}  // namespace

absl::StatusOr<BenchParseOptions> parse_bench_parse_options(std::span<const std::string_view> args,
                                                            bool* help, std::string* usage) {
  BenchParseOptions o;
  FlagSet f("bench-parse");
  f.add_double("seconds", &o.seconds, 0.001, 3600,
               "each measurement runs passes over the payloads at least this long (default 0.5)");
  f.add_int("repetitions", &o.repetitions, 1, 1000,
            "measurements per parser; the median is shown (default 5)");
  *usage = "usage: shardring bench-parse [flags] FILE...\n\n" + f.usage();
  // FILE arguments are the ones that are neither a flag nor a flag's value.
  std::vector<std::string_view> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a.starts_with("-") && a.size() > 1) {
      flags.push_back(a);
      const bool has_value = a.find('=') != std::string_view::npos;
      if (!has_value && (a == "--seconds" || a == "--repetitions") && i + 1 < args.size()) {
        flags.push_back(args[++i]);
      }
    } else {
      o.files.emplace_back(a);
    }
  }
  if (absl::Status s = f.parse(flags, help); !s.ok() || *help) {
    if (!s.ok()) return s;
    return o;
  }
  if (o.files.empty()) {
    return absl::InvalidArgumentError(
        "no FILE given: shardring bench-parse [flags] FILE... (NDJSON lines or one payload per "
        "file)");
  }
  return o;
}

int bench_parse_main(std::span<const std::string_view> args) {
  bool help = false;
  std::string usage;
  auto o = parse_bench_parse_options(args, &help, &usage);
  if (help) {
    std::cout << usage;
    return 0;
  }
  if (!o.ok()) {
    std::cerr << "shardring bench-parse: " << o.status().message() << "\n";
    return 2;
  }
  PayloadSet set;
  simdjson::dom::parser dom;
  for (const std::string& path : o->files) {
    if (!LoadFile(set, path, dom)) {
      std::cerr << "shardring bench-parse: cannot read " << path << "\n";
      return 2;
    }
  }
  if (set.skipped > 0) {
    std::cerr << "shardring bench-parse: " << set.skipped
              << " payloads are not JSON and were left out; the first: " << set.first_error << "\n";
  }
  if (set.spans.empty()) {
    std::cerr << "shardring bench-parse: no JSON payload to measure\n";
    return 1;
  }
  std::cout << absl::StrFormat(
      "bench-parse: %s payloads, %s bytes from %d files (%s left out), simd %s, median of %d x "
      "%g s\n",
      Grouped(set.spans.size()), Grouped(set.bytes), o->files.size(), Grouped(set.skipped),
      parse::simd_kernel(), o->repetitions, o->seconds);
  std::vector<Figure> figures;
  double dom_rate = 0, utf8_rate = 0;
  for (const Row& r : kRows) {
    figures.push_back(Measure(r.mode, set, *o));
    if (r.mode == Mode::kSimdjsonDom) dom_rate = figures.back().mb_per_s;
    if (r.mode == Mode::kValidateUtf8) utf8_rate = figures.back().mb_per_s;
  }
  std::cout << absl::StrFormat("%-42s %10s %14s %15s %16s\n", "parser", "MB/s", "events/s",
                               "x simdjson DOM", "x validate_utf8");
  for (size_t i = 0; i < figures.size(); ++i) {
    const Figure& f = figures[i];
    if (!f.error.empty()) {
      std::cout << absl::StrFormat("%-42s refused %s\n", kRows[i].name, f.error);
      continue;
    }
    std::cout << absl::StrFormat("%-42s %10.1f %14s %15.2f %16.3f\n", kRows[i].name, f.mb_per_s,
                                 Grouped(static_cast<uint64_t>(f.events_per_s)),
                                 dom_rate > 0 ? f.mb_per_s / dom_rate : 0.0,
                                 utf8_rate > 0 ? f.mb_per_s / utf8_rate : 0.0);
  }
  return 0;
}

}  // namespace shardring::tools
