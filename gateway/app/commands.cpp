#include "commands.hpp"

#include <array>

namespace kakehashi::app {

// Subcommands, one per cmd_<name>.cpp, declared here and listed in the table below.
// (Added as the modules that implement them land.)
int RunServe(const std::vector<std::string>& argv);    // cmd_serve.cpp
int RunReindex(const std::vector<std::string>& argv);  // cmd_reindex.cpp
#ifdef KAKEHASHI_HAVE_CONVERT
int RunConvert(const std::vector<std::string>& argv);  // cmd_convert.cpp (needs mapping/)
#endif
#ifdef KAKEHASHI_HAVE_IMPORT
int RunImport(const std::vector<std::string>& argv);  // cmd_import.cpp (needs mapping/)
#endif
#ifdef KAKEHASHI_HAVE_CONFORMANCE
int RunValidate(const std::vector<std::string>& argv);  // cmd_validate.cpp (needs conformance/)
#endif
#ifdef KAKEHASHI_HAVE_TERMINOLOGY_CLI
int RunTerminology(const std::vector<std::string>& argv);  // cmd_terminology.cpp (needs fhir/)
#endif

std::span<const Command> Commands() {
  static const std::array kCommands{
#ifdef KAKEHASHI_HAVE_CONVERT
      Command{"convert", "convert HL7 v2 / SS-MIX2 to FHIR R4 JP Core (Bundle or NDJSON)",
              &RunConvert},
#endif
#ifdef KAKEHASHI_HAVE_IMPORT
      Command{"import",
              "load an SS-MIX2 store / HL7 v2 files into the gateway database (resumable)",
              &RunImport},
#endif
      Command{"reindex", "rebuild the gateway database's search index rows (after an upgrade)",
              &RunReindex},
      Command{"serve", "serve FHIR R4 over HTTP (REST API on SQLite or PostgreSQL)", &RunServe},
#ifdef KAKEHASHI_HAVE_TERMINOLOGY_CLI
      Command{"terminology", "code lookups, translations, validation, master loading",
              &RunTerminology},
#endif
#ifdef KAKEHASHI_HAVE_CONFORMANCE
      Command{"validate",
              "validate FHIR R4 JSON (resources, Bundles, NDJSON) against the base spec",
              &RunValidate},
#endif
  };
  return kCommands;
}

}  // namespace kakehashi::app
