// Mapping rules as data (STYLE.md "Mapping rules and code tables are data").
//
// A rule directory (built-in: mapping/rules/hl7v2) holds
//   message/<DATA TYPE>.json   which resources a message yields, per SS-MIX2 data type
//                              ("OMP-01"), with the MSH-9 values it accepts for plain HL7 input
//   resource/<Resource>.json   how one resource is filled (id, profile, element templates)
//   datatype/<XX>.json         shared templates for HL7 data types (CWE, XPN, XAD, XTN, CQ …)
//   tables/<name>.tsv          code tables: source_system source_code target_system target_code
//                              display version comment (version = "" or a profile set name)
// A site override directory shadows built-in files one by one (same relative path wins).
// Rule files are JSON with // comments. The expression language is documented in
// docs/mapping.md ("Rule language").
//
// Thread-safety: immutable after Load(); share one RuleSet between threads.
#pragma once

#include "kakehashi/common/result.hpp"
#include "kakehashi/fhir/node.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kakehashi::mapping {

struct TableRow {
  std::string source_system;
  std::string source_code;
  std::string target_system;
  std::string target_code;
  std::string display;
  std::string version;  // "" = every profile set, else "jp-core-1.1.2" / "jp-core-1.2.0"
};

class RuleSet {
 public:
  // Loads every rule file under `builtin`, then the files of `site_override` (may be empty) on
  // top. errc::kRulesNotFound, kRuleSyntax (with *detail = "file: line N: what"), kRuleInvalid.
  static Result<RuleSet> Load(const std::filesystem::path& builtin,
                              const std::filesystem::path& site_override = {},
                              std::string* detail = nullptr);

  // The built-in rule directory compiled into this build (KAKEHASHI_RULES_DIR), or the value of
  // the environment variable KAKEHASHI_RULES_DIR when set.
  static std::filesystem::path BuiltinDir();

  const fhir::Node* Message(std::string_view data_type) const;
  const fhir::Node* Resource(std::string_view name) const;
  const fhir::Node* Datatype(std::string_view name) const;
  // The data type whose message rule lists this MSH-9 ("RDE^O11"), first in name order; "".
  std::string DataTypeForMessage(std::string_view msh9) const;
  // The first row of `table` with this source code (and source system when the row names one),
  // valid for `version`; nullptr when none.
  const TableRow* Lookup(std::string_view table, std::string_view source_system,
                         std::string_view code, std::string_view version) const;
  bool HasTable(std::string_view table) const;
  std::vector<std::string> MessageTypes() const;

 private:
  // The rows of one table, and for each source code the positions of its rows in file order
  // (Lookup runs per mapped code: a scan of every row cost more than the rest of a lookup).
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Table {
    std::vector<TableRow> rows;
    std::unordered_map<std::string, std::vector<std::uint32_t>, StringHash, std::equal_to<>>
        by_code;
  };

  std::map<std::string, fhir::Node, std::less<>> messages_, resources_, datatypes_;
  std::unordered_map<std::string, Table, StringHash, std::equal_to<>> tables_;  // by name
};

}  // namespace kakehashi::mapping
