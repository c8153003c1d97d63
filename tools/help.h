// tools/help.h: what `shardring <command> --help` and the manual page say
// beside the flags (FlagSet::usage): each command's summary, exit codes and
// examples, and the manual page itself. docs/interface.md is the long form.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace shardring::tools {

struct CommandHelp {
  std::string_view name;         // run, gateway, load
  std::string_view summary;      // one line, lower case, for the command list
  std::string_view description;  // a sentence or two, for the manual page
  std::span<const std::pair<int, std::string_view>> exit_codes;
  std::span<const std::string_view> examples;  // whole command lines
};

// Every command, in the order the usage lists them.
std::span<const CommandHelp> commands();

// The command named `name`; null for none.
const CommandHelp* command_help(std::string_view name);

// A command and its flags as roff (FlagSet::man_section of its usage text).
struct ManCommand {
  const CommandHelp* help;
  std::string flags_roff;
};

// The whole manual page, shardring(1), for `shardring --help-man`.
std::string man_page(std::string_view version, std::span<const ManCommand> commands);

}  // namespace shardring::tools
