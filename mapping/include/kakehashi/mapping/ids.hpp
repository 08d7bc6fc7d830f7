// Deterministic resource ids (STYLE.md "Deterministic ids"): the same source identity always
// yields the same id, so Bundles can PUT and replays are idempotent.
//
// Id = a UUID-shaped string (8-4-4-4-12 lowercase hex, version nibble 8 = "custom") built from two
// independent 64-bit FNV-1a hashes (with a MurmurHash3 finaliser) of the parts joined with U+001F.
// Parts are, by convention, resource type, source system (facility identifier system) and the
// identifying values. Valid as a FHIR id ([A-Za-z0-9\-\.]{1,64}) and as a urn:uuid.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::mapping {

std::string DeterministicId(const std::vector<std::string>& parts);
std::string DeterministicId(std::initializer_list<std::string_view> parts);

// The same id, part by part (no list of copies): Add() each part in order, then Id().
class IdBuilder {
 public:
  void Add(std::string_view part);
  std::string Id() const;

 private:
  std::uint64_t a_ = 0xcbf29ce484222325ULL;  // the two FNV-1a states (ids.cpp)
  std::uint64_t b_ = 0x84222325cbf29ce4ULL;
};

}  // namespace kakehashi::mapping
