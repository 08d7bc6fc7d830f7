// Small helpers shared by the handler's translation units.
#pragma once

#include "detail/json.hpp"
#include "kakehashi/common/issue.hpp"
#include "kakehashi/common/result.hpp"
#include "kakehashi/gateway/http.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kakehashi::gateway::detail {

inline constexpr std::string_view kFhirJson = "application/fhir+json; charset=utf-8";

// A failed interaction: HTTP status, FHIR issue-type code and a message without input values.
struct Failure {
  int status = 400;
  std::string code = "invalid";  // http://hl7.org/fhir/issue-type
  std::string diagnostics;
  std::vector<Issue> issues;  // validator issues (422)
  // FHIRPath of the element at fault (OperationOutcome.issue.expression), when no `issues`.
  std::string expression;
  // Set when a store call failed (409/500/503): the commit queue runs such a request again in a
  // transaction of its own (commit_queue.hpp), so its answer is its own, not a neighbour's.
  std::optional<ErrorCode> store_error;
};

std::string OperationOutcomeJson(const Failure& failure);
Response FailureResponse(const Failure& failure);

// A Failure with HTTP `status`, issue-type `code` and `diagnostics` (no input values in them).
inline Failure Fail(int status, std::string code, std::string diagnostics) {
  Failure f;
  f.status = status;
  f.code = std::move(code);
  f.diagnostics = std::move(diagnostics);
  return f;
}

// A 400 for a malformed or unsupported request parameter (search, _summary/_elements).
inline Failure Bad(std::string diagnostics, std::string code = "invalid") {
  return Fail(400, std::move(code), std::move(diagnostics));
}

using QueryParams = std::vector<std::pair<std::string, std::string>>;
// application/x-www-form-urlencoded / query string: '&'-separated, '+' is space, %XX decoded.
QueryParams ParseQuery(std::string_view query);
std::string PercentDecode(std::string_view text, bool plus_is_space);
std::string PercentEncode(std::string_view text);

bool IsValidId(std::string_view id);             // R4 id: [A-Za-z0-9\-\.]{1,64}
bool IsResourceTypeName(std::string_view type);  // a type the gateway serves
// Every type the gateway serves, sorted (the CapabilityStatement lists exactly these).
const std::vector<std::string>& ResourceTypeNames();
std::string NewId();   // time-ordered UUID v7 text (RFC 9562)
std::int64_t NowUs();  // strictly increasing within the process

// Whether an `Accept` field value (RFC 9110 §12.5.1) admits the JSON this server produces
// (application/fhir+json or application/json): the most specific media range matching either
// (exact, then application/*, then */*) has a q-value above 0. Media-type parameters other than
// q (fhirVersion, charset) are not compared. An empty value admits anything.
bool AcceptsJson(std::string_view accept);

}  // namespace kakehashi::gateway::detail
