#include "convert_terminology.hpp"

#include "conversion_settings.hpp"

#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/loaders.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace kakehashi::app {

int OpenConvertTerminology(const ConversionSettings& settings, IssueSink& issues,
                           std::unique_ptr<terminology::TerminologyStore>& store,
                           std::string_view command) {
  const auto& maps = settings.concept_maps;
  std::optional<std::string> db;
  if (!settings.terminology.empty()) db = settings.terminology;
  if (!db && maps.empty()) return kExitOk;
  const std::string cmd(command);
  terminology::TerminologyStore::Options options;
  options.db = db.value_or("sqlite::memory:");
  // Read concepts and mappings on first use: a conversion touches a few thousand codes of a
  // master of hundreds of thousands (memory stays bounded; docs/performance.md).
  options.preload = false;
  if (options.db.rfind("sqlite:", 0) != 0) {
    std::fprintf(stderr, "kakehashi %s: --terminology must be sqlite:PATH\n", cmd.c_str());
    return kExitUsage;
  }
  // Opening would create an empty database: a mistyped path must not silently convert without
  // masters.
  if (const std::string path = options.db.substr(7);
      db && path != ":memory:" && !std::filesystem::exists(path)) {
    std::fprintf(stderr,
                 "kakehashi %s: --terminology %s: no such database (load masters first: "
                 "kakehashi terminology load KIND FILE --db %s)\n",
                 cmd.c_str(), options.db.c_str(), options.db.c_str());
    return kExitUsage;
  }
  // Masters load with warnings about single rows; the conversion reports its own issues.
  NullSink load_issues;
  auto opened = terminology::TerminologyStore::Open(
      options, terminology::CodeSystemRegistry::Builtin(), load_issues);
  if (!opened) {
    std::fprintf(stderr, "kakehashi %s: --terminology: cannot open the database: %s\n", cmd.c_str(),
                 opened.error().message().c_str());
    return kExitUsage;
  }
  store = std::move(*opened);
  for (const auto& file : maps) {
    CollectingSink found;
    auto loaded =
        terminology::LoadMasterFile(terminology::MasterKind::kConceptMap, file, *store, found);
    if (!loaded) {
      std::fprintf(stderr, "kakehashi %s: --concept-map %s: %s\n", cmd.c_str(), file.c_str(),
                   loaded.error().message().c_str());
      for (const auto& issue : found.Issues()) {
        std::fprintf(stderr, "  %s\n", issue.ToString().c_str());
      }
      return kExitUsage;
    }
    for (auto& issue : found.Issues()) issues.Report(issue);
  }
  // One line saying what the codings are bound to (no patient data: kinds, versions, file names).
  std::string loaded;
  for (const auto& load : store->Stats().loads) {
    if (!loaded.empty()) loaded += ", ";
    loaded += load.kind == "conceptmap" ? load.source : load.kind;
    if (!load.version.empty()) loaded += " " + load.version;
  }
  std::fprintf(stderr, "kakehashi %s: terminology %s: %s\n", cmd.c_str(),
               options.db == "sqlite::memory:" ? "(in memory)" : options.db.c_str(),
               loaded.empty() ? "no master loaded" : loaded.c_str());
  return kExitOk;
}

}  // namespace kakehashi::app
