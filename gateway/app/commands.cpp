#include "commands.hpp"

#include <array>

namespace kakehashi::app {

// Subcommands, one per cmd_<name>.cpp, declared here and listed in the table below.
// (Added as the modules that implement them land.)

std::span<const Command> Commands() {
  static const std::array<Command, 0> kCommands{};
  return kCommands;
}

}  // namespace kakehashi::app
