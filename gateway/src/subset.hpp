// _summary and _elements (R4 search.html "Summary" §3.1.1.5.8 and "Elements" §3.1.1.5.9): the
// subset of a stored resource a client asked for, on search, read, vread and history
// (docs/gateway.md; decision 0045).
#pragma once

#include "handler_util.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::gateway::detail {

// The values of _summary (R4 search.html, "Summary"; ValueSet search-summary).
enum class Summary : unsigned char { kFalse, kTrue, kText, kData, kCount };

// nullopt for a value outside true|text|data|count|false.
std::optional<Summary> ParseSummary(std::string_view value);

struct SubsetSpec {
  Summary summary = Summary::kFalse;
  std::vector<std::string> elements;  // _elements, unescaped
  // Whether a resource is served as a subset (SUBSETTED): _summary true|text|data or _elements.
  bool Active() const {
    return !elements.empty() || (summary != Summary::kFalse && summary != Summary::kCount);
  }
};

// _summary together with _elements: R4 defines no combination of the two, so anything but
// _summary=false|count with _elements is refused (400) rather than guessed.
std::optional<Failure> CheckSubset(const SubsetSpec& spec);

// _summary (not count: no Bundle to count) and _elements of a read, vread or history; the other
// parameters are left to the caller. 400 for an unknown _summary value.
std::optional<Failure> ParseSubsetParams(const QueryParams& params, SubsetSpec& spec,
                                         bool allow_count);

// The subset of one resource's JSON (`json` unchanged when !spec.Active() or not a resource):
//  _summary=true: resourceType, id, meta and the elements the R4 StructureDefinition of the type
//    marks isSummary or min >= 1 (fhir/ generated metadata, regenerated and drift-checked from
//    the pinned definitions); inside a backbone element (Observation.component) the same rule
//    again; values of data types are kept whole.
//  _summary=text: resourceType, id, meta, text and the top-level elements of min >= 1.
//  _summary=data: everything but text.
//  _elements: the named top-level elements (a choice by "value" or "valueQuantity") plus id,
//    meta and the top-level elements of min >= 1.
// A primitive's companion ("_status") follows its element. The resource gets the tag
// http://terminology.hl7.org/CodeSystem/v3-ObservationValue|SUBSETTED in meta.tag (once).
std::string Subset(const std::string& json, const SubsetSpec& spec);

}  // namespace kakehashi::gateway::detail
