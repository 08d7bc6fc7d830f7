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

enum class ParamType { kToken, kString, kDate, kReference, kQuantity, kNumber, kUri };

struct SearchParamDef {
  std::string_view resource_type;
  std::string_view code;
  ParamType type;
  std::string_view expression;  // union of supported FHIRPath parts for this base
  std::string_view targets;     // reference targets, comma separated
};

// gateway/src/generated/search_params.cpp
std::span<const SearchParamDef> SearchParamDefs();

struct CompiledParam {
  const SearchParamDef* def = nullptr;
  std::vector<FhirPath> paths;
  // Non-empty: the parameter's paths are exactly the union of these other parameters' paths
  // (same type), e.g. Observation combo-code = code | component-code. Such a parameter has no
  // index rows of its own (they would duplicate the others'); searches match the rows of these.
  std::vector<std::string> union_of;
};

// Search parameters by resource type and code, compiled once (immutable afterwards: thread-safe).
class SearchParamRegistry {
 public:
  static const SearchParamRegistry& Instance();
  const CompiledParam* Find(std::string_view type, std::string_view code) const;
  // All parameters of one type (empty when the type has none).
  const std::map<std::string, CompiledParam, std::less<>>& ForType(std::string_view type) const;
  std::vector<std::string> Types() const;
  // The parameter codes whose index rows a search on (type, code) reads: `code` itself, or the
  // parameters it is the union of (CompiledParam::union_of). Unknown codes map to themselves.
  std::vector<std::string_view> IndexedAs(std::string_view type, std::string_view code) const;

 private:
  SearchParamRegistry();
  std::map<std::string, std::map<std::string, CompiledParam, std::less<>>, std::less<>> by_type_;
};

}  // namespace kakehashi::gateway::detail
