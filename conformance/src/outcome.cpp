// Issues -> OperationOutcome: one format for the whole project, so this delegates to
// fhir::ToOperationOutcome (operationoutcome.html; issue-type derived from the issue code).
#include "kakehashi/conformance/validator.hpp"
#include "kakehashi/fhir/json.hpp"

namespace kakehashi::conformance {

fhir::Node OutcomeOf(const std::vector<Issue>& issues) {
  return fhir::ToOperationOutcome(issues);
}

fhir::Node ValidateToOutcome(const Validator& validator, const fhir::Node& resource) {
  CollectingSink sink;
  validator.Validate(resource, sink);
  return OutcomeOf(sink.Issues());
}

}  // namespace kakehashi::conformance
