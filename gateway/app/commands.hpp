// The CLI's subcommand table. Each subcommand lives in its own cmd_<name>.cpp and is listed
// explicitly in commands.cpp (no static self-registration).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::app {

struct Command {
  std::string_view name;     // "convert"
  std::string_view summary;  // one line for `kakehashi --help`
  // argv after the subcommand name. Must handle --help itself and return an exit code.
  int (*run)(const std::vector<std::string>& argv);
};

std::span<const Command> Commands();

}  // namespace kakehashi::app
