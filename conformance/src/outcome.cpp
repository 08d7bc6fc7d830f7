// Issues -> OperationOutcome (operationoutcome.html). issue.severity uses the FHIR
// issue-severity codes directly; issue.code (issue-type) is "invalid" for problems found in the
// resource and "informational" otherwise; the kakehashi code goes into details.coding.
#include "kakehashi/conformance/validator.hpp"

#include <string>
#include <utility>

namespace kakehashi::conformance {

namespace {
constexpr std::string_view kIssueCodeSystem = "https://kakehashi.dev/fhir/CodeSystem/issue-code";

fhir::Node IssueNode(std::string_view severity, std::string_view type, std::string_view code,
                     const std::string& text, const Location& where) {
  fhir::Node issue = fhir::Node::Object();
  issue.Set("severity", fhir::Node::String(std::string(severity)));
  issue.Set("code", fhir::Node::String(std::string(type)));
  fhir::Node details = fhir::Node::Object();
  if (!code.empty()) {
    fhir::Node coding = fhir::Node::Object();
    coding.Set("system", fhir::Node::String(std::string(kIssueCodeSystem)));
    coding.Set("code", fhir::Node::String(std::string(code)));
    fhir::Node codings = fhir::Node::Array();
    codings.Push(std::move(coding));
    details.Set("coding", std::move(codings));
  }
  if (!text.empty()) details.Set("text", fhir::Node::String(text));
  if (details.Size() > 0) issue.Set("details", std::move(details));
  // diagnostics: where in the input (file, record), when known. Never values.
  Location source_only = where;
  source_only.fhir_path.clear();
  const std::string diagnostics = source_only.ToString();
  if (!where.source.empty() || !where.record.empty()) {
    issue.Set("diagnostics", fhir::Node::String(diagnostics));
  }
  if (!where.fhir_path.empty()) {
    fhir::Node expression = fhir::Node::Array();
    expression.Push(fhir::Node::String(where.fhir_path));
    issue.Set("expression", std::move(expression));
  }
  return issue;
}
}  // namespace

fhir::Node OutcomeOf(const std::vector<Issue>& issues) {
  fhir::Node outcome = fhir::Node::Object();
  outcome.Set("resourceType", fhir::Node::String("OperationOutcome"));
  fhir::Node list = fhir::Node::Array();
  for (const Issue& issue : issues) {
    const bool informational = issue.severity == Severity::kInformation;
    list.Push(IssueNode(ToString(issue.severity), informational ? "informational" : "invalid",
                        issue.code, issue.message, issue.where));
  }
  if (list.Size() == 0) {
    // OperationOutcome.issue is 1..*: say explicitly that nothing was found.
    list.Push(IssueNode("information", "informational", {}, "All OK", Location{}));
  }
  outcome.Set("issue", std::move(list));
  return outcome;
}

fhir::Node ValidateToOutcome(const Validator& validator, const fhir::Node& resource) {
  CollectingSink sink;
  validator.Validate(resource, sink);
  return OutcomeOf(sink.Issues());
}

}  // namespace kakehashi::conformance
