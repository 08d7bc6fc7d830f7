// Extracts the search index rows of one resource from its JSON (R4 §3.1.1.4 value types).
#pragma once

#include "detail/json.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include <string>

namespace kakehashi::gateway::detail {

// Fills `out` with the values of every search parameter defined for the resource's type.
void IndexResource(const Json& resource, store::IndexEntries& out);

// The version of the value extraction below, bumped by hand whenever a change here (or in the
// FHIRPath evaluation, NormalizeForSearch, the date ranges) can change the rows of a resource
// whose search parameters did not change. Stores re-index when it or the registry changes
// (decision 0037). 2: canonical UCUM quantity rows (0047); 3: the idx_text rows of `_text` /
// `_content` (decision 0041); 4: :identifier and :of-type rows (0044).
inline constexpr int kIndexerVersion = 4;

// Names the index definition (store::DefaultIndexDefinition): a hash of kIndexerVersion, the
// ICU version and every compiled search parameter (type, code, type, expression, the codes it
// is derived from, its target restriction), as "v<version>-<16 hex digits>".
std::string IndexFingerprint();

}  // namespace kakehashi::gateway::detail
