// FHIR search parameters (R4 §3.1.1) -> store::SearchQuery plus the result-shaping parameters.
#pragma once

#include "handler_util.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace kakehashi::gateway::detail {

struct IncludeSpec {
  std::string source_type;  // Observation in Observation:subject
  std::string param;        // subject
  std::string target_type;  // optional third part
};

struct SearchSpec {
  store::SearchQuery query;
  std::vector<IncludeSpec> includes;
  std::vector<IncludeSpec> revincludes;
  bool summary_count = false;
  bool total_accurate = false;
  std::vector<std::string> elements;
  QueryParams echo;  // parameters repeated in self/next links (paging ones excluded)
};

struct SearchContext {
  std::string base_url;
  int default_count = 20;
  int max_count = 1000;
};

// Fills `spec` for a search of `type`; returns a 400 Failure for unknown parameters, bad values
// or unsupported modifiers (R4 §3.1.1.2: servers reject what they cannot honour when strict).
std::optional<Failure> BuildSearch(const std::string& type, const QueryParams& params,
                                   const SearchContext& context, SearchSpec& spec);

// The lock key of conditional-create criteria (If-None-Exist / ifNoneExist, R4 §3.1.0.8.2):
// equal for two criteria only if BuildSearch gives them the same match set. It is the set of
// decoded (name, value) pairs, so order, repeats and percent-encoding do not matter (clauses
// are ANDed), without the parameters that only shape a result (_format, _pretty, _count,
// _summary, _total, _elements, _sort, _include, _revinclude), each pair percent-encoded again
// and joined sorted with '&' (injective: '=', '&' and '%' are encoded). The alternatives of
// one value (comma-separated, ORed) are a set too: "a,b", "b,a" and "a,b,a" give one key
// (decision 0028); different parameters or values still lock apart. nullopt for paging
// parameters (_offset, _cursor), which change which matches are seen.
std::optional<std::string> CriteriaKey(const QueryParams& params);

// Parses one date search value with an optional prefix into `p` (kDate or kLastUpdated).
bool ParseDateValue(std::string_view value, store::Predicate& p);

}  // namespace kakehashi::gateway::detail
