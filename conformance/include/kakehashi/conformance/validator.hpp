// Validator: checks any FHIR R4 resource (a generic fhir::Node tree) against the base
// StructureDefinitions of R4 4.0.1, as generated into kakehashi/fhir/r4/meta.hpp.
//
// What is checked (docs/conformance.md has the full table of issue codes):
//   - resourceType is a known, concrete R4 resource type        conformance.resource_type
//   - every member is an element of its type                     conformance.unknown_element
//   - cardinality (min, max) and array vs single value           conformance.cardinality.min/.max,
//                                                                conformance.array.expected/.unexpected
//   - JSON types (object, string, number, boolean)               conformance.type
//   - choice types: one value[x] per element, allowed type       conformance.choice.multiple
//   - primitive formats by the R4 regexes (implicitly anchored)  conformance.format.<type>
//   - Resource.id syntax                                         conformance.format.id
//   - required bindings whose expansion is complete in the package   conformance.binding.required
//   - no empty objects, arrays, strings; no unpaired nulls      conformance.empty
//   - primitive extensions (_element): shape and pairing         conformance.primitive_extension
//   - references: local "#id" resolves to a contained resource (ref-1), "Type/id" and Bundle
//     "urn:uuid:" references resolve and point to an allowed target type
//                                                                conformance.reference.unresolved,
//                                                                conformance.reference.target,
//                                                                conformance.reference.format
//   - invariants that need no FHIRPath: ele-1, ext-1, dom-2..dom-5, bdl-1..bdl-5, bdl-7..bdl-12
//                                                                conformance.invariant.<key>
//
// Issues carry the FHIRPath-style location of the offending element in Location::fhir_path
// ("Patient.name[0].given[1]", "Bundle.entry[2].resource.subject"); messages name elements and
// types, never values (no patient data).
//
// Extension point: FHIRPath invariants and JP Core profiles (a later issue) plug in as `Checker`s
// added with AddChecker(); each runs after the base checks on every resource (top level,
// contained and Bundle entries) and reports into the same sink.
//
// Thread-safety: a Validator is immutable after set-up; Validate() is const and may run
// concurrently from several threads, each with its own IssueSink.
#pragma once

#include "kakehashi/common/issue.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/node.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::conformance {

// One resource as seen by a Checker.
struct ResourceContext {
  const fhir::Node& resource;  // the resource object (has "resourceType")
  std::string_view path;       // its FHIRPath location: "Patient", "Bundle.entry[0].resource"
  const Location& base;        // source/record to copy into issues (fhir_path is filled by path)
  bool contained = false;      // true for resources inside another resource's "contained"
};

// A pluggable rule set (e.g. a JP Core profile, FHIRPath invariants). Implementations decide
// which resources they apply to (resourceType, meta.profile) and report issues themselves.
class Checker {
 public:
  virtual ~Checker() = default;
  virtual std::string_view Name() const = 0;  // "jp-core.patient", "fhirpath.invariants"
  virtual void Check(const ResourceContext& context, IssueSink& issues) const = 0;
};

struct ValidatorOptions {
  bool check_bindings = true;    // required bindings with complete expansions
  bool check_references = true;  // reference resolution and target types
};

class Validator {
 public:
  explicit Validator(ValidatorOptions options = {});
  ~Validator();
  Validator(Validator&&) noexcept;
  Validator& operator=(Validator&&) noexcept;

  // Adds a rule set run on every resource after the base checks. Owned by the validator.
  void AddChecker(std::unique_ptr<Checker> checker);

  // Validates `resource` (a resource object; Bundles are validated as a whole, recursing into
  // entries and contained resources). Reports every problem to `issues`, with `where.source`
  // and `where.record` copied into each issue. Returns true when no error or fatal issue was
  // reported for this resource. Never throws on bad input.
  bool Validate(const fhir::Node& resource, IssueSink& issues, const Location& where = {}) const;
  // The same, and `members_in_order` tells whether every object walked had its members in
  // metadata order (resourceType first, then by element, a value before its "_x" partner) and
  // was walked with a known type. When both it and the result are true, the resource can be
  // written with fhir::WriteOptions::members_in_order (no second metadata lookup per member).
  bool Validate(const fhir::Node& resource, IssueSink& issues, const Location& where,
                bool& members_in_order) const;
  // Validates and writes in one walk: when `written` comes back true, `json` has had appended
  // exactly the bytes fhir::WriteJson(resource) (canonical, compact) would produce. `written` is
  // true only for a valid resource (the return value) whose objects all had their members in
  // canonical order and that has nothing the walk leaves to the writer (primitive extensions
  // "_x", repeated keys, elements of no known type); otherwise `json` is left as it was and the
  // caller writes the resource with fhir::WriteJson if it wants it. Saves the writer's second
  // walk and metadata lookups on the conversion path.
  bool Validate(const fhir::Node& resource, IssueSink& issues, const Location& where,
                std::string& json, bool& written) const;

  struct Impl;  // opaque: options and checkers

 private:
  std::unique_ptr<Impl> impl_;
};

// The issues as a FHIR OperationOutcome (fhir::ToOperationOutcome: severity, issue-type code
// derived from the issue code, details.coding = the kakehashi code, diagnostics = the message,
// expression = the FHIRPath location). An empty list yields one informational "no issues found"
// issue, as OperationOutcome.issue is 1..*.
fhir::Node OutcomeOf(const std::vector<Issue>& issues);

// Convenience: validates and returns the OperationOutcome.
fhir::Node ValidateToOutcome(const Validator& validator, const fhir::Node& resource);

}  // namespace kakehashi::conformance
