// The R4 Patient compartment (CompartmentDefinition "patient"): which search parameters of which
// resource types put a resource in the compartment of the Patient they reference. Generated
// from the pinned R4 definition (gateway/codegen/gen_compartment.py); tests/gateway checks it
// has not drifted. Read by Patient/$everything (search.cpp, BuildEverything).
#pragma once

#include <span>
#include <string_view>

namespace kakehashi::gateway::detail {

struct CompartmentLink {
  std::string_view resource_type;  // "Observation"
  std::string_view param;          // "performer": a reference search parameter of that type
};

// gateway/src/generated/patient_compartment.cpp, sorted by (type, parameter).
std::span<const CompartmentLink> PatientCompartment();

}  // namespace kakehashi::gateway::detail
