// Extracts the search index rows of one resource from its JSON (R4 §3.1.1.4 value types).
#pragma once

#include "detail/json.hpp"
#include "kakehashi/gateway/store/store.hpp"

namespace kakehashi::gateway::detail {

// Fills `out` with the values of every search parameter defined for the resource's type.
void IndexResource(const Json& resource, store::IndexEntries& out);

}  // namespace kakehashi::gateway::detail
