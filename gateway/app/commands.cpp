#include "commands.hpp"

#include <array>

namespace kakehashi::app {

// Subcommands, one per cmd_<name>.cpp, declared here and listed in the table below.
// (Added as the modules that implement them land.)
int RunServe(const std::vector<std::string>& argv);  // cmd_serve.cpp

std::span<const Command> Commands() {
  static const std::array<Command, 1> kCommands{{
      {"serve", "serve FHIR R4 over HTTP (REST API on SQLite or PostgreSQL)", &RunServe},
  }};
  return kCommands;
}

}  // namespace kakehashi::app
