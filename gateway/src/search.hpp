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

// Parses one date search value with an optional prefix into `p` (kDate or kLastUpdated).
bool ParseDateValue(std::string_view value, store::Predicate& p);

}  // namespace kakehashi::gateway::detail
