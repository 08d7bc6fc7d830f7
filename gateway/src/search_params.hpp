// The R4 search parameters the gateway indexes (generated table, gateway/codegen/) and their
// compiled FHIRPath-subset expressions.
#pragma once

#include "detail/fhirpath_lite.hpp"

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::gateway::detail {

enum class ParamType { kToken, kString, kDate, kReference, kQuantity, kNumber, kUri, kComposite };

struct SearchParamDef {
  std::string_view resource_type;
  std::string_view code;
  ParamType type;
  // Union of supported FHIRPath parts for this base; of a composite, its context: the elements
  // its components are evaluated on (the base type alone: the resource itself).
  std::string_view expression;
  std::string_view targets;  // reference targets, comma separated
};

// A composite parameter's components (R4 search.html "Composite Search Parameters"): the code
// and type of the parameter each one is searched as, and its expression relative to the
// composite's context ("value.as(Quantity)").
struct CompositeComponentDef {
  std::string_view code;
  ParamType type;
  std::string_view expression;
};
struct CompositeParamDef {
  std::string_view resource_type;
  std::string_view code;
  CompositeComponentDef components[2];
};

// gateway/src/generated/search_params.cpp
std::span<const SearchParamDef> SearchParamDefs();
std::span<const CompositeParamDef> CompositeParamDefs();

// A compiled composite component: `paths` are relative to the context element (base "X").
struct CompiledComponent {
  std::string code;
  ParamType type = ParamType::kToken;
  std::vector<FhirPath> paths;
};

// The index rows of a string parameter's values as received, for :exact (R4: "the whole string,
// including casing and accents"), are stored under the code + kExactSuffix; the display texts
// of a token parameter's values, for :text, under the code + kTextSuffix (idx_string rows,
// NFKC case folded). Such a code is no parameter of the registry; IndexedAs maps it like its
// parameter (combo-code:text = code:text | component-code:text). A quantity parameter's values
// in UCUM units (system http://unitsofmeasure.org, a code kakehashi/terminology/ucum.hpp
// converts) are stored a second time under the code + kUcumSuffix, in the canonical unit
// (idx_quantity rows: value and code canonical, system the UCUM URI; decision 0047).
inline constexpr std::string_view kExactSuffix = ":exact";
inline constexpr std::string_view kTextSuffix = ":text";
inline constexpr std::string_view kUcumSuffix = ":ucum";
// Decision 0044: a reference parameter's Reference.identifier values, for :identifier, are
// idx_token rows under code + kIdentifierSuffix (system|value); a token parameter's Identifier
// values with their Identifier.type codings, for :of-type, are idx_composite rows under code +
// kOfTypeSuffix (system1|code1 = a type Coding, code2 = Identifier.value).
inline constexpr std::string_view kIdentifierSuffix = ":identifier";
inline constexpr std::string_view kOfTypeSuffix = ":of-type";

struct CompiledParam {
  const SearchParamDef* def = nullptr;
  std::vector<FhirPath> paths;  // of a composite: its contexts (no steps: the resource)
  std::vector<CompiledComponent> components;  // a composite's two components, else empty
  // The code of its second kind of index rows: code + kExactSuffix of a string parameter,
  // code + kTextSuffix of a token one (not of a uri) (idx_string), code + kUcumSuffix of a
  // quantity one (idx_quantity, canonical UCUM), code + kIdentifierSuffix of a reference one
  // (idx_token, Reference.identifier); empty for others and for a parameter stored as a union
  // of others.
  std::string variant_code;
  // code + kOfTypeSuffix of a token parameter (not a uri, nor a union): its :of-type rows.
  std::string of_type_code;
  // Non-empty: the parameter's paths are exactly the union of these other parameters' paths
  // (same type), e.g. Observation combo-code = code | component-code. Such a parameter has no
  // index rows of its own (they would duplicate the others'); searches match the rows of these.
  // Stored databases depend on this: a change to what is derived needs a schema migration
  // (store/sql_session.hpp, SchemaV3 deleted the rows of the parameters derived then).
  std::vector<std::string> union_of;
  // With union_of (one reference parameter): only its rows whose target type is this, for a
  // parameter whose paths are the other's with `.where(resolve() is T)` (Observation patient =
  // Observation.subject.where(resolve() is Patient): the subject rows with target Patient).
  std::string only_target;
};

// The index rows a search on a parameter reads (SearchParamRegistry::IndexedAs).
struct IndexedParam {
  std::vector<std::string> codes;  // rows of any of these parameter codes
  std::string_view only_target;    // non-empty: and of this reference target type
};

// Search parameters by resource type and code, compiled once (immutable afterwards: thread-safe).
class SearchParamRegistry {
 public:
  static const SearchParamRegistry& Instance();
  const CompiledParam* Find(std::string_view type, std::string_view code) const;
  // All parameters of one type (empty when the type has none).
  const std::map<std::string, CompiledParam, std::less<>>& ForType(std::string_view type) const;
  std::vector<std::string> Types() const;
  // The index rows a search on (type, code) reads: those of `code` itself, or of the parameters
  // it is the union or restriction of (CompiledParam::union_of, only_target). Unknown codes map
  // to themselves; "code:suffix" maps as `code` with the suffix on each code.
  IndexedParam IndexedAs(std::string_view type, std::string_view code) const;

 private:
  SearchParamRegistry();
  std::map<std::string, std::map<std::string, CompiledParam, std::less<>>, std::less<>> by_type_;
};

}  // namespace kakehashi::gateway::detail
