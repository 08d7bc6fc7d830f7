// Terminology operations as a library API, following the FHIR R4 OperationDefinitions
// (http://hl7.org/fhir/R4/codesystem-operation-lookup.html, valueset-operation-validate-code,
// valueset-operation-expand, conceptmap-operation-translate): request structs carry the IN
// parameter names, result structs the OUT parameter names. The FHIR Parameters resource itself is
// built by the caller (CLI, gateway) — this module does not depend on fhir/.
//
// Any spelling of a system URI is accepted (CodeSystemRegistry::Normalize); results spell systems
// for `output` (ProfileSet). Nothing here throws or fails for unknown input: "not found" is a
// result with found/result = false and an Issue explaining why, e.g.
//   terminology.master_not_loaded   warning: no concept of the system is loaded (load the master)
//   terminology.code_not_found      error:   the system is loaded but the code is not in it
//   terminology.unknown_system      warning: the system spelling is not known
//   terminology.unknown_valueset    error:   $validate-code/$expand with a ValueSet not known
//   terminology.no_translation      warning: no mapping from the code
// ValueSets: the implicit "all codes of a system" value set of every known code system, addressed
// by the system URI itself or by its ValueSet twin (…/CodeSystem/X -> …/ValueSet/X,
// http://hl7.org/fhir/X -> http://hl7.org/fhir/ValueSet/X).
//
// The mapping layer's entry points are Normalize(), Lookup(), Canonicalize() and TranslateCoding().
// Thread-safety: const members may run concurrently once the store is no longer written.
#pragma once

#include "kakehashi/common/issue.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/concepts.hpp"
#include "kakehashi/terminology/store.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::terminology {

// CodeSystem/$lookup IN: system, code, version, property (coding/date/displayLanguage unused).
struct LookupRequest {
  std::string system;
  std::string code;
  std::string version;
  std::vector<std::string> property;  // empty = all properties
};
// OUT: name, version, display, property (code, value); plus what this API adds.
struct LookupResult {
  bool found = false;
  std::string name;  // the code system's title
  std::string version;
  std::string display;
  bool active = true;  // reported as property "inactive" when false
  std::vector<Property> property;
  std::string system;  // spelled for the requested output profile set
  std::vector<Issue> issues;
};

// ValueSet/$validate-code IN: url, code, system, display (version, codeableConcept unused).
struct ValidateCodeRequest {
  std::string url;  // ValueSet URL; empty = the implicit value set of `system`
  std::string system;
  std::string code;
  std::string display;
};
// OUT: result, message, display.
struct ValidateCodeResult {
  bool result = false;
  std::string message;
  std::string display;
  std::vector<Issue> issues;
};

// ValueSet/$expand IN: url, filter, offset, count.
struct ExpandRequest {
  std::string url;
  std::string filter;  // case-sensitive substring of code or display ("" = all)
  std::size_t offset = 0;
  std::size_t count = 100;
};
// OUT: the ValueSet's expansion (total, offset, contains).
struct ExpandResult {
  bool found = false;
  std::string url;
  std::size_t total = 0;
  std::size_t offset = 0;
  std::vector<Coding> contains;  // sorted by code
  std::vector<Issue> issues;
};

// ConceptMap/$translate IN: url, system, code, targetsystem, reverse (source/target VS unused).
struct TranslateRequest {
  std::string url;  // ConceptMap URL ("" = any map)
  std::string system;
  std::string code;
  std::string targetsystem;  // "" = any target system
  bool reverse = false;      // translate from target to source
};
struct TranslateMatch {
  std::string equivalence;  // concept-map-equivalence (reversed for reverse: wider<->narrower)
  Coding coding;            // OUT "concept" (a C++20 keyword)
  std::string source;       // the ConceptMap URL
};
// OUT: result, message, match (equivalence, concept, source).
struct TranslateResult {
  bool result = false;
  std::string message;
  std::vector<TranslateMatch> match;
  std::vector<Issue> issues;
};

// The mapping layer's view of one translation: the translated Coding plus the original.
struct TranslatedCoding {
  Coding original;                   // canonical system, display from master when known
  std::optional<Coding> translated;  // nullopt: no translation; keep the original alone
  std::string equivalence;
  std::string map;  // ConceptMap URL used
};

class TerminologyService {
 public:
  // Both must outlive the service.
  explicit TerminologyService(const TerminologyStore& store,
                              ProfileSet output = ProfileSet::kJpCore120)
      : store_(store), registry_(store.Registry()), output_(output) {}

  ProfileSet Output() const { return output_; }
  const CodeSystemRegistry& Registry() const { return registry_; }

  // Canonical identity of any spelling (CodeSystemRegistry::Normalize).
  NormalizedSystem Normalize(std::string_view system) const { return registry_.Normalize(system); }

  LookupResult Lookup(const LookupRequest& request) const;
  // The hot path: concept by (any spelling, code); nullptr when unknown. No allocation for
  // canonical URL spellings.
  const Concept* Find(std::string_view system, std::string_view code) const;

  ValidateCodeResult ValidateCode(const ValidateCodeRequest& request) const;
  ExpandResult Expand(const ExpandRequest& request) const;
  TranslateResult Translate(const TranslateRequest& request) const;

  // For mapping: canonical system spelled for Output() (re-homed by code shape, information
  // "terminology.rehomed"), display from the master when the coding has none. Unknown systems/codes
  // keep what they had; issues go to `issues` at `where` (warning terminology.unknown_system /
  // terminology.master_not_loaded; never the value).
  Coding Canonicalize(const Coding& in, IssueSink& issues, const Location& where = {}) const;
  // For mapping: the first translation of `in` into `target_system` (any spelling; "" = any),
  // preferring rows whose version matches Output(). Original kept; issues as Canonicalize.
  TranslatedCoding TranslateCoding(const Coding& in, std::string_view target_system,
                                   IssueSink& issues, const Location& where = {}) const;

 private:
  // Resolves a ValueSet URL to the canonical system of its implicit value set; "" when unknown.
  std::string ValueSetSystem(std::string_view url) const;

  const TerminologyStore& store_;
  const CodeSystemRegistry& registry_;
  ProfileSet output_;
};

}  // namespace kakehashi::terminology
