// The gateway's private JSON tree (json.hpp) as a fhir::Node, for the conformance hook
// (HandlerOptions::node_validator): the tree a write prepared is handed over as it is instead of
// being serialised and parsed again (decision 0052).
#pragma once

#include "detail/json.hpp"
#include "kakehashi/fhir/node.hpp"

namespace kakehashi::gateway::detail {

// The same value as fhir::ParseJson(ToJsonText(value)) returns for any tree detail::ParseJson
// built or the handler assembled (no repeated member names, valid UTF-8, number text as JSON
// writes it): same kinds, the same strings and number text, members in the same order. Strings
// and keys are moved out of `value`, which is left in an unspecified (destructible) state.
fhir::Node ToNode(Json&& value);

}  // namespace kakehashi::gateway::detail
