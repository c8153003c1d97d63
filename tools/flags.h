// tools/flags.h: the command-line flag parser shared by every `shardring`
// subcommand. Start-up only (not the hot path): errors are absl::Status whose
// message names the flag, and the CLI turns them into exit code 2.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace shardring::tools {

// How usage() writes: text for --help, roff for the manual page.
enum class UsageStyle : uint8_t { kText, kMan };

// Declares flags bound to variables, then parses `--name value`,
// `--name=value` and bare `--name` for booleans. Unknown flags, missing
// values, values out of range and positional arguments are errors.
//
// Each flag's default is the bound variable's value when the flag is
// declared; --help shows it unless it is empty, unset, false or outside the
// flag's range (a marker for "not given"), or the help text already speaks of
// the default.
class FlagSet {
 public:
  explicit FlagSet(std::string command) : command_(std::move(command)) {}

  void add_string(std::string name, std::string* out, std::string help);
  // Like add_string, and also records that the flag was given.
  void add_string(std::string name, std::optional<std::string>* out, std::string help);
  void add_int(std::string name, int64_t* out, int64_t min, int64_t max, std::string help);
  void add_int(std::string name, std::optional<int64_t>* out, int64_t min, int64_t max,
               std::string help);
  void add_double(std::string name, double* out, double min, double max, std::string help);
  void add_bool(std::string name, bool* out, std::string help);

  // Parses args (without the program and subcommand names). Sets *help when
  // --help or -h was given (nothing else is then checked).
  absl::Status parse(std::span<const std::string_view> args, bool* help);

  // The flags with their defaults, one each, then the command's exit codes
  // and examples (tools/help.h), for --help or, in UsageStyle::kMan, for the
  // manual page. The roff starts at a line that man_section() finds.
  std::string usage() const;

  // The style usage() writes in, for the whole process. The commands build
  // their FlagSets inside their own parsers and hand back only the text, so
  // `shardring --help-man` asks for roff this way before calling them.
  static void set_usage_style(UsageStyle style);

  // The part of a command's usage text written by usage() in the kMan style
  // (the text a command puts before it dropped); empty if there is none.
  static std::string_view man_section(std::string_view usage);

 private:
  struct Flag {
    std::string name, help, value_hint;
    bool takes_value;
    std::function<absl::Status(std::string_view)> set;
    std::string default_text;  // empty: none shown
  };
  void add(Flag f);
  std::string text_usage() const;
  std::string man_usage() const;
  std::string command_;
  std::vector<Flag> flags_;
};

// Strict integer parse: the whole string, base 10, within [min, max].
std::optional<int64_t> parse_int(std::string_view s, int64_t min, int64_t max);

}  // namespace shardring::tools
