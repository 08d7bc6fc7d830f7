// The FHIRPath subset used by the R4 search parameter expressions kakehashi indexes:
//   Type.a.b            member navigation, arrays flattened (FHIRPath §5.1)
//   (Type.a as T) / Type.a.as(T)   choice-type selection: a + T  (valueQuantity)
//   .where(resolve() is T)          keep References whose target type is T
//   .where(field='text')            keep elements whose member equals the literal
//   (Type.a as T).b                 a member of the selected choice ((value as
//   CodeableConcept).text) X.exists() and X != false       one boolean (R4 Patient-deceased): true
//   when X has an item
//                                   that is not the boolean false (FHIRPath §6.1.1/§5.1.2: a
//                                   value of another type is unequal to false), else false
//   X | Y                           union
// Anything else fails to compile (the generator drops such parts and lists them).
#pragma once

#include "detail/json.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::gateway::detail {

struct FhirPathStep {
  std::string name;         // member name, choice already resolved ("valueQuantity")
  std::string resolve_is;   // where(resolve() is T)
  std::string where_field;  // where(field='value')
  std::string where_value;
};

struct FhirPath {
  std::string base;  // resource type
  std::vector<FhirPathStep> steps;
  // "steps.exists() and steps != false": evaluates to one boolean (a JSON true or false).
  bool exists_not_false = false;
};

// Compiles one union of paths; nullopt when any part is outside the subset.
std::optional<std::vector<FhirPath>> CompileFhirPath(std::string_view expression);

// Appends the elements selected by `path` from `resource` (whose resourceType must equal base);
// a path without steps selects the resource itself (a composite parameter's context "Observation").
void EvaluateFhirPath(const Json& resource, const FhirPath& path, std::vector<const Json*>& out);

// Appends the elements `path`'s steps select from `node`, whatever its base names (a composite
// component's path, relative to its context element).
void EvaluateFhirPathAt(const Json& node, const FhirPath& path, std::vector<const Json*>& out);

// Whether `suffix` is an R4 data type name a choice element's JSON name may end with
// ("Quantity" of "valueQuantity", R4 §2.24.0.1): how a step matches a choice member.
bool IsChoiceTypeName(std::string_view suffix);

// The resource type of a relative or absolute reference ("Patient/1", "http://x/fhir/Patient/1").
std::string_view ReferenceTargetType(std::string_view reference);

}  // namespace kakehashi::gateway::detail
