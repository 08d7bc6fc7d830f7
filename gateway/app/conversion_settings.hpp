// The settings that decide what a conversion produces, read from the command line the same way
// by `kakehashi convert`, `kakehashi import` and `kakehashi serve --load`: --profile, --facility,
// --rules, --terminology, --concept-map, --no-unused (each command accepts the ones it lists in
// its --help; absent options keep their defaults).
#pragma once

#include "args.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "kakehashi/terminology/store.hpp"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::app {

struct ConversionSettings {
  std::string profile = "jp-core-1.1.2";  // jp-core-1.1.2 | jp-core-1.2.0
  std::string facility;                   // 10-digit 医療機関コード, or "" (MSH-4)
  std::string rules_dir;                  // site rule directory, or ""
  // --terminology, else $KAKEHASHI_TERMINOLOGY_DB; "" when neither is given.
  std::string terminology;
  std::vector<std::string> concept_maps;  // --concept-map FILE, in order
  bool report_unused = true;              // false with --no-unused

  // The option names (value options, then flags), to add to a command's Args.
  static const std::set<std::string, std::less<>>& ValueOptions();
  static const std::set<std::string, std::less<>>& FlagOptions();

  // Reads and checks the options present in `args`. On a usage error prints one line
  // "kakehashi COMMAND: …" on stderr and returns nullopt.
  static std::optional<ConversionSettings> Read(const Args& args, std::string_view command);

  // Every setting that changes the resources produced (--no-unused changes only issues), as
  // one text: `kakehashi import` mixes it into each unit's fingerprint, so a change re-imports.
  std::string Fingerprint() const;

  // The mapping options; `terminology` as opened by OpenTerminology (may be null).
  mapping::MapOptions MapOptions(const terminology::TerminologyStore* terminology) const;

  // The built-in rules shadowed by rules_dir. Prints "kakehashi COMMAND: …" and returns nullopt
  // when they cannot be loaded.
  std::optional<mapping::RuleSet> LoadRules(std::string_view command) const;

  // Opens the terminology store when `terminology` or concept maps are set (else leaves `store`
  // null) and loads every concept map; one line on stderr says what the codings are bound to.
  // Returns kExitOk, or kExitUsage after a one-line message (unusable database, unreadable or
  // malformed ConceptMap).
  int OpenTerminology(IssueSink& issues, std::unique_ptr<terminology::TerminologyStore>& store,
                      std::string_view command) const;
};

// Adds the conversion option names to a command's own.
std::set<std::string, std::less<>> WithConversionValueOptions(
    std::set<std::string, std::less<>> own);
std::set<std::string, std::less<>> WithConversionFlagOptions(
    std::set<std::string, std::less<>> own);

// --jobs N of convert and import: 1..256, default the number of hardware threads. Prints
// "kakehashi COMMAND: --jobs must be …" and returns nullopt on a usage error.
std::optional<std::size_t> ReadJobsOption(const Args& args, std::string_view command);

}  // namespace kakehashi::app
