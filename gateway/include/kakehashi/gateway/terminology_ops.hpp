// The terminology operations over REST (issues #5, #6), as HandlerOptions::type_operations:
//
//   [base]/CodeSystem/$lookup        http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup
//   [base]/ValueSet/$validate-code   http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code
//   [base]/ValueSet/$expand          http://hl7.org/fhir/OperationDefinition/ValueSet-expand
//   [base]/ConceptMap/$translate     http://hl7.org/fhir/OperationDefinition/ConceptMap-translate
//
// IN parameters (R4 §3.1.0.11 "Operations"): GET query parameters, or POST with a Parameters
// resource (application/fhir+json) or a form (application/x-www-form-urlencoded). Supported IN:
//   $lookup         system, code, version, coding (system+code), property (repeatable)
//   $validate-code  url, system, code, display, coding
//   $expand         url, filter, offset, count (paging; default count 100, at most 1000)
//   $translate      url, system, code, coding, targetsystem, reverse
// OUT: a Parameters resource (200) with the OUT parameters of the R4 OperationDefinition (as the
// terminology CLI prints them); the service's issues, if any, as an "issues" OperationOutcome part.
// Errors are OperationOutcome: 400 a required parameter is missing or malformed (or the body is
// not a Parameters resource); 404 $lookup of a code that is not found (unknown system, master not
// loaded, or code not in the system — the diagnostics say which) and $validate-code / $expand of
// an unknown ValueSet. $validate-code and $translate answer "not valid" / "no match" as
// result=false with 200, as their definitions say. Any spelling of a system URI is accepted.
//
// Thread-safety: the operations only read `store`, which must outlive them and no longer be
// written (terminology/operations.hpp).
#pragma once

#include "kakehashi/fhir/node.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/operations.hpp"
#include "kakehashi/terminology/store.hpp"

#include <vector>

namespace kakehashi::gateway {

std::vector<TypeOperation> TerminologyOperations(
    const terminology::TerminologyStore& store,
    terminology::ProfileSet output = terminology::ProfileSet::kJpCore120);

// Token :in / :not-in (HandlerOptions::value_set_codes; decision 0045) over the same service:
// the codes ValueSet/$expand lists for `url`, each with every spelling of its system.
ValueSetCodes TerminologyValueSetCodes(
    const terminology::TerminologyStore& store,
    terminology::ProfileSet output = terminology::ProfileSet::kJpCore120);

// The OUT Parameters resource of each operation (the R4 OperationDefinitions above), one builder
// for the REST operations and `kakehashi terminology`. Empty values are left out (a FHIR string
// or uri is never ""); the service's issues, if any, become an "issues" OperationOutcome part.
// LookupParameters names the system only for a found code.
fhir::Node LookupParameters(const terminology::LookupResult& result);
fhir::Node ValidateCodeParameters(const terminology::ValidateCodeResult& result);
fhir::Node TranslateParameters(const terminology::TranslateResult& result);
// A Coding datatype (system, version, code, display; empty ones left out).
fhir::Node CodingToNode(const terminology::Coding& coding);

}  // namespace kakehashi::gateway
