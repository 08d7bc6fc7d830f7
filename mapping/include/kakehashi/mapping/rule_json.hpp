// Reader for rule files: JSON with `//` and `/* */` comments (STYLE.md: "JSON with // comments")
// and trailing commas, into fhir::Node. Numbers keep their text; duplicate member names are
// rejected. Also used by tests to read expected outputs.
//
// TODO(#4): switch to the fhir/ JSON reader once it exposes a comment-tolerant parse.
#pragma once

#include "kakehashi/fhir/node.hpp"

#include <string>
#include <string_view>

namespace kakehashi::mapping {

// Parses `text`. On failure returns false and sets *error to "line N: what" (rule files are ours,
// not patient data, so the message may quote them).
bool ParseRuleJson(std::string_view text, fhir::Node& out, std::string* error);

}  // namespace kakehashi::mapping
