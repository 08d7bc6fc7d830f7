// Lookups over the generated R4 tables (fhir/src/generated/r4_meta*.cpp).
#include "kakehashi/fhir/r4/meta.hpp"

#include <algorithm>
#include <cstddef>

namespace kakehashi::fhir::r4 {
namespace generated {
extern const TypeInfo kTypes[];
extern const std::size_t kTypeCount;
extern const ValueSetInfo kValueSets[];
extern const std::size_t kValueSetCount;
extern const std::string_view kSpecVersion;
extern const std::string_view kSourcePackage;
}  // namespace generated

namespace {

// A choice suffix names its type with the first letter capitalised ("valueQuantity",
// "effectiveDateTime"): http://hl7.org/fhir/R4/formats.html#choice.
bool SuffixMatches(std::string_view suffix, std::string_view code) {
  if (suffix.size() != code.size() || suffix.empty()) return false;
  const char first =
      code[0] >= 'a' && code[0] <= 'z' ? static_cast<char>(code[0] - 'a' + 'A') : code[0];
  return suffix[0] == first && suffix.substr(1) == code.substr(1);
}

}  // namespace

const ElementInfo* TypeInfo::FindElement(std::string_view json_name,
                                         std::string_view* choice_type) const {
  for (const ElementInfo& element : elements) {
    if (!element.is_choice) {
      if (element.name == json_name) return &element;
      continue;
    }
    if (json_name.size() <= element.name.size() ||
        json_name.substr(0, element.name.size()) != element.name)
      continue;
    const std::string_view suffix = json_name.substr(element.name.size());
    for (const TypeRef& type : element.types) {
      if (SuffixMatches(suffix, type.code)) {
        if (choice_type != nullptr) *choice_type = type.code;
        return &element;
      }
    }
  }
  return nullptr;
}

std::span<const TypeInfo> AllTypes() {
  return {generated::kTypes, generated::kTypeCount};
}

const TypeInfo* FindType(std::string_view name) {
  const auto all = AllTypes();
  const auto it =
      std::lower_bound(all.begin(), all.end(), name,
                       [](const TypeInfo& t, std::string_view n) { return t.name < n; });
  return it != all.end() && it->name == name ? &*it : nullptr;
}

bool IsResourceType(std::string_view name) {
  const TypeInfo* type = FindType(name);
  return type != nullptr && type->kind == TypeKind::kResource;
}

bool ValueSetInfo::Contains(std::string_view code, std::string_view system) const {
  for (const CodeInfo& c : codes) {
    if (c.code == code && (system.empty() || c.system == system)) return true;
  }
  return false;
}

const ValueSetInfo* FindValueSet(std::string_view url) {
  if (const auto bar = url.find('|'); bar != std::string_view::npos) url = url.substr(0, bar);
  const ValueSetInfo* begin = generated::kValueSets;
  const ValueSetInfo* end = begin + generated::kValueSetCount;
  const auto* it = std::lower_bound(
      begin, end, url, [](const ValueSetInfo& v, std::string_view u) { return v.url < u; });
  return it != end && it->url == url ? it : nullptr;
}

std::string_view SpecVersion() {
  return generated::kSpecVersion;
}
std::string_view SourcePackage() {
  return generated::kSourcePackage;
}

}  // namespace kakehashi::fhir::r4
