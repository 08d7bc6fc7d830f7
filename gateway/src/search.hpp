// FHIR search parameters (R4 §3.1.1) -> store::SearchQuery plus the result-shaping parameters.
#pragma once

#include "handler_util.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"
#include "subset.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kakehashi::gateway::detail {

struct IncludeSpec {
  std::string source_type;  // Observation in Observation:subject
  std::string param;        // subject
  std::string target_type;  // optional third part
  bool iterate = false;     // _include:iterate / _revinclude:iterate: also of included resources
};

struct SearchSpec {
  store::SearchQuery query;
  std::vector<IncludeSpec> includes;
  std::vector<IncludeSpec> revincludes;
  bool summary_count = false;
  bool total_accurate = false;
  SubsetSpec subset;  // _summary and _elements (subset.hpp)
  QueryParams echo;   // parameters repeated in self/next links (paging ones excluded)
};

// The codes of a ValueSet resource stored on this server (token :in / :not-in, decision 0043
// §3), named by `ValueSet/id` or by its canonical url: its (system, code) pairs, at most `max`
// (more: any longer list, which the caller refuses); nullopt when no such ValueSet is stored; a
// Failure (400) when it cannot be expanded (a filter, an unknown code system, several stored
// ValueSets with that url).
using StoredValueSetCodes =
    std::function<std::variant<std::optional<std::vector<std::pair<std::string, std::string>>>,
                               Failure>(std::string_view ref, std::size_t max)>;

// The codes of a CodeSystem stored on this server in subsumption with one of its codes (token
// :below / :above, decision 0056 §4), the CodeSystem found by its url: `code` and the codes nested
// under it in concept.concept (below), or `code` and the codes it is nested under (above); at
// most `max` (more: any longer list, which the caller refuses). nullopt when no CodeSystem with
// that url is stored; a Failure (400) when the code is not in it, its hierarchyMeaning is not
// is-a, or several stored CodeSystems have the url.
using StoredCodeSystemCodes =
    std::function<std::variant<std::optional<std::vector<std::string>>, Failure>(
        std::string_view system, std::string_view code, bool below, std::size_t max)>;

struct SearchContext {
  std::string base_url;
  int default_count = 20;
  int max_count = 1000;
  const ValueSetCodes* value_sets = nullptr;  // token :in / :not-in (HandlerOptions)
  // Stored ValueSets for :in / :not-in (null: only the terminology's value sets).
  const StoredValueSetCodes* stored_value_sets = nullptr;
  // Stored CodeSystems for :below / :above (null: refused, 400).
  const StoredCodeSystemCodes* stored_code_systems = nullptr;
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

// The `_cursor` of a sorted search's next link (decision 0039): "s", then per sort key "." and
// "n" (no value) or "v" and the value's bytes in hex (ResourceRow::sort_values), then "." and
// the id of the page's last row. ParseSortCursor reads it back for `sort` (nullopt: malformed,
// another number of keys, or a value that is not of the key's type).
std::string SortCursorText(const store::SortCursor& cursor);
std::optional<store::SortCursor> ParseSortCursor(std::string_view text,
                                                 const std::vector<store::SortKey>& sort);

// Patient/$everything (R4 OperationDefinition Patient-everything): IN parameters `_count` (page
// size, at most SearchContext::max_count, which is also the default), `_since` (resources
// updated at or after that instant), `_type` (comma-separated and repeatable: only these types),
// `start`/`end` (care dates: a compartment resource of a type with an R4 `date` search
// parameter is kept when it has no such date or one that reaches into [start, end]; other types
// are always kept), and `_cursor` (paging, from the next link). The answer has three parts, in
// this order: the Patient; its R4 Patient compartment (compartment.hpp: each type's listed
// parameters reference the Patient) in (lastUpdated, type, id) order; then the resources that
// the Patient and those compartment resources (within start/end) reference, but are not in the
// compartment themselves, each once, in (type, id) order. `_since` and `_type` filter every
// part. Paged by a keyset cursor, so pages stay stable while data changes. The search result
// parameters `_summary` (true|text|data|count|false) and `_elements` shape the Bundle as on a
// search (R4 search.html "Summary" and "Elements"; the answer is a searchset Bundle): each
// entry is subsetted and tagged SUBSETTED, `count` gives the total without entries.
struct EverythingSpec {
  store::SearchQuery query;           // the compartment; query.count is the page size
  store::ReferencedQuery referenced;  // the referenced resources (count set by the handler)
  bool first_page = true;             // no `_cursor`: the Patient (if admitted) opens the page
  bool patient_admitted = true;       // by `_type` (`since_us` is checked on the Patient read)
  bool with_compartment = true;       // false: `_type` admits no type of the compartment
  bool in_referenced = false;         // the cursor is past the compartment, in the referenced part
  std::optional<std::int64_t> since_us;
  SubsetSpec subset;           // _summary=true|text|data, _elements (subset.hpp)
  bool summary_count = false;  // _summary=count: the total, no entries
  QueryParams echo;            // parameters repeated in self/next links (not the cursor)
};
std::optional<Failure> BuildEverything(const std::string& patient_id, const QueryParams& params,
                                       const SearchContext& context, EverythingSpec& spec);

// Parses one date search value with an optional prefix into `p` (kDate or kLastUpdated).
bool ParseDateValue(std::string_view value, store::Predicate& p);

}  // namespace kakehashi::gateway::detail
