// The 26 SS-MIX2 standardized-storage data types (guideline 1.2g p.11; digest §5 and §4).
//
// Every type is recognised; which ones are mapped to FHIR is mapping/'s business. The table is
// static data: safe from any thread.
#pragma once

#include <span>
#include <string_view>

namespace kakehashi::adapters::ssmix2 {

struct DataTypeInfo {
  std::string_view code;     // "OMP-01"
  std::string_view content;  // "処方オーダ"
  std::string_view message;  // register message "RDE^O11"
  std::string_view cancel;   // cancel message(s), "" when none ("ADT^A27")
  bool undated = false;      // filed under the "-" care-date folder (ADT-00/01/61, PPR-01)
  bool snapshot = false;     // whole-patient snapshot to diff (ADT-00, ADT-61, PPR-01)
};

// All 26 types in the guideline's order.
std::span<const DataTypeInfo> DataTypes() noexcept;

// The type with this code (exact, case-sensitive as written in the store), or nullptr.
const DataTypeInfo* FindDataType(std::string_view code) noexcept;

}  // namespace kakehashi::adapters::ssmix2
