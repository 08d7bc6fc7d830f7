// kakehashi — the command-line entry point: dispatches to the subcommands of commands.cpp.
#include "args.hpp"
#include "commands.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace {

void PrintHelp() {
  std::printf(
      "kakehashi %s — legacy Japanese health data to HL7 FHIR R4 (JP Core)\n\n"
      "Usage: kakehashi <command> [options] [args]\n"
      "       kakehashi <command> --help\n\n"
      "Commands:\n",
      KAKEHASHI_VERSION);
  for (const auto& command : kakehashi::app::Commands()) {
    std::printf("  %-14.*s %.*s\n", static_cast<int>(command.name.size()), command.name.data(),
                static_cast<int>(command.summary.size()), command.summary.data());
  }
  std::printf(
      "\nOptions:\n"
      "  --help, -h     show this help\n"
      "  --version      print the version\n\n"
      "Exit codes: 0 ok (warnings may be on stderr), 1 input had errors or the answer is\n"
      "\"not found\", 2 usage or environment error.\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kakehashi::app;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    PrintHelp();
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "--version") {
    std::printf("kakehashi %s\n", KAKEHASHI_VERSION);
    return kExitOk;
  }
  for (const auto& command : Commands()) {
    if (command.name == args[0]) {
      return command.run(std::vector<std::string>(args.begin() + 1, args.end()));
    }
  }
  std::fprintf(stderr, "kakehashi: unknown command '%s' (see kakehashi --help)\n", args[0].c_str());
  return kExitUsage;
}
