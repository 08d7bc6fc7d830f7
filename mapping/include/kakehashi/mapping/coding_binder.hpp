// Binds the Codings of mapped resources to the terminology service (issue #5 "Wire into mapping";
// digest terminology.md §2 normaliser rules, §5 masters; eprescription.md §5 re-homing).
//
// Every Coding the mapper produced (an object with "system" and "code", not a Quantity; inside a
// CodeableConcept.coding array or standing alone such as Encounter.class) gets:
//   1. its system re-homed by code shape where the producer named the wrong system (a YJ-shaped
//      code under HOT9, information "mapping.rehomed") and written in the spelling of the target
//      profile version (CodeSystemRegistry::Spell: JP Core 1.1.2 urn:oid forms, 1.2.0 URLs);
//   2. the display of the master when the store knows the concept; the source text is never lost:
//      when the coding's display is replaced and the CodeableConcept has no text, the source
//      display becomes CodeableConcept.text;
//   3. inside a CodeableConcept only: the ConceptMap translations appended as further codings of
//      the same CodeableConcept, after the original (which stays untouched in place):
//        - every mapping of a site ConceptMap (`kakehashi terminology load conceptmap FILE`,
//          `kakehashi convert --concept-map FILE`; Mapping::source "conceptmap:<name>") whose
//          version is "" or the target profile set and whose equivalence is not
//          unmatched/disjoint, e.g. local lab code -> JLAC10;
//        - YJ / レセ電 医薬品 -> HOT9 through the HOT master (JP Core's preferred drug code) when
//        the
//          master names exactly one HOT9 for the code (several: information
//          "mapping.translation_ambiguous", nothing added).
//      A coding equal (system and code) to one already present is not added twice.
// When the system's content comes from a national master (MasterKindOf) and that master is not
// loaded, the source code and text are kept and a warning "mapping.master_not_loaded" is reported;
// when the master is loaded but lacks the code, a warning "mapping.code_not_in_master". Each is
// reported once per message and system (location: the message and the FHIR path; never a value).
//
// Cost: one hash lookup for the system and, with a store, one warm-cache lookup per coding
// (~200 ns); nothing is allocated for a coding already spelled right that has no translation.
// Thread-safety: const; Bind may run concurrently with distinct resources and sinks.
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/store.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kakehashi::mapping {

class CodingBinder {
 public:
  // What was reported for one message (warnings are reported once per message and system).
  struct MessageState {
    std::vector<std::string> reported;
    // CodeSystemRegistry::Find of the system spellings met so far (a message names a few systems
    // many times; a compare is cheaper than hashing a URL).
    std::vector<std::pair<std::string, const terminology::CodeSystemInfo*>> systems;
  };

  // `store` may be null (no terminology database: every master counts as not loaded). Both
  // `registry` and `store` must outlive the binder.
  CodingBinder(const terminology::CodeSystemRegistry& registry,
               const terminology::TerminologyStore* store, terminology::ProfileSet target)
      : registry_(registry), store_(store), target_(target) {}

  // Binds every Coding of `resource` (a resource tree; its resourceType starts the FHIR paths of
  // issues). `base` is the message location (source, record).
  void Bind(fhir::Node& resource, const Location& base, IssueSink& issues,
            MessageState& state) const;

 private:
  struct Walk;
  const terminology::CodeSystemRegistry& registry_;
  const terminology::TerminologyStore* store_;
  terminology::ProfileSet target_;
};

}  // namespace kakehashi::mapping
