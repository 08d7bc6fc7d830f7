// Plain value types shared by the store, loaders and operations: concepts (CodeSystem content),
// mappings (ConceptMap elements) and Codings. No FHIR dependency (module level 1): the CLI and the
// gateway turn these into FHIR Parameters.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace kakehashi::terminology {

// A FHIR Coding without the FHIR model. `system` is canonical inside the module; callers spell it
// for their target profile set with CodeSystemRegistry::Spell().
struct Coding {
  std::string system;
  std::string code;
  std::string display;
  std::string version;
  friend bool operator==(const Coding&, const Coding&) = default;
};

// A named property of a concept ($lookup `property`): "kana", "icd10", "replacedBy", ...
struct Property {
  std::string code;
  std::string value;
  friend bool operator==(const Property&, const Property&) = default;
};

struct Concept {
  std::string system;  // canonical URI
  std::string code;
  std::string display;
  bool active = true;   // false: abolished (廃止年月日 passed) or replaced (移行先)
  std::string version;  // master version or "" (built-in tables)
  std::string source;   // who provided it: "builtin:<table>", "hot", "medis-disease", ...
  std::vector<Property> properties;
};

// One ConceptMap element/target (FHIR R4 ConceptMap.group.element.target).
struct Mapping {
  std::string map;  // ConceptMap URL: "urn:kakehashi:conceptmap:<table or kind>"
  std::string source_system;
  std::string source_code;
  std::string target_system;
  std::string target_code;
  std::string target_display;
  // R4 concept-map-equivalence: equivalent, equal, wider, subsumes, narrower, specializes,
  // inexact, relatedto, unmatched, disjoint.
  std::string equivalence = "equivalent";
  std::string version;  // "" = every profile set, else a ProfileSet name ("jp-core-1.1.2")
  std::string comment;
  std::string source;  // who provided it (as Concept::source)
};

// What a table file or a master load contributes.
struct TerminologyContent {
  std::vector<Concept> concepts;
  std::vector<Mapping> mappings;
};

// "urn:kakehashi:conceptmap:" + name.
std::string ConceptMapUrl(const std::string& name);

}  // namespace kakehashi::terminology
