#include "tools/flags.h"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <utility>

#include "engine/text.h"
#include "tools/help.h"

namespace shardring::tools {

std::optional<int64_t> parse_int(std::string_view s, int64_t min, int64_t max) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || end != s.data() + s.size() || v < min || v > max) {
    return std::nullopt;
  }
  return v;
}

namespace {
absl::Status Bad(std::string_view flag, std::string_view why) {
  return absl::InvalidArgumentError(cat("--", flag, ": ", why));
}
std::string Range(int64_t min, int64_t max) { return cat("an integer from ", min, " to ", max); }

std::atomic<UsageStyle> g_usage_style{UsageStyle::kText};

// Starts the roff of a usage text (FlagSet::man_section finds it).
constexpr std::string_view kManMarker = ".\\\" shardring flags\n";

// A number's default as it would be typed: 100, 0.5, 1e+07.
std::string DoubleText(double x) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
}

// Integer defaults outside [min, max] mark "not given" (e.g. -1).
std::string IntDefault(int64_t v, int64_t min, int64_t max) {
  return v >= min && v <= max ? cat(v) : std::string();
}
}  // namespace

void FlagSet::add(Flag f) { flags_.push_back(std::move(f)); }

void FlagSet::set_usage_style(UsageStyle style) { g_usage_style.store(style); }

std::string_view FlagSet::man_section(std::string_view usage) {
  size_t at = usage.find(kManMarker);
  return at == std::string_view::npos ? std::string_view() : usage.substr(at);
}

void FlagSet::add_string(std::string name, std::string* out, std::string help) {
  add({std::move(name), std::move(help), "S", true,
       [out](std::string_view v) {
         *out = std::string(v);
         return absl::OkStatus();
       },
       *out});
}

void FlagSet::add_string(std::string name, std::optional<std::string>* out, std::string help) {
  add({std::move(name), std::move(help), "S", true,
       [out](std::string_view v) {
         *out = std::string(v);
         return absl::OkStatus();
       },
       out->value_or("")});
}

namespace {
// A setter for an integer flag that stores into *out (an int64_t or an
// optional<int64_t>).
template <class Out>
std::function<absl::Status(std::string_view)> IntSetter(std::string name, Out* out, int64_t min,
                                                        int64_t max) {
  return [out, min, max, name = std::move(name)](std::string_view v) {
    auto x = parse_int(v, min, max);
    if (!x) {
      return Bad(name, cat("expected ", Range(min, max), ", got '", v, "'"));
    }
    *out = *x;
    return absl::OkStatus();
  };
}
}  // namespace

void FlagSet::add_int(std::string name, int64_t* out, int64_t min, int64_t max, std::string help) {
  auto set = IntSetter(name, out, min, max);
  add({std::move(name), std::move(help), "N", true, std::move(set), IntDefault(*out, min, max)});
}

void FlagSet::add_int(std::string name, std::optional<int64_t>* out, int64_t min, int64_t max,
                      std::string help) {
  auto set = IntSetter(name, out, min, max);
  add({std::move(name), std::move(help), "N", true, std::move(set),
       out->has_value() ? IntDefault(**out, min, max) : std::string()});
}

void FlagSet::add_double(std::string name, double* out, double min, double max, std::string help) {
  std::string n = name;
  add({std::move(name), std::move(help), "X", true,
       [out, min, max, n](std::string_view v) {
         std::string s(v);
         char* end = nullptr;
         double x = s.empty() ? 0 : std::strtod(s.c_str(), &end);
         if (s.empty() || end != s.c_str() + s.size() || !(x >= min && x <= max)) {
           return Bad(n, cat("expected a number from ", min, " to ", max, ", got '", s, "'"));
         }
         *out = x;
         return absl::OkStatus();
       },
       *out >= min && *out <= max ? DoubleText(*out) : std::string()});
}

void FlagSet::add_bool(std::string name, bool* out, std::string help) {
  add({std::move(name), std::move(help), "", false,
       [out](std::string_view) {
         *out = true;
         return absl::OkStatus();
       },
       ""});
}

absl::Status FlagSet::parse(std::span<const std::string_view> args, bool* help) {
  *help = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      *help = true;
      return absl::OkStatus();
    }
    if (a.size() < 3 || a.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(cat("unexpected argument '", std::string(a),
                                            "' (flags start with --; see shardring ", command_,
                                            " --help)"));
    }
    std::string_view body = a.substr(2);
    std::optional<std::string_view> inline_value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      inline_value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags_) {
      if (f.name == body) flag = &f;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          cat("unknown flag --", std::string(body), " for shardring ", command_, " (see --help)"));
    }
    std::string_view value;
    if (flag->takes_value) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Bad(flag->name, "needs a value");
      }
    } else if (inline_value) {
      return Bad(flag->name, "takes no value");
    }
    if (absl::Status s = flag->set(value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

namespace {
// The help text and the default, as --help shows them.
std::string HelpWithDefault(std::string_view help, std::string_view default_text) {
  if (default_text.empty() || help.find("default") != std::string_view::npos) {
    return std::string(help);
  }
  return cat(help, " (default ", default_text, ")");
}

// Appends `text` wrapped at 100 columns, continuation lines indented by
// `indent`, the first line starting at column `column`.
void AppendWrapped(std::string& out, std::string_view text, size_t column, size_t indent) {
  constexpr size_t kWidth = 100;
  bool first_word = true;
  while (!text.empty()) {
    size_t end = text.find(' ');
    std::string_view word = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (word.empty()) continue;
    if (!first_word && column + 1 + word.size() > kWidth) {
      out += '\n';
      out.append(indent, ' ');
      column = indent;
    } else if (!first_word) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    first_word = false;
  }
  out += '\n';
}

// roff: backslashes and minus signs escaped, no line starting as a request.
std::string Roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}
}  // namespace

std::string FlagSet::usage() const {
  return g_usage_style.load() == UsageStyle::kMan ? man_usage() : text_usage();
}

std::string FlagSet::text_usage() const {
  constexpr size_t kHelpColumn = 27;
  std::string out;
  for (const Flag& f : flags_) {
    std::string left = cat("  --", f.name, f.takes_value ? " " + f.value_hint : "");
    if (left.size() < kHelpColumn - 1) left.resize(kHelpColumn - 1, ' ');
    out += left;
    out += ' ';
    AppendWrapped(out, HelpWithDefault(f.help, f.default_text), left.size() + 1, kHelpColumn);
  }
  const CommandHelp* help = command_help(command_);
  if (help == nullptr) return out;
  out += "\nexit codes:\n";
  for (const auto& [code, meaning] : help->exit_codes) {
    out += cat("  ", code, "  ");
    AppendWrapped(out, meaning, 5, 5);
  }
  out += "\nexamples:\n";
  for (std::string_view example : help->examples) shardring::append(out, "  ", example, "\n");
  return out;
}

std::string FlagSet::man_usage() const {
  std::string out(kManMarker);
  for (const Flag& f : flags_) {
    out += ".TP\n";
    if (f.takes_value) {
      shardring::append(out, ".BI \"", Roff(cat("--", f.name)), " \" ", f.value_hint, "\n");
    } else {
      shardring::append(out, ".B ", Roff(cat("--", f.name)), "\n");
    }
    shardring::append(out, Roff(HelpWithDefault(f.help, f.default_text)), "\n");
  }
  const CommandHelp* help = command_help(command_);
  if (help == nullptr) return out;
  out += ".PP\nExit status:\n";
  for (const auto& [code, meaning] : help->exit_codes) {
    shardring::append(out, ".TP\n.B ", code, "\n", Roff(meaning), "\n");
  }
  out += ".PP\nExamples:\n.PP\n.RS\n.nf\n";
  for (std::string_view example : help->examples) shardring::append(out, Roff(example), "\n");
  out += ".fi\n.RE\n";
  return out;
}

}  // namespace shardring::tools
