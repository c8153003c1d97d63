#include "tools/flags.h"

#include <charconv>
#include <cstdlib>
#include <utility>

#include "engine/text.h"

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
}  // namespace

void FlagSet::add(Flag f) { flags_.push_back(std::move(f)); }

void FlagSet::add_string(std::string name, std::string* out, std::string help) {
  add({std::move(name), std::move(help), "S", true, [out](std::string_view v) {
         *out = std::string(v);
         return absl::OkStatus();
       }});
}

void FlagSet::add_string(std::string name, std::optional<std::string>* out, std::string help) {
  add({std::move(name), std::move(help), "S", true, [out](std::string_view v) {
         *out = std::string(v);
         return absl::OkStatus();
       }});
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
  add({std::move(name), std::move(help), "N", true, std::move(set)});
}

void FlagSet::add_int(std::string name, std::optional<int64_t>* out, int64_t min, int64_t max,
                      std::string help) {
  auto set = IntSetter(name, out, min, max);
  add({std::move(name), std::move(help), "N", true, std::move(set)});
}

void FlagSet::add_double(std::string name, double* out, double min, double max, std::string help) {
  std::string n = name;
  add({std::move(name), std::move(help), "X", true, [out, min, max, n](std::string_view v) {
         std::string s(v);
         char* end = nullptr;
         double x = s.empty() ? 0 : std::strtod(s.c_str(), &end);
         if (s.empty() || end != s.c_str() + s.size() || !(x >= min && x <= max)) {
           return Bad(n, cat("expected a number from ", min, " to ", max, ", got '", s, "'"));
         }
         *out = x;
         return absl::OkStatus();
       }});
}

void FlagSet::add_bool(std::string name, bool* out, std::string help) {
  add({std::move(name), std::move(help), "", false, [out](std::string_view) {
         *out = true;
         return absl::OkStatus();
       }});
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

std::string FlagSet::usage() const {
  std::string out;
  for (const Flag& f : flags_) {
    std::string left = cat("  --", f.name, f.takes_value ? " " + f.value_hint : "");
    if (left.size() < 26) left.resize(26, ' ');
    shardring::append(out, left, " ", f.help, "\n");
  }
  return out;
}

}  // namespace shardring::tools
